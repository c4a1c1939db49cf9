//! Container records in the store's `containers` sled tree, and the index of their names.
//!
//! ```text
//! containers  container/<id>    -> ContainerRecord (json)
//!             name/<name>       -> <id>        written with compare-and-swap: one holder per name
//! ```
//! A create writes its record with status `creating` before anything is made for the container,
//! so a crash mid-create leaves a record that says what to clean up on the next start; then it
//! reserves the name. Removal deletes the record, then releases the name (only if this id holds
//! it). A name whose holder has no record (a crash between those two steps) is free again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use skiff_runtime::shim::ExitStatus;
use skiff_runtime::Effective;
use skiff_store::Db;

use super::state::Status;
use crate::error::{EngineError, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_digest: String,
    pub runtime: String,
    pub snapshot_key: String,
    pub status: Status,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub exit: Option<ExitStatus>,
    pub created_at: String,
    #[serde(default)]
    pub started_at: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub auto_remove: bool,
    /// Its stdin is kept open for attached clients; records older than the field: no.
    #[serde(default)]
    pub open_stdin: bool,
    /// Its stdin closes when the first attached client's ends.
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// The annotations config.json got, with sources, and the image annotations dropped.
    #[serde(default)]
    pub annotations: Effective,
    pub log_path: String,
    /// `linux.cgroupsPath`; records older than the field are under `/skiff/<id>`.
    #[serde(default)]
    pub cgroup_path: String,
    /// The pod sandbox it belongs to, for a CRI container.
    #[serde(default)]
    pub owner: Option<super::plan::Owner>,
}

impl ContainerRecord {
    /// `linux.cgroupsPath` of the container.
    pub fn cgroup_path(&self) -> String {
        if self.cgroup_path.is_empty() {
            super::cgroups::path(None, &self.id)
        } else {
            self.cgroup_path.clone()
        }
    }

    /// Exit code, reason and time as listings show them.
    pub fn exit_summary(&self) -> (i32, String, String) {
        match &self.exit {
            Some(e) => (e.code, e.reason().as_str().into(), e.exited_at.clone()),
            None => (0, String::new(), String::new()),
        }
    }
}

const RECORD_PREFIX: &str = "container/";
const NAME_PREFIX: &str = "name/";

fn record_key(id: &str) -> String {
    format!("{RECORD_PREFIX}{id}")
}

