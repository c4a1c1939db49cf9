//! CRI container metadata: persisted in the `sandboxes` tree under `container/<id>`, served from
//! memory and indexed by sandbox.

use std::collections::HashMap;
use std::sync::RwLock;

use super::CriContainer;
use crate::error::{CriError, Result};

pub struct CriContainers {
    tree: sled::Tree,
    by_id: RwLock<HashMap<String, CriContainer>>,
}

fn key(id: &str) -> String {
    format!("container/{id}")
}

fn db_error(e: sled::Error) -> CriError {
    CriError::Store(skiff_store::StoreError::from(e))
}

impl CriContainers {
    pub fn open(tree: sled::Tree) -> Result<CriContainers> {
        let mut by_id = HashMap::new();
        for entry in tree.scan_prefix("container/") {
            let (k, v) = entry.map_err(db_error)?;
            let c: CriContainer = serde_json::from_slice(&v)
                .map_err(|e| CriError::Corrupt { key: String::from_utf8_lossy(&k).into_owned(), reason: e.to_string() })?;
            by_id.insert(c.id.clone(), c);
        }
        Ok(CriContainers { tree, by_id: RwLock::new(by_id) })
    }

    /// Durable: the engine record exists once this returns, and a crash must not orphan it.
    pub fn put(&self, c: &CriContainer) -> Result<()> {
        let bytes = serde_json::to_vec(c).map_err(|source| CriError::Encode { what: "a container record", source })?;
        self.tree.insert(key(&c.id), bytes).map_err(db_error)?;
        self.tree.flush().map_err(db_error)?;
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).insert(c.id.clone(), c.clone());
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.tree.remove(key(id)).map_err(db_error)?;
        self.by_id.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(())
    }

    /// By full id or a unique prefix.
    pub fn find(&self, id: &str) -> Result<Option<CriContainer>> {
        if id.is_empty() {
            return Err(CriError::InvalidArgument("container_id is empty".into()));
        }
        let all = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = all.get(id) {
            return Ok(Some(c.clone()));
        }
        let matches: Vec<&CriContainer> = all.values().filter(|c| c.id.starts_with(id)).collect();
        match matches.as_slice() {
            [one] => Ok(Some((*one).clone())),
            [] => Ok(None),
            many => Err(CriError::InvalidArgument(format!("container id {id:?} matches {} containers; give more of it", many.len()))),
        }
    }

    pub fn list(&self) -> Vec<CriContainer> {
        let mut all: Vec<CriContainer> = self.by_id.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        all.sort_by_key(|c| c.created_at);
        all
    }

    pub fn of_sandbox(&self, sandbox_id: &str) -> Vec<CriContainer> {
        self.list().into_iter().filter(|c| c.sandbox_id == sandbox_id).collect()
    }
}
