//! The image layer's error kinds.

use skiff_store::StoreError;

/// Errors from reading, importing, exporting or rewriting images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: &'static str },

    #[error("unsupported media type {media_type:?} for {what} {digest}")]
    UnsupportedMediaType { media_type: String, what: &'static str, digest: String },

    #[error("malformed {what} {digest}: {reason}")]
    Malformed { what: &'static str, digest: String, reason: String },

    #[error("{what} {digest} is missing from {source_name}")]
    MissingBlob { what: &'static str, digest: String, source_name: String },

    #[error("no manifest for platform {platform} in {digest} (available: {available})")]
    NoMatchingPlatform { platform: String, digest: String, available: String },

    #[error("unsafe archive entry {entry:?}: {reason}")]
    HostileEntry { entry: String, reason: &'static str },

    #[error("invalid archive {path}: {reason}")]
    InvalidArchive { path: String, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A manifest with more layers than `max_layers` allows: refused as soon as it is read, before
    /// any layer is fetched or stored.
    #[error("image {image} has {count} layers, over the limit of {limit} (raise images.max_layers in skiffd.toml to allow more)")]
    TooManyLayers { image: String, count: usize, limit: usize },

    /// A failure of a remote source (a registry), kept typed for the caller to inspect (downcast
    /// `source`), with the kind the source gave it.
    #[error("{source}")]
    Remote { kind: skiff_types::ErrorKind, source: Box<dyn std::error::Error + Send + Sync> },

    #[error("{context}: {source}")]
    Io { context: String, #[source] source: std::io::Error },
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }

    pub(crate) fn malformed(what: &'static str, digest: impl ToString, reason: impl ToString) -> ImageError {
        ImageError::Malformed { what, digest: digest.to_string(), reason: reason.to_string() }
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl skiff_types::HasKind for ImageError {
    fn kind(&self) -> skiff_types::ErrorKind {
        use skiff_types::ErrorKind as K;
        match self {
            ImageError::Store(s) => skiff_types::HasKind::kind(s),
            ImageError::NoMatchingPlatform { .. } => K::NotFound,
            ImageError::Remote { kind, .. } => *kind,
            ImageError::Io { source, .. } => K::of_io(source),
            ImageError::InvalidReference { .. }
            | ImageError::InvalidPlatform { .. }
            | ImageError::UnsupportedMediaType { .. }
            | ImageError::Malformed { .. }
            | ImageError::MissingBlob { .. }
            | ImageError::HostileEntry { .. }
            | ImageError::InvalidArchive { .. }
            | ImageError::InvalidArgument(_)
            | ImageError::TooManyLayers { .. } => K::InvalidArgument,
        }
    }
}
