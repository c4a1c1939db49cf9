//! Image records: a name pointing at a target descriptor, the platforms whose content is stored, and
//! the annotations met while resolving it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::db::{decode, encode, Db};
use crate::error::{Result, StoreError};
use crate::lease::{lease_keys, LeaseId};
use crate::{now, Digest};

pub use skiff_types::ImageAnnotations;

/// An OCI content descriptor as the metadata store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A named image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: String,
    pub target: Descriptor,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The platform the annotations were collected for (`os/arch[/variant]`); empty when none of the
    /// stored platforms was resolved (an `--all-platforms` import without the host's platform).
    #[serde(default)]
    pub platform: String,
    /// Every platform whose manifest, config and layers are stored (`os/arch[/variant]`). Which of
    /// them a container uses is decided when it is made, not by the last pull or import.
    #[serde(default)]
    pub platforms: BTreeSet<String>,
    #[serde(default)]
    pub annotations: ImageAnnotations,
}

impl ImageRecord {
    /// Records written before `platforms` existed knew one platform, the one in `platform`.
    fn upgrade(mut self) -> ImageRecord {
        if self.platforms.is_empty() && !self.platform.is_empty() {
            self.platforms.insert(self.platform.clone());
        }
        self
    }
}

fn decode_record(key: &[u8], bytes: &[u8]) -> Result<ImageRecord> {
    decode::<ImageRecord>(key, bytes).map(ImageRecord::upgrade)
}

fn image_key(name: &str) -> Vec<u8> {
    format!("image/{name}").into_bytes()
}

/// Image record operations.
pub struct Images {
    db: Db,
}

impl Images {
    pub(crate) fn new(db: Db) -> Self {
        Images { db }
    }

    pub fn get(&self, name: &str) -> Result<ImageRecord> {
        let key = image_key(name);
        match self.db.images.get(&key)? {
            Some(v) => decode_record(&key, &v),
            None => Err(StoreError::not_found("image", name)),
        }
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        self.db.images.scan_prefix("image/").map(|kv| {
            let (k, v) = kv?;
            decode_record(&k, &v)
        }).collect()
    }

    /// Creates or replaces the record named `record.name` (keeping the original creation time).
    pub fn put(&self, record: ImageRecord, release: Option<&LeaseId>) -> Result<ImageRecord> {
        let mut v = self.put_all(vec![record], release)?;
        v.pop().ok_or_else(|| StoreError::InvalidArgument("no image record written".into()))
    }

    /// Creates or replaces several records and releases `release` in one transaction, so the images
    /// and the lease release land together or not at all.
    pub fn put_all(&self, records: Vec<ImageRecord>, release: Option<&LeaseId>) -> Result<Vec<ImageRecord>> {
        if let Some(r) = records.iter().find(|r| r.name.is_empty()) {
            return Err(StoreError::InvalidArgument(format!("image record for {} has an empty name", r.target.digest)));
        }
        let release_keys = match release {
            Some(id) => lease_keys(&self.db, id)?,
            None => Vec::new(),
        };
        let ts = now();
        let stored = (&self.db.images, &self.db.leases)
            .transaction(|(images, leases)| {
                let mut out = Vec::with_capacity(records.len());
                for record in &records {
                    let key = image_key(&record.name);
                    let mut rec = record.clone().upgrade();
                    rec.updated_at = ts.clone();
                    rec.created_at = match images.get(&key)? {
                        Some(old) => decode::<ImageRecord>(&key, &old).map_err(ConflictableTransactionError::Abort)?.created_at,
                        None => ts.clone(),
                    };
                    images.insert(key.as_slice(), encode(&rec))?;
                    out.push(rec);
                }
                for k in &release_keys {
                    leases.remove(k.as_slice())?;
                }
                Ok(out)
            })
            .map_err(StoreError::from)?;
        self.db.flush()?;
        Ok(stored)
    }

    /// Removes an image record. Its content stays until garbage collection finds nothing else uses it.
    pub fn delete(&self, name: &str) -> Result<ImageRecord> {
        let key = image_key(name);
        let old = self.db.images.remove(&key)?.ok_or_else(|| StoreError::not_found("image", name))?;
        self.db.flush()?;
        decode_record(&key, &old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_record_reads_its_platform_as_the_one_stored() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let old = format!(
            r#"{{"name":"x/y:1","target":{{"mediaType":"m","digest":"{digest}","size":1}},"created_at":"t","updated_at":"t","platform":"linux/amd64"}}"#
        );
        let rec = decode_record(b"image/x/y:1", old.as_bytes()).expect("old record");
        assert_eq!(rec.platforms, BTreeSet::from(["linux/amd64".to_string()]));
        let none = old.replace(r#","platform":"linux/amd64""#, "");
        assert!(decode_record(b"image/x/y:1", none.as_bytes()).expect("older record").platforms.is_empty());
        let new = String::from_utf8(encode(&rec)).expect("utf8");
        assert!(new.contains(r#""platforms":["linux/amd64"]"#), "{new}");
    }
}
