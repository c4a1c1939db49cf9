//! The cgroup filesystems of `/proc/self/mountinfo`: where each v1 controller's hierarchy is
//! mounted (`cpu,cpuacct` together or apart, as the host chose), and the unified one.

use std::path::PathBuf;

/// A mounted cgroup hierarchy. `root` is the cgroup the mount shows at its top (`/` unless
/// skiffd runs in a cgroup namespace or a bind mount of a sub-tree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub root: String,
}

impl Hierarchy {
    /// The directory of the cgroup at `path`; None when it is outside what the mount shows.
    pub fn dir(&self, path: &str) -> Option<PathBuf> {
        let path = contained(path)?.trim_end_matches('/');
        let root = self.root.trim_end_matches('/');
        let rest = if root.is_empty() { path } else { path.strip_prefix(root).filter(|r| r.is_empty() || r.starts_with('/'))? };
        Some(self.mount.join(rest.trim_start_matches('/')))
    }
}

/// `path` unless it climbs out of the hierarchy (`..`): a cgroup parent is the kubelet's text.
pub fn contained(path: &str) -> Option<&str> {
    (!path.split('/').any(|c| c == "..")).then_some(path)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    pub hierarchy: Hierarchy,
    pub v2: bool,
    /// A v1 mount's controllers (from its super options: `rw,cpu,cpuacct`).
    pub controllers: Vec<String>,
}

/// `\040` and friends: mountinfo escapes space, tab, newline and backslash in paths.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every cgroup and cgroup2 mount, in table order; lines that are not well formed are skipped
/// (the kernel writes the table; a line this cannot read is not a cgroup mount it would use).
pub fn cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else { continue };
        let fields: Vec<&str> = before.split(' ').collect();
        let (Some(root), Some(mount)) = (fields.get(3), fields.get(4)) else { continue };
        let mut rest = after.split(' ');
        let (Some(fstype), Some(_source), Some(options)) = (rest.next(), rest.next(), rest.next()) else { continue };
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if v2 { Vec::new() } else { options.split(',').filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('=')).map(String::from).collect() };
        out.push(CgroupMount { hierarchy: Hierarchy { mount: PathBuf::from(unescape(mount)), root: unescape(root) }, v2, controllers });
    }
    out
}
