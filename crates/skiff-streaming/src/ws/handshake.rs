//! The RFC 6455 opening handshake, both roles, without doing any I/O.
//!
//! The server checks the upgrade request with [`accept`], which picks the subprotocol and
//! computes `Sec-WebSocket-Accept`; it then writes the 101 with [`Accepted::response_headers`]
//! and hands the upgraded connection to [`super::Channels`]. A refusal is a [`HandshakeError`]
//! whose [`status`](HandshakeError::status) and message make the error response.
//!
//! Subprotocol choice follows Kubernetes: the first token in the client's order that the
//! endpoint supports wins (clients list their preference first: client-go sends
//! `v5.channel.k8s.io` before `v4.channel.k8s.io`). Tokens come from every
//! `Sec-WebSocket-Protocol` header, split on commas and trimmed. A request naming no protocol
//! gets [`Protocol::Unnamed`], binary v1 channels.

use base64::Engine as _;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use super::error::HandshakeError;
use super::protocol::{Kind, Protocol};

/// The only WebSocket version there is (RFC 6455); a refusal for a wrong version should carry
/// it in a `Sec-WebSocket-Version` header.
pub const WEBSOCKET_VERSION: &str = "13";

/// A checked upgrade request: what the 101 response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value for the client's key.
    pub accept_key: String,
    /// The chosen subprotocol.
    pub protocol: Protocol,
}

impl Accepted {
    /// The headers of the 101 Switching Protocols response: `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Accept` and, unless the protocol is unnamed, `Sec-WebSocket-Protocol`.
    pub fn response_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        // The accept key is base64 and so always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&self.accept_key) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, value);
        }
        if let Some(name) = self.protocol.name() {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(name));
        }
        headers
    }
}

/// Whether a request asks for a WebSocket upgrade at all (`Upgrade: websocket` and `upgrade`
/// among the `Connection` tokens), to route it between WebSocket and SPDY.
pub fn is_websocket_request(headers: &HeaderMap) -> bool {
    has_token(headers, UPGRADE, "websocket") && has_token(headers, CONNECTION, "upgrade")
}

/// Checks a WebSocket upgrade request to an endpoint of `kind` and chooses its subprotocol.
pub fn accept<B>(kind: Kind, request: &Request<B>) -> Result<Accepted, HandshakeError> {
    if request.method() != Method::GET {
        return Err(HandshakeError::Method(request.method().to_string()));
    }
    let headers = request.headers();
    if !has_token(headers, UPGRADE, "websocket") {
        return Err(HandshakeError::NotWebSocket);
    }
    if !has_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    match headers.get(SEC_WEBSOCKET_VERSION) {
        None => return Err(HandshakeError::MissingVersion),
        Some(v) if v.as_bytes().trim_ascii() == WEBSOCKET_VERSION.as_bytes() => {}
        Some(v) => return Err(HandshakeError::UnsupportedVersion(String::from_utf8_lossy(v.as_bytes()).into_owned())),
    }
    let key = headers.get(SEC_WEBSOCKET_KEY).ok_or(HandshakeError::MissingKey)?;
    let key = key.to_str().map_err(|_| HandshakeError::InvalidKey(String::from_utf8_lossy(key.as_bytes()).into_owned()))?.trim();
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(nonce) if nonce.len() == 16 => {}
        _ => return Err(HandshakeError::InvalidKey(key.to_owned())),
    }
    let protocol = select_protocol(kind, &requested_protocols(headers))?;
    Ok(Accepted { accept_key: accept_key(key), protocol })
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64(SHA-1(key + RFC GUID)).
pub fn accept_key(key: &str) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())
}

/// The subprotocol tokens a request lists, in order, from all its `Sec-WebSocket-Protocol`
/// headers.
pub fn requested_protocols(headers: &HeaderMap) -> Vec<String> {
    tokens(headers, SEC_WEBSOCKET_PROTOCOL).map(str::to_owned).collect()
}

/// The first of `requested` (client order) that `kind` supports; [`Protocol::Unnamed`] when
/// nothing was requested.
pub fn select_protocol<T: AsRef<str>>(kind: Kind, requested: &[T]) -> Result<Protocol, HandshakeError> {
    if requested.is_empty() {
        return Ok(Protocol::Unnamed);
    }
    requested.iter().filter_map(|name| Protocol::from_name(name.as_ref())).find(|p| kind.supports(*p)).ok_or_else(|| {
        HandshakeError::UnsupportedProtocol {
            requested: requested.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", "),
            supported: kind.supported().iter().filter_map(|p| p.name()).collect::<Vec<_>>().join(", "),
        }
    })
}

/// The client side: a fresh key and the protocols offered.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    key: String,
    offered: Vec<Protocol>,
}

impl ClientHandshake {
    /// A handshake with a random key, offering `offered` in that order of preference (the
    /// unnamed protocol is never sent; an empty offer asks for none).
    pub fn new(offered: &[Protocol]) -> ClientHandshake {
        ClientHandshake { key: tokio_tungstenite::tungstenite::handshake::client::generate_key(), offered: offered.to_vec() }
    }

    /// The `Sec-WebSocket-Key` this handshake sends.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The upgrade headers to add to the GET request.
    pub fn request_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static(WEBSOCKET_VERSION));
        if let Ok(key) = HeaderValue::from_str(&self.key) {
            headers.insert(SEC_WEBSOCKET_KEY, key);
        }
        let names: Vec<&str> = self.offered.iter().filter_map(|p| p.name()).collect();
        if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
            if !names.is_empty() {
                headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
            }
        }
        headers
    }

    /// Checks the server's response and returns the protocol it chose. A 101 naming no
    /// protocol means [`Protocol::Unnamed`] (client-go falls back to v1 the same way).
    pub fn verify<B>(&self, response: &Response<B>) -> Result<Protocol, HandshakeError> {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::NotSwitching(response.status()));
        }
        let headers = response.headers();
        if !has_token(headers, UPGRADE, "websocket") {
            return Err(HandshakeError::NotWebSocket);
        }
        let got = headers.get(SEC_WEBSOCKET_ACCEPT).ok_or(HandshakeError::MissingAccept)?;
        let got = String::from_utf8_lossy(got.as_bytes()).trim().to_owned();
        let expected = accept_key(&self.key);
        if got != expected {
            return Err(HandshakeError::AcceptMismatch { expected, got });
        }
        match tokens(headers, SEC_WEBSOCKET_PROTOCOL).next() {
            None => Ok(Protocol::Unnamed),
            Some(name) => {
                Protocol::from_name(name).filter(|p| self.offered.contains(p)).ok_or_else(|| HandshakeError::UnexpectedProtocol(name.to_owned()))
            }
        }
    }
}

/// The comma-separated, trimmed, non-empty tokens of every `name` header.
fn tokens(headers: &HeaderMap, name: http::header::HeaderName) -> impl Iterator<Item = &str> {
    headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim).filter(|t| !t.is_empty())
}

fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}
