//! The state of one stream that the reader task and the stream's handles share: the receive
//! buffer, which directions are finished, resets, how the session ended, and the waiter for a
//! SYN_REPLY. Locked briefly, never across an await.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use super::conn::{Conn, End};
use super::error::SessionError;
use super::frame::RstStatus;
use super::headers::Headers;

/// The part of a stream the session's reader task fills and the handles drain.
pub(crate) struct StreamShared {
    pub id: u32,
    state: Mutex<StreamState>,
    /// Woken when a full receive buffer drains, for the reader task waiting to go on.
    pub space: Notify,
}

#[derive(Default)]
pub(crate) struct StreamState {
    pub buf: VecDeque<Bytes>,
    pub buffered: usize,
    pub remote_fin: bool,
    pub local_fin: bool,
    pub peer_reset: Option<RstStatus>,
    pub local_reset: bool,
    /// No handle reads any more: incoming data is dropped instead of buffered.
    pub reader_gone: bool,
    pub end: Option<End>,
    pub read_waker: Option<Waker>,
    /// Set while this end waits for the SYN_REPLY to a stream it opened.
    pub reply: Option<oneshot::Sender<Result<Headers, SessionError>>>,
    #[cfg(test)]
    pub peak_buffered: usize,
}

impl StreamState {
    /// Both directions are over, or the stream was reset: nothing more will be sent on it.
    pub fn done(&self) -> bool {
        (self.local_fin && self.remote_fin) || self.peer_reset.is_some() || self.local_reset || self.end.is_some()
    }

    pub fn wake_reader(&mut self) {
        if let Some(waker) = self.read_waker.take() {
            waker.wake();
        }
    }
}

impl StreamShared {
    pub fn new(id: u32, state: StreamState) -> Arc<Self> {
        Arc::new(Self { id, state: Mutex::new(state), space: Notify::new() })
    }

    pub fn state(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn connection_ended(&self, end: &End) {
        let mut st = self.state();
        st.end.get_or_insert_with(|| end.clone());
        if let Some(reply) = st.reply.take() {
            let _ = reply.send(Err(match end {
                End::Clean => SessionError::Closed,
                End::Failed(err) => err.clone(),
            }));
        }
        st.wake_reader();
        drop(st);
        self.space.notify_one();
    }

    /// Marks the stream reset from this end and says whether a RST_STREAM should go out.
    pub fn reset_locally(&self) -> bool {
        let mut st = self.state();
        let send = !st.done();
        if st.peer_reset.is_none() {
            st.local_reset = true;
        }
        st.buf.clear();
        st.buffered = 0;
        st.wake_reader();
        drop(st);
        self.space.notify_one();
        send
    }
}

/// Releases a stream that was opened but never handed out (the opener gave up).
pub(crate) fn abandon(conn: &Conn, shared: &StreamShared) {
    if shared.reset_locally() {
        conn.send_reset(shared.id, RstStatus::CANCEL);
    }
    conn.remove_stream(shared.id);
}
