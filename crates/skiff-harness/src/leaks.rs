//! What a harness checks for once skiffd is stopped: everything a container, a pod or skiffd
//! itself could leave on the host after a teardown that should have removed it all.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::cni::CniNetwork;
use crate::error::{Error, Result};
use crate::procfs;

/// The kinds of leak, for `LeakReport::of_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeakKind {
    Mount,
    NsfsMount,
    Interface,
    Cgroup,
    Shim,
    Process,
    IpReservation,
    CniCache,
}

/// One thing left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leak {
    /// A mount under the harness's dir (other than nsfs).
    Mount { point: PathBuf, fstype: String },
    /// A network (or other) namespace bind-mounted under the harness's dir: in our mount
    /// namespace (`holder: None`), or in the one process `holder` is in.
    NsfsMount { point: PathBuf, holder: Option<u32> },
    /// An interface (a pod's veth) still attached to the harness's bridge.
    Interface { name: String, bridge: String },
    /// A cgroup of a container the harness saw, with the processes still in it.
    Cgroup { path: PathBuf, pids: Vec<u32> },
    /// A skiff-shim serving a container under the harness's dir.
    Shim { pid: u32, cmdline: String },
    /// A process whose executable or working directory is under the harness's dir.
    Process { pid: u32, exe: PathBuf, cwd: PathBuf },
    /// An address host-local still holds for the harness's network.
    IpReservation { path: PathBuf, ip: String },
    /// A CNI result cache entry: an attachment no DEL removed.
    CniCache { path: PathBuf },
}

impl Leak {
    pub fn kind(&self) -> LeakKind {
        match self {
            Leak::Mount { .. } => LeakKind::Mount,
            Leak::NsfsMount { .. } => LeakKind::NsfsMount,
            Leak::Interface { .. } => LeakKind::Interface,
            Leak::Cgroup { .. } => LeakKind::Cgroup,
            Leak::Shim { .. } => LeakKind::Shim,
            Leak::Process { .. } => LeakKind::Process,
            Leak::IpReservation { .. } => LeakKind::IpReservation,
            Leak::CniCache { .. } => LeakKind::CniCache,
        }
    }
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leak::Mount { point, fstype } => write!(f, "mount: {} ({fstype})", point.display()),
            Leak::NsfsMount { point, holder: None } => write!(f, "nsfs mount: {}", point.display()),
            Leak::NsfsMount { point, holder: Some(pid) } => write!(f, "nsfs mount: {} (in the mount namespace of pid {pid})", point.display()),
            Leak::Interface { name, bridge } => write!(f, "interface: {name} (on bridge {bridge})"),
            Leak::Cgroup { path, pids } => write!(f, "cgroup: {} (processes: {pids:?})", path.display()),
            Leak::Shim { pid, cmdline } => write!(f, "shim: pid {pid} ({cmdline})"),
            Leak::Process { pid, exe, cwd } => write!(f, "process: pid {pid} (exe {}, cwd {})", exe.display(), cwd.display()),
            Leak::IpReservation { path, ip } => write!(f, "ip reservation: {ip} ({})", path.display()),
            Leak::CniCache { path } => write!(f, "cni cache entry: {}", path.display()),
        }
    }
}

/// What a teardown found: leaks by kind, and the teardown steps that failed (a removal skiffd
/// refused, a leak that cleanup could not remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeakReport {
    pub leaks: Vec<Leak>,
    pub errors: Vec<String>,
}

impl LeakReport {
    /// Nothing leaked and every teardown step worked.
    pub fn is_clean(&self) -> bool {
        self.leaks.is_empty() && self.errors.is_empty()
    }

    pub fn of_kind(&self, kind: LeakKind) -> impl Iterator<Item = &Leak> {
        self.leaks.iter().filter(move |l| l.kind() == kind)
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(f, "clean");
        }
        write!(f, "{} leaks, {} teardown errors", self.leaks.len(), self.errors.len())?;
        for leak in &self.leaks {
            write!(f, "\n  {leak}")?;
        }
        for error in &self.errors {
            write!(f, "\n  error: {error}")?;
        }
        Ok(())
    }
}

/// What belongs to one harness.
pub(crate) struct Scope<'a> {
    pub dir: &'a Path,
    pub cni: &'a CniNetwork,
    pub containers: &'a BTreeSet<String>,
    /// The containers' own cgroups (`linux.cgroupsPath`), under whatever parent.
    pub cgroup_paths: &'a BTreeSet<String>,
}

