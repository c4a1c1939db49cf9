//! The session's reader task: decodes frames (owning the inbound header compression context)
//! and acts on them — fills stream buffers, answers SYN_STREAM and PING, honours RST_STREAM and
//! GOAWAY — pausing while a stream's buffer is full.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::codec::FrameDecoder;
use super::conn::{Conn, End, Outbound, TaskGuard};
use super::error::SessionError;
use super::frame::*;
use super::headers::Headers;
use super::session::{RECV_BUFFER, WeakHandle};
use super::stream::Stream;
use super::stream_state::{StreamShared, StreamState};

const READ_CHUNK: usize = 64 << 10;
/// After this end closed, how long the reader keeps draining the peer's bytes, so the kernel
/// does not answer unread data with a TCP reset that could destroy our last frames in flight.
const LINGER: Duration = Duration::from_secs(2);

pub(crate) async fn read_loop<R: AsyncRead + Unpin>(conn: Arc<Conn>, mut rd: R, accept: mpsc::Sender<Stream>, handle: WeakHandle) {
    let _task = TaskGuard(conn.clone());
    let mut reader = Reader { conn: conn.clone(), accept: Some(accept), handle };
    let result = tokio::select! {
        result = reader.run(&mut rd) => result,
        () = conn.cancel.cancelled() => Ok(()),
    };
    match result {
        Ok(()) => conn.shutdown(End::Clean),
        Err(err) => {
            tracing::debug!(error = %err, "spdy session ended");
            if matches!(err, SessionError::Protocol(_)) {
                conn.state().goaway_status = GoAwayStatus::PROTOCOL_ERROR;
            }
            conn.shutdown(End::Failed(err));
        }
    }
    drop(reader);
    let mut sink = vec![0u8; 8 << 10];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

struct Reader {
    conn: Arc<Conn>,
    /// Dropped at GOAWAY: no more streams, and `accept` returns `None` once the queue is empty.
    accept: Option<mpsc::Sender<Stream>>,
    handle: WeakHandle,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Result<(), SessionError> {
        let mut decoder = FrameDecoder::new();
        loop {
            while let Some(frame) = decoder.decode()? {
                self.handle(frame).await?;
            }
            decoder.buffer_mut().reserve(READ_CHUNK);
            if rd.read_buf(decoder.buffer_mut()).await? == 0 {
                let state = self.conn.state();
                return if decoder.buffered() > 0 {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection in the middle of a frame").into())
                } else if state.goaway_received.is_some() || state.end.is_some() {
                    Ok(())
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection without GOAWAY").into())
                };
            }
        }
    }

    /// Queues a frame, waiting for room: a writer that cannot write stops this reader too.
    async fn send(&self, frame: Frame) -> Result<(), SessionError> {
        self.conn.out.send(Outbound::Frame(frame)).await.map_err(|_| SessionError::Closed)
    }

    fn stream(&self, id: u32) -> Option<Arc<StreamShared>> {
        self.conn.state().streams.get(&id).cloned()
    }

    async fn handle(&mut self, frame: Frame) -> Result<(), SessionError> {
        match frame {
            Frame::Data(data) => self.data(data).await,
            Frame::SynStream(syn) => self.syn_stream(syn).await,
            Frame::SynReply(reply) => {
                if let Some(shared) = self.stream(reply.stream_id) {
                    let mut st = shared.state();
                    if let Some(waiter) = st.reply.take() {
                        let _ = waiter.send(Ok(reply.headers));
                    }
                    drop(st);
                    if reply.fin {
                        self.remote_fin(&shared);
                    }
                }
                Ok(())
            }
            Frame::Headers(headers) => {
                tracing::trace!(stream = headers.stream_id, "spdy HEADERS ignored");
                if let Some(shared) = self.stream(headers.stream_id).filter(|_| headers.fin) {
                    self.remote_fin(&shared);
                }
                Ok(())
            }
            Frame::RstStream(rst) => {
                if let Some(shared) = self.stream(rst.stream_id) {
                    let mut st = shared.state();
                    st.peer_reset = Some(rst.status);
                    if let Some(waiter) = st.reply.take() {
                        let _ = waiter.send(Err(SessionError::Refused { stream_id: rst.stream_id, status: rst.status }));
                    }
                    st.wake_reader();
                    drop(st);
                    shared.space.notify_one();
                    self.conn.remove_stream(rst.stream_id);
                }
                Ok(())
            }
            Frame::Ping(ping) if self.conn.role.owns(ping.id) => {
                if let Some(waiter) = self.conn.state().pings.remove(&ping.id) {
                    let _ = waiter.send(());
                }
                Ok(())
            }
            Frame::Ping(ping) => self.send(Frame::Ping(ping)).await,
            Frame::GoAway(goaway) => {
                self.goaway(goaway);
                Ok(())
            }
            // spdystream neither sends nor honours these; see the session docs on flow control.
            Frame::Settings(_) | Frame::WindowUpdate(_) => Ok(()),
            Frame::Unknown(unknown) => {
                tracing::debug!(frame_type = unknown.frame_type, length = unknown.length, "spdy control frame of unknown type skipped");
                Ok(())
            }
        }
    }

    async fn data(&mut self, data: Data) -> Result<(), SessionError> {
        let Some(shared) = self.stream(data.stream_id) else {
            tracing::trace!(stream = data.stream_id, "spdy DATA for a closed stream dropped");
            return Ok(());
        };
        {
            let mut st = shared.state();
            if !st.reader_gone && !st.remote_fin && !st.local_reset && !data.payload.is_empty() {
                st.buffered += data.payload.len();
                st.buf.push_back(data.payload);
                #[cfg(test)]
                {
                    st.peak_buffered = st.peak_buffered.max(st.buffered);
                }
                st.wake_reader();
            }
        }
        if data.fin {
            self.remote_fin(&shared);
        }
        // Back-pressure: no more frames from the connection until this stream has room again
        // (or nobody reads it any more).
        loop {
            let notified = shared.space.notified();
            {
                let st = shared.state();
                if st.buffered < RECV_BUFFER || st.reader_gone || st.done() {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    fn remote_fin(&self, shared: &StreamShared) {
        let done = {
            let mut st = shared.state();
            st.remote_fin = true;
            st.wake_reader();
            st.done()
        };
        if done {
            self.conn.remove_stream(shared.id);
        }
    }

    async fn syn_stream(&mut self, syn: SynStream) -> Result<(), SessionError> {
        let id = syn.stream_id;
        let refuse = {
            let mut state = self.conn.state();
            if self.conn.role.owns(id) || id <= state.last_peer_stream {
                // Like spdystream: ids the peer may not use, or that do not grow, are a protocol error.
                Some(RstStatus::PROTOCOL_ERROR)
            } else if state.end.is_some() || self.accept.as_ref().is_none_or(mpsc::Sender::is_closed) {
                Some(RstStatus::REFUSED_STREAM)
            } else {
                state.last_peer_stream = id;
                None
            }
        };
        if let Some(status) = refuse {
            tracing::debug!(stream = id, %status, "spdy stream refused");
            return self.send(Frame::RstStream(RstStream { stream_id: id, status })).await;
        }
        let Some(handle) = self.handle.upgrade() else {
            return self.send(Frame::RstStream(RstStream { stream_id: id, status: RstStatus::REFUSED_STREAM })).await;
        };
        let shared = StreamShared::new(id, StreamState { remote_fin: syn.fin, local_fin: syn.unidirectional, ..StreamState::default() });
        self.conn.state().streams.insert(id, shared.clone());
        // The reply goes into the queue before the stream is handed out, so it precedes anything
        // written on the stream. spdystream replies to unidirectional streams too, and its opener
        // waits for that reply, so they get one as well.
        self.send(Frame::SynReply(SynReply { stream_id: id, fin: false, headers: Headers::new() })).await?;
        let stream = Stream::new(shared, self.conn.clone(), syn.headers, None, handle);
        // A session dropped meanwhile drops the stream here, which resets it.
        if let Some(accept) = &self.accept {
            let _ = accept.send(stream).await;
        }
        Ok(())
    }

    fn goaway(&mut self, goaway: GoAway) {
        tracing::debug!(last_good = goaway.last_good_stream_id, status = goaway.status.0, "spdy GOAWAY received");
        let (refused, finish) = {
            let mut state = self.conn.state();
            state.goaway_received = Some(goaway.last_good_stream_id);
            self.accept = None;
            let role = self.conn.role;
            let refused: Vec<Arc<StreamShared>> = state.streams.values().filter(|s| role.owns(s.id) && s.id > goaway.last_good_stream_id).cloned().collect();
            for shared in &refused {
                state.streams.remove(&shared.id);
            }
            (refused, state.streams.is_empty())
        };
        // Streams past the peer's last good id were never seen by it: they fail as refused.
        for shared in refused {
            let mut st = shared.state();
            st.peer_reset = Some(RstStatus::REFUSED_STREAM);
            if let Some(waiter) = st.reply.take() {
                let _ = waiter.send(Err(SessionError::GoneAway));
            }
            st.wake_reader();
        }
        if finish {
            self.conn.shutdown(End::Clean);
        }
    }
}
