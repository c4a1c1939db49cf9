//! Devices a container gets: the ones its request names (the CRI's `devices`) and, for a
//! privileged container, every device node of the host. `build` stays pure, so the device nodes
//! are looked at here, by the caller, before it: `resolve_devices` for the request's and
//! `host_devices` for the host's, each giving `ResolvedDevice`s for `SpecInputs`.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Result, RuntimeError};

/// A device the request asks for, as the CRI's `Device` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The node on the host (a symlink such as /dev/disk/by-id/... is followed); a directory
    /// gives every device node below it.
    pub host_path: String,
    /// Where it appears in the container ("" = the host path).
    pub container_path: String,
    /// "rwm" subset
    pub permissions: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
}

impl DeviceKind {
    fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Char => "c",
            DeviceKind::Block => "b",
        }
    }
}

/// A device node as the host has it: what the runtime needs to make it in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedDevice {
    /// The node that was looked at.
    pub host_path: String,
    pub container_path: String,
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits (mode & 0o7777), owner and group of the host's node, which the runtime gives the container's.
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Access the device cgroup allows: a subset of "rwm".
    pub permissions: String,
}

/// Directories under /dev that hold no device nodes of the host's to give (mounts of their own,
/// or per-process views), as containerd and runc skip them.
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// glibc's encoding of dev_t (gnu_dev_major / gnu_dev_minor).
fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0fff)) as u32
}

fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

fn device_of(meta: &std::fs::Metadata, host_path: &str, container_path: &str, permissions: &str) -> Option<ResolvedDevice> {
    let kind = if meta.file_type().is_char_device() {
        DeviceKind::Char
    } else if meta.file_type().is_block_device() {
        DeviceKind::Block
    } else {
        return None;
    };
    Some(ResolvedDevice {
        host_path: host_path.to_string(),
        container_path: container_path.to_string(),
        kind,
        major: major(meta.rdev()),
        minor: minor(meta.rdev()),
        file_mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        permissions: permissions.to_string(),
    })
}

/// Every device node under `dir` (symlinks not followed, so each node comes once under its own
/// name), sorted by name for the same spec every time; `container_dir` is where `dir` appears.
fn walk(dir: &Path, container_dir: &str, permissions: &str, out: &mut Vec<ResolvedDevice>) -> std::io::Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let host = dir.join(name);
        let container = format!("{}/{name}", container_dir.trim_end_matches('/'));
        // A node that went away while we walked is not an error: /dev changes under us.
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            if !SKIPPED_DIRS.contains(&name) {
                walk(&host, &container, permissions, out)?;
            }
        } else if name != "console" {
            // /dev/console is the container's own terminal, never the host's.
            out.extend(device_of(&meta, &host.display().to_string(), &container, permissions));
        }
    }
    Ok(())
}

/// Checks `permissions` is a non-empty subset of "rwm", each letter once.
pub fn check_permissions(permissions: &str, path: &str) -> Result<()> {
    let ok = !permissions.is_empty()
        && permissions.chars().all(|c| "rwm".contains(c))
        && permissions.chars().enumerate().all(|(i, c)| !permissions[..i].contains(c));
    if !ok {
        return Err(RuntimeError::InvalidArgument(format!("device {path}: permissions {permissions:?} must be letters of \"rwm\", each at most once")));
    }
    Ok(())
}

/// Looks up the request's devices on the host. A missing path, one that is no device (nor a
/// directory holding some) or bad permissions are the caller's error, naming the device.
pub fn resolve_devices(devices: &[Device]) -> Result<Vec<ResolvedDevice>> {
    let mut out = Vec::new();
    for d in devices {
        if !d.host_path.starts_with('/') {
            return Err(RuntimeError::InvalidArgument(format!("device host path {:?} must be absolute", d.host_path)));
        }
        let container_path = if d.container_path.is_empty() { d.host_path.as_str() } else { d.container_path.as_str() };
        if !container_path.starts_with('/') {
            return Err(RuntimeError::InvalidArgument(format!("device container path {container_path:?} must be absolute")));
        }
        check_permissions(&d.permissions, &d.host_path)?;
        let bad = |e: std::io::Error| RuntimeError::InvalidArgument(format!("device {}: {e}", d.host_path));
        let real = std::fs::canonicalize(&d.host_path).map_err(bad)?;
        let meta = std::fs::metadata(&real).map_err(bad)?;
        if meta.is_dir() {
            let before = out.len();
            walk(&real, container_path, &d.permissions, &mut out).map_err(bad)?;
            if out.len() == before {
                return Err(RuntimeError::InvalidArgument(format!("device directory {} holds no device nodes", d.host_path)));
            }
            continue;
        }
        match device_of(&meta, &real.display().to_string(), container_path, &d.permissions) {
            Some(dev) => out.push(dev),
            None => return Err(RuntimeError::InvalidArgument(format!("device {} is not a character or block device", d.host_path))),
        }
    }
    Ok(out)
}

