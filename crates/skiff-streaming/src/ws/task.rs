//! The connection task: one loop reads messages and fills the channel queues, another writes
//! what the channel writers queued, over the two halves of the WebSocket stream.
//!
//! Reading and writing run side by side so that a reader waiting on a full queue never stops
//! this side's writes (a peer blocked on our output would otherwise deadlock against a
//! consumer blocked on its input). Ping frames are answered by tungstenite while reading.
//!
//! The task ends when the read loop ends: on the peer's close frame (readers then see EOF), on
//! a transport error or a protocol violation (readers see the error); and when a write fails
//! (readers see that error: the connection is no use any more). This side closes when
//! [`Channels::close`](super::Channels::close) queues a close after the data, or once every
//! half and the handle are dropped; the close frame then waits up to [`CLOSE_GRACE`] for the
//! peer's answer. A peer that stops reading cannot keep an abandoned connection alive: once
//! every half is gone, writing what is left, the close frame and the answer get
//! [`CLOSE_TIMEOUT`] in all.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::frame::{self, Frame};
use super::inbound::{End, Queue};
use super::outbound::{ConnState, Outgoing};
use super::protocol::Protocol;

/// How long a close frame waits for the peer's answer before the transport is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long closing may take in all: the output still queued (a few hundred KiB at most), the
/// close frame and the peer's answer. Past it the transport is dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the connection task works with.
pub(crate) struct Parts {
    pub(crate) protocol: Protocol,
    pub(crate) queues: Vec<Option<Arc<Queue>>>,
    pub(crate) outgoing: mpsc::Receiver<Outgoing>,
    pub(crate) conn: Arc<ConnState>,
    /// Closed (every receiver dropped) once no half and no handle is left.
    pub(crate) alive: watch::Sender<()>,
}

pub(crate) async fn run<S>(ws: WebSocketStream<S>, parts: Parts)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Parts { protocol, queues, mut outgoing, conn, alive } = parts;
    let (mut sink, mut stream) = ws.split();
    let end = {
        let reading = read_loop(&mut stream, protocol, &queues);
        let writing = write_loop(&mut sink, &mut outgoing, &alive);
        tokio::pin!(reading, writing);
        tokio::select! {
            end = &mut reading => end,
            written = &mut writing => match written {
                Ok(()) => {
                    // Our close frame is out. As Kubernetes does then, what the peer still sends
                    // is discarded (so a reader nobody drains cannot hold back the peer's
                    // answer) and nothing more can be written.
                    conn.set_end(End::Eof);
                    for queue in queues.iter().flatten() {
                        queue.end(End::Eof);
                    }
                    timeout(CLOSE_GRACE, &mut reading).await.unwrap_or_else(|_| unanswered())
                }
                Err(e) => lost(e),
            },
            () = alive.closed() => {
                let closing = async {
                    match (&mut writing).await {
                        Ok(()) => timeout(CLOSE_GRACE, &mut reading).await.unwrap_or_else(|_| unanswered()),
                        Err(e) => lost(e),
                    }
                };
                timeout(CLOSE_TIMEOUT, closing).await.unwrap_or_else(|_| unanswered())
            }
        }
    };
    conn.set_end(end.clone());
    for queue in queues.iter().flatten() {
        queue.end(end.clone());
    }
    // Writers waiting for queue space fail from here on, not when the drain below is over.
    outgoing.close();
    if matches!(end, End::Eof) {
        // Let tungstenite send the answer to the peer's close frame (or see the peer's answer to
        // ours) before the transport is dropped.
        let _ = timeout(CLOSE_GRACE, async { while stream.next().await.is_some() {} }).await;
    }
}

fn unanswered() -> End {
    End::error(io::ErrorKind::TimedOut, "websocket peer did not answer the close frame in time")
}

async fn read_loop<S>(stream: &mut SplitStream<WebSocketStream<S>>, protocol: Protocol, queues: &[Option<Arc<Queue>>]) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = stream.next().await {
        let bytes = match message {
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Text(text)) => Bytes::from(text),
            Ok(Message::Close(_)) => return End::Eof,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Err(e) => return lost(e),
        };
        let frame = match frame::decode(protocol, bytes) {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(e) => return End::error(io::ErrorKind::InvalidData, format!("websocket protocol error: {e}")),
        };
        match frame {
            Frame::Close { channel } => match queues.get(usize::from(channel)) {
                Some(Some(queue)) => queue.end(End::Eof),
                Some(None) => {}
                None => {
                    return End::error(
                        io::ErrorKind::InvalidData,
                        format!("websocket protocol error: close signal for channel {channel}, which does not exist"),
                    )
                }
            },
            Frame::Data { channel, payload } => {
                let Some(Some(queue)) = queues.get(usize::from(channel)) else {
                    tracing::trace!(channel, "discarding a websocket message for a channel that is not read");
                    continue;
                };
                match frame::decode_payload(protocol.encoding(), channel, payload) {
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => queue.push(data).await,
                    Err(e) => queue.end(End::error(io::ErrorKind::InvalidData, e.to_string())),
                }
            }
        }
    }
    End::error(io::ErrorKind::UnexpectedEof, "websocket connection lost: the transport ended without a close frame")
}

fn lost(e: WsError) -> End {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => End::Eof,
        WsError::Io(e) => End::error(e.kind(), format!("websocket connection lost: {e}")),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            End::error(io::ErrorKind::UnexpectedEof, "websocket connection lost: the peer went away without a close frame")
        }
        WsError::Capacity(e) => End::error(io::ErrorKind::InvalidData, format!("websocket message refused: {e}")),
        e => End::error(io::ErrorKind::ConnectionAborted, format!("websocket connection lost: {e}")),
    }
}

/// Writes queued messages, flushing whenever the queue runs dry, until a close is asked for
/// (`Outgoing::Close`, or no writer left and then no half at all); then sends the close frame.
async fn write_loop<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    alive: &watch::Sender<()>,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    'writing: loop {
        let mut next = outgoing.recv().await;
        loop {
            match next {
                Some(Outgoing::Message(message)) => sink.feed(message).await?,
                Some(Outgoing::Close) => break 'writing,
                None => {
                    // No writer is left, but readers may still wait for the peer's data.
                    sink.flush().await?;
                    alive.closed().await;
                    break 'writing;
                }
            }
            match outgoing.try_recv() {
                Ok(item) => next = Some(item),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => next = None,
            }
        }
        sink.flush().await?;
    }
    sink.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))).await
}
