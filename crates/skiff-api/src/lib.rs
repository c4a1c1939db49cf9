//! Skiff's gRPC API: generated types and services for `skiff.v1`, the one map between error kinds
//! and gRPC codes (`status`), and a client channel over the daemon's unix socket.

#![allow(clippy::all)]

pub mod status;

pub mod v1 {
    tonic::include_proto!("skiff.v1");
}

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// The daemon's default socket.
pub const DEFAULT_SOCKET: &str = "/run/skiff/skiff.sock";

/// Connects to a daemon listening on the unix socket at `path`.
pub async fn connect(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path: PathBuf = path.to_path_buf();
    // The URI is required by the API but unused: every connection dials the socket.
    Endpoint::from_static("http://skiffd.sock")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
        }))
        .await
}
