//! The session's writer task: encodes queued frames (owning the outbound header compression
//! context, and picking the ids of new streams so they grow in wire order), writes them in
//! batches, and on close drains the queue, sends GOAWAY and shuts the connection.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::codec::FrameEncoder;
use super::conn::{Conn, End, Outbound, TaskGuard};
use super::error::SessionError;
use super::frame::*;
use super::session::CLOSE_TIMEOUT;
use super::stream_state::{StreamShared, StreamState};

const WRITE_BATCH: usize = 256 << 10;

pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(conn: Arc<Conn>, mut wr: W, mut queue: mpsc::Receiver<Outbound>) {
    let _task = TaskGuard(conn.clone());
    let mut encoder = FrameEncoder::new();
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let result: Result<(), SessionError> = async {
        loop {
            let item = tokio::select! {
                biased;
                item = queue.recv() => item,
                () = conn.cancel.cancelled() => None,
            };
            let Some(item) = item else { return Ok(()) };
            encode(&conn, &mut encoder, item, &mut batch);
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(item) => encode(&conn, &mut encoder, item, &mut batch),
                    Err(_) => break,
                }
            }
            write(&conn, &mut wr, &batch).await?;
            batch.clear();
        }
    }
    .await;
    if let Err(err) = result {
        tracing::debug!(error = %err, "spdy connection write failed");
        conn.shutdown(End::Failed(err));
        return;
    }
    // Closing: what was queued still goes out, then GOAWAY naming the last stream accepted.
    queue.close();
    while let Ok(item) = queue.try_recv() {
        encode(&conn, &mut encoder, item, &mut batch);
    }
    let goaway = {
        let state = conn.state();
        GoAway { last_good_stream_id: state.last_peer_stream, status: state.goaway_status }
    };
    encode(&conn, &mut encoder, Outbound::Frame(Frame::GoAway(goaway)), &mut batch);
    let flushed = tokio::time::timeout(CLOSE_TIMEOUT, async {
        wr.write_all(&batch).await?;
        wr.flush().await?;
        wr.shutdown().await
    })
    .await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::debug!("spdy connection closed before GOAWAY was written");
    }
}

/// Writes a batch; once the session is closing, a peer that stops reading gets CLOSE_TIMEOUT.
async fn write<W: AsyncWrite + Unpin>(conn: &Conn, wr: &mut W, batch: &[u8]) -> Result<(), SessionError> {
    let deadline = async {
        conn.cancel.cancelled().await;
        tokio::time::sleep(CLOSE_TIMEOUT).await;
    };
    tokio::select! {
        result = async { wr.write_all(batch).await?; wr.flush().await } => Ok(result?),
        () = deadline => Err(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading while the session closed").into()),
    }
}

fn encode(conn: &Conn, encoder: &mut FrameEncoder, item: Outbound, batch: &mut Vec<u8>) {
    match item {
        Outbound::Frame(frame) => {
            if let Err(err) = encoder.encode(&frame, batch) {
                tracing::warn!(error = %err, frame = frame.kind(), "spdy frame not sent");
            }
        }
        Outbound::Open { headers, reply, opened } => {
            let mut state = conn.state();
            let id = state.next_stream_id;
            let refused = match (&state.end, state.goaway_received) {
                (Some(End::Failed(err)), _) => Some(err.clone()),
                (Some(End::Clean), _) => Some(SessionError::Closed),
                (None, Some(_)) => Some(SessionError::GoneAway),
                (None, None) if id > MAX_STREAM_ID => Some(SessionError::StreamIdsExhausted),
                (None, None) => None,
            };
            if let Some(err) = refused {
                let _ = opened.send(Err(err));
                return;
            }
            let syn = Frame::SynStream(SynStream { stream_id: id, headers, ..SynStream::default() });
            if let Err(err) = encoder.encode(&syn, batch) {
                let _ = opened.send(Err(err.into()));
                return;
            }
            state.next_stream_id += 2;
            let shared = StreamShared::new(id, StreamState { reply: Some(reply), ..StreamState::default() });
            state.streams.insert(id, shared.clone());
            if opened.send(Ok(shared)).is_err() {
                // The opener gave up before the id was even known: take the stream back.
                state.streams.remove(&id);
                drop(state);
                let _ = encoder.encode(&Frame::RstStream(RstStream { stream_id: id, status: RstStatus::CANCEL }), batch);
            }
        }
    }
}
