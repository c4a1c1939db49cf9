//! Port-forward over `v4.channel.k8s.io` (and its base64 and unnamed variants).
//!
//! `GET /portforward/<token>?port=80&port=8080` forwards each listed port over its own pair of
//! channels, as the kubelet lays them out:
//!
//! ```text
//!  port index i:   data channel 2i      read-write: the bytes to and from the pod's port
//!                  error channel 2i+1   server → client: why forwarding failed, as text
//!  first message on each of the two, from the server:  [port as u16, little-endian]
//! ```
//!
//! The server writes both preambles for every port before any data; the client strips them
//! (and checks they name the port it asked for). There is no half-close in these protocols:
//! the forwarding of a port ends when the connection closes.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::channels::{Channels, Direction, Role};
use super::error::{ChannelsError, PortError};
use super::frame;
use super::inbound::ChannelReader;
use super::outbound::ChannelWriter;
use super::protocol::Protocol;

/// The ports a request's query string asks for, in order: every `port` parameter, each a
/// comma-separated list of numbers from 1 to 65535. `protocol` bounds how many fit.
pub fn parse_ports(query: Option<&str>, protocol: Protocol) -> Result<Vec<u16>, PortError> {
    let mut ports = Vec::new();
    let mut seen = false;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key).as_deref() != Some("port") {
            continue;
        }
        seen = true;
        let value = percent_decode(value).ok_or_else(|| PortError::Invalid(value.to_owned()))?;
        if value.is_empty() {
            return Err(PortError::Empty);
        }
        for piece in value.split(',') {
            if piece.is_empty() || !piece.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PortError::Invalid(value.clone()));
            }
            match piece.parse::<u16>() {
                Ok(0) => return Err(PortError::Zero(value.clone())),
                Ok(port) => ports.push(port),
                Err(_) => return Err(PortError::Invalid(value.clone())),
            }
        }
    }
    if !seen {
        return Err(PortError::Missing);
    }
    let max = protocol.max_channels() / 2;
    if ports.len() > max {
        return Err(PortError::TooMany { count: ports.len(), max, protocol });
    }
    Ok(ports)
}

/// `%XX` escapes and `+` as space, as a query string carries them; `None` for a bad escape or
/// a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The data channel of the port at `index`; `None` past the last channel (254: 255 is the
/// close signal).
pub fn data_channel(index: usize) -> Option<u8> {
    channel(index.checked_mul(2)?)
}

/// The error channel of the port at `index`; `None` past the last channel.
pub fn error_channel(index: usize) -> Option<u8> {
    channel(index.checked_mul(2)?.checked_add(1)?)
}

fn channel(number: usize) -> Option<u8> {
    u8::try_from(number).ok().filter(|c| *c != frame::CLOSE_SIGNAL)
}

/// The server's streams for one forwarded port: copy `reader` into the pod's port and the
/// port's output into `writer`; write a failure's text to `error`.
#[derive(Debug)]
pub struct ServerPort {
    pub port: u16,
    pub reader: ChannelReader,
    pub writer: ChannelWriter,
    pub error: ChannelWriter,
}

/// The client's streams for one forwarded port, preambles stripped.
#[derive(Debug)]
pub struct ClientPort {
    pub port: u16,
    pub reader: PortReader,
    pub writer: ChannelWriter,
    /// The server's error text for this port, read to EOF.
    pub error: PortReader,
}

fn layout(count: usize, error: Direction) -> Vec<Direction> {
    (0..count).flat_map(|_| [Direction::ReadWrite, error]).collect()
}

/// Starts the server side of a port-forward for `ports` over the upgraded `io` and writes every
/// port's preambles.
pub async fn serve<S>(io: S, protocol: Protocol, ports: &[u16]) -> io::Result<(Channels, Vec<ServerPort>)>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut channels = Channels::open(io, Role::Server, protocol, &layout(ports.len(), Direction::Write)).map_err(io::Error::other)?;
    let mut streams = Vec::with_capacity(ports.len());
    for (index, &port) in ports.iter().enumerate() {
        let (data, error) = (data_channel(index), error_channel(index));
        let reader = data.and_then(|c| channels.take_reader(c));
        let writer = data.and_then(|c| channels.take_writer(c));
        let error = error.and_then(|c| channels.take_writer(c));
        let (Some(reader), Some(mut writer), Some(mut error)) = (reader, writer, error) else {
            return Err(io::Error::other(ChannelsError::Missing(data.unwrap_or(u8::MAX))));
        };
        writer.write_all(&port.to_le_bytes()).await?;
        error.write_all(&port.to_le_bytes()).await?;
        streams.push(ServerPort { port, reader, writer, error });
    }
    Ok((channels, streams))
}

/// Starts the client side of a port-forward for `ports` over the upgraded `io`.
pub fn connect<S>(io: S, protocol: Protocol, ports: &[u16]) -> Result<(Channels, Vec<ClientPort>), ChannelsError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut channels = Channels::open(io, Role::Client, protocol, &layout(ports.len(), Direction::Read))?;
    let mut streams = Vec::with_capacity(ports.len());
    for (index, &port) in ports.iter().enumerate() {
        let (data, error) = (data_channel(index), error_channel(index));
        let reader = data.and_then(|c| channels.take_reader(c));
        let writer = data.and_then(|c| channels.take_writer(c));
        let error_reader = error.and_then(|c| channels.take_reader(c));
        let (Some(reader), Some(writer), Some(error_reader)) = (reader, writer, error_reader) else {
            return Err(ChannelsError::Missing(data.unwrap_or(u8::MAX)));
        };
        streams.push(ClientPort { port, reader: PortReader::new(reader, port), writer, error: PortReader::new(error_reader, port) });
    }
    Ok((channels, streams))
}

/// A client's read half of a port-forward channel: checks and strips the 2-byte preamble, then
/// reads the channel.
#[derive(Debug)]
pub struct PortReader {
    inner: ChannelReader,
    port: u16,
    preamble: [u8; 2],
    filled: usize,
}

impl PortReader {
    fn new(inner: ChannelReader, port: u16) -> PortReader {
        PortReader { inner, port, preamble: [0; 2], filled: 0 }
    }
}

impl AsyncRead for PortReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.filled < 2 {
            let mut head = ReadBuf::new(&mut this.preamble[this.filled..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut head))?;
            match head.filled().len() {
                0 if this.filled == 0 => return Poll::Ready(Ok(())),
                0 => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("channel {} ended inside the port-forward preamble", this.inner.channel()),
                    )))
                }
                n => this.filled += n,
            }
        }
        let named = u16::from_le_bytes(this.preamble);
        if named != this.port {
            // Stays an error on every read: what follows is not this port's data.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("channel {} names port {named} in its preamble, expected {}", this.inner.channel(), this.port),
            )));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}
