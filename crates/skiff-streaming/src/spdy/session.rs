//! A SPDY/3.1 session over one connection, in either role.
//!
//! ```text
//!            Session / Stream handles                      the connection (any AsyncRead + AsyncWrite)
//!   open() ─┐                                  ┌────────────┐
//!   write ──┼─► outbound queue (bounded) ────► │ writer task│ ── frames, header zlib context ──►
//!   reset ──┘        ▲                         └────────────┘
//!                    │ SYN_REPLY, PING echo, RST_STREAM
//!   accept() ◄── accept queue ◄─┐              ┌────────────┐
//!   read ◄── per-stream buffer ◄┴───────────── │ reader task│ ◄── frames, header zlib context ──
//!                                              └────────────┘
//! ```
//!
//! Flow control: spdystream (and so kubectl, client-go and the kubelet) implements none. It
//! never sends WINDOW_UPDATE or SETTINGS and ignores them when received; a slow reader on its
//! side blocks its frame handler, which stops it reading the socket, so TCP pushes back. Honouring
//! SPDY/3.1's 64 KiB initial window here would stall every transfer after 64 KiB waiting for
//! credit that never comes, so this session keeps no send window either, sends no WINDOW_UPDATE
//! and ignores those it gets. Memory stays bounded the same way spdystream bounds it: a stream
//! buffers at most [`RECV_BUFFER`] (plus the frame that crossed it); when it is full the reader
//! task stops reading the connection until the stream's reader catches up, and writers wait for
//! room in the bounded outbound queue. The price, as with spdystream, is that one unread stream
//! holds up the others on its connection — a stream nobody will read should be dropped or reset,
//! which discards its input instead.
//!
//! Every stream the peer opens is answered with an empty SYN_REPLY before [`Session::accept`]
//! hands it out, as k8s' `httpstream/spdy` does; [`Stream::reset`] rejects it afterwards.
//! [`Session::close`] does what k8s' `Connection.Close` does: RST_STREAM for every stream not
//! yet half-closed, then GOAWAY, then the connection is shut. A GOAWAY from the peer stops new
//! streams both ways and ends the session once the streams it covers are done.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::conn::{Conn, End, Handle, Outbound, Role};
use super::{reader, writer};
use super::error::SessionError;
use super::frame::{Frame, Ping};
use super::headers::Headers;
use super::stream::Stream;
use super::stream_state::{StreamShared, abandon};

/// The most a stream buffers before the reader task stops for it.
pub const RECV_BUFFER: usize = 512 << 10;
/// The largest DATA frame a write sends; longer writes are partial, as `AsyncWrite` allows.
pub const DATA_CHUNK: usize = 64 << 10;
/// How long `open` waits for the peer's SYN_REPLY (k8s waits 30 s too).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing waits for the last frames to be written before dropping the connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

const OUTBOUND_QUEUE: usize = 16;
const ACCEPT_QUEUE: usize = 32;

/// A SPDY/3.1 session. Clones share it; it closes (GOAWAY) when the last clone and the last
/// stream are dropped, or on [`close`](Self::close).
#[derive(Clone)]
pub struct Session {
    conn: Arc<Conn>,
    incoming: Arc<Mutex<mpsc::Receiver<Stream>>>,
    handle: Arc<Handle>,
}

