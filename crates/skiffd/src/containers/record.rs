//! Container records in the store's `containers` sled tree (`container/<id>` → JSON).
//!
//! A record is written with status `creating` before anything is made for the container, so a
//! crash mid-create leaves a record that says what to clean up on the next start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skiff_runtime::shim::ExitStatus;
use skiff_runtime::Effective;
use skiff_store::Db;

use crate::status::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being made; not usable (a crash here is cleaned up on start).
    Creating,
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }

    /// Created or running: its shim still holds the container's process.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }
}

/// An exit's reason as listings show it: "Unknown" when the exit was lost with its shim.
pub fn exit_reason(exit: &ExitStatus) -> &'static str {
    if exit.pid == 0 {
        "Unknown"
    } else {
        exit.reason()
    }
}

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
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// The annotations config.json got, with sources, and the image annotations dropped.
    #[serde(default)]
    pub annotations: Effective,
    pub log_path: String,
}

impl ContainerRecord {
    /// Exit code, reason and time as listings show them.
    pub fn exit_summary(&self) -> (i32, String, String) {
        match &self.exit {
            Some(e) => (e.code, exit_reason(e).into(), e.exited_at.clone()),
            None => (0, String::new(), String::new()),
        }
    }
}

fn key(id: &str) -> String {
    format!("container/{id}")
}

fn db_error(e: sled::Error) -> ApiError {
    ApiError::Store(skiff_store::StoreError::Db(e))
}

/// The `containers` tree.
#[derive(Clone)]
pub struct Records {
    db: Db,
}

impl Records {
    pub fn new(db: Db) -> Records {
        Records { db }
    }

    pub fn put(&self, record: &ContainerRecord) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(record).map_err(|e| ApiError::Internal(e.to_string()))?;
        self.db.containers.insert(key(&record.id), bytes).map_err(db_error)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<(), ApiError> {
        self.db.containers.remove(key(id)).map_err(db_error)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<ContainerRecord>, ApiError> {
        let mut out = Vec::new();
        for entry in self.db.containers.scan_prefix("container/") {
            let (k, v) = entry.map_err(db_error)?;
            match serde_json::from_slice(&v) {
                Ok(r) => out.push(r),
                Err(e) => tracing::error!(key = %String::from_utf8_lossy(&k), error = %e, "unreadable container record skipped"),
            }
        }
        out.sort_by(|a: &ContainerRecord, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    /// By full id, unique id prefix, or name.
    pub fn find(&self, id_or_name: &str) -> Result<ContainerRecord, ApiError> {
        if id_or_name.is_empty() {
            return Err(ApiError::BadRequest("container id or name is empty".into()));
        }
        // Most callers hold the full id: one lookup, not a scan of every record.
        if let Some(bytes) = self.db.containers.get(key(id_or_name)).map_err(db_error)? {
            return serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(format!("container record {id_or_name}: {e}")));
        }
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == id_or_name) {
            return Ok(r.clone());
        }
        let matches: Vec<&ContainerRecord> = all.iter().filter(|r| r.id.starts_with(id_or_name)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::NotFound(format!("no container {id_or_name:?}"))),
            _ => Err(ApiError::BadRequest(format!("{id_or_name:?} matches {} containers; give more of the id", matches.len()))),
        }
    }
}
