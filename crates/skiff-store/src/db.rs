//! The sled metadata database: a fixed set of trees, a schema version and ordered migrations.
//!
//! ```text
//! meta      schema_version                     -> u32 (big endian)
//! content   blob/<digest>                      -> ContentInfo (json)
//! images    image/<name>                       -> ImageRecord (json)
//! leases    lease/<id>                         -> Lease (json)
//!           lease/<id>/content/<digest>        -> "new" | "existing"
//! snapshots snapshot/<key>                     -> snapshot record (json, owned by skiff-snapshot)   [v2]
//! containers container/<id>                    -> container record (json, owned by skiff-engine)    [v3]
//!           name/<name>                        -> <id> (the name index, owned by skiff-engine)      [v4]
//! sandboxes sandbox/<id>                       -> pod sandbox record (json, owned by skiff-cri)     [v5]
//! ```
//! Each addition bumps the schema version with a migration below.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, StoreError};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 5;

const SCHEMA_KEY: &[u8] = b"schema_version";

/// Ordered migrations: entry `i` moves a database from version `i` to `i + 1`.
/// Version 0 is an empty database, so the first migration only stamps the version.
/// Versions 2 and 3 add the `snapshots` and `containers` trees, which `Db::open` creates; nothing
/// to move. Version 4 indexes the containers' names. Version 5 adds the `sandboxes` tree (made by
/// `Db::open`, nothing to move).
const MIGRATIONS: &[fn(&Db) -> Result<()>] = &[|_| Ok(()), |_| Ok(()), |_| Ok(()), index_container_names, |_| Ok(())];

/// v3 → v4: `name/<name> -> <id>` for every container record, so a name is found (and reserved)
/// with one key instead of a scan. Only the `name` field of a record is read.
fn index_container_names(db: &Db) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Named {
        id: String,
        name: String,
    }
    for entry in db.containers.scan_prefix("container/") {
        let (key, bytes) = entry?;
        let named: Named = decode(&key, &bytes)?;
        db.containers.insert(format!("name/{}", named.name), named.id.as_bytes())?;
    }
    Ok(())
}

/// The opened database and its trees.
#[derive(Clone)]
pub struct Db {
    pub(crate) db: sled::Db,
    pub(crate) meta: sled::Tree,
    pub(crate) content: sled::Tree,
    pub(crate) images: sled::Tree,
    pub(crate) leases: sled::Tree,
    /// Snapshot records; their layout belongs to skiff-snapshot.
    pub snapshots: sled::Tree,
    /// Container records; their layout belongs to skiff-engine.
    pub containers: sled::Tree,
    /// Pod sandbox records; their layout belongs to skiff-cri.
    pub sandboxes: sled::Tree,
}

impl Db {
    /// Opens (or creates) the database at `path` and brings its schema up to date.
    ///
    /// A lock held by another process is reported at once. A lock this process
    /// held a moment ago is waited for (up to [`RELOCK_WAIT`]): sled lets go of
    /// its file lock only when its background writer threads finish, a little
    /// after the last handle drops, so an in-process reopen (a harness, a test)
    /// would otherwise see its own closed database as locked.
    pub fn open(path: &Path, cache_capacity: u64) -> Result<Db> {
        let deadline = std::time::Instant::now() + RELOCK_WAIT;
        let db = loop {
            match open_sled(path, cache_capacity) {
                Err(StoreError::Locked { .. }) if held_by_this_process(path) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other?,
            }
        };
        let this = Db {
            meta: db.open_tree("meta")?,
            content: db.open_tree("content")?,
            images: db.open_tree("images")?,
            leases: db.open_tree("leases")?,
            snapshots: db.open_tree("snapshots")?,
            containers: db.open_tree("containers")?,
            sandboxes: db.open_tree("sandboxes")?,
            db,
        };
        this.migrate()?;
        Ok(this)
    }

    /// The schema version recorded in the database (0 when none is).
    pub fn schema_version(&self) -> Result<u32> {
        match self.meta.get(SCHEMA_KEY)? {
            None => Ok(0),
            Some(v) => {
                let bytes: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: "meta/schema_version".into(),
                    reason: format!("expected 4 bytes, found {}", v.len()),
                })?;
                Ok(u32::from_be_bytes(bytes))
            }
        }
    }

    fn migrate(&self) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
        }
        for (from, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            step(self)?;
            self.meta.insert(SCHEMA_KEY, &(from as u32 + 1).to_be_bytes())?;
            tracing::info!(from, to = from + 1, "migrated metadata schema");
        }
        self.flush()
    }

    /// A fresh, never reused id (sled's monotonic counter).
    pub fn generate_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Flushes sled to disk; called before a write is acknowledged.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// How long [`Db::open`] waits for a lock this process itself is letting go of.
