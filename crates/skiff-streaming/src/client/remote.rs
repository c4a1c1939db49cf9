//! The client of an exec or attach: connects its URL over either transport, opens the streams
//! the request asked for, and reads the end (the error stream's status).

use super::error::{io, ClientError, Result};
use crate::spdy::{Headers, Session};
use crate::ws;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tls::Trust;
use super::upgrade::{spdy_session, websocket};

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// The upgrade asked for, with the subprotocols offered (most wanted first).
#[derive(Clone, Debug)]
pub enum Protocols {
    /// SPDY/3.1 offering these `X-Stream-Protocol-Version`s (kubectl's default).
    Spdy(Vec<&'static str>),
    /// A WebSocket offering these subprotocols (client-go offers v5 only).
    WebSocket(Vec<ws::Protocol>),
}

/// How to reach the URL: the protocols, and for an `https://` URL the certificates to trust.
#[derive(Clone, Debug)]
pub struct Transport {
    pub protocols: Protocols,
    pub trust: Trust,
}

impl Transport {
    pub fn new(protocols: Protocols) -> Transport {
        Transport { protocols, trust: Trust::default() }
    }

    pub fn spdy() -> Transport {
        Transport::new(Protocols::Spdy(vec!["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]))
    }

    pub fn websocket() -> Transport {
        Transport::new(Protocols::WebSocket(vec![ws::Protocol::V5]))
    }

    /// The same, checking an `https://` server against `trust`.
    pub fn trusting(self, trust: Trust) -> Transport {
        Transport { trust, ..self }
    }
}

/// The streams to open: what the cached request asked for (the server's own description of them).
pub use crate::remotecommand::Wanted;

enum Conn {
    Spdy(Session),
    Ws(ws::Channels),
}

/// A connected exec or attach.
pub struct Remote {
    pub stdin: Option<Writer>,
    pub stdout: Option<Reader>,
    pub stderr: Option<Reader>,
    resize: Option<Writer>,
    error: Reader,
    conn: Conn,
}

/// What a session left: every byte of output and the error stream's text.
#[derive(Debug)]
pub struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub error: String,
}

impl Finished {
    /// The v4/v5 status object on the error stream.
    pub fn status(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.error).map_err(|_| ClientError::Protocol(format!("the error stream holds no status: {:?}", self.error)))
    }

    /// The exit code the status reports: 0 on Success.
    pub fn exit_code(&self) -> Result<i32> {
        let status = self.status()?;
        if status["status"] == "Success" {
            return Ok(0);
        }
        crate::remotecommand::status::exit_code_of(&status).ok_or_else(|| ClientError::Protocol(format!("the status reports no exit code: {status}")))
    }
}

async fn read_all(reader: Option<Reader>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(mut r) = reader {
        r.read_to_end(&mut out).await.map_err(io("reading an output stream"))?;
    }
    Ok(out)
}

impl Remote {
    /// Upgrades `url` and opens the streams; a refused upgrade is an error holding the answer.
    pub async fn connect(url: &str, transport: &Transport, wanted: Wanted) -> Result<Remote> {
        match &transport.protocols {
            Protocols::Spdy(protocols) => Self::spdy(url, protocols, &transport.trust, wanted).await,
            Protocols::WebSocket(protocols) => Self::websocket(url, protocols, &transport.trust, wanted).await,
        }
    }

    async fn spdy(url: &str, protocols: &[&str], trust: &Trust, wanted: Wanted) -> Result<Remote> {
        let session = spdy_session(url, &protocols.join(","), trust).await?;
        let open = |kind: &'static str| {
            let session = session.clone();
            async move { session.open([("streamtype", kind)].into_iter().collect::<Headers>()).await.map_err(|source| ClientError::Session { what: format!("opening the {kind} stream"), source }) }
        };
        // client-go's order: the error stream first.
        let error = open("error").await?;
        let stdin = if wanted.stdin { Some(open("stdin").await?) } else { None };
        let stdout = if wanted.stdout { Some(open("stdout").await?) } else { None };
        let stderr = if wanted.stderr { Some(open("stderr").await?) } else { None };
        let resize = if wanted.tty { Some(open("resize").await?) } else { None };
        Ok(Remote {
            stdin: stdin.map(|s| Box::new(s.into_split().1) as Writer),
            stdout: stdout.map(|s| Box::new(s.into_split().0) as Reader),
            stderr: stderr.map(|s| Box::new(s.into_split().0) as Reader),
            resize: resize.map(|s| Box::new(s.into_split().1) as Writer),
            error: Box::new(error.into_split().0),
            conn: Conn::Spdy(session),
        })
    }

    async fn websocket(url: &str, protocols: &[ws::Protocol], trust: &Trust, wanted: Wanted) -> Result<Remote> {
        let (protocol, conn) = websocket(url, &ws::handshake::ClientHandshake::new(protocols), trust).await?;
        let s = ws::remotecommand::connect(conn, protocol, wanted.into())?;
        Ok(Remote {
            stdin: s.stdin.map(|w| Box::new(w) as Writer),
            stdout: s.stdout.map(|r| Box::new(r) as Reader),
            stderr: s.stderr.map(|r| Box::new(r) as Reader),
            resize: s.resize.map(|w| Box::new(w) as Writer),
            error: Box::new(s.error),
            conn: Conn::Ws(s.channels),
        })
    }

    /// Sends a terminal size on the resize stream.
    pub async fn resize(&mut self, width: u16, height: u16) -> Result<()> {
        let resize = self.resize.as_mut().ok_or(ClientError::Missing("no resize stream: the request had no tty"))?;
        resize.write_all(format!(r#"{{"Width":{width},"Height":{height}}}"#).as_bytes()).await.map_err(io("writing a resize"))?;
        Ok(())
    }

    /// Writes `input` on stdin and ends it (FIN, or v5's close of the channel).
    pub async fn send_stdin(&mut self, input: &[u8]) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or(ClientError::Missing("no stdin stream: the request had no stdin"))?;
        stdin.write_all(input).await.map_err(io("writing stdin"))?;
        stdin.shutdown().await.map_err(io("ending stdin"))?;
        Ok(())
    }

    /// Reads every output stream and the error stream to their ends, then closes.
    pub async fn finish(self) -> Result<Finished> {
        let Remote { stdin, stdout, stderr, resize, mut error, conn } = self;
        let (stdout, stderr, err) = tokio::join!(read_all(stdout), read_all(stderr), async {
            let mut text = String::new();
            error.read_to_string(&mut text).await.map(|_| text)
        });
        drop((stdin, resize));
        close(conn).await;
        Ok(Finished { stdout: stdout?, stderr: stderr?, error: err.map_err(io("reading the error stream"))? })
    }

    /// Drops the connection at once, as a client that goes away does.
    pub async fn abandon(self) {
        close(self.conn).await;
    }
}

async fn close(conn: Conn) {
    match conn {
        Conn::Spdy(session) => session.close().await,
        Conn::Ws(channels) => channels.close().await,
    }
}

