//! The client side of a streaming URL's HTTP upgrade, as kubectl's and crictl's transports do it:
//! one HTTP/1.1 request on a fresh TCP connection, a `101 Switching Protocols` answer, then the
//! same connection carries SPDY or WebSocket frames.

use super::error::{io, ClientError, Result};
use super::tls::{client_config, Trust};
use crate::spdy::upgrade::{CONNECTION_UPGRADE, HEADER_CONNECTION, HEADER_PROTOCOL_VERSION, HEADER_UPGRADE, UPGRADE_SPDY_31};
use crate::spdy::Session;
use crate::ws;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// The upgraded connection: TCP, or TLS over TCP for an `https://` URL.
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// A streaming URL's parts.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub tls: bool,
    /// HOST:PORT, to dial (and HOST to check the certificate against).
    pub authority: String,
    /// The request target: the path and query.
    pub path: String,
}

/// `http://` or `https://HOST:PORT/PATH`, split.
pub fn split_url(url: &str) -> Result<Target> {
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (None, Some(rest)) => (true, rest),
        (None, None) => return Err(ClientError::Url(format!("{url} is not an http:// or https:// URL"))),
    };
    let (authority, path) = rest.split_once('/').ok_or_else(|| ClientError::Url(format!("{url} has no path")))?;
    Ok(Target { tls, authority: authority.to_string(), path: format!("/{path}") })
}

/// The host part of HOST:PORT, without an IPv6 literal's brackets.
fn host_of(authority: &str) -> &str {
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

async fn dial(target: &Target, trust: &Trust) -> Result<Box<dyn Conn>> {
    let tcp = TcpStream::connect(&target.authority).await.map_err(|source| ClientError::Connect { addr: target.authority.clone(), source })?;
    tcp.set_nodelay(true).map_err(io("setting TCP_NODELAY"))?;
    if !target.tls {
        return Ok(Box::new(tcp));
    }
    let name = ServerName::try_from(host_of(&target.authority).to_string()).map_err(|e| ClientError::Url(format!("{}: {e}", target.authority)))?;
    let connector = tokio_rustls::TlsConnector::from(client_config(trust)?);
    let tls = connector.connect(name, tcp).await.map_err(|e| ClientError::Tls(format!("the TLS handshake with {}: {e}", target.authority)))?;
    Ok(Box::new(tls))
}

/// The status line and headers of the server's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, when the server refused the upgrade (read to the end of its Content-Length).
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The head as an `http::Response`, for checks that take one (the WebSocket handshake's).
    pub fn as_http(&self) -> Result<http::Response<()>> {
        let mut response = http::Response::builder().status(self.status);
        for (k, v) in &self.headers {
            response = response.header(k, v);
        }
        response.body(()).map_err(|e| ClientError::Protocol(format!("the answer's head: {e}")))
    }
}

/// Sends `METHOD url` with `headers`; answers the server's head and the connection, upgraded
/// when the status is 101. An `https://` server's certificate is checked against `trust`.
pub async fn upgrade(url: &str, method: &str, headers: &[(String, String)], trust: &Trust) -> Result<(Answer, Box<dyn Conn>)> {
    let target = split_url(url)?;
    let mut tcp = dial(&target, trust).await?;
    let (authority, path) = (&target.authority, &target.path);
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.map_err(io("sending the upgrade request"))?;
    // Byte by byte up to the blank line: nothing past the head may be consumed, it is the
    // upgraded protocol's.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tcp.read_u8().await.map_err(io("reading the answer's head"))?;
        head.push(b);
        if head.len() > 64 << 10 {
            return Err(ClientError::Protocol("the answer's head passed 64 KiB".into()));
        }
    }
    let text = String::from_utf8(head).map_err(|_| ClientError::Protocol("the answer's head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| ClientError::Protocol(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut answer = Answer { status, headers, body: String::new() };
    if status != 101 {
        let length: usize = answer.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; length.min(1 << 20)];
        tcp.read_exact(&mut body).await.map_err(io("reading the refusal's body"))?;
        answer.body = String::from_utf8_lossy(&body).into_owned();
    }
    Ok((answer, tcp))
}

/// A refused upgrade (any answer but 101) as the error holding the server's answer.
pub fn refused(answer: &Answer) -> Result<()> {
    if answer.status != 101 {
        return Err(ClientError::Refused { status: answer.status, body: answer.body.trim().to_string() });
    }
    Ok(())
}

/// POSTs the SPDY/3.1 upgrade of `url` offering `protocols` (comma-separated, most wanted
/// first), as client-go's SPDY round tripper does; the client session once the server agreed.
pub async fn spdy_session(url: &str, protocols: &str, trust: &Trust) -> Result<Session> {
    let headers: Vec<(String, String)> = [(HEADER_CONNECTION, CONNECTION_UPGRADE), (HEADER_UPGRADE, UPGRADE_SPDY_31), (HEADER_PROTOCOL_VERSION, protocols)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (answer, conn) = upgrade(url, "POST", &headers, trust).await?;
    refused(&answer)?;
    Ok(Session::client(conn))
}

/// GETs the WebSocket upgrade of `url` with `handshake`'s headers; the subprotocol the server
/// chose (checked against the offer) and the upgraded connection.
pub async fn websocket(url: &str, handshake: &ws::handshake::ClientHandshake, trust: &Trust) -> Result<(ws::Protocol, Box<dyn Conn>)> {
    let headers: Vec<(String, String)> = handshake.request_headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    let (answer, conn) = upgrade(url, "GET", &headers, trust).await?;
    refused(&answer)?;
    let protocol = handshake.verify(&answer.as_http()?)?;
    Ok((protocol, conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_target() {
        let t = split_url("https://127.0.0.1:4430/exec/abc?x=1").unwrap();
        assert_eq!(t, Target { tls: true, authority: "127.0.0.1:4430".into(), path: "/exec/abc?x=1".into() });
        assert!(!split_url("http://[::1]:80/attach/t").unwrap().tls);
        assert!(matches!(split_url("ftp://h/x"), Err(ClientError::Url(_))));
        assert!(matches!(split_url("http://h:1"), Err(ClientError::Url(_))));
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("node.example:10250"), "node.example");
    }
}
