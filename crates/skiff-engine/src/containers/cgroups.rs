//! A container's cgroups (cgroupfs, v1 or v2): where they are, and removing what a runtime left.

use std::path::PathBuf;

/// The container's cgroup, as `linux.cgroupsPath`: under `parent` (a pod's cgroup, cgroupfs
/// style `/kubepods/burstable/pod<uid>`) or Skiff's own `/skiff`.
pub fn path(parent: Option<&str>, id: &str) -> String {
    match parent.map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty()) {
        Some(parent) => format!("{}/{id}", if parent.starts_with('/') { parent.to_string() } else { format!("/{parent}") }),
        None => format!("/skiff/{id}"),
    }
}

/// Kills what still runs in the container's cgroups (`linux.cgroupsPath`) and removes them;
/// logs what stays.
pub fn remove(cgroup_path: &str) {
    for left in remove_dirs(cgroup_path) {
        tracing::warn!(cgroup = %left.display(), "cgroup still busy; left in place");
    }
}

/// Removes the cgroup directories (`<cgroup_path>` in every hierarchy) that the runtime left, e.g. when its
/// shim died before deleting: processes still in them (a container orphaned by its shim) are
/// killed first. Returns the directories that could not be removed.
fn remove_dirs(cgroup_path: &str) -> Vec<PathBuf> {
    let Ok(mounts) = crate::cgroupfs::CgroupMounts::detect() else { return Vec::new() };
    let mut dirs = mounts.dirs(cgroup_path);
    dirs.retain(|d| d.is_dir());
    for _ in 0..50 {
        let mut busy = false;
        for dir in &dirs {
            for pid in std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines() {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    busy = true;
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        if !busy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    dirs.into_iter().filter(|dir| std::fs::remove_dir(dir).is_err()).collect()
}

/// skiffd's own `oom_score_adj`: a container's cannot go below it here (no CAP_SYS_RESOURCE).
pub fn own_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}
