//! Port-forward over SPDY (`portforward.k8s.io`): for each connection it forwards, the client
//! opens an error stream and a data stream with the same `requestid` and `port` headers; once
//! both are in, the server dials the port in the pod and copies both ways. A pair left incomplete
//! for 30 s is reset; a connection that fails is reported on its error stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use tokio::io::AsyncWriteExt;

use super::{allowed, forward, Target};
use crate::server::Backend;
use crate::spdy::{Session, Stream};

/// How long half a pair waits for the other half (the reference server's stream creation timeout).
pub const PAIR_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Pair {
    data: Option<Stream>,
    error: Option<Stream>,
    since: Option<Instant>,
}

/// Pairs a stream by its `requestid`; without one (older clients), by stream id: the error
/// stream's own, the data stream's less two (the client opens the error stream first).
fn request_id(stream: &Stream, kind: &str) -> String {
    match stream.headers().get("requestid") {
        Some(id) => id.to_string(),
        None if kind == "data" => stream.id().saturating_sub(2).to_string(),
        None => stream.id().to_string(),
    }
}

fn port_of(stream: &Stream) -> Result<u16, String> {
    let raw = stream.headers().get("port").ok_or("the stream has no port header")?;
    match raw.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{raw:?} is not a TCP port (1 to 65535)")),
    }
}

pub async fn serve(session: Arc<Session>, req: cri::PortForwardRequest, backend: Arc<dyn Backend>) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let stream = tokio::select! {
            accepted = session.accept() => match accepted {
                Some(s) => s,
                None => break,
            },
            _ = sweep.tick() => {
                pairs.retain(|id, pair| {
                    let stale = pair.since.is_some_and(|t| t.elapsed() > PAIR_WAIT);
                    if stale {
                        tracing::info!(request = %id, "a port-forward stream waited {PAIR_WAIT:?} for its pair; resetting it");
                        pair.data.iter().chain(pair.error.iter()).for_each(Stream::reset);
                    }
                    !stale
                });
                continue;
            }
        };
        let kind = stream.headers().get("streamtype").unwrap_or_default().to_string();
        if kind != "data" && kind != "error" {
            tracing::debug!(streamtype = %kind, "resetting a port-forward stream of an unknown type");
            stream.reset();
            continue;
        }
        let id = request_id(&stream, &kind);
        let pair = pairs.entry(id.clone()).or_default();
        pair.since.get_or_insert_with(Instant::now);
        let slot = if kind == "data" { &mut pair.data } else { &mut pair.error };
        if slot.is_some() {
            tracing::debug!(request = %id, streamtype = %kind, "a second port-forward stream of one kind; resetting it");
            stream.reset();
            continue;
        }
        *slot = Some(stream);
        if pair.data.is_some() && pair.error.is_some() {
            let Some(Pair { data: Some(data), error: Some(error), .. }) = pairs.remove(&id) else { continue };
            tokio::spawn(forward_pair(data, error, req.clone(), backend.clone()));
        }
    }
    session.close().await;
}

async fn forward_pair(data: Stream, error: Stream, req: cri::PortForwardRequest, backend: Arc<dyn Backend>) {
    let (_, mut error_writer) = error.into_split();
    let port = port_of(&data).and_then(|port| allowed(&req, port).map(|()| port));
    let outcome = match port {
        Ok(port) => forward(Target { sandbox: req.pod_sandbox_id.clone(), port }, data, backend).await,
        Err(e) => Err(e),
    };
    if let Err(message) = outcome {
        tracing::info!(pod = %req.pod_sandbox_id, error = %message, "port-forward failed");
        let _ = error_writer.write_all(message.as_bytes()).await;
    }
    let _ = error_writer.shutdown().await;
}
