//! Sandbox records: persisted in the `sandboxes` sled tree, served from memory. A change that a
//! crash must not lose (a record made, a sandbox ready) is flushed; others (stopped, removed) are
//! repeated safely if a crash loses them.

use std::collections::HashMap;
use std::sync::RwLock;

use super::record::SandboxRecord;
use crate::error::{CriError, Result};

pub struct Sandboxes {
    tree: sled::Tree,
    by_id: RwLock<HashMap<String, SandboxRecord>>,
}

fn key(id: &str) -> String {
    format!("sandbox/{id}")
}

fn db_error(e: sled::Error) -> CriError {
    CriError::Store(skiff_store::StoreError::from(e))
}

impl Sandboxes {
    /// Loads every record; one that does not decode is a lost sandbox, named in the error.
    pub fn open(tree: sled::Tree) -> Result<Sandboxes> {
        let mut by_id = HashMap::new();
        for entry in tree.scan_prefix("sandbox/") {
            let (k, v) = entry.map_err(db_error)?;
            let record: SandboxRecord = serde_json::from_slice(&v)
                .map_err(|e| CriError::Corrupt { key: String::from_utf8_lossy(&k).into_owned(), reason: e.to_string() })?;
            by_id.insert(record.id.clone(), record);
        }
        Ok(Sandboxes { tree, by_id: RwLock::new(by_id) })
    }

    /// Writes `record`; `durable` waits until it is on disk.
    pub fn put(&self, record: &SandboxRecord, durable: bool) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|source| CriError::Encode { what: "a sandbox record", source })?;
        self.tree.insert(key(&record.id), bytes).map_err(db_error)?;
        if durable {
            self.tree.flush().map_err(db_error)?;
        }
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).insert(record.id.clone(), record.clone());
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.tree.remove(key(id)).map_err(db_error)?;
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<SandboxRecord> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// By full id, or by a prefix of one that names a single sandbox (crictl's short ids).
    pub fn find(&self, id: &str) -> Result<Option<SandboxRecord>> {
        if id.is_empty() {
            return Err(CriError::InvalidArgument("pod_sandbox_id is empty".into()));
        }
        let all = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = all.get(id) {
            return Ok(Some(r.clone()));
        }
        let matches: Vec<&SandboxRecord> = all.values().filter(|r| r.id.starts_with(id)).collect();
        match matches.as_slice() {
            [one] => Ok(Some((*one).clone())),
            [] => Ok(None),
            many => Err(CriError::InvalidArgument(format!("pod sandbox id {id:?} matches {} sandboxes; give more of it", many.len()))),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<SandboxRecord> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner()).values().find(|r| r.name == name).cloned()
    }

    pub fn list(&self) -> Vec<SandboxRecord> {
        let mut all: Vec<SandboxRecord> = self.by_id.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        all.sort_by_key(|r| r.created_at);
        all
    }
}