fn name_key(name: &str) -> String {
    format!("{NAME_PREFIX}{name}")
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<ContainerRecord> {
    let mut record: ContainerRecord = serde_json::from_slice(bytes)
        .map_err(|e| EngineError::CorruptRecord { key: String::from_utf8_lossy(key).into_owned(), reason: e.to_string() })?;
    // Records written before exits had a `lost` flag marked a lost exit with pid 0.
    if let Some(exit) = record.exit.as_mut() {
        exit.lost |= exit.pid == 0;
    }
    Ok(record)
}

/// The `containers` tree, with every readable record also held in memory: the kubelet lists and
/// inspects containers every second, and a listing must not decode every record each time.
/// Clones share one memory copy; make one `Records` per store.
#[derive(Clone)]
pub struct Records {
    db: Db,
    cached: Arc<RwLock<HashMap<String, ContainerRecord>>>,
}

impl Records {
    /// Reads every record once; an unreadable one stays out of memory (looking it up by id
    /// reads the tree and reports it as DataLoss).
    pub fn new(db: Db) -> Records {
        let mut cached = HashMap::new();
        for entry in db.containers.scan_prefix(RECORD_PREFIX) {
            match entry.map_err(EngineError::from).and_then(|(k, v)| decode(&k, &v)) {
                Ok(r) => {
                    cached.insert(r.id.clone(), r);
                }
                Err(e) => tracing::error!(error = %e, "unreadable container record left out"),
            }
        }
        Records { db, cached: Arc::new(RwLock::new(cached)) }
    }

    fn cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, ContainerRecord>> {
        self.cached.read().unwrap_or_else(|p| p.into_inner())
    }

    fn tree(&self) -> &sled::Tree {
        &self.db.containers
    }

    /// Writes a record over its previous version (the name stays reserved).
    pub fn put(&self, record: &ContainerRecord) -> Result<()> {
        self.insert(record)?;
        self.db.flush()?;
        Ok(())
    }

    fn insert(&self, record: &ContainerRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| EngineError::Io { context: "encoding a container record".into(), source: e.into() })?;
        // Under the memory copy's lock, so that the tree and the memory agree on the last write.
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        self.tree().insert(record_key(&record.id), bytes)?;
        cached.insert(record.id.clone(), record.clone());
        Ok(())
    }

    fn forget(&self, id: &str) -> Result<()> {
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        self.tree().remove(record_key(id))?;
        cached.remove(id);
        Ok(())
    }

    /// Writes the record, then reserves its name for its id with compare-and-swap: of concurrent
    /// creates of one name exactly one wins; the others remove their record and are told who
    /// holds the name. The record comes first so that a holder always has one: a name whose
    /// holder has no record is stale (a crash between removing a record and releasing its name)
    /// and is taken over.
    /// Neither is flushed here: the create's last write (its `created` record) is. A crash before
    /// it leaves at most a `creating` record, cleaned up on start, and what the create made by
    /// then (a state dir, a `container/<id>` snapshot), which the start sweeps as a removal's
    /// leftovers when no record names it.
    pub fn create(&self, record: &ContainerRecord) -> Result<()> {
        self.insert(record)?;
        if let Err(e) = self.reserve_name(record) {
            self.forget(&record.id)?;
            self.db.flush()?;
            return Err(e);
        }
        Ok(())
    }

    fn reserve_name(&self, record: &ContainerRecord) -> Result<()> {
        let key = name_key(&record.name);
        let mut expected: Option<sled::IVec> = None;
        loop {
            match self.tree().compare_and_swap(&key, expected.clone(), Some(record.id.as_bytes()))? {
                Ok(()) => return Ok(()),
                Err(conflict) => {
                    let holder = conflict.current.map(|v| String::from_utf8_lossy(&v).into_owned());
                    match holder {
                        Some(h) if self.tree().contains_key(record_key(&h))? => {
                            return Err(EngineError::NameInUse { name: record.name.clone(), holder: h })
                        }
                        // Stale, or released meanwhile: swap again against what is there now.
                        stale => expected = stale.map(|h| sled::IVec::from(h.as_bytes())),
                    }
                }
            }
        }
    }

    fn release_name(&self, name: &str, id: &str) {
        if let Err(e) = self.tree().compare_and_swap(name_key(name), Some(id.as_bytes()), None as Option<&[u8]>) {
            tracing::warn!(name, id, error = %e, "releasing a container name");
        }
    }

    /// Removes the record, then frees its name: at once in memory, on disk with the next
    /// [`Records::flush`] (a removal flushes before it answers; the sweeper flushes again before
    /// it takes away anything the record names, so a crash never leaves a record whose parts
    /// are gone).
    pub fn remove(&self, record: &ContainerRecord) -> Result<()> {
        self.forget(&record.id)?;
        self.release_name(&record.name, &record.id);
        Ok(())
    }

    /// Makes every change so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Every readable record, oldest first, from memory; an unreadable one was left out at
    /// start, so one corrupt record does not hide the others (looking it up by id reports it as
    /// DataLoss).
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out: Vec<ContainerRecord> = self.cache().values().cloned().collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    /// The status of a full id's record, read in memory without copying the record.
    pub fn status(&self, id: &str) -> Option<Status> {
        self.cache().get(id).map(|r| r.status)
    }

    /// The record of a full id, if there is one: from memory, else from the tree (where only an
    /// unreadable record can be).
    pub fn get(&self, id: &str) -> Result<Option<ContainerRecord>> {
        if let Some(r) = self.cache().get(id) {
            return Ok(Some(r.clone()));
        }
        let key = record_key(id);
        match self.tree().get(&key)? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// By full id, name, or unique id prefix; each a key lookup or a prefix scan, never a scan of
    /// every record.
    pub fn find(&self, id_or_name: &str) -> Result<ContainerRecord> {
        if id_or_name.is_empty() {
            return Err(EngineError::InvalidArgument("container id or name is empty".into()));
        }
        if let Some(r) = self.get(id_or_name)? {
            return Ok(r);
        }
        if let Some(id) = self.tree().get(name_key(id_or_name))? {
            if let Some(r) = self.get(&String::from_utf8_lossy(&id))? {
                return Ok(r);
            }
        }
        let mut matches = self.tree().scan_prefix(record_key(id_or_name));
        let first = matches.next().transpose()?;
        let rest = matches.count();
        match first {
            None => Err(EngineError::NoContainer(id_or_name.to_string())),
            Some((k, v)) if rest == 0 => decode(&k, &v),
            Some(_) => Err(EngineError::AmbiguousId { prefix: id_or_name.to_string(), count: rest + 1 }),
        }
    }
}
