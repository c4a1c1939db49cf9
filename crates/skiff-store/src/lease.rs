//! Leases: named holds on content that keep it from garbage collection while an operation is under way.
//!
//! An import takes a *temporary* lease, ingests under it and releases it in the same transaction that
//! writes the image record. A temporary lease still present when the store opens belongs to an operation
//! that crashed: recovery releases it and removes the blobs that operation added.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::db::{decode, encode, Db};
use crate::error::{Result, StoreError};
use crate::{now, Digest};

/// A lease's identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseId(pub String);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lease record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lease {
    pub id: LeaseId,
    pub created_at: String,
    /// Released automatically when the store next opens.
    pub temporary: bool,
    /// When set (RFC 3339), the lease is released once this time has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The content a lease holds, and whether the lease's operation added it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeasedContent {
    pub digest: Digest,
    /// True when the blob was written under this lease (rather than already stored).
    pub added: bool,
}

pub(crate) fn lease_key(id: &LeaseId) -> Vec<u8> {
    format!("lease/{id}").into_bytes()
}

pub(crate) fn lease_content_prefix(id: &LeaseId) -> Vec<u8> {
    format!("lease/{id}/content/").into_bytes()
}

pub(crate) fn lease_content_key(id: &LeaseId, d: &Digest) -> Vec<u8> {
    format!("lease/{id}/content/{d}").into_bytes()
}

/// Lease operations over the metadata database.
pub struct Leases {
    db: Db,
    seq: AtomicU64,
}

impl Leases {
    pub(crate) fn new(db: Db) -> Self {
        Leases { db, seq: AtomicU64::new(0) }
    }

    /// Creates a lease with a fresh id; `expires_in` bounds how long it holds its content.
    pub fn create(&self, temporary: bool, expires_in: Option<std::time::Duration>, labels: BTreeMap<String, String>) -> Result<Lease> {
        let id = LeaseId(format!(
            "{}-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.f"),
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        let expires_at = expires_in.map(|d| {
            let at = chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1));
            at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        });
        let lease = Lease { id: id.clone(), created_at: now(), temporary, expires_at, labels };
        if self.db.leases.compare_and_swap(lease_key(&id), None as Option<&[u8]>, Some(encode(&lease)))?.is_err() {
            return Err(StoreError::AlreadyExists { kind: "lease", name: id.0 });
        }
        self.db.flush()?;
        Ok(lease)
    }

    /// All leases.
    pub fn list(&self) -> Result<Vec<Lease>> {
        let mut out = Vec::new();
        for kv in self.db.leases.scan_prefix("lease/") {
            let (k, v) = kv?;
            // Resource keys have a further path below the lease's own key.
            if k[b"lease/".len()..].contains(&b'/') {
                continue;
            }
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Leases whose expiry has passed.
    pub fn expired(&self) -> Result<Vec<Lease>> {
        let now = chrono::Utc::now();
        Ok(self
            .list()?
            .into_iter()
            .filter(|l| {
                l.expires_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t < now)
            })
            .collect())
    }

    /// The content a lease holds.
    pub fn content(&self, id: &LeaseId) -> Result<Vec<LeasedContent>> {
        let prefix = lease_content_prefix(id);
        let mut out = Vec::new();
        for kv in self.db.leases.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let digest = String::from_utf8_lossy(&k[prefix.len()..]).parse::<Digest>()?;
            out.push(LeasedContent { digest, added: v.as_ref() == b"new" });
        }
        Ok(out)
    }

    /// Every digest held by any lease.
    pub(crate) fn all_content(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for kv in self.db.leases.scan_prefix("lease/") {
            let (k, _) = kv?;
            let key = String::from_utf8_lossy(&k);
            if let Some((_, d)) = key.split_once("/content/") {
                out.push(d.parse()?);
            }
        }
        Ok(out)
    }

    /// Deletes a lease and its references. The content it held becomes collectable.
    pub fn delete(&self, id: &LeaseId) -> Result<()> {
        if self.db.leases.get(lease_key(id))?.is_none() {
            return Err(StoreError::not_found("lease", id));
        }
        let mut batch = sled::Batch::default();
        for k in lease_keys(&self.db, id)? {
            batch.remove(k);
        }
        self.db.leases.apply_batch(batch)?;
        self.db.flush()
    }
}

/// Keys to remove to delete a lease and its references (for use inside a transaction).
pub(crate) fn lease_keys(db: &Db, id: &LeaseId) -> Result<Vec<Vec<u8>>> {
    let mut keys = vec![lease_key(id)];
    for kv in db.leases.scan_prefix(lease_content_prefix(id)) {
        keys.push(kv?.0.to_vec());
    }
    Ok(keys)
}
