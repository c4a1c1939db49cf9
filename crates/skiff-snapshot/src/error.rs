//! Snapshot errors.

use skiff_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {0:?} not found")]
    NotFound(String),

    #[error("snapshot {0:?} already exists")]
    AlreadyExists(String),

    #[error("snapshot {key:?}: {reason}")]
    FailedPrecondition { key: String, reason: String },

    #[error("layer {layer}: entry {entry:?}: {reason}")]
    Layer { layer: String, entry: String, reason: String },

    #[error("layer {layer}: diffID mismatch: config says {expected}, the layer's content hashes to {actual}")]
    DiffIdMismatch { layer: String, expected: String, actual: String },

    #[error("layer {layer}: {reason}")]
    BadLayer { layer: String, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Image(#[from] skiff_image::ImageError),

    #[error("{context}: {source}")]
    Io { context: String, #[source] source: std::io::Error },
}

impl SnapshotError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SnapshotError {
        let context = context.into();
        move |source| SnapshotError::Io { context, source }
    }
}

impl skiff_types::HasKind for SnapshotError {
    fn kind(&self) -> skiff_types::ErrorKind {
        use skiff_types::ErrorKind as K;
        match self {
            SnapshotError::NotFound(_) => K::NotFound,
            SnapshotError::AlreadyExists(_) => K::AlreadyExists,
            SnapshotError::FailedPrecondition { .. } => K::FailedPrecondition,
            SnapshotError::Layer { .. }
            | SnapshotError::DiffIdMismatch { .. }
            | SnapshotError::BadLayer { .. }
            | SnapshotError::InvalidArgument(_) => K::InvalidArgument,
            SnapshotError::Store(s) => s.kind(),
            SnapshotError::Image(i) => i.kind(),
            SnapshotError::Io { source, .. } => K::of_io(source),
        }
    }
}

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;
