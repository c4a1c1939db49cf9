//! Reading files of a container's rootfs from the host, symlinks clamped inside it.

use std::path::{Component, Path, PathBuf};

/// Largest /etc/passwd or /etc/group read for user resolution.
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// Resolves `path` inside `root` as the container would see it: symlinks (absolute or relative)
/// are followed *within* `root`, so an image's `/etc/passwd -> /etc/shadow` or `../../x` never
/// reaches a host file. None when the path does not exist or loops.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    resolve(|rel| Some(root.join(rel)), path)
}

/// As [`resolve_in_root`], in the merged view of a snapshot's layers (topmost first), unmounted:
/// the path of the file in the layer that shows it.
pub fn resolve_in_layers(layers: &[PathBuf], path: &str) -> Option<PathBuf> {
    resolve(|rel| skiff_snapshot::view::locate(layers, rel), path)
}

/// Follows `path` component by component, symlinks clamped at the root; `locate` gives where a
/// path of the tree (relative to its root) is on the host.
fn resolve(locate: impl Fn(&Path) -> Option<PathBuf>, path: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = path.split('/').filter(|c| !c.is_empty()).map(str::to_string).rev().collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = locate(&resolved.iter().chain(std::iter::once(&component)).collect::<PathBuf>())?;
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
            if target.is_absolute() {
                resolved.clear();
            }
            for part in target.components().rev() {
                if let Component::Normal(p) = part {
                    pending.push(p.to_string_lossy().into_owned());
                } else if part == Component::ParentDir {
                    pending.push("..".into());
                }
            }
        } else {
            resolved.push(component);
        }
    }
    locate(&resolved.iter().collect::<PathBuf>())
}

/// A small text file at `found` ("" when absent, not a regular file, or too large).
fn read_small(found: Option<PathBuf>) -> String {
    let Some(p) = found else { return String::new() };
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() && m.len() <= MAX_ACCOUNT_FILE => std::fs::read(&p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
        _ => String::new(),
    }
}

/// A small text file of the rootfs ("" when absent, not a regular file, or too large).
pub fn read_account_file(root: &Path, path: &str) -> String {
    read_small(resolve_in_root(root, path))
}

/// /etc/passwd and /etc/group, for user resolution, each where `resolve` finds it.
fn accounts(resolve: impl Fn(&str) -> Option<PathBuf>) -> (String, String) {
    (read_small(resolve("/etc/passwd")), read_small(resolve("/etc/group")))
}

/// The rootfs's account files.
pub fn account_files(root: &Path) -> (String, String) {
    accounts(|path| resolve_in_root(root, path))
}

/// The account files of a snapshot not mounted, read through its layers.
pub fn account_files_in_layers(layers: &[PathBuf]) -> (String, String) {
    accounts(|path| resolve_in_layers(layers, path))
}

/// Whether `path` is a mount point: statx's mount-root attribute (Linux 5.8), else a look in
/// /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    mount_root_attribute(path).unwrap_or_else(|| {
        let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
        let wanted = path.to_string_lossy();
        text.lines().any(|line| line.split(' ').nth(4).is_some_and(|point| point == wanted))
    })
}

/// STATX_ATTR_MOUNT_ROOT of `path`; None when statx fails or the kernel does not report it.
#[allow(unsafe_code)]
fn mount_root_attribute(path: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statx is a valid value of that plain C struct.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and outlives the call; statx writes one struct statx to
    // the buffer, which we own.
    let rc = unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, 0, &mut buf) };
    let attribute = libc::STATX_ATTR_MOUNT_ROOT as u64;
    (rc == 0 && buf.stx_attributes_mask & attribute != 0).then_some(buf.stx_attributes & attribute != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).expect("etc");
        std::fs::write(root.join("etc/real"), "root:x:0:0::/root:/bin/sh\n").expect("write");
        std::os::unix::fs::symlink("/etc/real", root.join("etc/passwd")).expect("abs link");
        std::os::unix::fs::symlink("../../../../etc/hostname", root.join("etc/group")).expect("escaping link");
        assert_eq!(resolve_in_root(root, "/etc/passwd"), Some(root.join("etc/real")));
        assert!(read_account_file(root, "/etc/passwd").starts_with("root:"));
        // Clamped at the root: names the rootfs's /etc/hostname (absent), never the host's.
        assert_eq!(resolve_in_root(root, "/etc/group"), None);
        assert_eq!(read_account_file(root, "/etc/group"), "");
        std::os::unix::fs::symlink("loop", root.join("etc/loop")).expect("loop");
        assert_eq!(resolve_in_root(root, "/etc/loop"), None);
    }

    #[test]
    fn account_files_are_read_through_layers_as_the_mount_would_show_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let [upper, app, base] = ["upper", "app", "base"].map(|l| dir.path().join(l));
        for l in [&upper, &app, &base] {
            std::fs::create_dir_all(l.join("etc")).expect("etc");
        }
        std::fs::write(base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("write");
        std::fs::write(base.join("etc/group"), "root:x:0:\n").expect("write");
        std::fs::write(base.join("etc/accounts"), "app:x:1000:1000::/home/app:/bin/sh\n").expect("write");
        // The app layer points /etc/passwd at a file of the base layer, and deletes /etc/group.
        std::os::unix::fs::symlink("/etc/accounts", app.join("etc/passwd")).expect("link");
        nix::sys::stat::mknod(&app.join("etc/group"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0).expect("whiteout (as root)");
        let layers = vec![upper, app, base.clone()];
        assert_eq!(resolve_in_layers(&layers, "/etc/passwd"), Some(base.join("etc/accounts")));
        assert_eq!(account_files_in_layers(&layers), ("app:x:1000:1000::/home/app:/bin/sh\n".to_string(), String::new()));
        std::os::unix::fs::symlink("../../../../etc/hostname", layers[0].join("etc/passwd")).expect("escaping link");
        assert_eq!(resolve_in_layers(&layers, "/etc/passwd"), None, "clamped at the root: the rootfs's /etc/hostname, absent");
    }

    #[test]
    fn mount_points_are_told_from_plain_dirs() {
        assert!(is_mounted(Path::new("/proc")) && is_mounted(Path::new("/")));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_mounted(dir.path()));
        assert_eq!(mount_root_attribute(Path::new("/proc")), Some(true), "this kernel reports STATX_ATTR_MOUNT_ROOT");
        assert!(!is_mounted(&dir.path().join("missing")));
    }
}
