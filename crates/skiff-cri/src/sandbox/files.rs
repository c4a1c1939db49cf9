//! The per-pod files every container of a pod mounts: `/etc/hostname`, `/etc/hosts`,
//! `/etc/resolv.conf` and `/dev/shm`. Skiff has no pause container to own them, so skiffd makes
//! them once per pod under the pod's state dir, as containerd's CRI does in `setupSandboxFiles`.
//!
//! ```text
//! <dir>/hostname      the pod's hostname (the node's for host network)
//! <dir>/hosts         localhost lines (a copy of the host's for host network)
//! <dir>/resolv.conf   from the pod's DnsConfig, else a copy of the host's
//! <dir>/shm/          a tmpfs (nosuid,nodev,noexec,mode=1777,size=…); unused with host IPC
//! ```
//!
//! Every input is checked before anything touches the disk, and the tmpfs is mounted last, so a
//! refused or failed request never leaves a mount behind. Files are written to a temp name and
//! renamed, so a reader (or skiffd after a crash) sees either no file or a whole one. They are
//! not synced to disk: they serve only while the pod's namespaces live, and a host crash, the one
//! thing a sync would guard against, ends those too (the pod is then marked not ready).

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};
use skiff_types::{ErrorKind, HasKind};

use crate::cri;

/// The shm size when the pod asks for none: Docker's and containerd's default.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;
/// glibc's limits on the `search` line (the kubelet enforces the same).
pub const MAX_SEARCHES: usize = 32;
pub const MAX_SEARCH_CHARS: usize = 2048;
/// Linux's HOST_NAME_MAX.
const MAX_HOSTNAME: usize = 64;

const HOSTNAME: &str = "hostname";
const HOSTS: &str = "hosts";
const RESOLV_CONF: &str = "resolv.conf";
const SHM: &str = "shm";
const HOST_SHM: &str = "/dev/shm";

/// What a pod without host network sees in `/etc/hosts` until the kubelet mounts its own.
const LOCALHOST_LINES: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A request field that cannot make a valid file.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The host refused a step.
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
}

impl HasKind for FilesError {
    fn kind(&self) -> ErrorKind {
        match self {
            FilesError::Invalid { .. } => ErrorKind::InvalidArgument,
            FilesError::Io { source, .. } => ErrorKind::of_io(source),
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> FilesError {
    FilesError::Invalid { field: field.into(), reason: reason.into() }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FilesError + 'a {
    move |source| FilesError::Io { what, path: path.to_path_buf(), source }
}

pub struct PodFilesRequest<'a> {
    /// The pod's state dir; made 0700 if missing.
    pub dir: &'a Path,
    /// The pod's hostname; empty means the node's. Unused with host network, where the pod
    /// shares the node's UTS namespace and so its name.
    pub hostname: &'a str,
    pub dns: Option<&'a cri::DnsConfig>,
    pub host_network: bool,
    pub host_ipc: bool,
    /// The shm tmpfs's size in bytes; 0 means [`DEFAULT_SHM_SIZE`].
    pub shm_size: u64,
}

/// Where a pod's files are, for the containers' mounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    /// The pod's shm tmpfs, or the host's /dev/shm for host IPC.
    pub shm: PathBuf,
}

/// The host files a pod's copies come from (fixed in skiffd, chosen by tests).
pub(crate) struct HostFiles<'a> {
    pub hosts: &'a Path,
    pub resolv_conf: &'a Path,
}

/// Makes the pod's files under `req.dir` and, unless the pod shares the host's IPC, mounts its
/// shm tmpfs. Making them again replaces them (and the tmpfs) whole.
pub fn make_pod_files(req: &PodFilesRequest) -> Result<PodFiles, FilesError> {
    make_with(req, &HostFiles { hosts: Path::new("/etc/hosts"), resolv_conf: Path::new("/etc/resolv.conf") })
}

pub(crate) fn make_with(req: &PodFilesRequest, host: &HostFiles) -> Result<PodFiles, FilesError> {
    // Everything the request decides is checked first: a refusal changes nothing on disk.
    let hostname = if req.host_network || req.hostname.is_empty() { node_name()? } else { check_hostname(req.hostname)?.to_owned() };
    let resolv = match req.dns {
        Some(dns) if !(dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty()) => resolv_conf(dns)?.into_bytes(),
        _ => read_or_empty(host.resolv_conf)?,
    };
    let hosts = if req.host_network { read_or_empty(host.hosts)? } else { LOCALHOST_LINES.as_bytes().to_vec() };

    let dir = req.dir;
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err("creating", dir))?;
    let files = PodFiles {
        hostname: write_atomic(dir, HOSTNAME, format!("{hostname}\n").as_bytes())?,
        hosts: write_atomic(dir, HOSTS, &hosts)?,
        resolv_conf: write_atomic(dir, RESOLV_CONF, &resolv)?,
        shm: if req.host_ipc { PathBuf::from(HOST_SHM) } else { dir.join(SHM) },
    };
    if !req.host_ipc {
        mount_shm(&files.shm, if req.shm_size == 0 { DEFAULT_SHM_SIZE } else { req.shm_size })?;
    }
    Ok(files)
}

