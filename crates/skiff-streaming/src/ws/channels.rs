//! [`Channels`]: the channel halves over one upgraded connection, and the handle that closes it.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::{Role as WsRole, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::PollSender;

use super::error::ChannelsError;
use super::inbound::{ChannelReader, Queue};
use super::outbound::{ChannelWriter, ConnState, Outgoing, OUTBOUND_MESSAGES};
use super::protocol::Protocol;
use super::task::{self, Parts, CLOSE_TIMEOUT};

/// The largest message accepted from the peer, the limit Go's `x/net/websocket` sets too.
pub const MAX_INCOMING_MESSAGE: usize = 32 * 1024 * 1024;

/// Which end of the connection this is. The client masks its frames (RFC 6455) and, on v5,
/// sends the close signal when a channel is shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// What this side does with a channel, as Kubernetes' `wsstream.ChannelType` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Part of the layout but unused: the peer's data for it is discarded, nothing is written.
    Ignore,
    /// The peer writes, this side reads.
    Read,
    /// This side writes, the peer reads (the peer's data for it is discarded).
    Write,
    /// Both.
    ReadWrite,
}

impl Direction {
    fn reads(self) -> bool {
        matches!(self, Direction::Read | Direction::ReadWrite)
    }

    fn writes(self) -> bool {
        matches!(self, Direction::Write | Direction::ReadWrite)
    }
}

/// The channels of one WebSocket connection, run by a background task.
///
/// Take the halves with [`take_reader`](Channels::take_reader) and
/// [`take_writer`](Channels::take_writer); they are independent of this handle and of each
/// other. The connection closes with a normal close frame when [`close`](Channels::close) is
/// called, or once this handle and every half are dropped; it ends at once when the peer closes
/// it or goes away, and then every reader sees EOF (clean close) or an error (connection lost)
/// and every write fails. Either way the task ends and drops the transport: a close frame that
/// the peer does not answer within [`CLOSE_GRACE`](super::CLOSE_GRACE) ends it too, and a close never takes longer
/// than [`CLOSE_TIMEOUT`], however stuck the peer.
pub struct Channels {
    protocol: Protocol,
    role: Role,
    readers: Vec<Option<ChannelReader>>,
    writers: Vec<Option<ChannelWriter>>,
    control: mpsc::Sender<Outgoing>,
    _alive: watch::Receiver<()>,
    task: JoinHandle<()>,
}

impl Channels {
    /// Starts the channels of `layout` (channel `i` is `layout[i]`) over `io`, an upgraded
    /// connection whose handshake chose `protocol`. Must be called within a Tokio runtime.
    pub fn open<S>(io: S, role: Role, protocol: Protocol, layout: &[Direction]) -> Result<Channels, ChannelsError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        if layout.len() > protocol.max_channels() {
            return Err(ChannelsError::TooManyChannels { count: layout.len(), max: protocol.max_channels(), protocol });
        }
        let (control, outgoing) = mpsc::channel(OUTBOUND_MESSAGES);
        let (alive, alive_rx) = watch::channel(());
        let conn = Arc::new(ConnState::default());
        let close_signal = role == Role::Client && protocol.has_close_signal();
        let mut queues = Vec::with_capacity(layout.len());
        let mut readers = Vec::with_capacity(layout.len());
        let mut writers = Vec::with_capacity(layout.len());
        for (channel, direction) in (0..=u8::MAX).zip(layout.iter().copied()) {
            let queue = direction.reads().then(|| Arc::new(Queue::default()));
            readers.push(queue.clone().map(|q| ChannelReader::new(channel, q, alive_rx.clone())));
            writers.push(direction.writes().then(|| {
                ChannelWriter::new(channel, protocol.encoding(), close_signal, PollSender::new(control.clone()), conn.clone(), alive_rx.clone())
            }));
            queues.push(queue);
        }
        let config = WebSocketConfig::default().max_message_size(Some(MAX_INCOMING_MESSAGE)).max_frame_size(Some(MAX_INCOMING_MESSAGE));
        let ws_role = match role {
            Role::Server => WsRole::Server,
            Role::Client => WsRole::Client,
        };
        let task = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(io, ws_role, Some(config)).await;
            task::run(ws, Parts { protocol, queues, outgoing, conn, alive }).await;
        });
        Ok(Channels { protocol, role, readers, writers, control, _alive: alive_rx, task })
    }

    /// The negotiated protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The read half of `channel`, once; `None` if the layout does not read it or it was taken.
    pub fn take_reader(&mut self, channel: u8) -> Option<ChannelReader> {
        self.readers.get_mut(usize::from(channel)).and_then(Option::take)
    }

    /// The write half of `channel`, once; `None` if the layout does not write it or it was taken.
    pub fn take_writer(&mut self, channel: u8) -> Option<ChannelWriter> {
        self.writers.get_mut(usize::from(channel)).and_then(Option::take)
    }

    /// Whether the background task has ended (the connection is over and the transport dropped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Closes the connection after every message queued so far, then waits until the peer has
    /// answered the close (or [`CLOSE_GRACE`](super::CLOSE_GRACE) passed) and the transport is dropped; after
    /// [`CLOSE_TIMEOUT`] the transport is dropped regardless. Halves still held then read EOF (or
    /// the error) and fail to write.
    pub async fn close(self) {
        let Channels { control, mut task, readers, writers, _alive, .. } = self;
        // Untaken readers would hold back the read loop, and with it the peer's answer.
        drop((readers, writers, _alive));
        let closing = async {
            // A failed send means the task is already ending on its own.
            let _ = control.send(Outgoing::Close).await;
            drop(control);
            (&mut task).await
        };
        match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "websocket connection task failed"),
            Err(_) => {
                tracing::debug!("websocket close timed out; dropping the connection");
                task.abort();
            }
        }
    }
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").field("protocol", &self.protocol).field("role", &self.role).finish_non_exhaustive()
    }
}
