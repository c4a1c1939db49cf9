//! The one place library errors become gRPC statuses. Messages pass through unchanged, so the CLI
//! can show the user exactly what the library said.

use skiff_image::ImageError;
use skiff_registry::RegistryError;
use skiff_store::StoreError;
use tonic::{Code, Status};

pub fn store_code(e: &StoreError) -> Code {
    match e {
        StoreError::NotFound { .. } => Code::NotFound,
        StoreError::AlreadyExists { .. } => Code::AlreadyExists,
        StoreError::InvalidDigest { .. }
        | StoreError::InvalidArgument(_)
        | StoreError::DigestMismatch { .. }
        | StoreError::SizeMismatch { .. } => Code::InvalidArgument,
        StoreError::Locked { .. } => Code::Unavailable,
        StoreError::SchemaTooNew { .. } => Code::FailedPrecondition,
        StoreError::Corrupt { .. } => Code::DataLoss,
        StoreError::Io { .. } | StoreError::Db(_) => Code::Internal,
    }
}

pub fn image_code(e: &ImageError) -> Code {
    match e {
        ImageError::Store(s) => store_code(s),
        ImageError::NoMatchingPlatform { .. } => Code::NotFound,
        ImageError::Remote(e) => match e.downcast_ref::<RegistryError>() {
            Some(r) => registry_code(r),
            None => Code::Unavailable,
        },
        ImageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Code::NotFound,
        ImageError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => Code::PermissionDenied,
        ImageError::Io { .. } => Code::Internal,
        ImageError::InvalidReference { .. }
        | ImageError::InvalidPlatform { .. }
        | ImageError::UnsupportedMediaType { .. }
        | ImageError::Malformed { .. }
        | ImageError::MissingBlob { .. }
        | ImageError::HostileEntry { .. }
        | ImageError::InvalidArchive { .. }
        | ImageError::InvalidArgument(_) => Code::InvalidArgument,
    }
}

pub fn registry_code(e: &RegistryError) -> Code {
    match e {
        RegistryError::NotFound { .. } => Code::NotFound,
        RegistryError::Unauthorized { status: 403, .. } => Code::PermissionDenied,
        RegistryError::Unauthorized { .. } => Code::Unauthenticated,
        RegistryError::Http { .. } | RegistryError::Transport { .. } => Code::Unavailable,
        RegistryError::Protocol { .. } => Code::FailedPrecondition,
        RegistryError::Config { .. } => Code::InvalidArgument,
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::Registry(Box::new(e))
    }
}

pub fn snapshot_code(e: &skiff_snapshot::SnapshotError) -> Code {
    use skiff_snapshot::SnapshotError as S;
    match e {
        S::NotFound(_) => Code::NotFound,
        S::AlreadyExists(_) => Code::AlreadyExists,
        S::FailedPrecondition { .. } => Code::FailedPrecondition,
        S::Layer { .. } | S::DiffIdMismatch { .. } | S::BadLayer { .. } | S::InvalidArgument(_) => Code::InvalidArgument,
        S::Store(s) => store_code(s),
        S::Image(i) => image_code(i),
        S::Io { .. } => Code::Internal,
    }
}

fn shim_code(e: &skiff_runtime::shim::ShimError) -> Code {
    use skiff_runtime::shim::{ErrorCode, ShimError};
    match e {
        ShimError::Failed { code: ErrorCode::NotFound, .. } => Code::NotFound,
        ShimError::Failed { code: ErrorCode::FailedPrecondition, .. } => Code::FailedPrecondition,
        ShimError::Failed { code: ErrorCode::InvalidArgument, .. } => Code::InvalidArgument,
        ShimError::Failed { code: ErrorCode::Internal, .. } | ShimError::Protocol(_) => Code::Internal,
        ShimError::Unreachable { .. } | ShimError::Io(_) => Code::Unavailable,
    }
}

/// Errors the services return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    Snapshot(Box<skiff_snapshot::SnapshotError>),
    #[error("image {image} is stored, but unpacking it failed: {source}")]
    Unpack { image: String, source: skiff_snapshot::SnapshotError },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    #[error(transparent)]
    Shim(#[from] skiff_runtime::shim::ShimError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let code = match &e {
            ApiError::Image(i) => image_code(i),
            ApiError::Store(s) => store_code(s),
            ApiError::Registry(r) => registry_code(r),
            ApiError::Snapshot(e) => snapshot_code(e),
            ApiError::Unpack { source, .. } => snapshot_code(source),
            ApiError::BadRequest(_) => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Runtime(_) => Code::InvalidArgument,
            ApiError::Shim(e) => shim_code(e),
            ApiError::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_round_trip() {
        let cases: Vec<(ApiError, Code)> = vec![
            (StoreError::NotFound { kind: "image", name: "x".into() }.into(), Code::NotFound),
            (ImageError::InvalidReference { input: "A".into(), reason: "r".into() }.into(), Code::InvalidArgument),
            (ImageError::HostileEntry { entry: "../x".into(), reason: "path contains '..'" }.into(), Code::InvalidArgument),
            (ImageError::NoMatchingPlatform { platform: "p".into(), digest: "d".into(), available: "a".into() }.into(), Code::NotFound),
            (StoreError::Locked { path: "/x".into() }.into(), Code::Unavailable),
            (
                ImageError::from(RegistryError::NotFound { host: "h".into(), repository: "r".into(), object: "t".into() }).into(),
                Code::NotFound,
            ),
            (ApiError::BadRequest("bad".into()), Code::InvalidArgument),
            (ApiError::NotFound("no container \"x\"".into()), Code::NotFound),
            (skiff_runtime::RuntimeError::NoCommand.into(), Code::InvalidArgument),
            (
                skiff_runtime::shim::ShimError::Failed {
                    code: skiff_runtime::shim::ErrorCode::FailedPrecondition,
                    message: "container is not running".into(),
                }
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
