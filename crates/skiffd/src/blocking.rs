//! Running store work off the async executor, and streaming progress from it.

use std::sync::atomic::{AtomicU64, Ordering};

use skiff_image::Progress;
use tokio::sync::mpsc;
use tonic::Status;

use crate::status::ApiError;

/// Runs blocking store work on tokio's blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Status::from),
        Err(e) => Err(Status::internal(format!("worker failed: {e}"))),
    }
}

/// Forwards progress to a stream as `make(total, done)` messages, at most every 1% (or 4 MiB).
pub struct ChannelProgress<T, F: Fn(u64, u64) -> T> {
    tx: mpsc::Sender<Result<T, Status>>,
    make: F,
    total: AtomicU64,
    done: AtomicU64,
    last_sent: AtomicU64,
}

impl<T, F: Fn(u64, u64) -> T> ChannelProgress<T, F> {
    pub fn new(tx: mpsc::Sender<Result<T, Status>>, make: F) -> Self {
        ChannelProgress { tx, make, total: AtomicU64::new(0), done: AtomicU64::new(0), last_sent: AtomicU64::new(0) }
    }
}

impl<T: Send, F: Fn(u64, u64) -> T + Sync> Progress for ChannelProgress<T, F> {
    fn total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
        let _ = self.tx.try_send(Ok((self.make)(bytes, 0)));
    }

    fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let total = self.total.load(Ordering::Relaxed);
        let step = (total / 100).max(4 << 20);
        let last = self.last_sent.load(Ordering::Relaxed);
        if done >= last + step || done == total {
            self.last_sent.store(done, Ordering::Relaxed);
            // A slow client loses intermediate updates, never the result.
            let _ = self.tx.try_send(Ok((self.make)(total, done)));
        }
    }
}
