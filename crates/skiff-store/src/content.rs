//! Content-addressed blobs: files at `<root>/blobs/sha256/<hex>`, described by `ContentInfo` records in sled.
//!
//! Ingest writes to a temp file under `<root>/ingest`, hashing while it writes; `commit` checks the
//! promised size and digest, fsyncs, renames into place, syncs the directory and only then records the
//! blob (in the same sled transaction as its lease reference) and flushes. A failed or dropped writer
//! removes its temp file, so a bad blob leaves nothing behind.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::db::{decode, encode, Db};
use crate::error::{Result, StoreError};
use crate::lease::{lease_content_key, LeaseId};
use crate::{now, Digest, GcLock, LabelSelector};

mod writer;
use writer::LocalWriter;

/// What the store knows of one blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentInfo {
    pub digest: Digest,
    pub size: u64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Options for committing a written blob.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    /// Labels set on the blob's record (merged over existing ones when the blob is already stored).
    pub labels: BTreeMap<String, String>,
    /// Lease that protects the blob from garbage collection until the lease is released.
    pub lease: Option<LeaseId>,
}

/// A stored blob opened for streaming; seekable, so a reader can serve a range.
pub trait BlobReader: Read + Seek + Send {}

impl<T: Read + Seek + Send> BlobReader for T {}

/// An open ingest. Write the bytes, then `commit`; dropping it uncommitted discards what was written.
pub trait ContentWriter: Write + Send {
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Checks the promised size and digest, makes the blob durable and records it. Committing a blob
    /// that is already stored merges `opts.labels` over its labels and adds the lease reference.
    fn commit(self: Box<Self>, opts: CommitOptions) -> Result<ContentInfo>;
}

/// The content store seam: what the image layer and the daemon need from blob storage. Callers that
/// only read, write or describe blobs take `&dyn ContentStore`; `LocalContentStore` is the one on disk.
pub trait ContentStore: Send + Sync {
    /// The record of a stored blob.
    fn info(&self, digest: &Digest) -> Result<ContentInfo>;
    /// Opens a stored blob for streaming. The bytes are not re-verified; use `read_verified` for that.
    fn open(&self, digest: &Digest) -> Result<Box<dyn BlobReader>>;
    /// Reads a whole blob into memory, refusing blobs over `max_size`, and checks its digest.
    fn read_verified(&self, digest: &Digest, max_size: u64) -> Result<Vec<u8>>;
    /// Starts writing a blob. `expected` and `expected_size` are checked at commit when given.
    fn writer(&self, expected: Option<Digest>, expected_size: Option<u64>) -> Result<Box<dyn ContentWriter + '_>>;
    /// Writes everything `reader` yields as one blob and commits it; a source longer than
    /// `expected_size` is refused as soon as it passes it.
    fn ingest(&self, reader: &mut dyn Read, expected: Option<Digest>, expected_size: Option<u64>, opts: CommitOptions) -> Result<ContentInfo> {
        let mut w = self.writer(expected.clone(), expected_size)?;
        let mut buf = vec![0u8; BUF];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io("read blob source")(e)),
            };
            if let Some(limit) = expected_size {
                if w.written() + n as u64 > limit {
                    return Err(StoreError::SizeMismatch { digest: expected_name(expected.as_ref()), expected: limit, actual: w.written() + n as u64 });
                }
            }
            w.write_all(&buf[..n]).map_err(StoreError::io("write blob"))?;
        }
        w.commit(opts)
    }
    /// Calls `f` with each record whose labels match every selector, in digest order.
    fn walk(&self, selectors: &[LabelSelector], f: &mut dyn FnMut(ContentInfo) -> Result<()>) -> Result<()>;
    /// All records whose labels match every selector.
    fn list(&self, selectors: &[LabelSelector]) -> Result<Vec<ContentInfo>> {
        let mut out = Vec::new();
        self.walk(selectors, &mut |info| {
            out.push(info);
            Ok(())
        })?;
        Ok(out)
    }
    /// Sets (`Some`) or removes (`None`) labels on a stored blob.
    fn update_labels(&self, digest: &Digest, changes: &BTreeMap<String, Option<String>>) -> Result<ContentInfo>;
    /// Removes a blob and its record.
    fn delete(&self, digest: &Digest) -> Result<()>;
    /// Re-hashes a stored blob and checks its size and digest against the record.
    fn verify(&self, digest: &Digest) -> Result<()>;
    /// Adds a stored blob to a lease without writing it (it is already here).
    fn lease_existing(&self, digest: &Digest, lease: &LeaseId) -> Result<ContentInfo>;
}

