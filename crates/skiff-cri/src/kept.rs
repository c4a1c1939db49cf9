//! The CRI's own records (sandboxes, and what it keeps of containers): persisted in the store's
//! `sandboxes` tree under `<prefix><id>`, served from memory, since the kubelet lists them every
//! second. A change a crash must not lose is flushed (`durable`); others are repeated safely.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{CriError, Result};

/// A record kept in the tree.
pub trait Keyed: Serialize + DeserializeOwned + Clone {
    /// The key prefix (`sandbox/`).
    const PREFIX: &'static str;
    /// What a record is, for messages (`pod sandbox`).
    const WHAT: &'static str;
    /// The request field that names one (`pod_sandbox_id`).
    const FIELD: &'static str;
    fn id(&self) -> &str;
    /// Nanoseconds since the epoch: listings are in creation order.
    fn created_at(&self) -> i64;
}

pub struct Kept<T> {
    tree: sled::Tree,
    by_id: RwLock<HashMap<String, T>>,
}

fn db_error(e: sled::Error) -> CriError {
    CriError::Store(skiff_store::StoreError::from(e))
}

impl<T: Keyed> Kept<T> {
    /// Loads every record; one that does not decode is lost data, named in the error.
    pub fn open(tree: sled::Tree) -> Result<Kept<T>> {
        let mut by_id = HashMap::new();
        for entry in tree.scan_prefix(T::PREFIX) {
            let (k, v) = entry.map_err(db_error)?;
            let record: T = serde_json::from_slice(&v).map_err(|e| CriError::Corrupt { key: String::from_utf8_lossy(&k).into_owned(), reason: e.to_string() })?;
            by_id.insert(record.id().to_string(), record);
        }
        Ok(Kept { tree, by_id: RwLock::new(by_id) })
    }

    fn key(id: &str) -> String {
        format!("{}{id}", T::PREFIX)
    }

    /// Writes `record`; `durable` waits until it is on disk.
    pub fn put(&self, record: &T, durable: bool) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|source| CriError::Encode { what: T::WHAT, source })?;
        self.tree.insert(Self::key(record.id()), bytes).map_err(db_error)?;
        if durable {
            self.tree.flush().map_err(db_error)?;
        }
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).insert(record.id().to_string(), record.clone());
        Ok(())
    }

    /// Removes the record; `durable` waits until that is on disk.
    pub fn delete(&self, id: &str, durable: bool) -> Result<()> {
        self.tree.remove(Self::key(id)).map_err(db_error)?;
        if durable {
            self.tree.flush().map_err(db_error)?;
        }
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<T> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// By full id, or by a prefix of one that names a single record (crictl's short ids).
    pub fn find(&self, id: &str) -> Result<Option<T>> {
        if id.is_empty() {
            return Err(CriError::InvalidArgument(format!("{} is empty", T::FIELD)));
        }
        let all = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = all.get(id) {
            return Ok(Some(r.clone()));
        }
        let matches: Vec<&T> = all.values().filter(|r| r.id().starts_with(id)).collect();
        match matches.as_slice() {
            [one] => Ok(Some((*one).clone())),
            [] => Ok(None),
            many => Err(CriError::InvalidArgument(format!("{} id {id:?} matches {} of them; give more of it", T::WHAT, many.len()))),
        }
    }

    /// What `pick` makes of each record it wants, in creation order, without copying the
    /// others (the kubelet lists every second, mostly with a filter).
    pub fn select<U>(&self, mut pick: impl FnMut(&T) -> Option<U>) -> Vec<U> {
        let all = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        let mut picked: Vec<(i64, U)> = all.values().filter_map(|r| Some((r.created_at(), pick(r)?))).collect();
        picked.sort_by_key(|(created, _)| *created);
        picked.into_iter().map(|(_, u)| u).collect()
    }

    /// Every record, in creation order.
    pub fn list(&self) -> Vec<T> {
        self.select(|r| Some(r.clone()))
    }
}