/// Everything `scope` left on the host. Fails only when our own mount table cannot be read:
/// without it nothing can be said, and the dir must not be removed.
pub(crate) fn detect(scope: &Scope<'_>) -> Result<Vec<Leak>> {
    let mut leaks = mounts(scope.dir)?;
    leaks.extend(foreign_nsfs(scope.dir));
    leaks.extend(interfaces(scope.cni.bridge()));
    let mut dirs: Vec<PathBuf> = scope.containers.iter().flat_map(|id| cgroup_dirs(id)).collect();
    for dir in scope.cgroup_paths.iter().flat_map(|path| cgroup_dirs_at(path)) {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    leaks.extend(dirs.into_iter().map(|path| Leak::Cgroup { pids: cgroup_pids(&path), path }));
    leaks.extend(processes(scope.dir));
    leaks.extend(reservations(&scope.cni.reservations_dir()));
    leaks.extend(files_in(&scope.cni.cache_dir().join("results")).into_iter().map(|path| Leak::CniCache { path }));
    Ok(leaks)
}

fn mounts(dir: &Path) -> Result<Vec<Leak>> {
    let table = procfs::mounts(None).map_err(Error::io("read /proc/self/mountinfo"))?;
    Ok(table
        .into_iter()
        .filter(|m| procfs::under(&m.point, dir))
        .map(|m| if m.fstype == "nsfs" { Leak::NsfsMount { point: m.point, holder: None } } else { Leak::Mount { point: m.point, fstype: m.fstype } })
        .collect())
}

/// nsfs mounts under `dir` in mount namespaces other than ours (a pod's pin made in a namespace
/// of skiffd's or a shim's own), each namespace read once through one of its processes.
fn foreign_nsfs(dir: &Path) -> Vec<Leak> {
    let me = std::process::id();
    let mut seen: HashSet<PathBuf> = procfs::link(me, "ns/mnt").into_iter().collect();
    let mut leaks = Vec::new();
    for pid in procfs::pids() {
        let Some(ns) = procfs::link(pid, "ns/mnt") else { continue };
        if !seen.insert(ns) {
            continue;
        }
        let Ok(table) = procfs::mounts(Some(pid)) else { continue };
        leaks.extend(table.into_iter().filter(|m| m.fstype == "nsfs" && procfs::under(&m.point, dir)).map(|m| Leak::NsfsMount { point: m.point, holder: Some(pid) }));
    }
    leaks
}

fn interfaces(bridge: &str) -> Vec<Leak> {
    let brif = Path::new("/sys/class/net").join(bridge).join("brif");
    let mut names: Vec<String> = std::fs::read_dir(brif).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    names.sort();
    names.into_iter().map(|name| Leak::Interface { name, bridge: bridge.into() }).collect()
}

/// The cgroup dirs skiff makes for container `id` that still exist: `<controller>/skiff/<id>` on
/// cgroup v1, `unified/skiff/<id>` (hybrid) or `skiff/<id>` on v2.
pub(crate) fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    cgroup_dirs_at(&format!("skiff/{id}"))
}

/// The dirs of the cgroup at `path` (`linux.cgroupsPath`, cgroupfs style) that exist, in every
/// hierarchy under /sys/fs/cgroup (v1 controllers, named and unified ones) and on a v2 host.
pub(crate) fn cgroup_dirs_at(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return Vec::new();
    }
    let base = Path::new("/sys/fs/cgroup");
    let mut candidates = vec![base.join(rel)];
    if let Ok(mounts) = std::fs::read_dir(base) {
        let mut controllers: Vec<PathBuf> = mounts.flatten().map(|m| m.path()).collect();
        controllers.sort();
        candidates.extend(controllers.into_iter().map(|c| c.join(rel)));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for c in candidates {
        if c.is_dir() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The processes in a cgroup and the cgroups below it.
pub(crate) fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|p| p.trim().parse().ok()).collect();
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.flatten().filter(|c| c.file_type().is_ok_and(|t| t.is_dir())) {
            pids.extend(cgroup_pids(&child.path()));
        }
    }
    pids
}


/// Shims (argv[0] `skiff-shim` with an argument under `dir`: the container's state dir) and any
/// other live process running from `dir`.
fn processes(dir: &Path) -> Vec<Leak> {
    let mut leaks = Vec::new();
    for pid in procfs::pids() {
        if !procfs::alive(pid) {
            continue;
        }
        let Some(args) = procfs::cmdline(pid) else { continue };
        let shim = args.first().is_some_and(|a0| Path::new(a0).file_name().is_some_and(|n| n == "skiff-shim"));
        if shim && args.iter().skip(1).any(|a| procfs::under(Path::new(a), dir)) {
            leaks.push(Leak::Shim { pid, cmdline: args.join(" ") });
            continue;
        }
        let exe = procfs::link(pid, "exe").unwrap_or_default();
        let cwd = procfs::link(pid, "cwd").unwrap_or_default();
        if procfs::under(&exe, dir) || procfs::under(&cwd, dir) {
            leaks.push(Leak::Process { pid, exe, cwd });
        }
    }
    leaks
}

/// host-local's reservation files are named by address; `lock` and `last_reserved_ip.*` are its
/// bookkeeping, not reservations.
fn reservations(dir: &Path) -> Vec<Leak> {
    files_in(dir)
        .into_iter()
        .filter_map(|path| {
            let ip = path.file_name()?.to_str()?.to_string();
            ip.parse::<std::net::IpAddr>().is_ok().then_some(Leak::IpReservation { path, ip })
        })
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_says_clean_only_without_leaks_and_errors() {
        let mut report = LeakReport::default();
        assert!(report.is_clean());
        assert_eq!(report.to_string(), "clean");
        report.leaks.push(Leak::Mount { point: "/tmp/h/m".into(), fstype: "tmpfs".into() });
        report.errors.push("remove pod p: boom".into());
        assert!(!report.is_clean());
        assert_eq!(report.of_kind(LeakKind::Mount).count(), 1);
        assert_eq!(report.to_string(), "1 leaks, 1 teardown errors\n  mount: /tmp/h/m (tmpfs)\n  error: remove pod p: boom");
    }

    #[test]
    fn only_address_named_files_are_reservations() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["lock", "last_reserved_ip.0", "10.200.3.2"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        let got = reservations(dir.path());
        assert_eq!(got, vec![Leak::IpReservation { path: dir.path().join("10.200.3.2"), ip: "10.200.3.2".into() }]);
    }
}
