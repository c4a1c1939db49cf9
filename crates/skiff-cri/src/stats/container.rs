//! ContainerStats and ListContainerStats. The attributes are the CRI record's (labels and
//! annotations as the kubelet sent them); CPU and memory are the container's cgroup's while it
//! runs; the writable layer is its active snapshot, measured at each call.

use k8s_cri::v1 as cri;
use skiff_engine::{ContainerRecord, Status};

use super::cgroup::{Cgroups, Sample};
use crate::blocking::blocking;
use crate::container::CriContainer;
use crate::error::{CriError, Result};
use crate::runtime::CriRuntime;
use crate::sandbox::status::selects;

/// Walks of a writable layer before a file vanishing under each one is an error.
const WALKS: usize = 3;

/// A container's stats, with the sample they were made of (a pod without a cgroup of its own
/// adds up its containers').
pub(super) struct Measured {
    pub stats: cri::ContainerStats,
    pub sample: Option<Sample>,
}

fn attributes(c: &CriContainer) -> cri::ContainerAttributes {
    cri::ContainerAttributes { id: c.id.clone(), metadata: Some(c.metadata.clone()), labels: c.labels.clone(), annotations: c.annotations.clone() }
}

/// The stats of what could not be measured: who it is, nothing more.
pub(super) fn attributes_only(c: &CriContainer) -> cri::ContainerStats {
    cri::ContainerStats { attributes: Some(attributes(c)), ..Default::default() }
}

impl CriRuntime {
    pub async fn container_stats(&self, id: &str) -> Result<cri::ContainerStats> {
        let c = self.containers.find(id)?.ok_or_else(|| CriError::NotFound(format!("container {id:?} not found")))?;
        let runtime = self.clone();
        blocking("reading a container's stats", move || {
            let r = runtime.parts.manager.records().get(&c.id)?.ok_or_else(|| CriError::NotFound(format!("container {} has no engine record", c.id)))?;
            let cgroups = runtime.stats.cgroups()?;
            Ok(runtime.measure(cgroups, &c, &r)?.stats)
        })
        .await
    }

    /// The running containers the filter selects; one that cannot be measured is logged and
    /// listed with its attributes only, so that one broken cgroup does not blind the kubelet.
    pub async fn list_container_stats(&self, filter: Option<cri::ContainerStatsFilter>) -> Result<Vec<cri::ContainerStats>> {
        let filter = filter.unwrap_or_default();
        let runtime = self.clone();
        blocking("listing container stats", move || {
            let all = runtime.containers.list();
            runtime.stats.containers.retain(|id| all.iter().any(|c| c.id == id));
            let cgroups = runtime.stats.cgroups()?;
            let mut out = Vec::new();
            for c in &all {
                if !c.id.starts_with(&filter.id) || !c.sandbox_id.starts_with(&filter.pod_sandbox_id) || !selects(&filter.label_selector, &c.labels) {
                    continue;
                }
                let Some(r) = runtime.parts.manager.records().get(&c.id)? else { continue };
                if r.status != Status::Running {
                    continue;
                }
                out.push(runtime.measure_or_log(cgroups, c, &r).stats);
            }
            Ok(out)
        })
        .await
    }

    pub(super) fn measure_or_log(&self, cgroups: &Cgroups, c: &CriContainer, r: &ContainerRecord) -> Measured {
        self.measure(cgroups, c, r).unwrap_or_else(|e| {
            tracing::warn!(container = %c.id, error = %e, "container stats");
            Measured { stats: attributes_only(c), sample: None }
        })
    }

    /// Blocking: reads the cgroup (while it runs) and walks the writable layer.
    pub(super) fn measure(&self, cgroups: &Cgroups, c: &CriContainer, r: &ContainerRecord) -> Result<Measured> {
        let at = crate::now_ns();
        let sample = if r.status == Status::Running { cgroups.sample(&r.cgroup_path())? } else { None };
        let mut stats = attributes_only(c);
        if let Some(s) = &sample {
            stats.cpu = s.cpu_ns.map(|ns| super::cpu(at, ns, self.stats.containers.nano_cores(&c.id, at, ns)));
            stats.memory = s.memory.as_ref().map(|m| super::memory(at, m));
            stats.swap = s.memory.as_ref().and_then(|m| m.swap.as_ref()).map(|sw| super::swap(at, sw));
        }
        stats.writable_layer = self.writable_layer(&r.snapshot_key)?;
        Ok(Measured { stats, sample })
    }

    /// The container's own layer (its active snapshot); None once the snapshot is gone.
    fn writable_layer(&self, key: &str) -> Result<Option<cri::FilesystemUsage>> {
        let snapshotter = self.parts.images.snapshotter();
        // The walk races the container's own writes: a file it lists may be gone when it is
        // measured. A few more walks get a consistent one.
        let mut attempt = 0;
        let usage = loop {
            attempt += 1;
            match snapshotter.usage(key) {
                Ok(u) => break u,
                Err(skiff_snapshot::SnapshotError::NotFound(_)) => return Ok(None),
                Err(skiff_snapshot::SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempt < WALKS => continue,
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Some(cri::FilesystemUsage {
            timestamp: crate::now_ns(),
            // The filesystem the snapshots are on, as ImageFsInfo names it: the kubelet matches the two.
            fs_id: Some(cri::FilesystemIdentifier { mountpoint: self.parts.root.join("snapshots").display().to_string() }),
            used_bytes: super::value(usage.bytes),
            inodes_used: super::value(usage.inodes),
        }))
    }
}
