//! ImageFsInfo: the image filesystem is the snapshot directory (a real directory on the
//! filesystem the kubelet's eviction watches), and its use the sum of every snapshot's own
//! layer. A committed snapshot never changes, so its usage is measured once; active ones (the
//! containers' writable layers) are measured at each call.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use k8s_cri::v1 as cri;
use skiff_snapshot::{Kind, Snapshotter, Usage};

use crate::error::Result;

#[derive(Default)]
pub struct UsageCache {
    committed: Mutex<HashMap<String, Usage>>,
}

impl UsageCache {
    pub fn measure(&self, root: &Path, snapshotter: &dyn Snapshotter) -> Result<cri::FilesystemUsage> {
        let infos = snapshotter.list()?;
        let mut known = self.committed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        known.retain(|key, _| infos.iter().any(|i| &i.key == key && i.kind == Kind::Committed));
        let (mut bytes, mut inodes) = (0u64, 0u64);
        for info in &infos {
            let usage = match known.get(&info.key) {
                Some(u) => *u,
                None => match snapshotter.usage(&info.key) {
                    Ok(u) => {
                        if info.kind == Kind::Committed {
                            known.insert(info.key.clone(), u);
                        }
                        u
                    }
                    // Removed between the listing and now.
                    Err(skiff_snapshot::SnapshotError::NotFound(_)) => continue,
                    Err(e) => return Err(e.into()),
                },
            };
            bytes += usage.bytes;
            inodes += usage.inodes;
        }
        *self.committed.lock().unwrap_or_else(|p| p.into_inner()) = known;
        Ok(cri::FilesystemUsage {
            timestamp: crate::now_ns(),
            fs_id: Some(cri::FilesystemIdentifier { mountpoint: root.join("snapshots").display().to_string() }),
            used_bytes: Some(cri::UInt64Value { value: bytes }),
            inodes_used: Some(cri::UInt64Value { value: inodes }),
        })
    }
}