/// How errors name a blob whose digest may not be known yet.
fn expected_name(expected: Option<&Digest>) -> String {
    expected.map_or_else(|| "blob".to_string(), Digest::to_string)
}

/// The on-disk content store.
pub struct LocalContentStore {
    root: PathBuf,
    db: Db,
    gc: GcLock,
    seq: AtomicU64,
    /// Digests being ingested right now, so concurrent pulls fetch each blob once.
    in_flight: Mutex<HashSet<Digest>>,
    in_flight_done: Condvar,
}

/// Held while one ingest of a digest is under way; dropping it lets waiters go on.
pub struct IngestClaim<'a> {
    store: &'a LocalContentStore,
    digest: Digest,
}

impl Drop for IngestClaim<'_> {
    fn drop(&mut self) {
        let mut set = self.store.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.digest);
        self.store.in_flight_done.notify_all();
    }
}

const BUF: usize = 1 << 20;
const KEY_PREFIX: &str = "blob/";

pub(crate) fn content_key(d: &Digest) -> Vec<u8> {
    format!("{KEY_PREFIX}{d}").into_bytes()
}

impl LocalContentStore {
    pub(crate) fn new(root: PathBuf, db: Db, gc: GcLock) -> Result<Self> {
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(StoreError::io(format!("create {}", dir.display())))?;
        }
        Ok(LocalContentStore {
            root,
            db,
            gc,
            seq: AtomicU64::new(0),
            in_flight: Mutex::new(HashSet::new()),
            in_flight_done: Condvar::new(),
        })
    }

    /// Claims the right to ingest `digest`, or `None` when another ingest of it is under way.
    pub fn claim(&self, digest: &Digest) -> Option<IngestClaim<'_>> {
        let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(digest.clone()).then(|| IngestClaim { store: self, digest: digest.clone() })
    }

    /// Blocks until no ingest of `digest` is under way.
    pub fn wait_for(&self, digest: &Digest) {
        let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        while set.contains(digest) {
            set = self.in_flight_done.wait(set).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The file of a recorded blob.
    fn open_file(&self, digest: &Digest) -> Result<File> {
        self.info(digest)?;
        File::open(self.blob_path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::not_found("content", digest),
            _ => StoreError::io(format!("open blob {digest}"))(e),
        })
    }

    /// Where a blob's bytes live.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Digests of the blob files on disk (including ones without a record).
    pub(crate) fn disk_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(StoreError::io(format!("read {}", dir.display())))? {
            let entry = entry.map_err(StoreError::io("read blob dir"))?;
            match format!("sha256:{}", entry.file_name().to_string_lossy()).parse::<Digest>() {
                Ok(d) => out.push(d),
                Err(_) => tracing::warn!(file = ?entry.path(), "stray file in blob directory"),
            }
        }
        Ok(out)
    }

    /// Removes temp files of writers that never committed (a crash mid-ingest).
    pub(crate) fn clean_ingest(&self) -> Result<usize> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for entry in fs::read_dir(&dir).map_err(StoreError::io(format!("read {}", dir.display())))? {
            let entry = entry.map_err(StoreError::io("read ingest dir"))?;
            fs::remove_file(entry.path()).map_err(StoreError::io(format!("remove {}", entry.path().display())))?;
            n += 1;
        }
        Ok(n)
    }

    /// Removes a blob's file without touching sled (used for files that have no record).
    pub(crate) fn remove_file(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::io(format!("remove blob {digest}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// Records `digest` and its lease reference in one transaction: a new record, or `labels` merged
    /// over the one already there. The merge happens inside the transaction because a concurrent
    /// commit of the same bytes may have recorded them since the caller looked; writing a whole
    /// record read earlier would drop that commit's labels. The lease marks the blob `new` only
    /// when this call created the record. Returns the record as stored.
    fn record(&self, digest: &Digest, size: u64, labels: &BTreeMap<String, String>, lease: Option<&LeaseId>) -> Result<ContentInfo> {
        let key = content_key(digest);
        let info = (&self.db.content, &self.db.leases)
            .transaction(|(content, leases)| {
                let (info, new) = match content.get(&key)? {
                    Some(v) => {
                        let mut info: ContentInfo = decode(&key, &v).map_err(ConflictableTransactionError::Abort)?;
                        if !labels.is_empty() {
                            info.labels.extend(labels.clone());
                            info.updated_at = now();
                        }
                        (info, false)
                    }
                    None => {
                        let ts = now();
                        (ContentInfo { digest: digest.clone(), size, created_at: ts.clone(), updated_at: ts, labels: labels.clone() }, true)
                    }
                };
                content.insert(key.as_slice(), encode(&info))?;
                if let Some(id) = lease {
                    leases.insert(lease_content_key(id, digest), if new { &b"new"[..] } else { b"existing" })?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(info)
            })
            .map_err(StoreError::from)?;
        self.db.flush()?;
        Ok(info)
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|d| d.sync_all()).map_err(StoreError::io(format!("sync {}", path.display())))
}

impl ContentStore for LocalContentStore {
    fn info(&self, digest: &Digest) -> Result<ContentInfo> {
        let key = content_key(digest);
        match self.db.content.get(&key)? {
            Some(v) => decode(&key, &v),
            None => Err(StoreError::not_found("content", digest)),
        }
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn BlobReader>> {
        Ok(Box::new(self.open_file(digest)?))
    }

    fn read_verified(&self, digest: &Digest, max_size: u64) -> Result<Vec<u8>> {
        let info = self.info(digest)?;
        if info.size > max_size {
            return Err(StoreError::InvalidArgument(format!(
                "blob {digest} is {} bytes, over the {max_size}-byte limit for this kind of content",
                info.size
            )));
        }
        let mut bytes = Vec::with_capacity(info.size as usize);
        self.open_file(digest)?
            .take(max_size + 1)
            .read_to_end(&mut bytes)
            .map_err(StoreError::io(format!("read blob {digest}")))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch { expected: digest.clone(), actual });
        }
        Ok(bytes)
    }

    fn writer(&self, expected: Option<Digest>, expected_size: Option<u64>) -> Result<Box<dyn ContentWriter + '_>> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.root.join("ingest").join(format!("{}-{seq}", std::process::id()));
        let file = File::create(&tmp).map_err(StoreError::io(format!("create {}", tmp.display())))?;
        Ok(Box::new(LocalWriter {
            store: self,
            file: Some(file),
            tmp,
            hasher: Sha256::new(),
            written: 0,
            expected,
            expected_size,
        }))
    }

    fn walk(&self, selectors: &[LabelSelector], f: &mut dyn FnMut(ContentInfo) -> Result<()>) -> Result<()> {
        for kv in self.db.content.scan_prefix(KEY_PREFIX) {
            let (k, v) = kv?;
            let info: ContentInfo = decode(&k, &v)?;
            if selectors.iter().all(|s| s.matches(&info.labels)) {
                f(info)?;
            }
        }
        Ok(())
    }

    fn update_labels(&self, digest: &Digest, changes: &BTreeMap<String, Option<String>>) -> Result<ContentInfo> {
        let key = content_key(digest);
        let updated = self
            .db
            .content
            .transaction(|t| {
                let Some(v) = t.get(&key)? else {
                    return Err(ConflictableTransactionError::Abort(StoreError::not_found("content", digest)));
                };
                let mut info: ContentInfo = decode(&key, &v).map_err(ConflictableTransactionError::Abort)?;
                for (k, v) in changes {
                    match v {
                        Some(v) => info.labels.insert(k.clone(), v.clone()),
                        None => info.labels.remove(k),
                    };
                }
                info.updated_at = now();
                t.insert(key.as_slice(), encode(&info))?;
                Ok(info)
            })
            .map_err(StoreError::from)?;
        self.db.flush()?;
        Ok(updated)
    }

    fn delete(&self, digest: &Digest) -> Result<()> {
        let _gc = self.gc.write();
        self.info(digest)?;
        // Record first, then file: a crash in between leaves a file without a record, which
        // recovery removes; never a record pointing at nothing.
        self.db.content.remove(content_key(digest))?;
        self.db.flush()?;
        self.remove_file(digest)
    }

    fn verify(&self, digest: &Digest) -> Result<()> {
        let info = self.info(digest)?;
        let mut file = buffered(self.open_file(digest)?);
        let (actual, size) = Digest::of_reader(&mut file).map_err(StoreError::io(format!("read blob {digest}")))?;
        if size != info.size {
            return Err(StoreError::SizeMismatch { digest: digest.to_string(), expected: info.size, actual: size });
        }
        if &actual != digest {
            return Err(StoreError::DigestMismatch { expected: digest.clone(), actual });
        }
        Ok(())
    }

    fn lease_existing(&self, digest: &Digest, lease: &LeaseId) -> Result<ContentInfo> {
        let _gc = self.gc.read();
        let info = self.info(digest)?;
        self.record(digest, info.size, &BTreeMap::new(), Some(lease))
    }
}

/// Reads a blob through a large buffer; used when streaming blobs out.
pub fn buffered<R: Read>(blob: R) -> BufReader<R> {
    BufReader::with_capacity(BUF, blob)
}
