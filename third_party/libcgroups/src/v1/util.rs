use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};
use procfs::ProcError;
use procfs::process::MountInfo;

use super::ControllerType;
use super::controller_type::CONTROLLERS;

#[derive(thiserror::Error, Debug)]
pub enum V1MountPointError {
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to get mountinfo: {0}")]
    MountInfo(ProcError),
    #[error("could not find mountpoint for {subsystem}")]
    NotFound { subsystem: ControllerType },
    #[error(transparent)]
    Pathrs(#[from] pathrs::error::Error),
}

/// List all cgroup v1 subsystem mount points on the system. This can include unsupported
/// subsystems, comounted controllers and named hierarchies.
pub fn list_subsystem_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);

    reader
        .lines()
        .map(|lr| {
            lr.map_err(V1MountPointError::Io)
                .and_then(|line| MountInfo::from_line(&line).map_err(V1MountPointError::MountInfo))
        })
        .try_fold(Vec::new(), |mut mount_points, r| {
            r.map(|m| {
                if m.fs_type == "cgroup" {
                    mount_points.push(m.mount_point);
                }
                mount_points
            })
        })
}

/// List the mount points of all currently supported cgroup subsystems.
pub fn list_supported_mount_points() -> Result<HashMap<ControllerType, PathBuf>, V1MountPointError>
{
    let mut mount_paths = HashMap::with_capacity(CONTROLLERS.len());

    for controller in CONTROLLERS {
        if let Ok(mount_point) = get_subsystem_mount_point(controller) {
            mount_paths.insert(controller.to_owned(), mount_point);
        }
    }

    Ok(mount_paths)
}

pub fn get_subsystem_mount_point(subsystem: &ControllerType) -> Result<PathBuf, V1MountPointError> {
    find_subsystem_mount_point(&cgroup_mounts()?, subsystem)
}

/// The cgroup v1 mounts of this process, from one read of its mountinfo. A caller that looks up
/// several subsystems reads it once with this and asks [`find_subsystem_mount_point`] for each.
pub fn cgroup_mounts() -> Result<Vec<MountInfo>, V1MountPointError> {
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);
    let mut mounts = Vec::new();
    for line in reader.lines() {
        let mount = MountInfo::from_line(&line?).map_err(V1MountPointError::MountInfo)?;
        if mount.fs_type == "cgroup" {
            mounts.push(mount);
        }
    }
    Ok(mounts)
}

/// Where `subsystem` is mounted among `mounts` (as [`cgroup_mounts`] gives them).
pub fn find_subsystem_mount_point(
    mounts: &[MountInfo],
    subsystem: &ControllerType,
) -> Result<PathBuf, V1MountPointError> {
    let subsystem_name = subsystem.to_string();
    mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup")
        .find(|m| {
            // Some systems mount net_prio and net_cls in the same directory
            // other systems mount them in their own directories. This
            // should handle both cases.
            match subsystem_name.as_str() {
                "net_cls" => ["net_cls,net_prio", "net_prio,net_cls", "net_cls"]
                    .iter()
                    .any(|s| m.mount_point.ends_with(s)),
                "net_prio" => ["net_cls,net_prio", "net_prio,net_cls", "net_prio"]
                    .iter()
                    .any(|s| m.mount_point.ends_with(s)),
                "cpu" => ["cpu,cpuacct", "cpu"]
                    .iter()
                    .any(|s| m.mount_point.ends_with(s)),
                "cpuacct" => ["cpu,cpuacct", "cpuacct"]
                    .iter()
                    .any(|s| m.mount_point.ends_with(s)),
                _ => m.mount_point.ends_with(&subsystem_name),
            }
        })
        .map(|m| m.mount_point.clone())
        .ok_or(V1MountPointError::NotFound {
            subsystem: *subsystem,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(id: u32, point: &str, fs_type: &str, options: &str) -> MountInfo {
        MountInfo::from_line(&format!(
            "{id} 25 0:{id} / {point} rw,nosuid,nodev,noexec,relatime shared:{id} - {fs_type} {fs_type} rw,{options}"
        ))
        .unwrap()
    }

    fn mounts() -> Vec<MountInfo> {
        vec![
            mount(30, "/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cpu,cpuacct"),
            mount(31, "/sys/fs/cgroup/net_cls,net_prio", "cgroup", "net_cls,net_prio"),
            mount(32, "/sys/fs/cgroup/memory", "cgroup", "memory"),
            mount(33, "/sys/fs/cgroup/unified", "cgroup2", "nsdelegate"),
            mount(34, "/run/pids", "tmpfs", "size=4k"),
        ]
    }

    #[test]
    fn one_mountinfo_list_answers_every_subsystem_as_the_per_call_lookup_did() {
        let mounts = mounts();
        let found = |c: ControllerType| find_subsystem_mount_point(&mounts, &c).map(|p| p.display().to_string());
        assert_eq!(found(ControllerType::Cpu).unwrap(), "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(found(ControllerType::CpuAcct).unwrap(), "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(found(ControllerType::NetworkClassifier).unwrap(), "/sys/fs/cgroup/net_cls,net_prio");
        assert_eq!(found(ControllerType::NetworkPriority).unwrap(), "/sys/fs/cgroup/net_cls,net_prio");
        assert_eq!(found(ControllerType::Memory).unwrap(), "/sys/fs/cgroup/memory");
        // Not mounted, and a non-cgroup mount whose path happens to end in the name.
        assert!(matches!(found(ControllerType::Pids), Err(V1MountPointError::NotFound { .. })));
        assert!(matches!(found(ControllerType::HugeTlb), Err(V1MountPointError::NotFound { .. })));
    }
}
