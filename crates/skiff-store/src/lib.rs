//! Skiff's store: content-addressed blobs on disk and metadata (content records, images, leases) in sled.
//!
//! Layout under the store root:
//! ```text
//! <root>/content/blobs/sha256/<hex>   blob bytes, immutable, named by their digest
//! <root>/content/ingest/              temp files of writers under way (emptied on open)
//! <root>/metadata/                    the sled database (see `db` for its key layout)
//! ```
//! `Store::open` takes sled's lock (one process per root) and reconciles disk with metadata, so a
//! crash at any point leaves a store that opens cleanly: see `Store::recover`.

mod content;
mod db;
mod digest;
mod error;
pub mod gc;
mod images;
mod lease;
mod spare;
#[cfg(feature = "testing")]
pub mod testsuite;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use content::{buffered, BlobReader, CommitOptions, ContentInfo, ContentStore, ContentWriter, IngestClaim, LocalContentStore};
pub use db::{Db, SCHEMA_VERSION};
pub use digest::Digest;
pub use error::{Result, StoreError};
pub use images::{Descriptor, ImageAnnotations, ImageRecord, Images};
pub use lease::{Lease, LeaseId, LeasedContent, Leases};
pub use spare::SpareDirs;

/// A blob carrying this label is a garbage-collection root (kept even when no image refers to it).
pub const LABEL_GC_ROOT: &str = "io.skiff.gc.root";
/// Labels with this prefix name content a blob refers to (an index's manifests, a manifest's config
/// and layers); their values are digests. Garbage collection follows them.
pub const LABEL_GC_REF_CONTENT: &str = "io.skiff.gc.ref.content.";

/// Store settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// sled's page cache size in bytes.
    pub cache_capacity: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { cache_capacity: 32 << 20 }
    }
}

/// Serialises garbage collection (writer) against operations that add references (readers).
#[derive(Clone, Default)]
pub(crate) struct GcLock(Arc<RwLock<()>>);

impl GcLock {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The mode of the store's root: others may pass through it, not list it.
pub const ROOT_MODE: u32 = 0o711;
/// The mode of every directory below the root that holds image content or container state.
pub const PRIVATE_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) if needed and sets its mode, also when it existed before with a
/// wider one (a store made by an older skiffd, or by hand).
pub fn private_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(StoreError::io(format!("create {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(StoreError::io(format!("chmod {:o} {}", mode, dir.display())))
}

/// The current time as RFC 3339 with nanoseconds, UTC: how every record of Skiff's stamps time.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A label filter: `key` (the label is set) or `key=value` (set to exactly that).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSelector {
    pub key: String,
    pub value: Option<String>,
}

impl std::str::FromStr for LabelSelector {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (s, None),
        };
        if key.is_empty() {
            return Err(StoreError::InvalidArgument(format!("label filter {s:?} has an empty key")));
        }
        Ok(LabelSelector { key: key.to_string(), value })
    }
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match (labels.get(&self.key), &self.value) {
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
            (None, _) => false,
        }
    }
}

/// What a garbage collection removed.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    pub removed: Vec<(Digest, u64)>,
}

/// What `recover` fixed when the store opened.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub temp_files: usize,
    pub orphan_files: usize,
    pub dangling_records: usize,
    pub released_leases: usize,
    pub collected: GcReport,
}

/// The store facade.
pub struct Store {
    root: PathBuf,
    db: Db,
    content: LocalContentStore,
    images: Images,
    leases: Leases,
    gc: GcLock,
}

