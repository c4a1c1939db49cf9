//! One SPDY stream as a byte pipe: [`AsyncRead`] yields the peer's DATA payloads in order and
//! EOF at its FIN; [`AsyncWrite`] sends DATA frames and `poll_shutdown` half-closes with an
//! empty DATA frame carrying FIN, as spdystream's `Close` does.
//!
//! Reads end like this: FIN, or a RST_STREAM with status CANCEL (how k8s ends streams: its
//! `Close` resets every stream), or the session closing cleanly give EOF once the buffered data
//! is read; any other RST_STREAM status gives `ConnectionReset`, a connection lost without
//! GOAWAY its I/O error. Writes fail with `BrokenPipe` once the stream or session is done.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::PollSender;

use super::conn::{Conn, End, Handle, Outbound, io_error};
use super::frame::{Data, Frame, RstStatus};
use super::headers::Headers;
use super::session::{DATA_CHUNK, RECV_BUFFER};
use super::stream_state::StreamShared;

/// What both halves of a stream share; the last half dropped releases the stream.
struct Core {
    shared: Arc<StreamShared>,
    conn: Arc<Conn>,
    headers: Headers,
    reply_headers: Option<Headers>,
    _handle: Arc<Handle>,
}

impl Core {
    fn reset(&self) {
        if self.shared.reset_locally() {
            self.conn.send_reset(self.shared.id, RstStatus::CANCEL);
        }
        self.conn.remove_stream(self.shared.id);
    }
}

impl Drop for Core {
    /// A stream dropped before both directions ended is reset, so the peer is not left waiting.
    fn drop(&mut self) {
        self.reset();
    }
}

/// A stream of a [`Session`](super::Session); both directions in one value.
pub struct Stream {
    reader: StreamReader,
    writer: StreamWriter,
}

/// The receiving half of a [`Stream`].
pub struct StreamReader {
    core: Arc<Core>,
}

/// The sending half of a [`Stream`].
pub struct StreamWriter {
    core: Arc<Core>,
    sender: PollSender<Outbound>,
}

impl Stream {
    pub(crate) fn new(shared: Arc<StreamShared>, conn: Arc<Conn>, headers: Headers, reply_headers: Option<Headers>, handle: Arc<Handle>) -> Self {
        let sender = PollSender::new(conn.out.clone());
        let core = Arc::new(Core { shared, conn, headers, reply_headers, _handle: handle });
        Stream { reader: StreamReader { core: core.clone() }, writer: StreamWriter { core, sender } }
    }

    pub fn id(&self) -> u32 {
        self.reader.core.shared.id
    }

    /// The SYN_STREAM headers: the peer's for an accepted stream, this end's for an opened one.
    pub fn headers(&self) -> &Headers {
        &self.reader.core.headers
    }

    /// The peer's SYN_REPLY headers, for a stream this end opened.
    pub fn reply_headers(&self) -> Option<&Headers> {
        self.reader.core.reply_headers.as_ref()
    }

    /// Ends both directions now with RST_STREAM CANCEL; buffered input is dropped.
    pub fn reset(&self) {
        self.reader.core.reset();
    }

    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<StreamShared> {
        &self.reader.core.shared
    }

    /// Splits into halves that can move to different tasks.
    pub fn into_split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }
}

impl StreamReader {
    pub fn id(&self) -> u32 {
        self.core.shared.id
    }

    pub fn headers(&self) -> &Headers {
        &self.core.headers
    }

    pub fn reset(&self) {
        self.core.reset();
    }
}

impl StreamWriter {
    pub fn id(&self) -> u32 {
        self.core.shared.id
    }

    pub fn headers(&self) -> &Headers {
        &self.core.headers
    }

    pub fn reset(&self) {
        self.core.reset();
    }

    fn writable(&self) -> io::Result<()> {
        let st = self.core.shared.state();
        let broken = |what: &str| Err(io::Error::new(io::ErrorKind::BrokenPipe, format!("spdy stream {} {what}", self.id())));
        if let Some(End::Failed(err)) = &st.end {
            Err(io_error(io::ErrorKind::BrokenPipe, err))
        } else if st.end.is_some() {
            broken("is closed: the session ended")
        } else if let Some(status) = st.peer_reset {
            broken(&format!("was reset by the peer ({status})"))
        } else if st.local_reset {
            broken("was reset")
        } else if st.local_fin {
            broken("is shut down for writing")
        } else {
            Ok(())
        }
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, payload: Bytes, fin: bool) -> Poll<io::Result<()>> {
        self.writable()?;
        let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "spdy session is closed");
        ready!(self.sender.poll_reserve(cx)).map_err(|_| closed())?;
        // The stream may have ended while this waited for room in the queue.
        if let Err(err) = self.writable() {
            self.sender.abort_send();
            return Poll::Ready(Err(err));
        }
        let frame = Frame::Data(Data { stream_id: self.id(), fin, payload });
        self.sender.send_item(Outbound::Frame(frame)).map_err(|_| closed())?;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let shared = &self.core.shared;
        let mut st = shared.state();
        if let Some(front) = st.buf.front_mut() {
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                st.buf.pop_front();
            }
            let was_full = st.buffered >= RECV_BUFFER;
            st.buffered -= n;
            if was_full && st.buffered < RECV_BUFFER {
                drop(st);
                shared.space.notify_one();
            }
            return Poll::Ready(Ok(()));
        }
        let eof = Poll::Ready(Ok(()));
        if st.remote_fin || st.peer_reset == Some(RstStatus::CANCEL) {
            return eof;
        }
        if let Some(status) = st.peer_reset {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, format!("spdy stream {} was reset by the peer ({status})", shared.id))));
        }
        if st.local_reset {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, format!("spdy stream {} was reset", shared.id))));
        }
        match &st.end {
            Some(End::Clean) => eof,
            Some(End::Failed(err)) => Poll::Ready(Err(io_error(io::ErrorKind::UnexpectedEof, err))),
            None => {
                st.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for StreamReader {
    /// Nobody reads any more: drop what is buffered and never hold the connection up for it.
    fn drop(&mut self) {
        let mut st = self.core.shared.state();
        st.reader_gone = true;
        st.buf.clear();
        st.buffered = 0;
        drop(st);
        self.core.shared.space.notify_one();
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        let n = buf.len().min(DATA_CHUNK);
        ready!(this.poll_send(cx, Bytes::copy_from_slice(&buf[..n]), false))?;
        Poll::Ready(Ok(n))
    }

    /// Frames are queued in order and written by the session's writer task; there is nothing
    /// to flush from here.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.core.shared.state().local_fin {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_send(cx, Bytes::new(), true))?;
        let done = {
            let mut st = this.core.shared.state();
            st.local_fin = true;
            st.done()
        };
        if done {
            this.core.conn.remove_stream(this.id());
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id()).field("headers", self.headers()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader").field("id", &self.id()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter").field("id", &self.id()).finish_non_exhaustive()
    }
}
