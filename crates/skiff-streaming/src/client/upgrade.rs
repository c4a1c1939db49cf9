//! The client side of a streaming URL's HTTP upgrade, as kubectl's and crictl's transports do it:
//! one HTTP/1.1 request on a fresh TCP connection, a `101 Switching Protocols` answer, then the
//! same connection carries SPDY or WebSocket frames.

use super::error::{io, ClientError, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `http://HOST:PORT/PATH` split into the address to dial and the request target.
pub fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| ClientError::Url(format!("{url} is not an http:// URL")))?;
    let (authority, path) = rest.split_once('/').ok_or_else(|| ClientError::Url(format!("{url} has no path")))?;
    Ok((authority.to_string(), format!("/{path}")))
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

/// Sends `GET url` with `headers`; answers the server's head and the connection, upgraded when
/// the status is 101.
pub async fn upgrade(url: &str, method: &str, headers: &[(String, String)]) -> Result<(Answer, TcpStream)> {
    let (authority, target) = split_url(url)?;
    let mut tcp = TcpStream::connect(&authority).await.map_err(|source| ClientError::Connect { addr: authority.clone(), source })?;
    tcp.set_nodelay(true).map_err(io("setting TCP_NODELAY"))?;
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\n");
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
