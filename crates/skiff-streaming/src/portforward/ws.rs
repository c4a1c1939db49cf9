//! Port-forward over a WebSocket (`v4.channel.k8s.io`): the URL names the ports, each carried by
//! a data channel and an error channel for the life of the connection; each port is dialled once
//! and copied both ways, a failure written on its error channel.

use std::sync::Arc;

use k8s_cri::v1 as cri;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{forward, Target};
use crate::server::Backend;
use crate::ws::{self, Protocol};

pub async fn serve<IO>(io: IO, protocol: Protocol, req: cri::PortForwardRequest, ports: Vec<u16>, backend: Arc<dyn Backend>)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (channels, streams) = match ws::portforward::serve(io, protocol, &ports).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::debug!(error = %e, "starting a WebSocket port-forward");
            return;
        }
    };
    let forwards = streams.into_iter().map(|port| {
        let (backend, sandbox) = (backend.clone(), req.pod_sandbox_id.clone());
        tokio::spawn(async move {
            let ws::portforward::ServerPort { port, reader, writer, mut error } = port;
            let client = tokio::io::join(reader, writer);
            if let Err(message) = forward(Target { sandbox: sandbox.clone(), port }, client, backend).await {
                tracing::info!(pod = %sandbox, error = %message, "port-forward failed");
                let _ = error.write_all(message.as_bytes()).await;
            }
            let _ = error.shutdown().await;
        })
    });
    for task in forwards.collect::<Vec<_>>() {
        let _ = task.await;
    }
    channels.close().await;
}
