//! How a pin or an unpin fails.

use std::path::PathBuf;
use std::time::Duration;

use skiff_types::{ErrorKind, HasKind};

use super::SysctlNamespace;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("nothing to pin: ask for at least one of the net, ipc and uts namespaces or a pid holder")]
    NothingToPin,

    #[error("pod dir {dir:?} {reason}")]
    BadDir { dir: PathBuf, reason: &'static str },

    #[error("hostname {hostname:?} {reason}")]
    BadHostname { hostname: String, reason: &'static str },

    #[error("a hostname needs the pod's own uts namespace; the pod shares the host's")]
    HostnameWithoutUts,

    #[error("sysctl {name:?}: {reason}")]
    BadSysctl { name: String, reason: String },

    #[error("sysctl {name:?} is not namespaced: a pod may set only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.*")]
    SysctlNotNamespaced { name: String },

    #[error("sysctl {name:?} needs the pod's own {ns} namespace; the pod shares the host's")]
    SysctlNeedsNamespace { name: String, ns: SysctlNamespace },

    #[error("running the pin helper {shim}: {source}")]
    Spawn { shim: PathBuf, source: std::io::Error },

    /// The helper refused or failed; its message is for the user as it is.
    #[error("{message}")]
    PinFailed { kind: ErrorKind, message: String },

    #[error("the pin helper gave no answer within {0:?}; it was killed")]
    Timeout(Duration),

    #[error("the pin helper's answer is unreadable: {0}")]
    Protocol(String),

    #[error("unpinning {path}: {source}")]
    Unpin { path: PathBuf, source: std::io::Error },

    #[error("stopping the pid holder {pid}: {source}")]
    Holder { pid: i32, source: std::io::Error },

    #[error("the pid holder {pid} is still alive {after:?} after SIGKILL")]
    HolderAlive { pid: i32, after: Duration },
}

impl HasKind for PodError {
    fn kind(&self) -> ErrorKind {
        match self {
            PodError::NothingToPin
            | PodError::BadDir { .. }
            | PodError::BadHostname { .. }
            | PodError::HostnameWithoutUts
            | PodError::BadSysctl { .. }
            | PodError::SysctlNotNamespaced { .. }
            | PodError::SysctlNeedsNamespace { .. } => ErrorKind::InvalidArgument,
            PodError::PinFailed { kind, .. } => *kind,
            PodError::Timeout(_) => ErrorKind::Unavailable,
            PodError::Spawn { .. } | PodError::Protocol(_) | PodError::Unpin { .. } | PodError::Holder { .. } | PodError::HolderAlive { .. } => ErrorKind::Internal,
        }
    }
}
