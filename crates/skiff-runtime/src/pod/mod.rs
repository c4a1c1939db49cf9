//! Pod sandboxes without a pause container: the pod's net, ipc and uts namespaces are made by a
//! short-lived helper (`skiff-shim pin`, never a thread of skiffd) and kept alive by bind mounts
//! on files in the pod's state dir; containers join them by path (`linux.namespaces[].path`).
//! A pod whose containers share one PID namespace also gets a PID holder: a tiny process that is
//! PID 1 of a new PID namespace (a bind mount cannot keep a PID namespace usable once its PID 1
//! died, so a process has to).
//!
//! ```text
//! <dir>/                 the pod's state dir (made 0700 if missing)
//! <dir>/net              bind mount of the pod's network namespace (an empty 0400 file below it)
//! <dir>/ipc              bind mount of the pod's IPC namespace
//! <dir>/uts              bind mount of the pod's UTS namespace (hostname set)
//! /proc/<holder>/ns/pid  the pod's PID namespace, for as long as the holder lives
//! ```
//!
//! A namespace not asked for (a host-network pod pins no `net`) has no file. The helper:
//!
//! ```text
//! skiffd ──pin()──▶ skiff-shim pin (stdin: PinRequest, stdout: Pinned)
//!                    │ fork
//!                    ▼
//!                   child: unshare(net|ipc|uts[|pid]) → lo up, hostname, sysctls
//!                    │      [fork → holder: PID 1 of the new PID namespace, setsid]
//!                    │      reports "ok", waits
//!                   parent (host namespaces): bind-mounts /proc/<child>/ns/* on <dir>/*,
//!                    │      answers, lets the holder stay and the child exit
//!                    ▼
//!                   holder, reparented to init (or the nearest subreaper): ignores signals,
//!                   the kernel reaps its children, sleeps until SIGKILL from unpin()
//! ```
//!
//! [`unpin`] undoes a pin whole or half made, any number of times.

mod client;
mod error;
mod procfs;
mod spare;
mod sysctl;
mod unpin;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use client::{pin, PIN_TIMEOUT};
pub use error::PodError;
pub use procfs::start_time;
pub use spare::PinHelpers;
pub use sysctl::{Sysctl, SysctlNamespace};
pub use unpin::unpin;
pub use validate::validate;

/// The file names of the pinned namespaces in the pod's dir (also their names under `/proc/<pid>/ns`).
pub const NET_FILE: &str = "net";
pub const IPC_FILE: &str = "ipc";
pub const UTS_FILE: &str = "uts";

/// Exit codes of `skiff-shim pin` besides 0 (pinned) and 1 (failed): they carry the error kind.
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_EXISTS: i32 = 3;

/// Which namespaces the pod gets of its own; one left false is shared with the host.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Namespaces {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

/// What `skiff-shim pin` is asked to make (its stdin, JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// The pod's state dir; absolute. Made (0700) if missing.
    pub dir: PathBuf,
    #[serde(default)]
    pub namespaces: Namespaces,
    /// Set in the pod's UTS namespace; needs `namespaces.uts`. None keeps the host's name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Namespaced sysctls only (`net.*` with the pod's net namespace; `kernel.shm*`,
    /// `kernel.msg*`, `kernel.sem`, `fs.mqueue.*` with its ipc namespace), in `.` or `/` form.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// A PID 1 for a PID namespace the pod's containers share (CRI NamespaceMode POD).
    #[serde(default)]
    pub pid_holder: bool,
}

/// What was pinned (the helper's stdout, JSON). The caller keeps it to join and to [`unpin`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    pub pid_holder: Option<PidHolder>,
}

/// The process keeping the pod's PID namespace. `pid` alone may name another process once the
/// holder died and the pid was reused; `start_time` tells them apart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PidHolder {
    /// In the PID namespace of whoever ran the helper (skiffd's).
    pub pid: i32,
    /// `/proc/<pid>/ns/pid`: what a container joins.
    pub ns: PathBuf,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot) when it was made.
    pub start_time: u64,
}

impl PidHolder {
    /// Whether the holder still runs (the same process, not one that reused its pid); a
    /// container must not be pointed at `ns` otherwise.
    pub fn is_alive(&self) -> bool {
        procfs::stat(self.pid).is_ok_and(|s| s.start_time == self.start_time && s.state != 'Z' && s.state != 'X')
    }
}

impl Pinned {
    /// The pinned files, in the order net, ipc, uts.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        [&self.net, &self.ipc, &self.uts].into_iter().flatten().map(PathBuf::as_path)
    }
}

impl PinRequest {
    /// The files a pin of this request makes: (name under `/proc/<pid>/ns`, path in the dir).
    pub fn files(&self) -> Vec<(&'static str, PathBuf)> {
        let ns = self.namespaces;
        [(ns.net, NET_FILE), (ns.ipc, IPC_FILE), (ns.uts, UTS_FILE)].into_iter().filter(|(on, _)| *on).map(|(_, name)| (name, self.dir.join(name))).collect()
    }
}
