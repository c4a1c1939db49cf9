//! Runtime errors.

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("image has no command: it sets neither Entrypoint nor Cmd; give one to run")]
    NoCommand,

    #[error("user {user:?} not found in the image's /etc/passwd")]
    UnknownUser { user: String },

    #[error("group {group:?} not found in the image's /etc/group")]
    UnknownGroup { group: String },

    #[error("{what} {id} of user {spec:?} is out of range: ids must be within 0-2147483647 ((uid_t)-1 would leave the process root)")]
    IdOutOfRange { what: &'static str, id: u64, spec: String },

    #[error("annotation {0:?} must be KEY=VALUE")]
    BadAnnotation(String),

    #[error("invalid annotation pattern {pattern:?}: {reason}")]
    BadPattern { pattern: String, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("runtime spec: {0}")]
    Spec(String),

    #[error("reading the host's devices under {path}: {source}")]
    HostDevices { path: String, source: std::io::Error },

    #[error(transparent)]
    Pod(#[from] crate::pod::PodError),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl skiff_types::HasKind for RuntimeError {
    fn kind(&self) -> skiff_types::ErrorKind {
        match self {
            // The spec could not be written from values already checked: a bug, not the caller's.
            RuntimeError::Spec(_) => skiff_types::ErrorKind::Internal,
            // The host's /dev, not the request, is at fault.
            RuntimeError::HostDevices { .. } => skiff_types::ErrorKind::Internal,
            RuntimeError::Pod(e) => e.kind(),
            _ => skiff_types::ErrorKind::InvalidArgument,
        }
    }
}
