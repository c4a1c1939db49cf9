//! ContainerStats, ListContainerStats, PodSandboxStats and ListPodSandboxStats: what the kubelet's
//! CRI stats provider reads for eviction, `kubectl top` and the summary API. CPU and memory come
//! from the cgroups (`cgroup.rs`, one reader per version), the CPU rate from the previous sample
//! kept in memory (`rate.rs`), a container's writable layer from the snapshotter, a pod's network
//! from its namespace (`netdev.rs`). Everything is read at the call; nothing is collected in the
//! background.
//!
//! As containerd does, the listings have running containers (and ready pods) only; the single
//! calls answer for an exited container or a stopped pod with what is left of it.

mod cgroup;
mod container;
mod netdev;
mod rate;
mod sandbox;
mod v1;
mod v2;

#[cfg(test)]
mod cgroup_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::OnceLock;

use k8s_cri::v1 as cri;
use skiff_types::{ErrorKind, HasKind};

use cgroup::{Cgroups, Memory, Swap};
use rate::Rates;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("no cgroup filesystem is mounted (no v1 cpuacct or memory hierarchy, no cgroup2) in /proc/self/mountinfo: stats need one")]
    NoCgroups,
    #[error("the pod network namespace {path}: {reason}")]
    Netns { path: PathBuf, reason: String },
}

impl HasKind for StatsError {
    fn kind(&self) -> ErrorKind {
        match self {
            // A missing file is no error here (the cgroup is gone): what is left is the host's.
            StatsError::Read { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            StatsError::Read { .. } | StatsError::Parse { .. } | StatsError::Netns { .. } => ErrorKind::Internal,
            StatsError::NoCgroups => ErrorKind::FailedPrecondition,
        }
    }
}

/// What the stats calls keep between calls.
#[derive(Default)]
pub struct Stats {
    cgroups: OnceLock<Cgroups>,
    containers: Rates,
    pods: Rates,
}

impl Stats {
    /// The host's cgroup filesystems, found once.
    fn cgroups(&self) -> Result<&Cgroups, StatsError> {
        if let Some(found) = self.cgroups.get() {
            return Ok(found);
        }
        let found = Cgroups::detect()?;
        Ok(self.cgroups.get_or_init(|| found))
    }
}

fn value(value: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value })
}

fn cpu(at: i64, usage_ns: u64, nano_cores: Option<u64>) -> cri::CpuUsage {
    cri::CpuUsage { timestamp: at, usage_core_nano_seconds: value(usage_ns), usage_nano_cores: nano_cores.and_then(value) }
}

fn memory(at: i64, m: &Memory) -> cri::MemoryUsage {
    cri::MemoryUsage {
        timestamp: at,
        working_set_bytes: value(m.working_set()),
        available_bytes: m.available().and_then(value),
        usage_bytes: value(m.usage),
        rss_bytes: m.rss.and_then(value),
        page_faults: m.page_faults.and_then(value),
        major_page_faults: m.major_page_faults.and_then(value),
    }
}

fn swap(at: i64, s: &Swap) -> cri::SwapUsage {
    cri::SwapUsage { timestamp: at, swap_available_bytes: s.limit.map(|l| l.saturating_sub(s.usage)).and_then(value), swap_usage_bytes: value(s.usage) }
}
