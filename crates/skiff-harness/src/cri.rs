//! The kubelet's side of the CRI: the tonic clients `k8s-cri` generates, on skiffd's socket.

use std::path::Path;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::error::{Error, Result};

/// The kubelet's message size limit, both ways.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Connected CRI clients.
#[derive(Clone, Debug)]
pub struct CriClients {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

/// Connected clients on the socket of any skiffd (`Harness::cri` for the harness's own).
pub async fn connect(socket: &Path) -> Result<CriClients> {
    let channel = skiff_api::connect(socket).await.map_err(|source| Error::Connect { socket: socket.to_path_buf(), source })?;
    Ok(CriClients {
        runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE),
        images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE),
    })
}

/// Runs `future` to completion on a runtime of its own, on a thread of its own: the harness's
/// blocking calls (start, teardown from Drop) work the same from plain tests and from inside an
/// async test's runtime, where blocking on another future would panic.
pub(crate) fn block_on<F>(what: &str, future: F) -> Result<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io(format!("start an async runtime for {what}")))?;
            Ok(runtime.block_on(future))
        });
        worker.join().unwrap_or_else(|_| Err(Error::RuntimePanicked { what: what.into() }))
    })
}
