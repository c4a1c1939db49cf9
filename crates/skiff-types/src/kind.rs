//! Error kinds: one small fixed set, as containerd's `errdefs`. Every library error says which
//! kind it is; the API layer maps kinds to gRPC codes in one place (`skiff_api::status`), and
//! callers branch on the kind (or the code), never on message text.

/// What kind of failure an error is, independent of which crate raised it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object asked for does not exist.
    NotFound,
    /// The object to be made exists already.
    AlreadyExists,
    /// The request is wrong whatever the state of the system.
    InvalidArgument,
    /// The request is valid but the system is not in the state it needs (a running container
    /// deleted without force, a start of an exited container).
    FailedPrecondition,
    /// A service (a registry, a shim, the store's lock) cannot be reached now; retrying may help.
    Unavailable,
    /// The caller is known but not allowed.
    PermissionDenied,
    /// The caller's credentials are missing or wrong.
    Unauthenticated,
    /// Stored data is corrupt or lost.
    DataLoss,
    /// A limit was reached.
    ResourceExhausted,
    /// The work took longer than the caller allowed (an ExecSync past its timeout).
    DeadlineExceeded,
    /// A bug or an unexpected failure of the host.
    Internal,
}

impl ErrorKind {
    /// Every kind, for exhaustive tests of mappings.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::InvalidArgument,
        ErrorKind::FailedPrecondition,
        ErrorKind::Unavailable,
        ErrorKind::PermissionDenied,
        ErrorKind::Unauthenticated,
        ErrorKind::DataLoss,
        ErrorKind::ResourceExhausted,
        ErrorKind::DeadlineExceeded,
        ErrorKind::Internal,
    ];

    /// The kind an I/O error of the host is: a missing path is NotFound, a refused one
    /// PermissionDenied, a full disk ResourceExhausted; anything else Internal.
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as Io;
        match e.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::StorageFull | Io::QuotaExceeded | Io::OutOfMemory => ErrorKind::ResourceExhausted,
            Io::InvalidInput => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

/// An error that knows its kind.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

impl HasKind for std::io::Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::of_io(self)
    }
}
