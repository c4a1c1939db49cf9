//! How a streaming client fails.

use crate::spdy::SessionError;
use crate::ws::{ChannelsError, HandshakeError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Url(String),
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    /// HTTPS: the trust asked for could not be set up, or the server's handshake failed.
    #[error("{0}")]
    Tls(String),
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
    /// The server answered the upgrade with something else than 101.
    #[error("the streaming server refused the upgrade: {status} {body}")]
    Refused { status: u16, body: String },
    /// What the server sent breaks the protocol (its answer's head, its error stream).
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Channels(#[from] ChannelsError),
    #[error("{what}: {source}")]
    Session { what: String, source: SessionError },
    /// A stream the request did not ask for.
    #[error("{0}")]
    Missing(&'static str),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// `map_err(io("what"))`: an I/O error with what was being done.
pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ClientError {
    move |source| ClientError::Io { what, source }
}
