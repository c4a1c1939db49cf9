//! The write half of a channel: a [`ChannelWriter`] turns each write into one message and
//! queues it for the connection task.
//!
//! All writers of a connection share one queue of [`OUTBOUND_MESSAGES`] messages of at most
//! [`MAX_MESSAGE_PAYLOAD`] bytes each; a writer whose message does not fit waits, so a peer
//! that reads slowly holds the writers back instead of growing memory. The queue is FIFO
//! across channels, so a status written on the error channel after the last stdout bytes
//! reaches the peer after them, and a close of the connection goes out after both.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::PollSender;

use super::frame;
use super::inbound::End;
use super::protocol::Encoding;

/// Messages the connection queues for writing, across all channels.
pub(crate) const OUTBOUND_MESSAGES: usize = 8;

/// The most payload one write turns into one message (what Go's `io.Copy` moves per write).
pub const MAX_MESSAGE_PAYLOAD: usize = 32 * 1024;

/// What the channels hand the connection task.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Message(Message),
    /// Close the connection after everything queued before.
    Close,
}

/// State the connection task shares with every half: how the connection ended, once it has.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    end: OnceLock<End>,
}

impl ConnState {
    pub(crate) fn set_end(&self, end: End) {
        let _ = self.end.set(end);
    }

    fn check(&self) -> io::Result<()> {
        match self.end.get() {
            None => Ok(()),
            Some(end) => Err(end.to_io()),
        }
    }
}

/// The write half of one channel. Each `poll_write` sends one message of up to
/// [`MAX_MESSAGE_PAYLOAD`] bytes; `poll_flush` succeeds once the messages are queued (the
/// connection flushes as soon as its queue runs dry); `poll_shutdown` ends the channel, sending
/// the v5 close signal when this side is the client on `v5.channel.k8s.io` (there is no
/// half-close in v4 and older, and Kubernetes' servers never send the signal: client-go logs an
/// error for it). After a shutdown, or once the connection has ended, writes fail.
pub struct ChannelWriter {
    channel: u8,
    encoding: Encoding,
    close_signal: bool,
    shut_down: bool,
    sender: PollSender<Outgoing>,
    conn: Arc<ConnState>,
    // Keeps the connection open while this half lives (see `Channels`).
    _alive: watch::Receiver<()>,
}

impl ChannelWriter {
    pub(crate) fn new(
        channel: u8,
        encoding: Encoding,
        close_signal: bool,
        sender: PollSender<Outgoing>,
        conn: Arc<ConnState>,
        alive: watch::Receiver<()>,
    ) -> ChannelWriter {
        ChannelWriter { channel, encoding, close_signal, shut_down: false, sender, conn, _alive: alive }
    }

    /// The channel number.
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// Sends a message with an empty payload on this channel. Kubernetes' remotecommand server
    /// sends one on its lowest writable channel to tell the client the streams are ready;
    /// readers skip such messages.
    pub async fn send_empty(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_send(cx, &[])).await.map(|_| ())
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.shut_down {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, format!("channel {} was shut down", self.channel))));
        }
        self.conn.check()?;
        ready!(self.reserve(cx))?;
        let n = data.len().min(MAX_MESSAGE_PAYLOAD);
        let message = frame::encode(self.encoding, self.channel, &data[..n]);
        self.sender.send_item(Outgoing::Message(message)).map_err(|_| self.closed())?;
        Poll::Ready(Ok(n))
    }

    fn reserve(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(self.sender.poll_reserve(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Err(self.closed())),
        }
    }

    fn closed(&self) -> io::Error {
        match self.conn.check() {
            Err(e) => e,
            Ok(()) => io::Error::new(io::ErrorKind::BrokenPipe, "websocket connection closed"),
        }
    }
}

impl std::fmt::Debug for ChannelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelWriter").field("channel", &self.channel).field("shut_down", &self.shut_down).finish_non_exhaustive()
    }
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            // A zero-length write is a no-op for AsyncWrite; `send_empty` sends an empty message.
            return Poll::Ready(Ok(0));
        }
        self.get_mut().poll_send(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.conn.check())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shut_down {
            return Poll::Ready(Ok(()));
        }
        if this.close_signal {
            this.conn.check()?;
            ready!(this.reserve(cx))?;
            this.sender.send_item(Outgoing::Message(frame::encode_close(this.channel))).map_err(|_| this.closed())?;
        }
        this.shut_down = true;
        Poll::Ready(Ok(()))
    }
}