impl Store {
    /// Opens the store at `root`, creating it if needed, and recovers from any interrupted operation.
    pub fn open(root: &Path, opts: &StoreOptions) -> Result<(Store, RecoveryReport)> {
        // Other users may pass through the root (0711), never list or read what is below it:
        // image content holds setuid binaries and secrets, container state holds environments.
        private_dir(root, ROOT_MODE)?;
        private_dir(&root.join("metadata"), PRIVATE_MODE)?;
        private_dir(&root.join("content"), PRIVATE_MODE)?;
        let db = Db::open(&root.join("metadata"), opts.cache_capacity)?;
        let gc = GcLock::default();
        let store = Store {
            root: root.to_path_buf(),
            content: LocalContentStore::new(root.join("content"), db.clone(), gc.clone())?,
            images: Images::new(db.clone()),
            leases: Leases::new(db.clone()),
            db,
            gc,
        };
        let report = store.recover()?;
        Ok((store, report))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn content(&self) -> &LocalContentStore {
        &self.content
    }
    pub fn images(&self) -> &Images {
        &self.images
    }
    pub fn leases(&self) -> &Leases {
        &self.leases
    }
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Reconciles disk with metadata after a crash: drops temp files, blob files with no record (never
    /// acknowledged), records whose file is gone, and temporary leases with the blobs they added.
    fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport { temp_files: self.content.clean_ingest()?, ..Default::default() };
        let on_disk: HashSet<Digest> = self.content.disk_blobs()?.into_iter().collect();
        let recorded: HashSet<Digest> = self.content.list(&[])?.into_iter().map(|i| i.digest).collect();
        for d in on_disk.difference(&recorded) {
            tracing::warn!(digest = %d, "removing blob file that has no record (interrupted write)");
            self.content.remove_file(d)?;
            report.orphan_files += 1;
        }
        for d in recorded.difference(&on_disk) {
            tracing::warn!(digest = %d, "dropping content record whose blob file is missing");
            self.db.content.remove(content::content_key(d))?;
            report.dangling_records += 1;
        }
        for lease in self.leases.list()?.into_iter().filter(|l| l.temporary) {
            tracing::info!(lease = %lease.id, "releasing lease of an interrupted operation");
            let r = self.release_lease(&lease.id)?;
            report.collected.removed.extend(r.removed);
            report.released_leases += 1;
        }
        report.released_leases += self.release_expired()?;
        self.db.flush()?;
        Ok(report)
    }

    /// Deletes a lease and removes the blobs it added that nothing else references now.
    pub fn release_lease(&self, id: &LeaseId) -> Result<GcReport> {
        let added: Vec<Digest> =
            self.leases.content(id)?.into_iter().filter(|c| c.added).map(|c| c.digest).collect();
        self.leases.delete(id)?;
        self.collect(Some(&added))
    }

    /// Deletes leases whose expiry has passed; their content becomes collectable.
    fn release_expired(&self) -> Result<usize> {
        let expired = self.leases.expired()?;
        for lease in &expired {
            tracing::info!(lease = %lease.id, "lease expired");
            self.leases.delete(&lease.id)?;
        }
        Ok(expired.len())
    }

    /// Removes every blob that no image, unexpired lease or root label reaches.
    pub fn collect_garbage(&self) -> Result<GcReport> {
        self.release_expired()?;
        self.collect(None)
    }

    fn collect(&self, candidates: Option<&[Digest]>) -> Result<GcReport> {
        let _gc = self.gc.write();
        let infos: BTreeMap<Digest, ContentInfo> =
            self.content.list(&[])?.into_iter().map(|i| (i.digest.clone(), i)).collect();
        let mut roots: Vec<Digest> = self.images.list()?.into_iter().map(|i| i.target.digest).collect();
        roots.extend(self.leases.all_content()?);
        roots.extend(infos.values().filter(|i| i.labels.contains_key(LABEL_GC_ROOT)).map(|i| i.digest.clone()));
        let marked = gc::mark(roots, |d| {
            infos
                .get(d)
                .map(|i| {
                    i.labels
                        .iter()
                        .filter(|(k, _)| k.starts_with(LABEL_GC_REF_CONTENT))
                        .filter_map(|(_, v)| v.parse::<Digest>().ok())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        });
        let sweep: Vec<&ContentInfo> = match candidates {
            Some(c) => c.iter().filter_map(|d| infos.get(d)).filter(|i| !marked.contains(&i.digest)).collect(),
            None => infos.values().filter(|i| !marked.contains(&i.digest)).collect(),
        };
        let mut batch = sled::Batch::default();
        for info in &sweep {
            batch.remove(content::content_key(&info.digest));
        }
        self.db.content.apply_batch(batch)?;
        self.db.flush()?;
        let mut report = GcReport::default();
        for info in sweep {
            self.content.remove_file(&info.digest)?;
            report.removed.push((info.digest.clone(), info.size));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
