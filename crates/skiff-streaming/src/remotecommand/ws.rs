//! Exec and attach over a WebSocket: the channels exist from the upgrade on (`ws::remotecommand`
//! opens them and sends the ready message); the process runs with them and the outcome goes on
//! the error channel before the connection closes.

use std::future::Future;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{error_stream_bytes, Outcome, TermSize, Version, Wanted};
use crate::server::{Gone, ProcessIo};
use crate::ws::remotecommand::ServerStreams;
use crate::ws::ChannelReader;

impl From<Wanted> for crate::ws::remotecommand::StreamOptions {
    /// The channels a WebSocket exec or attach carries for these streams.
    fn from(w: Wanted) -> Self {
        crate::ws::remotecommand::StreamOptions { stdin: w.stdin, stdout: w.stdout, stderr: w.stderr, tty: w.tty }
    }
}

/// Reads the resize channel for as long as the connection lives: sizes go to the process when it
/// has a terminal; the channel's end (the connection closed) drops `connected`.
fn watch_resizes(resize: ChannelReader, tty: bool, connected: crate::server::Connected) -> Option<mpsc::Receiver<TermSize>> {
    let sizes = super::resize::spawn_reader(resize);
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut sizes = sizes;
        while let Some(size) = sizes.recv().await {
            if tty {
                let _ = tx.send(size).await;
            }
        }
        drop(connected);
    });
    tty.then_some(rx)
}

pub async fn serve<F, Fut>(streams: ServerStreams, version: Version, wanted: Wanted, run: F)
where
    F: FnOnce(ProcessIo) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let ServerStreams { stdin, stdout, stderr, mut error, resize, channels } = streams;
    let (connected, gone) = Gone::pair();
    let io = ProcessIo {
        stdin: stdin.map(|r| Box::new(r) as _),
        stdout: stdout.map(|w| Box::new(w) as _),
        stderr: stderr.map(|w| Box::new(w) as _),
        resize: watch_resizes(resize, wanted.tty, connected),
        gone,
    };
    let outcome = run(io).await;
    let bytes = error_stream_bytes(version, &outcome);
    if !bytes.is_empty() {
        if let Err(e) = error.write_all(&bytes).await {
            tracing::debug!(error = %e, "writing the error channel");
        }
    }
    let _ = error.shutdown().await;
    channels.close().await;
}
