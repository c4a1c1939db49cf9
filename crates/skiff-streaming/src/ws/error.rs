//! The errors of the WebSocket transport: a refused handshake, a bad port list, a channel
//! layout the framing cannot carry.

use http::StatusCode;

/// Why a WebSocket upgrade was refused (server side) or its response rejected (client side).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("a websocket upgrade must be a GET request, not {0}")]
    Method(String),
    #[error("the request has no `Upgrade: websocket` header")]
    NotWebSocket,
    #[error("the Connection header does not list `upgrade`")]
    NoConnectionUpgrade,
    #[error("the request has no Sec-WebSocket-Version header; this server speaks version 13")]
    MissingVersion,
    #[error("unsupported Sec-WebSocket-Version {0:?}; this server speaks version 13")]
    UnsupportedVersion(String),
    #[error("the request has no Sec-WebSocket-Key header")]
    MissingKey,
    #[error("Sec-WebSocket-Key {0:?} is not 16 bytes in base64")]
    InvalidKey(String),
    #[error("none of the requested subprotocols ({requested}) is supported; this endpoint speaks {supported}")]
    UnsupportedProtocol { requested: String, supported: String },
    #[error("the server answered {0} instead of 101 Switching Protocols")]
    NotSwitching(StatusCode),
    #[error("the response has no Sec-WebSocket-Accept header")]
    MissingAccept,
    #[error("Sec-WebSocket-Accept {got:?} does not match the key sent (expected {expected:?})")]
    AcceptMismatch { expected: String, got: String },
    #[error("the server chose subprotocol {0:?}, which was not offered")]
    UnexpectedProtocol(String),
}

impl HandshakeError {
    /// The HTTP status a server answers the refused upgrade with. A version mismatch should also
    /// carry `Sec-WebSocket-Version: 13` (see [`super::handshake::WEBSOCKET_VERSION`]).
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Why the `port` query parameters of a port-forward request were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("query parameter \"port\" is required")]
    Missing,
    #[error("query parameter \"port\" cannot be empty")]
    Empty,
    #[error("unable to parse {0:?} as a port: it must be a number from 1 to 65535")]
    Invalid(String),
    #[error("port {0:?} must be > 0")]
    Zero(String),
    #[error("{count} ports were asked for; {protocol} carries at most {max}")]
    TooMany { count: usize, max: usize, protocol: super::Protocol },
}

/// Why a channel layout cannot be opened over a protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelsError {
    #[error("{count} channels were asked for; {protocol} addresses at most {max}")]
    TooManyChannels { count: usize, max: usize, protocol: super::Protocol },
    #[error("channel {0} is not in the layout or was already taken")]
    Missing(u8),
}
