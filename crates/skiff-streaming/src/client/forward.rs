//! The client of a port-forward, as `kubectl port-forward` is: over SPDY, a data and an error
//! stream per forwarded connection (sharing a `requestid`); over a WebSocket, the ports named in
//! the URL, one channel pair each.

use super::error::{io, ClientError, Result};
use crate::spdy::{Headers, Session};
use crate::ws;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::remote::{Protocols, Transport};
use super::upgrade::{spdy_session, websocket};

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// One forwarded connection: bytes to and from the pod's port, and the server's error text.
pub struct Forwarded {
    pub reader: Reader,
    pub writer: Writer,
    error: Reader,
}

impl Forwarded {
    /// The error stream's text, read to its end (empty: no error).
    pub async fn error_text(&mut self) -> Result<String> {
        let mut text = String::new();
        self.error.read_to_string(&mut text).await.map_err(io("reading the port-forward error stream"))?;
        Ok(text)
    }
}

/// A connected port-forward URL.
pub enum Forwarder {
    Spdy { session: Session, next_request: u32 },
    Ws { channels: ws::Channels, ports: Vec<ws::portforward::ClientPort> },
}

/// Upgrades `url`; a WebSocket carries `ports` (the URL's query), SPDY any port per connection.
pub async fn forward(url: &str, transport: &Transport, ports: &[u16]) -> Result<Forwarder> {
    match transport.protocols {
        Protocols::Spdy(_) => {
            let session = spdy_session(url, "portforward.k8s.io", &transport.trust).await?;
            Ok(Forwarder::Spdy { session, next_request: 0 })
        }
        Protocols::WebSocket(_) => {
            let query: Vec<String> = ports.iter().map(|p| format!("port={p}")).collect();
            let url = format!("{url}?{}", query.join("&"));
            let (protocol, conn) = websocket(&url, &ws::handshake::ClientHandshake::new(&[ws::Protocol::V4]), &transport.trust).await?;
            let (channels, ports) = ws::portforward::connect(conn, protocol, ports)?;
            Ok(Forwarder::Ws { channels, ports })
        }
    }
}

impl Forwarder {
    /// A connection to `port` (over a WebSocket: the URL's channel pair of that port, once).
    pub async fn open(&mut self, port: u16) -> Result<Forwarded> {
        match self {
            Forwarder::Spdy { session, next_request } => {
                let request = next_request.to_string();
                *next_request += 1;
                let headers = |kind: &str| -> Headers { [("streamtype", kind.to_string()), ("port", port.to_string()), ("requestid", request.clone())].into_iter().collect() };
                let error = session.open(headers("error")).await.map_err(|source| ClientError::Session { what: "opening the error stream".into(), source })?;
                let data = session.open(headers("data")).await.map_err(|source| ClientError::Session { what: "opening the data stream".into(), source })?;
                let (reader, writer) = data.into_split();
                Ok(Forwarded { reader: Box::new(reader), writer: Box::new(writer), error: Box::new(error.into_split().0) })
            }
            Forwarder::Ws { ports, .. } => {
                let index = ports.iter().position(|p| p.port == port).ok_or(ClientError::Missing("that port is not one of the URL's (a WebSocket forwards the ports it was opened with)"))?;
                let p = ports.remove(index);
                Ok(Forwarded { reader: Box::new(p.reader), writer: Box::new(p.writer), error: Box::new(p.error) })
            }
        }
    }

    pub async fn close(self) {
        match self {
            Forwarder::Spdy { session, .. } => session.close().await,
            Forwarder::Ws { channels, .. } => channels.close().await,
        }
    }
}
