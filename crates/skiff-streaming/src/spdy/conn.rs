//! The state a session's tasks and handles share: the stream table, stream ids, pings, how
//! the connection ended, and the outbound queue every frame goes through, in wire order.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::error::SessionError;
use super::frame::{Frame, GoAwayStatus, RstStatus, RstStream};
use super::headers::Headers;
use super::stream_state::StreamShared;

/// Which end of the connection this is. The client (who sent the HTTP upgrade) opens odd
/// stream ids and pings with odd ids, the server even ones; spdystream enforces only that
/// stream ids grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    /// Whether `id` (a stream or ping id) is one this end hands out.
    pub(crate) fn owns(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Client)
    }

    fn first_id(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 2,
        }
    }
}

/// What the writer task takes from the queue.
pub(crate) enum Outbound {
    Frame(Frame),
    /// A SYN_STREAM: its id is picked when it is written, so ids grow in wire order however
    /// many tasks open streams at once.
    Open { headers: Headers, reply: oneshot::Sender<Result<Headers, SessionError>>, opened: oneshot::Sender<Result<Arc<StreamShared>, SessionError>> },
}

/// How the connection ended, as streams still open see it.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// Closed on purpose, by either side (GOAWAY): open streams read EOF.
    Clean,
    /// Lost or broken: open streams fail with this.
    Failed(SessionError),
}

pub(crate) struct ConnState {
    pub streams: HashMap<u32, Arc<StreamShared>>,
    pub next_stream_id: u32,
    /// The highest stream id the peer opened and this end accepted: GOAWAY's last-good id.
    pub last_peer_stream: u32,
    pub next_ping: u32,
    pub pings: HashMap<u32, oneshot::Sender<()>>,
    pub goaway_received: Option<u32>,
    pub goaway_status: GoAwayStatus,
    pub end: Option<End>,
}

pub(crate) struct Conn {
    pub role: Role,
    state: Mutex<ConnState>,
    pub out: mpsc::Sender<Outbound>,
    /// Cancelled when the session starts to close: the reader stops, the writer drains the
    /// queue, sends GOAWAY and shuts the connection.
    pub cancel: CancellationToken,
    /// Cancelled once both tasks have returned and the connection is dropped.
    pub finished: CancellationToken,
    tasks: AtomicUsize,
}

impl Conn {
    pub fn new(role: Role, out: mpsc::Sender<Outbound>) -> Self {
        let state = ConnState {
            streams: HashMap::new(),
            next_stream_id: role.first_id(),
            last_peer_stream: 0,
            next_ping: role.first_id(),
            pings: HashMap::new(),
            goaway_received: None,
            goaway_status: GoAwayStatus::OK,
            end: None,
        };
        Self { role, state: Mutex::new(state), out, cancel: CancellationToken::new(), finished: CancellationToken::new(), tasks: AtomicUsize::new(0) }
    }

    /// The shared state. A panic elsewhere while holding it leaves consistent-enough data (every
    /// update is a field store), so a poisoned lock is taken over rather than spread.
    pub fn state(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Why new work cannot start, if it cannot.
    pub fn refuse_new(&self) -> Result<(), SessionError> {
        let state = self.state();
        match (&state.end, state.goaway_received) {
            (Some(End::Failed(err)), _) => Err(err.clone()),
            (Some(End::Clean), _) => Err(SessionError::Closed),
            (None, Some(_)) => Err(SessionError::GoneAway),
            (None, None) => Ok(()),
        }
    }

    /// Queues a frame from code that cannot wait (drops, `reset`). The queue keeps frames in
    /// order, so a RST_STREAM never overtakes the DATA written before it; only when the queue is
    /// full does the frame wait in a task of its own.
    pub fn send_now(&self, frame: Frame) {
        match self.out.try_send(Outbound::Frame(frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                let out = self.out.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = out.send(item).await;
                    });
                }
            }
        }
    }

    pub fn send_reset(&self, stream_id: u32, status: RstStatus) {
        self.send_now(Frame::RstStream(RstStream { stream_id, status }));
    }

    /// Forgets a stream; once the peer has said GOAWAY, the last one gone ends the session.
    pub fn remove_stream(&self, stream_id: u32) {
        let finish = {
            let mut state = self.state();
            state.streams.remove(&stream_id);
            state.goaway_received.is_some() && state.streams.is_empty() && state.end.is_none()
        };
        if finish {
            self.shutdown(End::Clean);
        }
    }

    /// Ends the session: new work is refused, every open stream learns how it ended, pending
    /// opens and pings fail, and the tasks are told to stop. The first end reported sticks.
    pub fn shutdown(&self, end: End) {
        let (end, streams, pings) = {
            let mut state = self.state();
            let end = state.end.get_or_insert(end).clone();
            (end, std::mem::take(&mut state.streams), std::mem::take(&mut state.pings))
        };
        drop(pings);
        for stream in streams.into_values() {
            stream.connection_ended(&end);
        }
        self.cancel.cancel();
    }

    pub fn task_started(&self) {
        self.tasks.fetch_add(1, Ordering::SeqCst);
    }

    /// Called by each task as it returns; the last one marks the session finished.
    pub fn task_finished(&self) {
        if self.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.finished.cancel();
        }
    }
}

/// Held by a task for as long as it runs, so `finished` fires even if a task panics.
pub(crate) struct TaskGuard(pub Arc<Conn>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.task_finished();
    }
}

/// One per session, shared by the `Session` values and every `Stream`: when the last of them is
/// dropped, nobody can use the connection any more and it is closed (GOAWAY, then shutdown).
pub(crate) struct Handle(pub Arc<Conn>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.shutdown(End::Clean);
    }
}

pub(crate) fn io_error(kind: io::ErrorKind, err: &SessionError) -> io::Error {
    match err {
        SessionError::Io(inner) => io::Error::new(inner.kind(), err.clone()),
        _ => io::Error::new(kind, err.clone()),
    }
}
