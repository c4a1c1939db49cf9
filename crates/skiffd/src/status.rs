//! What skiffd's services fail with: the libraries' errors, each reporting its kind, plus the few
//! request errors the services find themselves. One map (`skiff_api::status`) turns kinds into
//! gRPC codes for every API.

use skiff_engine::EngineError;
use skiff_image::ImageError;
use skiff_registry::RegistryError;
use skiff_store::StoreError;
use skiff_types::{ErrorKind, HasKind};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    Snapshot(#[from] skiff_snapshot::SnapshotError),
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    /// A request field the service itself checks (before any library sees it).
    #[error("{0}")]
    BadRequest(String),
    /// The object belongs to another API (a pod's container to the CRI).
    #[error("{0}")]
    Owned(String),
    /// A limit of the service itself was reached.
    #[error("{0}")]
    Busy(String),
    /// The host failed something the service does itself (a FIFO, a directory).
    #[error("{what}: {source}")]
    Host { what: String, source: std::io::Error },
    /// A document the service builds could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::Registry(Box::new(e))
    }
}

impl HasKind for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Engine(e) => e.kind(),
            ApiError::Image(e) => e.kind(),
            ApiError::Store(e) => e.kind(),
            ApiError::Registry(e) => e.kind(),
            ApiError::Snapshot(e) => e.kind(),
            ApiError::Runtime(e) => e.kind(),
            ApiError::BadRequest(_) => ErrorKind::InvalidArgument,
            ApiError::Busy(_) => ErrorKind::ResourceExhausted,
            ApiError::Owned(_) => ErrorKind::FailedPrecondition,
            ApiError::Encode { .. } | ApiError::Host { .. } => ErrorKind::Internal,
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        skiff_api::status::status(&e)
    }
}

/// Encodes a document a service returns as JSON bytes.
pub fn json_bytes(what: &'static str, doc: &impl serde::Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(doc).map_err(|source| ApiError::Encode { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn library_errors_reach_the_client_with_their_kind_and_message() {
        let cases: Vec<(ApiError, Code)> = vec![
            (StoreError::NotFound { kind: "image", name: "x".into() }.into(), Code::NotFound),
            (StoreError::Corrupt { key: "image/x".into(), reason: "eof".into() }.into(), Code::DataLoss),
            (ImageError::InvalidReference { input: "A".into(), reason: "r".into() }.into(), Code::InvalidArgument),
            (ImageError::HostileEntry { entry: "../x".into(), reason: "path contains '..'" }.into(), Code::InvalidArgument),
            (ImageError::NoMatchingPlatform { platform: "p".into(), digest: "d".into(), available: "a".into() }.into(), Code::NotFound),
            (StoreError::Locked { path: "/x".into() }.into(), Code::Unavailable),
            (
                ImageError::from(RegistryError::NotFound { host: "h".into(), repository: "r".into(), object: "t".into() }).into(),
                Code::NotFound,
            ),
            (
                ImageError::from(RegistryError::Unauthorized {
                    host: "h".into(),
                    repository: "r".into(),
                    object: "t".into(),
                    status: 401,
                    message: String::new(),
                    hint: "h".into(),
                })
                .into(),
                Code::Unauthenticated,
            ),
            (ApiError::BadRequest("bad".into()), Code::InvalidArgument),
            (EngineError::NoContainer("x".into()).into(), Code::NotFound),
            (EngineError::NameInUse { name: "web".into(), holder: "abc".into() }.into(), Code::AlreadyExists),
            (EngineError::CorruptRecord { key: "container/x".into(), reason: "eof".into() }.into(), Code::DataLoss),
            (skiff_runtime::RuntimeError::NoCommand.into(), Code::InvalidArgument),
            // Only a missing image is NotFound for a create; a blob a stored image lacks is lost data.
            (
                EngineError::Damaged { image: "x".into(), source: StoreError::NotFound { kind: "blob", name: "sha256:ab".into() }.into() }.into(),
                Code::DataLoss,
            ),
            (
                EngineError::from(skiff_runtime::shim::ShimError::Failed {
                    op: "exec",
                    code: skiff_runtime::shim::ErrorCode::FailedPrecondition,
                    message: "container is not running".into(),
                })
                .into(),
                Code::FailedPrecondition,
            ),
        ];
        for (err, code) in cases {
            let msg = err.to_string();
            let status = Status::from(err);
            assert_eq!(status.code(), code, "{msg}");
            assert_eq!(status.message(), msg);
        }
    }
}
