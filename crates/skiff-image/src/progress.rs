//! Progress reporting for long operations (imports, exports).

use std::io::{self, Read};

/// Receives progress from an import or export; called from worker threads.
pub trait Progress: Sync {
    /// The total number of bytes the operation will move, once known.
    fn total(&self, _bytes: u64) {}
    /// `bytes` more were moved.
    fn advance(&self, _bytes: u64) {}
    /// A blob was handled (`skipped` when it was already stored).
    fn blob(&self, _digest: &str, _size: u64, _skipped: bool) {}
    /// `done` of a blob's `size` bytes have been moved.
    fn blob_progress(&self, _digest: &str, _done: u64, _size: u64) {}
}

/// Ignores progress.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Counts the bytes read through it, overall and (when `blob` names one) per blob.
pub(crate) struct Counting<'a, R> {
    pub inner: R,
    pub progress: &'a dyn Progress,
    pub blob: Option<(&'a str, u64)>,
    pub done: u64,
}

impl<'a, R> Counting<'a, R> {
    pub fn new(inner: R, progress: &'a dyn Progress) -> Self {
        Counting { inner, progress, blob: None, done: 0 }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        self.done += n as u64;
        if let Some((digest, size)) = self.blob {
            self.progress.blob_progress(digest, self.done, size);
        }
        Ok(n)
    }
}
