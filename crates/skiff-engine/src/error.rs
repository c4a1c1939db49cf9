//! The engine's errors, each with its kind beside it.

use skiff_types::{ErrorKind, HasKind};

use crate::containers::state::{Action, Status};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] skiff_store::StoreError),
    #[error(transparent)]
    Image(#[from] skiff_image::ImageError),
    #[error(transparent)]
    Snapshot(#[from] skiff_snapshot::SnapshotError),
    #[error("image {image} is stored, but unpacking it failed: {source}")]
    Unpack { image: String, source: skiff_snapshot::SnapshotError },
    /// An image whose layers were refused at unpack: removed rather than left looking runnable.
    #[error("image {image} was not kept: unpacking its layers failed: {source}")]
    Refused { image: String, source: skiff_snapshot::SnapshotError },
    #[error(transparent)]
    Registry(Box<skiff_registry::RegistryError>),
    /// A stored image whose own content cannot be read (a blob it names is gone).
    #[error("image {image} is stored, but its content is damaged: {source}")]
    Damaged { image: String, source: skiff_image::ImageError },
    #[error(transparent)]
    PlatformNotStored(#[from] skiff_image::select::PlatformNotStored),
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    #[error(transparent)]
    Shim(#[from] skiff_runtime::shim::ShimError),
    /// A request that is wrong whatever the state (a bad name, a missing field).
    #[error("{0}")]
    InvalidArgument(String),
    #[error("no container {0:?}")]
    NoContainer(String),
    #[error("{prefix:?} matches {count} containers; give more of the id")]
    AmbiguousId { prefix: String, count: usize },
    #[error("container name {name:?} is in use by container {holder}")]
    NameInUse { name: String, holder: String },
    #[error("unknown runtime handler {name:?}; configured: {configured}")]
    UnknownHandler { name: String, configured: String },
    /// A lifecycle transition the container's state does not allow.
    #[error("container {name} is {state}{}", action.refusal(*state))]
    InvalidState { name: String, state: Status, action: Action },
    #[error("image {image} is used by container(s) {containers}: remove them first, or force")]
    ImageInUse { image: String, containers: String },
    /// The image declares something a container cannot be made from.
    #[error("{0}")]
    UnusableImage(String),
    /// The shim could not create the container (the runtime's own error).
    #[error("creating the container failed: {0}")]
    CreateFailed(String),
    #[error("corrupt container record {key:?}: {reason}")]
    CorruptRecord { key: String, reason: String },
    #[error("{context}: {source}")]
    Io { context: String, #[source] source: std::io::Error },
    #[error("{what} failed: {message}")]
    Command { what: String, message: String },
}

impl EngineError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
        let context = context.into();
        move |source| EngineError::Io { context, source }
    }
}

impl HasKind for EngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Store(e) => e.kind(),
            EngineError::Image(e) => e.kind(),
            EngineError::Snapshot(e) => e.kind(),
            // A create answers NotFound only when the image (or its platform) is not stored, so
            // that a client can pull it: what a stored image lacks is lost data.
            EngineError::Unpack { source, .. } => stored_content(source.kind()),
            EngineError::Damaged { source, .. } => stored_content(source.kind()),
            EngineError::Refused { .. } => ErrorKind::InvalidArgument,
            EngineError::Registry(e) => e.kind(),
            EngineError::Runtime(e) => e.kind(),
            EngineError::Shim(e) => e.kind(),
            EngineError::InvalidArgument(_) | EngineError::AmbiguousId { .. } | EngineError::UnknownHandler { .. } => ErrorKind::InvalidArgument,
            // Not stored here: pulling that platform would help, as for an image not stored.
            EngineError::NoContainer(_) | EngineError::PlatformNotStored(_) => ErrorKind::NotFound,
            EngineError::NameInUse { .. } => ErrorKind::AlreadyExists,
            EngineError::InvalidState { .. } | EngineError::ImageInUse { .. } | EngineError::UnusableImage(_) | EngineError::CreateFailed(_) => ErrorKind::FailedPrecondition,
            EngineError::CorruptRecord { .. } => ErrorKind::DataLoss,
            EngineError::Io { source, .. } => ErrorKind::of_io(source),
            EngineError::Command { .. } => ErrorKind::Internal,
        }
    }
}

/// The kind of a failure reading what a stored image holds.
fn stored_content(kind: ErrorKind) -> ErrorKind {
    match kind {
        ErrorKind::NotFound => ErrorKind::DataLoss,
        other => other,
    }
}

impl From<skiff_registry::RegistryError> for EngineError {
    fn from(e: skiff_registry::RegistryError) -> Self {
        EngineError::Registry(Box::new(e))
    }
}

impl From<sled::Error> for EngineError {
    fn from(e: sled::Error) -> Self {
        EngineError::Store(skiff_store::StoreError::Db(e))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
