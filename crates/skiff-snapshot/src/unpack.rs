//! Unpacking an image's layers into committed snapshots named by chain ID, so a layer shared by two
//! images is unpacked once. Each layer streams from the content store through its decompressor into
//! the snapshot, and its diffID is checked against the image config before the snapshot is
//! committed; a failed layer's half-made snapshot is removed. Concurrent unpacks of one chain wait
//! for each other.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest as _, Sha256};
use skiff_image::resolve::Resolved;
use skiff_store::{ContentStore, Store};

use crate::apply::{apply, Limits};
use crate::decompress::decompress;
use crate::error::{Result, SnapshotError};
use crate::{Kind, Snapshotter};

/// Label on the active snapshot a layer is being unpacked into; one left after a crash is removed.
pub const LABEL_UNPACKING: &str = "io.skiff.snapshot.unpacking";

/// Chain IDs of a list of diffIDs: `chain[0] = diff[0]`, `chain[i] = sha256(chain[i-1] + " " + diff[i])`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!("sha256:{}", hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))),
        };
        out.push(next);
    }
    out
}

/// What an unpack did.
#[derive(Clone, Debug, Default)]
pub struct UnpackReport {
    /// The chain ID of the top layer: the snapshot a container's rootfs is prepared on.
    pub chain_id: String,
    pub unpacked: usize,
    pub present: usize,
    pub bytes: u64,
}

pub struct Unpacker {
    snapshotter: Arc<dyn Snapshotter>,
    limits: Limits,
    in_flight: Mutex<HashSet<String>>,
    done: Condvar,
    seq: AtomicU64,
}

impl Unpacker {
    pub fn new(snapshotter: Arc<dyn Snapshotter>, limits: Limits) -> Unpacker {
        Unpacker { snapshotter, limits, in_flight: Mutex::new(HashSet::new()), done: Condvar::new(), seq: AtomicU64::new(0) }
    }

    pub fn snapshotter(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshotter
    }

    /// Removes active snapshots left by unpacks that a crash interrupted.
    pub fn clean_interrupted(&self) -> Result<usize> {
        let mut n = 0;
        for info in self.snapshotter.list()? {
            if info.kind == Kind::Active && info.labels.contains_key(LABEL_UNPACKING) {
                self.snapshotter.remove(&info.key)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn committed(&self, name: &str) -> bool {
        self.snapshotter.stat(name).is_ok_and(|i| i.kind == Kind::Committed)
    }

    /// Unpacks every layer of `image` that is not unpacked yet.
    pub fn unpack(&self, store: &Store, image: &Resolved) -> Result<UnpackReport> {
        let diff_ids = image.config.rootfs().diff_ids();
        let layers = &image.manifest.layers;
        if diff_ids.len() != layers.len() {
            return Err(SnapshotError::InvalidArgument(format!(
                "image {} has {} layers but its config lists {} diffIDs",
                image.manifest_desc.digest,
                layers.len(),
                diff_ids.len()
            )));
        }
        let chain = chain_ids(diff_ids);
        let mut report = UnpackReport::default();
        let mut parent: Option<String> = None;
        for ((layer, diff_id), chain_id) in layers.iter().zip(diff_ids).zip(&chain) {
            loop {
                if self.committed(chain_id) {
                    report.present += 1;
                    break;
                }
                let claimed = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(chain_id.clone());
                if !claimed {
                    let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                    while set.contains(chain_id) {
                        set = self.done.wait(set).unwrap_or_else(|p| p.into_inner());
                    }
                    continue;
                }
                let result = self.unpack_layer(store, layer, diff_id, chain_id, parent.as_deref());
                self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(chain_id);
                self.done.notify_all();
                report.bytes += result?;
                report.unpacked += 1;
                break;
            }
            parent = Some(chain_id.clone());
        }
        report.chain_id = chain.last().cloned().unwrap_or_default();
        Ok(report)
    }

    fn unpack_layer(
        &self,
        store: &Store,
        layer: &skiff_image::model::Desc,
        diff_id: &str,
        chain_id: &str,
        parent: Option<&str>,
    ) -> Result<u64> {
        let key = format!("unpack-{}-{}-{}", std::process::id(), self.seq.fetch_add(1, Ordering::Relaxed), chain_id);
        let labels = BTreeMap::from([(LABEL_UNPACKING.to_string(), layer.digest.to_string())]);
        self.snapshotter.prepare(&key, parent, labels)?;
        let applied = (|| {
            let target = self.snapshotter.diff_target(&key)?;
            let file = store.content().open(&layer.digest)?;
            let reader = decompress(file, &layer.media_type, layer.digest.as_str())?;
            let applied = apply(reader, layer.digest.as_str(), layer.size, &target, self.limits)?;
            if applied.diff_id.as_str() != diff_id {
                return Err(SnapshotError::DiffIdMismatch {
                    layer: layer.digest.to_string(),
                    expected: diff_id.to_string(),
                    actual: applied.diff_id.to_string(),
                });
            }
            Ok(applied)
        })();
        match applied {
            Ok(a) => {
                match self.snapshotter.commit(chain_id, &key) {
                    Ok(_) => {}
                    // Another process committed the same chain first: ours is redundant.
                    Err(SnapshotError::AlreadyExists(_)) => self.snapshotter.remove(&key)?,
                    Err(e) => {
                        let _ = self.snapshotter.remove(&key);
                        return Err(e);
                    }
                }
                tracing::debug!(layer = %layer.digest, chain_id, entries = a.entries, bytes = a.uncompressed, "layer unpacked");
                Ok(a.uncompressed)
            }
            Err(e) => {
                if let Err(cleanup) = self.snapshotter.remove(&key) {
                    tracing::error!(key, error = %cleanup, "could not remove half-made snapshot; it is removed on next start");
                }
                Err(e)
            }
        }
    }

    /// Removes committed snapshots no image needs (`needed` holds chain IDs), leaves first.
    pub fn collect(&self, needed: &HashSet<String>) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        loop {
            let all = self.snapshotter.list()?;
            let parents: HashSet<&str> = all.iter().filter_map(|i| i.parent.as_deref()).collect();
            let doomed: Vec<&str> = all
                .iter()
                .filter(|i| i.kind == Kind::Committed && !needed.contains(&i.key) && !parents.contains(i.key.as_str()))
                .map(|i| i.key.as_str())
                .collect();
            if doomed.is_empty() {
                return Ok(removed);
            }
            for key in doomed {
                self.snapshotter.remove(key)?;
                removed.push(key.to_string());
            }
        }
    }
}

/// The chain IDs of every layer prefix of `image`: the snapshots it needs.
pub fn needed_by(image: &Resolved) -> Vec<String> {
    chain_ids(image.config.rootfs().diff_ids())
}