pub const RELOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn open_sled(path: &Path, cache_capacity: u64) -> Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity)
        .mode(sled::Mode::LowSpace)
        .open()
        .map_err(|e| match e {
            sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock || io.raw_os_error() == Some(11) => {
                StoreError::Locked { path: path.display().to_string() }
            }
            sled::Error::Io(ref io) if io.to_string().contains("lock") => {
                StoreError::Locked { path: path.display().to_string() }
            }
            other => StoreError::Db(other),
        })
}

/// Whether the lock on sled's `db` file is one this process holds: an flock
/// made by this process shows in /proc/locks with its pid.
fn held_by_this_process(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path.join("db")) else { return false };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else { return false };
    let pid = std::process::id().to_string();
    locks.lines().any(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(owner), Some(file)) = (fields.get(4), fields.get(5)) else { return false };
        let inode = file.rsplit(':').next().and_then(|i| i.parse::<u64>().ok());
        *owner == pid && inode == Some(meta.ino())
    })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain derived structs to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_is_stamped_with_current_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
    }

    #[test]
    fn migration_one_stamps_an_unversioned_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let raw = sled::open(dir.path().join("db")).expect("sled");
            raw.open_tree("meta").expect("tree");
            raw.flush().expect("flush");
        }
        let db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
    }

    #[test]
    fn migration_two_keeps_version_one_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let raw = sled::open(dir.path().join("db")).expect("sled");
            raw.open_tree("meta").expect("meta").insert(SCHEMA_KEY, &1u32.to_be_bytes()).expect("stamp");
            raw.open_tree("images").expect("images").insert("image/x", b"{}".to_vec()).expect("record");
            raw.flush().expect("flush");
        }
        let db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
        assert!(db.images.get("image/x").expect("get").is_some(), "v1 records kept");
        assert!(db.snapshots.is_empty());
    }

    #[test]
    fn migration_three_keeps_version_two_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let raw = sled::open(dir.path().join("db")).expect("sled");
            raw.open_tree("meta").expect("meta").insert(SCHEMA_KEY, &2u32.to_be_bytes()).expect("stamp");
            raw.open_tree("snapshots").expect("snapshots").insert("snapshot/x", b"{}".to_vec()).expect("record");
            raw.flush().expect("flush");
        }
        let db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
        assert!(db.snapshots.get("snapshot/x").expect("get").is_some(), "v2 records kept");
        assert!(db.containers.is_empty());
    }

    #[test]
    fn migration_four_indexes_container_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let raw = sled::open(dir.path().join("db")).expect("sled");
            raw.open_tree("meta").expect("meta").insert(SCHEMA_KEY, &3u32.to_be_bytes()).expect("stamp");
            let containers = raw.open_tree("containers").expect("containers");
            containers.insert("container/abc", br#"{"id":"abc","name":"web","status":"running"}"#.to_vec()).expect("record");
            raw.flush().expect("flush");
        }
        let db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
        assert_eq!(db.containers.get("name/web").expect("get").as_deref(), Some(&b"abc"[..]));
        assert!(db.containers.get("container/abc").expect("get").is_some(), "v3 records kept");
    }

    #[test]
    fn migration_five_adds_an_empty_sandboxes_tree_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let raw = sled::open(dir.path().join("db")).expect("sled");
            raw.open_tree("meta").expect("meta").insert(SCHEMA_KEY, &4u32.to_be_bytes()).expect("stamp");
            let containers = raw.open_tree("containers").expect("containers");
            containers.insert("container/abc", br#"{"id":"abc","name":"web","status":"running"}"#.to_vec()).expect("record");
            containers.insert("name/web", b"abc".to_vec()).expect("name");
            raw.flush().expect("flush");
        }
        let db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
        assert_eq!(db.schema_version().expect("version"), 5);
        assert!(db.sandboxes.is_empty());
        assert_eq!(db.containers.len(), 2, "v4 records and names kept");
        db.sandboxes.insert("sandbox/x", b"{}".to_vec()).expect("sandbox");
        drop(db);
        let db = Db::open(&dir.path().join("db"), 1 << 20).expect("reopen");
        assert!(db.sandboxes.get("sandbox/x").expect("get").is_some(), "sandboxes persist");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
            db.meta.insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes()).expect("insert");
            db.flush().expect("flush");
        }
        match Db::open(&dir.path().join("db"), 1 << 20) {
            Err(StoreError::SchemaTooNew { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("newer schema opened"),
        }
    }

    #[test]
    fn second_open_reports_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _db = Db::open(&dir.path().join("db"), 1 << 20).expect("open");
        assert!(held_by_this_process(&dir.path().join("db")), "our own lock is seen in /proc/locks");
        // sled locks with flock; a second open in the same process conflicts too.
        match Db::open(&dir.path().join("db"), 1 << 20) {
            Err(StoreError::Locked { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("second open succeeded"),
        }
    }
}
