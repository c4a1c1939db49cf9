//! The read half of a channel: a bounded queue that the connection task fills and a
//! [`ChannelReader`] drains.
//!
//! The queue holds at most [`INBOUND_LIMIT`] bytes plus the one message that crossed it. When
//! it is full the connection task waits before reading the next message from the socket, so a
//! slow consumer slows the peer down through TCP rather than growing memory. This is the same
//! head-of-line behaviour as Kubernetes' `io.Pipe` per channel: a channel nobody reads stalls
//! the others, so drop a reader you do not mean to read (its data is then discarded).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::watch;

/// Bytes a channel buffers before the connection stops reading the socket.
pub(crate) const INBOUND_LIMIT: usize = 256 * 1024;

/// How a channel's input ended.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// The peer closed the channel (v5 close signal) or the whole connection cleanly.
    Eof,
    /// The connection failed or broke the protocol.
    Error(io::ErrorKind, Arc<str>),
}

impl End {
    pub(crate) fn error(kind: io::ErrorKind, message: impl Into<Arc<str>>) -> End {
        End::Error(kind, message.into())
    }

    pub(crate) fn to_io(&self) -> io::Error {
        match self {
            End::Eof => io::Error::new(io::ErrorKind::BrokenPipe, "websocket connection closed"),
            End::Error(kind, message) => io::Error::new(*kind, message.to_string()),
        }
    }
}

#[derive(Default)]
struct State {
    chunks: VecDeque<Bytes>,
    queued: usize,
    end: Option<End>,
    reader_gone: bool,
    read_waker: Option<Waker>,
    push_waker: Option<Waker>,
}

/// One channel's inbound bytes.
#[derive(Default)]
pub(crate) struct Queue {
    state: Mutex<State>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `data`, waiting while the queue is full. Data for a channel that has ended or
    /// whose reader is gone is dropped, as Kubernetes drops writes to a closed pipe.
    pub(crate) async fn push(&self, data: Bytes) {
        let mut data = Some(data);
        std::future::poll_fn(|cx| {
            let mut state = self.lock();
            if state.reader_gone || state.end.is_some() {
                return Poll::Ready(());
            }
            if state.queued >= INBOUND_LIMIT {
                state.push_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if let Some(data) = data.take() {
                state.queued += data.len();
                state.chunks.push_back(data);
                if let Some(waker) = state.read_waker.take() {
                    waker.wake();
                }
            }
            Poll::Ready(())
        })
        .await
    }

    /// Ends the input after what is queued; the first end wins.
    pub(crate) fn end(&self, end: End) {
        let mut state = self.lock();
        if state.end.is_none() {
            state.end = Some(end);
        }
        if let Some(waker) = state.read_waker.take() {
            waker.wake();
        }
        if let Some(waker) = state.push_waker.take() {
            waker.wake();
        }
    }

    fn reader_gone(&self) {
        let mut state = self.lock();
        state.reader_gone = true;
        state.chunks.clear();
        state.queued = 0;
        if let Some(waker) = state.push_waker.take() {
            waker.wake();
        }
    }
}

/// The read half of one channel: the bytes the peer sends on it, in order. EOF when the peer
/// closes the channel (v5) or the connection; an error when the connection is lost or breaks
/// the protocol.
pub struct ChannelReader {
    channel: u8,
    queue: Arc<Queue>,
    // Keeps the connection open while this half lives: the connection closes once every half
    // and the `Channels` handle are gone (see `Channels`).
    _alive: watch::Receiver<()>,
}

impl ChannelReader {
    pub(crate) fn new(channel: u8, queue: Arc<Queue>, alive: watch::Receiver<()>) -> ChannelReader {
        ChannelReader { channel, queue, _alive: alive }
    }

    /// The channel number.
    pub fn channel(&self) -> u8 {
        self.channel
    }
}

impl std::fmt::Debug for ChannelReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelReader").field("channel", &self.channel).finish_non_exhaustive()
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = self.queue.lock();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut copied = 0;
        while buf.remaining() > 0 {
            let Some(chunk) = state.chunks.front_mut() else { break };
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            chunk.advance(n);
            copied += n;
            if chunk.is_empty() {
                state.chunks.pop_front();
            }
        }
        if copied > 0 {
            state.queued -= copied;
            if state.queued < INBOUND_LIMIT {
                if let Some(waker) = state.push_waker.take() {
                    waker.wake();
                }
            }
            return Poll::Ready(Ok(()));
        }
        match &state.end {
            Some(End::Eof) => Poll::Ready(Ok(())),
            Some(end) => Poll::Ready(Err(end.to_io())),
            None => {
                state.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for ChannelReader {
    fn drop(&mut self) {
        self.queue.reader_gone();
    }
}
