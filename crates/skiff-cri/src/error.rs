//! What the CRI services fail with: the libraries' errors, each reporting its kind, and the
//! request errors the CRI layer finds itself.

use skiff_types::{ErrorKind, HasKind};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error(transparent)]
    Engine(#[from] skiff_engine::EngineError),
    #[error(transparent)]
    Store(#[from] skiff_store::StoreError),
    #[error(transparent)]
    Image(#[from] skiff_image::ImageError),
    #[error(transparent)]
    Snapshot(#[from] skiff_snapshot::SnapshotError),
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    #[error(transparent)]
    Network(#[from] skiff_cni::CniError),
    #[error(transparent)]
    Files(#[from] crate::sandbox::files::FilesError),
    #[error(transparent)]
    Stats(#[from] crate::stats::StatsError),
    /// A sandbox record that does not decode.
    #[error("corrupt sandbox record {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    /// A pod or container name held by another one.
    #[error("{what} name {name:?} is in use by {holder}")]
    NameInUse { what: &'static str, name: String, holder: String },
    /// The object is not in the state the request needs.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    NotFound(String),
    /// Host work the CRI layer does itself (a directory).
    #[error("{what}: {source}")]
    Host { what: String, source: std::io::Error },
    /// A request field the CRI layer checks itself.
    #[error("{0}")]
    InvalidArgument(String),
    /// A document the service builds could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    /// The work outlived the time the request allowed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A streaming URL could not be made (too many waiting, no randomness).
    #[error(transparent)]
    Streaming(#[from] skiff_streaming::server::TokenError),
    /// Work on the blocking pool that never answered (it panicked or was cancelled).
    #[error("{0} did not finish")]
    Lost(&'static str),
}

pub type Result<T, E = CriError> = std::result::Result<T, E>;

impl CriError {
    /// Wraps an I/O error of host work the CRI layer does itself (`map_err(CriError::host("…"))`).
    pub fn host(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CriError {
        let what = what.into();
        move |source| CriError::Host { what, source }
    }
}

impl HasKind for CriError {
    fn kind(&self) -> ErrorKind {
        match self {
            CriError::Engine(e) => e.kind(),
            CriError::Store(e) => e.kind(),
            CriError::Image(e) => e.kind(),
            CriError::Snapshot(e) => e.kind(),
            CriError::Runtime(e) => e.kind(),
            CriError::Network(e) => e.kind(),
            CriError::Files(e) => e.kind(),
            CriError::Stats(e) => e.kind(),
            CriError::Corrupt { .. } => ErrorKind::DataLoss,
            CriError::NameInUse { .. } => ErrorKind::AlreadyExists,
            CriError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            CriError::NotFound(_) => ErrorKind::NotFound,
            CriError::Host { source, .. } => ErrorKind::of_io(source),
            CriError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            CriError::DeadlineExceeded(_) => ErrorKind::DeadlineExceeded,
            CriError::Streaming(skiff_streaming::server::TokenError::Full) => ErrorKind::ResourceExhausted,
            CriError::Streaming(skiff_streaming::server::TokenError::Random(_)) => ErrorKind::Internal,
            CriError::Lost(_) | CriError::Encode { .. } => ErrorKind::Internal,
        }
    }
}

impl From<CriError> for Status {
    fn from(e: CriError) -> Status {
        skiff_api::status::status(&e)
    }
}

/// Refuses a NUL byte in a request string, naming the field (the kernel and runtimes would cut
/// the string there).
pub fn text(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(CriError::InvalidArgument(format!("{field} holds a NUL byte: {value:?}")));
    }
    Ok(())
}
