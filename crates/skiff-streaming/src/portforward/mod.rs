//! `kubectl port-forward`: TCP connections to a port in the pod, each carried over the client's
//! connection as a data stream (and an error stream for what went wrong), over SPDY (`spdy`) or
//! a WebSocket (`ws`). The bytes are copied both ways: the client's end of data shuts the pod
//! connection's write side (its answer still comes back), and the pod's end of data ends the
//! forwarded connection, as containerd's does.

pub mod spdy;
pub mod ws;

use std::sync::Arc;

use k8s_cri::v1 as cri;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::server::Backend;

/// Where one forwarded connection goes.
pub struct Target {
    pub sandbox: String,
    pub port: u16,
}

/// Whether the cached request lets `port` through: any port when it named none (the kubelet
/// leaves the ports to the streams), else one of those it named.
pub fn allowed(req: &cri::PortForwardRequest, port: u16) -> Result<(), String> {
    if req.port.is_empty() || req.port.contains(&i32::from(port)) {
        Ok(())
    } else {
        Err(format!("port {port} was not asked for in this port-forward (it asked for {:?})", req.port))
    }
}

/// Dials the target and copies between it and `client` until both directions ended.
pub async fn forward<S>(target: Target, client: S, backend: Arc<dyn Backend>) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let Target { sandbox, port } = target;
    let tcp = backend.dial(sandbox.clone(), port).await.map_err(|e| format!("an error occurred forwarding {port} -> {port}: {e}"))?;
    tracing::debug!(pod = %sandbox, port, "port-forward connected");
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let up = async {
        let copied = tokio::io::copy(&mut from_client, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
        copied
    };
    let down = async {
        let copied = tokio::io::copy(&mut from_pod, &mut to_client).await;
        let _ = to_client.shutdown().await;
        copied
    };
    tokio::pin!(up, down);
    // The client's end of data half-closes the pod connection, which may still answer; the pod's
    // end ends the forward (a WebSocket client cannot half-close, so waiting for it would hang).
    let mut up_result = None;
    let down = loop {
        tokio::select! {
            copied = &mut up, if up_result.is_none() => up_result = Some(copied),
            copied = &mut down => break copied,
        }
    };
    let up = up_result.unwrap_or(Ok(0));
    tracing::debug!(pod = %sandbox, port, up = ?up.as_ref().ok(), down = ?down.as_ref().ok(), "port-forward connection ended");
    // A client that reset its stream is the usual end of a forwarded connection, not a failure.
    down.map(|_| ()).map_err(|e| format!("an error occurred forwarding {port} -> {port}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_the_request_lets_through() {
        let any = cri::PortForwardRequest { pod_sandbox_id: "p".into(), port: vec![] };
        assert!(allowed(&any, 8080).is_ok());
        let some = cri::PortForwardRequest { pod_sandbox_id: "p".into(), port: vec![80, 443] };
        assert!(allowed(&some, 443).is_ok());
        assert!(allowed(&some, 8080).expect_err("not asked for").contains("8080"));
    }
}
