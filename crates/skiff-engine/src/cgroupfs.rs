//! The cgroup filesystems of `/proc/self/mountinfo`: where each v1 controller's hierarchy is
//! mounted (`cpu,cpuacct` together or apart, as the host chose), and the unified one. The one
//! place Skiff finds cgroup directories: a resource update, the removal of what a runtime left,
//! and the CRI's stats all go through it.

use std::path::{Path, PathBuf};

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

/// The host's cgroup mounts, as this process sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupMounts(Vec<CgroupMount>);

impl CgroupMounts {
    /// From this process's mount table.
    pub fn detect() -> std::io::Result<CgroupMounts> {
        Ok(CgroupMounts::parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
    }

    pub fn parse(mountinfo: &str) -> CgroupMounts {
        CgroupMounts(cgroup_mounts(mountinfo))
    }

    pub fn mounts(&self) -> &[CgroupMount] {
        &self.0
    }

    /// The unified hierarchy of a cgroup v2 host (cgroup2 mounted at /sys/fs/cgroup); None on a
    /// v1 or hybrid host, whose limits are the v1 controllers'.
    pub fn v2_host(&self) -> Option<&Hierarchy> {
        self.0.iter().find(|m| m.v2 && m.hierarchy.mount == Path::new("/sys/fs/cgroup")).map(|m| &m.hierarchy)
    }

    /// The v1 hierarchy holding `controller`.
    pub fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.0.iter().find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller)).map(|m| &m.hierarchy)
    }

    /// The first cgroup2 mount, wherever it is.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.0.iter().find(|m| m.v2).map(|m| &m.hierarchy)
    }

    /// The directory of the cgroup at `path` in every hierarchy that shows it (each v1 one, the
    /// named ones, the unified one), once each: what a removal has to walk.
    pub fn dirs(&self, path: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for dir in self.0.iter().filter_map(|m| m.hierarchy.dir(path)) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_paths_are_unescaped_and_roots_kept() {
        let text = "50 31 0:40 /kubepods /mnt/my\\040cgroups rw - cgroup cgroup rw,memory\nbroken line\n";
        let mounts = cgroup_mounts(text);
        assert_eq!(mounts.len(), 1);
        let h = &mounts[0].hierarchy;
        assert_eq!(h.mount, Path::new("/mnt/my cgroups"));
        assert_eq!(h.dir("/kubepods/pod1/c1"), Some(PathBuf::from("/mnt/my cgroups/pod1/c1")));
        assert_eq!(h.dir("/kubepods"), Some(PathBuf::from("/mnt/my cgroups/")));
        assert_eq!(h.dir("/skiff/c1"), None, "outside what the mount shows");
        assert_eq!(h.dir("/kubepodsx/c1"), None, "a prefix of a name is not a parent");
        assert_eq!(h.dir("/kubepods/../../etc"), None, "never above the mount");
    }

    #[test]
    fn a_hybrid_hosts_controllers_and_every_dir_of_a_cgroup_are_found() {
        let mounts = CgroupMounts::parse(HYBRID);
        assert_eq!(mounts.v2_host(), None, "hybrid: limits are v1's");
        assert_eq!(mounts.v1("cpu").map(|h| h.mount.clone()), Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(mounts.v1("cpuacct"), mounts.v1("cpu"), "mounted together");
        assert_eq!(mounts.v1("pids"), None);
        assert_eq!(mounts.unified().map(|h| h.mount.clone()), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let dirs = mounts.dirs("/skiff/c1");
        let want = ["cpu,cpuacct", "memory", "systemd", "unified"].map(|m| PathBuf::from(format!("/sys/fs/cgroup/{m}/skiff/c1")));
        assert_eq!(dirs, want);
        assert!(mounts.dirs("/skiff/../../etc").is_empty());
    }

    #[test]
    fn a_v2_host_is_told_apart() {
        let mounts = CgroupMounts::parse("26 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert_eq!(mounts.v2_host().map(|h| h.mount.clone()), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(mounts.dirs("/skiff/c1"), [PathBuf::from("/sys/fs/cgroup/skiff/c1")]);
    }
}
