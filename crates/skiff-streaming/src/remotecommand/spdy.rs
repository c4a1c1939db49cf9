//! Exec and attach over SPDY: the client opens one stream per channel, named by its
//! `streamtype` header; the server waits for the set the request expects (at most 30 s), runs the
//! process with them, and ends with the outcome on the error stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{error_stream_bytes, Outcome, Version, Wanted};
use crate::server::{BoxRead, BoxWrite, Gone, ProcessIo};
use crate::spdy::{Session, Stream};

/// How long the client has to open every stream the request expects (the reference server's).
pub const STREAMS_WAIT: Duration = Duration::from_secs(30);

pub const STREAM_TYPE: &str = "streamtype";

/// The streams of one exec or attach, as the client opened them.
pub struct SpdyStreams {
    pub error: Stream,
    pub others: HashMap<&'static str, Stream>,
}

fn kind_of(name: &str) -> Option<&'static str> {
    ["error", "stdin", "stdout", "stderr", "resize"].into_iter().find(|k| *k == name)
}

/// Accepts streams until the set `wanted` expects is complete. A stream of a kind not asked for,
/// or a second one of a kind, is reset. None: the client left, or did not open them in time.
pub async fn gather(session: &Session, wanted: Wanted, version: Version) -> Option<SpdyStreams> {
    let expected = |kind: &str| match kind {
        "error" => true,
        "stdin" => wanted.stdin,
        "stdout" => wanted.stdout,
        "stderr" => wanted.stderr,
        "resize" => wanted.resize(version),
        _ => false,
    };
    let mut got: HashMap<&'static str, Stream> = HashMap::new();
    let deadline = tokio::time::Instant::now() + STREAMS_WAIT;
    while got.len() < wanted.count(version) {
        let stream = match tokio::time::timeout_at(deadline, session.accept()).await {
            Ok(Some(stream)) => stream,
            Ok(None) => return None,
            Err(_) => {
                tracing::info!(got = ?got.keys().collect::<Vec<_>>(), "a streaming client did not open the streams its request asked for within {STREAMS_WAIT:?}");
                return None;
            }
        };
        let name = stream.headers().get(STREAM_TYPE).unwrap_or_default().to_string();
        match kind_of(&name).filter(|k| expected(k) && !got.contains_key(k)) {
            Some(kind) => {
                got.insert(kind, stream);
            }
            None => {
                tracing::debug!(streamtype = %name, "resetting a stream the request did not ask for");
                stream.reset();
            }
        }
    }
    let error = got.remove("error")?;
    Some(SpdyStreams { error, others: got })
}

/// What the backend gets of the streams, and the error stream kept for the end.
pub fn process_io(streams: SpdyStreams, gone: Gone) -> (ProcessIo, Stream) {
    let SpdyStreams { error, mut others } = streams;
    let reader = |s: Stream| -> BoxRead { Box::new(s.into_split().0) };
    let writer = |s: Stream| -> BoxWrite { Box::new(s.into_split().1) };
    let io = ProcessIo {
        stdin: others.remove("stdin").map(reader),
        stdout: others.remove("stdout").map(writer),
        stderr: others.remove("stderr").map(writer),
        resize: others.remove("resize").map(|s| super::resize::spawn_reader(s.into_split().0)),
        gone,
    };
    (io, error)
}

/// Writes the outcome on the error stream and closes it.
pub async fn finish(error: Stream, version: Version, outcome: &Outcome) {
    let bytes = error_stream_bytes(version, outcome);
    let (_reader, mut writer) = error.into_split();
    if !bytes.is_empty() {
        if let Err(e) = writer.write_all(&bytes).await {
            tracing::debug!(error = %e, "writing the error stream");
        }
    }
    let _ = writer.shutdown().await;
}

/// Resets every stream the client opens after the set was complete, and drops `connected` when
/// the session ends: the backend's [`Gone`] fires then.
pub fn watch(session: Arc<Session>, connected: crate::server::Connected) {
    tokio::spawn(async move {
        while let Some(extra) = session.accept().await {
            extra.reset();
        }
        session.closed().await;
        drop(connected);
    });
}
