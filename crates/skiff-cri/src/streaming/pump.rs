//! Bytes between the client's streams and the FIFOs a shim holds the other ends of, for one
//! exec or attach: a task per stream, and one applying terminal resizes.

use std::fs::File;
use std::sync::Arc;

use skiff_streaming::remotecommand::TermSize;
use skiff_streaming::server::{BoxRead, BoxWrite};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The tasks of one stream set.
#[derive(Default)]
pub struct Pumps {
    /// The client's stdin into the process; aborted when the process ended.
    pub stdin: Option<JoinHandle<()>>,
    /// The process's output to the client; each ends at the FIFO's end (the shim closed it).
    pub outputs: Vec<JoinHandle<()>>,
    pub resize: Option<JoinHandle<()>>,
}

impl Pumps {
    /// Waits for the output to reach the client, then stops the input side.
    pub async fn finish(mut self) {
        for output in self.outputs.drain(..) {
            let _ = output.await;
        }
        self.stop_input();
    }

    /// Stops feeding the process (it is gone, or the client is).
    pub fn stop_input(&mut self) {
        for task in [self.stdin.take(), self.resize.take()].into_iter().flatten() {
            task.abort();
        }
    }
}

/// The client's stdin into `fifo`; the client's end of input closes the FIFO (the process reads
/// its end of file).
pub fn stdin(client: BoxRead, fifo: File) -> std::io::Result<JoinHandle<()>> {
    let mut to = pipe::Sender::from_file(fifo)?;
    Ok(tokio::spawn(async move {
        let mut from = BufReader::new(client);
        if let Err(e) = tokio::io::copy_buf(&mut from, &mut to).await {
            tracing::debug!(error = %e, "copying a client's stdin");
        }
    }))
}

/// `fifo` to the client's `stream` until the FIFO ends; then the client's stream is closed.
pub fn output(fifo: File, mut client: BoxWrite, name: &'static str) -> std::io::Result<JoinHandle<()>> {
    let mut from = pipe::Receiver::from_file(fifo)?;
    Ok(tokio::spawn(async move {
        match tokio::io::copy(&mut from, &mut client).await {
            Ok(_) => {
                let _ = client.shutdown().await;
            }
            // The client went away; the shim sees its FIFO's reader go once this one is dropped.
            Err(e) => tracing::debug!(error = %e, stream = name, "copying output to a client"),
        }
    }))
}

/// Applies each size the client sends with `apply(rows, columns)`, on the blocking pool.
pub fn resizes(mut sizes: mpsc::Receiver<TermSize>, apply: Arc<dyn Fn(u16, u16) + Send + Sync>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(size) = sizes.recv().await {
            let apply = apply.clone();
            let _ = tokio::task::spawn_blocking(move || apply(size.height, size.width)).await;
        }
    })
}
