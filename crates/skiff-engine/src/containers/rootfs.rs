//! Reading files of a container's rootfs from the host, symlinks clamped inside it.

use std::path::{Component, Path, PathBuf};

/// Largest /etc/passwd or /etc/group read for user resolution.
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// Resolves `path` inside `root` as the container would see it: symlinks (absolute or relative)
/// are followed *within* `root`, so an image's `/etc/passwd -> /etc/shadow` or `../../x` never
/// reaches a host file. None when the path does not exist or loops.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
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
        let candidate: PathBuf = root.join(resolved.iter().chain(std::iter::once(&component)).collect::<PathBuf>());
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
    Some(root.join(resolved.iter().collect::<PathBuf>()))
}

/// A small text file of the rootfs ("" when absent, not a regular file, or too large).
pub fn read_account_file(root: &Path, path: &str) -> String {
    let Some(p) = resolve_in_root(root, path) else { return String::new() };
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() && m.len() <= MAX_ACCOUNT_FILE => std::fs::read(&p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
        _ => String::new(),
    }
}

/// The rootfs's /etc/passwd and /etc/group, for user resolution.
pub fn account_files(root: &Path) -> (String, String) {
    (read_account_file(root, "/etc/passwd"), read_account_file(root, "/etc/group"))
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
}