impl Session {
    /// The server end (it answered the HTTP upgrade): opens even stream ids. Spawns the
    /// session's two tasks, so it must be called inside a tokio runtime.
    pub fn server<T: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: T) -> Self {
        Self::new(io, Role::Server)
    }

    /// The client end (it sent the HTTP upgrade): opens odd stream ids.
    pub fn client<T: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: T) -> Self {
        Self::new(io, Role::Client)
    }

    pub fn new<T: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: T, role: Role) -> Self {
        let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (accept_tx, accept_rx) = mpsc::channel(ACCEPT_QUEUE);
        let conn = Arc::new(Conn::new(role, out_tx));
        let handle = Arc::new(Handle(conn.clone()));
        let (rd, wr) = tokio::io::split(io);
        conn.task_started();
        conn.task_started();
        tokio::spawn(reader::read_loop(conn.clone(), rd, accept_tx, Arc::downgrade(&handle)));
        tokio::spawn(writer::write_loop(conn.clone(), wr, out_rx));
        Session { conn, incoming: Arc::new(Mutex::new(accept_rx)), handle }
    }

    pub fn role(&self) -> Role {
        self.conn.role
    }

    /// The next stream the peer opened, already answered with SYN_REPLY; `None` once the
    /// session has ended, or the peer sent GOAWAY and the streams it opened before are taken.
    pub async fn accept(&self) -> Option<Stream> {
        self.incoming.lock().await.recv().await
    }

    /// Opens a stream with `headers` and waits for the peer's SYN_REPLY.
    pub async fn open(&self, headers: Headers) -> Result<Stream, SessionError> {
        self.conn.refuse_new()?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let (opened_tx, opened_rx) = oneshot::channel();
        let request = Outbound::Open { headers: headers.clone(), reply: reply_tx, opened: opened_tx };
        self.conn.out.send(request).await.map_err(|_| SessionError::Closed)?;
        let shared = opened_rx.await.map_err(|_| SessionError::Closed)??;
        // Until the reply is in, giving up (timeout, error, a dropped future) resets the stream.
        let pending = PendingOpen { conn: &self.conn, shared: Some(shared.clone()) };
        let reply = match tokio::time::timeout(REPLY_TIMEOUT, reply_rx).await {
            Err(_) => return Err(SessionError::ReplyTimeout { stream_id: shared.id, seconds: REPLY_TIMEOUT.as_secs() }),
            Ok(Err(_)) => return Err(SessionError::Closed),
            Ok(Ok(reply)) => reply?,
        };
        pending.accepted();
        Ok(Stream::new(shared, self.conn.clone(), headers, Some(reply), self.handle.clone()))
    }

    /// Sends a PING and waits for its echo.
    pub async fn ping(&self) -> Result<Duration, SessionError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.conn.state();
            if state.end.is_some() {
                return Err(SessionError::Closed);
            }
            let id = state.next_ping;
            // Like spdystream: ids keep their parity and wrap below 2^31.
            state.next_ping = if id > 0x7fff_fffe { id - 0x7fff_fffe } else { id + 2 };
            state.pings.insert(id, tx);
            id
        };
        let pending = PendingPing { conn: &self.conn, id };
        let start = Instant::now();
        self.conn.out.send(Outbound::Frame(Frame::Ping(Ping { id }))).await.map_err(|_| SessionError::Closed)?;
        rx.await.map_err(|_| self.error().unwrap_or(SessionError::Closed))?;
        drop(pending);
        Ok(start.elapsed())
    }

    /// Closes like k8s' `Connection.Close`: every stream this end has not half-closed is reset,
    /// the rest stop reading, GOAWAY goes out after everything queued before it, and the
    /// connection is shut. Returns once the session's tasks are gone.
    pub async fn close(&self) {
        let streams: Vec<Arc<StreamShared>> = self.conn.state().streams.values().cloned().collect();
        for shared in streams {
            let send = {
                let mut st = shared.state();
                let send = !st.done() && !st.local_fin;
                st.local_reset = true;
                st.wake_reader();
                send
            };
            shared.space.notify_one();
            if send {
                let _ = self.conn.out.send(Outbound::Frame(Frame::RstStream(super::frame::RstStream { stream_id: shared.id, status: super::frame::RstStatus::CANCEL }))).await;
            }
        }
        self.conn.shutdown(End::Clean);
        self.closed().await;
    }

    /// Resolves once the session has ended and its tasks have released the connection.
    pub async fn closed(&self) {
        self.conn.finished.cancelled().await;
    }

    pub fn is_closed(&self) -> bool {
        self.conn.state().end.is_some()
    }

    /// Why the session failed, if it did (a clean close by either side is not a failure).
    pub fn error(&self) -> Option<SessionError> {
        match &self.conn.state().end {
            Some(End::Failed(err)) => Some(err.clone()),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("role", &self.conn.role).field("closed", &self.is_closed()).finish_non_exhaustive()
    }
}

struct PendingOpen<'a> {
    conn: &'a Arc<Conn>,
    shared: Option<Arc<StreamShared>>,
}

impl PendingOpen<'_> {
    fn accepted(mut self) {
        self.shared = None;
    }
}

impl Drop for PendingOpen<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            abandon(self.conn, &shared);
        }
    }
}

struct PendingPing<'a> {
    conn: &'a Arc<Conn>,
    id: u32,
}

impl Drop for PendingPing<'_> {
    fn drop(&mut self) {
        self.conn.state().pings.remove(&self.id);
    }
}

/// The reader task upgrades this to hand out accepted streams; once every handle is gone it
/// cannot, and it refuses new streams instead.
pub(crate) type WeakHandle = Weak<Handle>;
