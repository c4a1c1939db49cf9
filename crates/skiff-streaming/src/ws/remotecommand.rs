//! The remotecommand layout (exec, attach) for both roles.
//!
//! Five channels, numbered like the process's file descriptors: stdin 0, stdout 1, stderr 2,
//! then error 3 (the exit status) and resize 4 (JSON `{"Width":..,"Height":..}` terminal
//! sizes). As in Kubernetes, the server always opens error and resize and the streams the
//! request asked for; the others are ignored. Once the streams are set up the server sends an
//! empty message on its lowest writable channel (stdout, else stderr, else error), which
//! Kubernetes' clients take as "the session is ready".

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

use super::channels::{Channels, Direction, Role};
use super::error::ChannelsError;
use super::inbound::ChannelReader;
use super::outbound::ChannelWriter;
use super::protocol::Protocol;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;

/// The streams an exec or attach request asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// A terminal: the client writes resize events.
    pub tty: bool,
}

/// The server's half of a remotecommand session.
#[derive(Debug)]
pub struct ServerStreams {
    /// What the client types, if stdin was asked for; EOF on the v5 close signal or when the
    /// connection closes (v4 and older have no half-close: the client closes the connection).
    pub stdin: Option<ChannelReader>,
    pub stdout: Option<ChannelWriter>,
    pub stderr: Option<ChannelWriter>,
    /// Where the exit status goes: a JSON `metav1.Status` when
    /// [`Protocol::json_status`], the bare error text otherwise.
    pub error: ChannelWriter,
    /// The client's terminal size events.
    pub resize: ChannelReader,
    /// The connection; [`Channels::close`] it once the status is written.
    pub channels: Channels,
}

/// The client's half of a remotecommand session.
#[derive(Debug)]
pub struct ClientStreams {
    /// Shut it down to end the process's stdin (v5 only; on v4 the connection has to close).
    pub stdin: Option<ChannelWriter>,
    pub stdout: Option<ChannelReader>,
    pub stderr: Option<ChannelReader>,
    /// The exit status, read to EOF.
    pub error: ChannelReader,
    /// Terminal size events, when `tty` was asked for.
    pub resize: Option<ChannelWriter>,
    pub channels: Channels,
}

fn when(wanted: bool, direction: Direction) -> Direction {
    if wanted {
        direction
    } else {
        Direction::Ignore
    }
}

/// Starts the server side of an exec or attach over the upgraded `io` and sends the ready
/// message.
pub async fn serve<S>(io: S, protocol: Protocol, options: StreamOptions) -> io::Result<ServerStreams>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let layout = [
        when(options.stdin, Direction::Read),
        when(options.stdout, Direction::Write),
        when(options.stderr, Direction::Write),
        Direction::Write,
        Direction::Read,
    ];
    let mut channels = open(io, Role::Server, protocol, &layout)?;
    let (stdin, mut stdout, mut stderr) = (channels.take_reader(STDIN), channels.take_writer(STDOUT), channels.take_writer(STDERR));
    let mut error = channels.take_writer(ERROR).ok_or_else(|| io::Error::other(ChannelsError::Missing(ERROR)))?;
    let resize = channels.take_reader(RESIZE).ok_or_else(|| io::Error::other(ChannelsError::Missing(RESIZE)))?;
    match (&mut stdout, &mut stderr) {
        (Some(out), _) => out.send_empty().await?,
        (None, Some(err)) => err.send_empty().await?,
        (None, None) => error.send_empty().await?,
    }
    Ok(ServerStreams { stdin, stdout, stderr, error, resize, channels })
}

/// Starts the client side of an exec or attach over the upgraded `io`.
pub fn connect<S>(io: S, protocol: Protocol, options: StreamOptions) -> Result<ClientStreams, ChannelsError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let layout = [
        when(options.stdin, Direction::Write),
        when(options.stdout, Direction::Read),
        when(options.stderr, Direction::Read),
        Direction::Read,
        when(options.tty, Direction::Write),
    ];
    let mut channels = Channels::open(io, Role::Client, protocol, &layout)?;
    let stdin = channels.take_writer(STDIN);
    let stdout = channels.take_reader(STDOUT);
    let stderr = channels.take_reader(STDERR);
    let resize = channels.take_writer(RESIZE);
    let error = channels.take_reader(ERROR).ok_or(ChannelsError::Missing(ERROR))?;
    Ok(ClientStreams { stdin, stdout, stderr, error, resize, channels })
}

fn open<S>(io: S, role: Role, protocol: Protocol, layout: &[Direction]) -> io::Result<Channels>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    Channels::open(io, role, protocol, layout).map_err(io::Error::other)
}