/// Every device node under the host's /dev (not pts, shm, mqueue, fd or console), with "rwm":
/// what a privileged container gets, as runc and containerd give it.
pub fn host_devices() -> Result<Vec<ResolvedDevice>> {
    let mut out = Vec::new();
    walk(Path::new("/dev"), "/dev", "rwm", &mut out).map_err(|source| RuntimeError::HostDevices { path: "/dev".into(), source })?;
    Ok(out)
}

/// `linux.devices` entries and `linux.resources.devices` allow rules of `devices`.
pub(super) fn to_json(devices: &[&ResolvedDevice]) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in devices {
        check_permissions(&d.permissions, &d.host_path)?;
        if !d.container_path.starts_with('/') {
            return Err(RuntimeError::InvalidArgument(format!("device container path {:?} must be absolute", d.container_path)));
        }
        nodes.push(json!({
            "path": d.container_path, "type": d.kind.as_str(), "major": d.major, "minor": d.minor,
            "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid,
        }));
        rules.push(json!({"allow": true, "type": d.kind.as_str(), "major": d.major, "minor": d.minor, "access": d.permissions}));
    }
    Ok((nodes, rules))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A directory of this test's own, removed when dropped.
    pub(crate) struct TempDir(std::path::PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("skiff-spec-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn dev_t_is_split_as_glibc_does() {
        // glibc's makedev, to check the split against.
        let makedev = |major: u64, minor: u64| ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12);
        assert_eq!((major(0x103), minor(0x103)), (1, 3), "/dev/null");
        // Numbers past 12 and 8 bits use the high halves of dev_t.
        for (maj, min) in [(1u64, 3u64), (259, 1048577), (4097, 300), (0xffff_ffff, 0xffff_ffff)] {
            assert_eq!((major(makedev(maj, min)) as u64, minor(makedev(maj, min)) as u64), (maj, min));
        }
    }

    #[test]
    fn request_devices_are_looked_up_on_the_host() {
        let null = resolve_devices(&[Device { host_path: "/dev/null".into(), container_path: "/dev/mynull".into(), permissions: "rw".into() }]).expect("/dev/null");
        assert_eq!(null.len(), 1);
        assert_eq!((null[0].kind, null[0].major, null[0].minor, null[0].container_path.as_str()), (DeviceKind::Char, 1, 3, "/dev/mynull"));
        let same = resolve_devices(&[Device { host_path: "/dev/zero".into(), container_path: String::new(), permissions: "rwm".into() }]).expect("/dev/zero");
        assert_eq!((same[0].container_path.as_str(), same[0].minor), ("/dev/zero", 5));

        let dir = TempDir::new("resolve");
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        let link = dir.path().join("null-link");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        let linked = resolve_devices(&[Device { host_path: link.display().to_string(), container_path: "/dev/x".into(), permissions: "r".into() }]).expect("symlink followed");
        assert_eq!((linked[0].host_path.as_str(), linked[0].major, linked[0].minor), ("/dev/null", 1, 3));

        for (path, perms, want) in [
            ("/dev/no-such-device", "rw", "/dev/no-such-device"),
            (file.to_str().expect("utf-8"), "rw", "is not a character or block device"),
            (dir.path().to_str().expect("utf-8"), "rw", "holds no device nodes"),
            ("/dev/null", "rwx", "must be letters of"),
            ("/dev/null", "", "must be letters of"),
            ("/dev/null", "rr", "must be letters of"),
            ("dev/null", "rw", "must be absolute"),
        ] {
            let err = resolve_devices(&[Device { host_path: path.into(), container_path: "/dev/x".into(), permissions: perms.into() }]).expect_err(path);
            assert!(matches!(err, RuntimeError::InvalidArgument(_)) && err.to_string().contains(want), "{path} {perms}: {err}");
        }
    }

    #[test]
    fn host_devices_are_the_nodes_under_dev() {
        let all = host_devices().expect("walk /dev");
        assert!(all.iter().any(|d| d.container_path == "/dev/null" && d.kind == DeviceKind::Char && (d.major, d.minor) == (1, 3)), "{all:?}");
        assert!(all.iter().all(|d| d.permissions == "rwm" && d.host_path == d.container_path));
        assert!(!all.iter().any(|d| d.container_path == "/dev/console" || d.container_path.starts_with("/dev/pts/")));
    }
}