/// Undoes [`make_pod_files`]: detaches the shm tmpfs and removes the files, leaving `dir` itself
/// to its owner. Whatever is already gone is fine, so a half-made or removed pod is no error.
pub fn remove_pod_files(dir: &Path) -> Result<(), FilesError> {
    let shm = dir.join(SHM);
    unmount_all(&shm)?;
    match fs::remove_dir(&shm) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("removing", &shm)(e)),
        _ => {}
    }
    for name in [HOSTNAME, HOSTS, RESOLV_CONF] {
        for path in [dir.join(name), temp_path(dir, name)] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("removing", &path)(e)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The node's name as the kernel has it (`uname -n`), what a host-network pod sees.
fn node_name() -> Result<String, FilesError> {
    let uts = nix::sys::utsname::uname().map_err(|e| io_err("reading the node name", Path::new("uname"))(e.into()))?;
    Ok(uts.nodename().to_string_lossy().into_owned())
}

/// A hostname the kernel and resolvers accept: RFC 1123 labels joined by dots, at most 64 bytes.
fn check_hostname(name: &str) -> Result<&str, FilesError> {
    let bad = |why: &str| invalid("hostname", format!("{name:?} {why}; a hostname is labels of letters, digits and '-' joined by '.', at most {MAX_HOSTNAME} bytes"));
    if name.len() > MAX_HOSTNAME {
        return Err(bad(&format!("is {} bytes long", name.len())));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("has an empty label"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(bad(&format!("holds {c:?}")));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad(&format!("has label {label:?} starting or ending with '-'")));
        }
    }
    Ok(name)
}

/// The resolv.conf text of a pod's DnsConfig, in containerd's order: search, nameservers,
/// options. Each entry must stay one token on its line, or a resolver would read it differently.
pub(crate) fn resolv_conf(dns: &cri::DnsConfig) -> Result<String, FilesError> {
    for (i, server) in dns.servers.iter().enumerate() {
        if server.parse::<IpAddr>().is_err() {
            return Err(invalid(format!("dns_config.servers[{i}]"), format!("{server:?} is not an IP address")));
        }
    }
    for (field, entries) in [("searches", &dns.searches), ("options", &dns.options)] {
        for (i, entry) in entries.iter().enumerate() {
            if entry.is_empty() {
                return Err(invalid(format!("dns_config.{field}[{i}]"), "is empty"));
            }
            if entry.chars().any(|c| c == '\0' || c.is_whitespace()) {
                return Err(invalid(format!("dns_config.{field}[{i}]"), format!("{entry:?} holds whitespace, a newline or a NUL byte")));
            }
        }
    }
    if dns.searches.len() > MAX_SEARCHES {
        return Err(invalid("dns_config.searches", format!("has {} entries, more than the {MAX_SEARCHES} resolvers read", dns.searches.len())));
    }
    let search = dns.searches.join(" ");
    if search.len() > MAX_SEARCH_CHARS {
        return Err(invalid("dns_config.searches", format!("is {} characters together, more than the {MAX_SEARCH_CHARS} resolvers read", search.len())));
    }
    let mut text = String::new();
    if !search.is_empty() {
        text += &format!("search {search}\n");
    }
    for server in &dns.servers {
        text += &format!("nameserver {server}\n");
    }
    if !dns.options.is_empty() {
        text += &format!("options {}\n", dns.options.join(" "));
    }
    Ok(text)
}

/// A host file's bytes; a missing one reads as empty, as the host's resolver would see it.
fn read_or_empty(path: &Path) -> Result<Vec<u8>, FilesError> {
    match fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other.map_err(io_err("reading", path)),
    }
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp"))
}

/// Writes `dir/name` 0644 through a temp file and a rename.
fn write_atomic(dir: &Path, name: &str, content: &[u8]) -> Result<PathBuf, FilesError> {
    let (path, temp) = (dir.join(name), temp_path(dir, name));
    // A temp file a crash left behind goes; create_new then refuses to follow a symlink there.
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("removing", &temp)(e)),
        _ => {}
    }
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&temp).map_err(io_err("creating", &temp))?;
    // The umask may have narrowed the mode; every container user must read these files.
    let written = file.set_permissions(Permissions::from_mode(0o644)).and_then(|()| file.write_all(content));
    if let Err(e) = written.and_then(|()| fs::rename(&temp, &path)) {
        let _ = fs::remove_file(&temp);
        return Err(io_err("writing", &path)(e));
    }
    Ok(path)
}

fn mount_shm(shm: &Path, size: u64) -> Result<(), FilesError> {
    match fs::symlink_metadata(shm) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(io_err("mounting the shm tmpfs on", shm)(io::Error::other("it is not a directory"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new().mode(0o700).create(shm).map_err(io_err("creating", shm))?,
        Err(e) => return Err(io_err("reading", shm)(e)),
    }
    // A tmpfs an earlier attempt left goes, so the pod never sees two stacked.
    unmount_all(shm)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let data = format!("mode=1777,size={size}");
    mount(Some("shm"), shm, Some("tmpfs"), flags, Some(data.as_str())).map_err(|e| io_err("mounting the shm tmpfs on", shm)(e.into()))
}

/// Detaches every mount on `path`; none (EINVAL) or no path (ENOENT) is done.
fn unmount_all(path: &Path) -> Result<(), FilesError> {
    // Bounded: a path that stays a mount point after this many detaches is not ours to fight.
    for _ in 0..16 {
        match umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(io_err("unmounting the shm tmpfs on", path)(e.into())),
        }
    }
    Err(io_err("unmounting the shm tmpfs on", path)(io::Error::other("it stays mounted after 16 detaches")))
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
