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
    /// A request field the CRI layer checks itself.
    #[error("{0}")]
    InvalidArgument(String),
    /// A document the service builds could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    /// Work on the blocking pool that never answered (it panicked or was cancelled).
    #[error("{0} did not finish")]
    Lost(&'static str),
}

pub type Result<T, E = CriError> = std::result::Result<T, E>;

impl HasKind for CriError {
    fn kind(&self) -> ErrorKind {
        match self {
            CriError::Engine(e) => e.kind(),
            CriError::Store(e) => e.kind(),
            CriError::Image(e) => e.kind(),
            CriError::Snapshot(e) => e.kind(),
            CriError::InvalidArgument(_) => ErrorKind::InvalidArgument,
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
