//! The local store's writer: a temp file under `<root>/ingest`, hashed as it is written; `commit`
//! checks what was promised, fsyncs, renames into place, syncs the directory, then records the blob.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::{expected_name, sync_dir, CommitOptions, ContentInfo, ContentStore as _, ContentWriter, LocalContentStore};
use crate::error::{Result, StoreError};
use crate::Digest;

/// An ingest into a temp file under `<root>/ingest`, hashing as it writes; dropping it uncommitted
/// removes the temp file.
pub(super) struct LocalWriter<'a> {
    pub(super) store: &'a LocalContentStore,
    pub(super) file: Option<File>,
    pub(super) tmp: PathBuf,
    pub(super) hasher: Sha256,
    pub(super) written: u64,
    pub(super) expected: Option<Digest>,
    pub(super) expected_size: Option<u64>,
}

impl ContentWriter for LocalWriter<'_> {
    fn written(&self) -> u64 {
        self.written
    }

    fn commit(mut self: Box<Self>, opts: CommitOptions) -> Result<ContentInfo> {
        let file = self.file.take().ok_or_else(|| StoreError::InvalidArgument("writer already closed".into()))?;
        if let Some(expected) = self.expected_size {
            if expected != self.written {
                return Err(StoreError::SizeMismatch {
                    digest: expected_name(self.expected.as_ref()),
                    expected,
                    actual: self.written,
                });
            }
        }
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(expected) = &self.expected {
            if expected != &actual {
                return Err(StoreError::DigestMismatch { expected: expected.clone(), actual });
            }
        }
        let store = self.store;
        let _gc = store.gc.read();
        if store.info(&actual).is_ok() {
            // Already stored: keep the existing file, merge labels, add the lease reference.
            return store.record(&actual, self.written, &opts.labels, opts.lease.as_ref());
        }
        file.sync_all().map_err(StoreError::io("fsync blob"))?;
        drop(file);
        let dest = store.blob_path(&actual);
        fs::rename(&self.tmp, &dest).map_err(StoreError::io(format!("rename into {}", dest.display())))?;
        sync_dir(&store.root.join("blobs/sha256"))?;
        store.record(&actual, self.written, &opts.labels, opts.lease.as_ref())
    }
}

impl Write for LocalWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("writer closed"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LocalWriter<'_> {
    fn drop(&mut self) {
        // After a successful rename the temp path no longer exists; NotFound is expected then.
        let _ = fs::remove_file(&self.tmp);
    }
}
