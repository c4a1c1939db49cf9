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
}

/// Ignores progress.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Counts the bytes read through it.
pub(crate) struct Counting<'a, R> {
    pub inner: R,
    pub progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
