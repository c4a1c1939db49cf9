//! The store's error kinds. A small fixed set; the daemon maps each to one gRPC code.

use crate::Digest;

/// Errors from the content and metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },

    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },

    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: &'static str },

    #[error("digest mismatch for {expected}: content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch { digest: String, expected: u64, actual: u64 },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("store at {path} is in use by another process (sled lock held)")]
    Locked { path: String },

    #[error("store metadata schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },

    #[error("corrupt metadata record {key:?}: {reason}")]
    Corrupt { key: String, reason: String },

    #[error("{context}: {source}")]
    Io { context: String, #[source] source: std::io::Error },

    #[error("metadata database: {0}")]
    Db(#[from] sled::Error),
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Io { context, source }
    }

    pub(crate) fn not_found(kind: &'static str, name: impl ToString) -> StoreError {
        StoreError::NotFound { kind, name: name.to_string() }
    }

    /// True when the error says a record or blob does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Db(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl skiff_types::HasKind for StoreError {
    fn kind(&self) -> skiff_types::ErrorKind {
        use skiff_types::ErrorKind as K;
        match self {
            StoreError::NotFound { .. } => K::NotFound,
            StoreError::AlreadyExists { .. } => K::AlreadyExists,
            StoreError::InvalidDigest { .. }
            | StoreError::InvalidArgument(_)
            | StoreError::DigestMismatch { .. }
            | StoreError::SizeMismatch { .. } => K::InvalidArgument,
            StoreError::Locked { .. } => K::Unavailable,
            StoreError::SchemaTooNew { .. } => K::FailedPrecondition,
            StoreError::Corrupt { .. } => K::DataLoss,
            StoreError::Io { source, .. } => K::of_io(source),
            StoreError::Db(sled::Error::Corruption { .. }) => K::DataLoss,
            StoreError::Db(sled::Error::Io(e)) => K::of_io(e),
            StoreError::Db(_) => K::Internal,
        }
    }
}
