//! `skiff pods port-forward`: local TCP ports carried to ports in a pod's network namespace
//! through the CRI's PortForward and skiffd's streaming server, as `kubectl port-forward` and
//! `crictl port-forward` do. SPDY only: one session, a stream pair per accepted connection (a
//! WebSocket forwards just one connection per port it was opened with).

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_cri::v1 as cri;
use skiff_streaming::client::{forward, Forwarded, Transport};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::client;
use super::stream::TrustArgs;
use crate::{status, Ctx};

#[derive(clap::Args)]
pub struct ForwardArgs {
    /// The pod (id or a unique prefix).
    pod: String,
    /// LOCAL:REMOTE, PORT (the same both sides) or :REMOTE (a free local port).
    #[arg(required = true)]
    ports: Vec<String>,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PortSpecError {
    #[error("{spec:?}: {part:?} is not a TCP port (1 to 65535); give LOCAL:REMOTE, PORT or :REMOTE")]
    NotAPort { spec: String, part: String },
}

/// A local port (0: any free one) and the pod's port it reaches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortPair {
    pub local: u16,
    pub remote: u16,
}

pub fn parse_pair(spec: &str) -> Result<PortPair, PortSpecError> {
    let port = |part: &str, zero_ok: bool| -> Result<u16, PortSpecError> {
        match part.parse::<u16>() {
            Ok(p) if p > 0 || zero_ok => Ok(p),
            _ => Err(PortSpecError::NotAPort { spec: spec.to_string(), part: part.to_string() }),
        }
    };
    match spec.split_once(':') {
        Some(("", remote)) => Ok(PortPair { local: 0, remote: port(remote, false)? }),
        Some((local, remote)) => Ok(PortPair { local: port(local, true)?, remote: port(remote, false)? }),
        None => {
            let p = port(spec, false)?;
            Ok(PortPair { local: p, remote: p })
        }
    }
}

pub async fn port_forward(ctx: &Ctx, a: ForwardArgs) -> Result<()> {
    let pairs = a.ports.iter().map(|s| parse_pair(s)).collect::<Result<Vec<_>, _>>()?;
    let remote_ports: Vec<i32> = pairs.iter().map(|p| i32::from(p.remote)).collect();
    let req = cri::PortForwardRequest { pod_sandbox_id: a.pod, port: remote_ports };
    let url = client(ctx).port_forward(req).await.map_err(status)?.into_inner().url;
    let ports: Vec<u16> = pairs.iter().map(|p| p.remote).collect();
    let mut forwarder = forward(&url, &Transport::spdy().trusting(a.trust.trust()), &ports).await.context("connecting to skiffd's streaming server")?;
    let (accepted, mut incoming) = mpsc::channel::<(TcpStream, u16, u16)>(16);
    for pair in pairs {
        let listener = TcpListener::bind(("127.0.0.1", pair.local)).await.with_context(|| format!("listening on 127.0.0.1:{}", pair.local))?;
        let local = listener.local_addr().context("the listener's address")?.port();
        outln!("Forwarding from 127.0.0.1:{local} -> {}", pair.remote)?;
        accept_into(listener, accepted.clone(), local, pair.remote);
        // IPv6 loopback too, on the same port, as kubectl's "localhost" does; a host without
        // it (or with that port taken there) forwards on IPv4 alone.
        if let Ok(listener) = TcpListener::bind(("::1", local)).await {
            outln!("Forwarding from [::1]:{local} -> {}", pair.remote)?;
            accept_into(listener, accepted.clone(), local, pair.remote);
        }
    }
    drop(accepted);
    loop {
        tokio::select! {
            next = incoming.recv() => {
                let Some((conn, local, remote)) = next else { break };
                outln!("Handling connection for {local}")?;
                // Opened here, one at a time: the session is one, and its end is ours.
                let forwarded = match forwarder.open(remote).await {
                    Ok(f) => f,
                    Err(e) => {
                        forwarder.close().await;
                        return Err(e).context("the port-forward session with skiffd ended");
                    }
                };
                tokio::spawn(carry(conn, forwarded, remote));
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    forwarder.close().await;
    Ok(())
}

/// Hands every connection `listener` accepts to the session loop, tagged with its ports.
fn accept_into(listener: TcpListener, accepted: mpsc::Sender<(TcpStream, u16, u16)>, local: u16, remote: u16) {
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            if accepted.send((conn, local, remote)).await.is_err() {
                return;
            }
        }
    });
}

/// Copies between a local connection and its forwarded streams until the pod's side ended (as
/// skiffd's end does); what the error stream says is printed.
async fn carry(local: TcpStream, mut fwd: Forwarded, remote: u16) {
    let mut from_pod = std::mem::replace(&mut fwd.reader, Box::new(tokio::io::empty()));
    let mut to_pod = std::mem::replace(&mut fwd.writer, Box::new(tokio::io::sink()));
    let (mut from_local, mut to_local) = local.into_split();
    let copy = async {
        let up = async {
            let _ = tokio::io::copy(&mut from_local, &mut to_pod).await;
            // Our client's end half-closes the pod's connection; its answer still comes back.
            let _ = to_pod.shutdown().await;
            std::future::pending::<()>().await
        };
        let down = async {
            let _ = tokio::io::copy(&mut from_pod, &mut to_local).await;
            let _ = to_local.shutdown().await;
        };
        tokio::select! {
            () = up => {}
            () = down => {}
        }
    };
    tokio::pin!(copy);
    let text = tokio::select! {
        () = &mut copy => tokio::time::timeout(Duration::from_secs(1), fwd.error_text()).await.ok().and_then(Result::ok),
        text = fwd.error_text() => match text {
            Ok(t) if !t.trim().is_empty() => Some(t),
            _ => {
                copy.await;
                None
            }
        },
    };
    if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
        eprintln!("skiff: port {remote}: {}", text.trim());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_as_kubectl_takes_them() {
        assert_eq!(parse_pair("8080"), Ok(PortPair { local: 8080, remote: 8080 }));
        assert_eq!(parse_pair("9000:80"), Ok(PortPair { local: 9000, remote: 80 }));
        assert_eq!(parse_pair(":80"), Ok(PortPair { local: 0, remote: 80 }));
        assert_eq!(parse_pair("0:80"), Ok(PortPair { local: 0, remote: 80 }));
        for bad in ["0", "http", "80:0", "70000", "1:2:3", ""] {
            let err = parse_pair(bad).expect_err(bad);
            assert!(err.to_string().contains("not a TCP port"), "{bad}: {err}");
        }
    }
}
