//! What a container's or a pod's cgroup has used: CPU time, memory, swap, processes. One reader
//! per cgroup version behind one enum: v1 (cgroupfs hierarchies, hybrid hosts included, where the
//! controllers are v1 and cgroup2 only carries systemd's tree) and v2 (the unified hierarchy at
//! /sys/fs/cgroup). Which one applies is what the runtime uses too: v2 only when /sys/fs/cgroup
//! itself is cgroup2.
//!
//! A cgroup that is not there (a container that exited between the listing and the read) is no
//! error: its sample is None.

use std::io::ErrorKind as Io;
use std::path::{Path, PathBuf};

use skiff_engine::cgroupfs::{self, CgroupMounts, Hierarchy};
use super::StatsError;

/// One reading of a cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used, nanoseconds.
    pub cpu_ns: Option<u64>,
    pub memory: Option<Memory>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub usage: u64,
    /// Page cache the kernel reclaims first; what the working set leaves out.
    pub inactive_file: u64,
    /// None when unlimited.
    pub limit: Option<u64>,
    pub rss: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
    pub swap: Option<Swap>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swap {
    pub usage: u64,
    /// The swap it may use in all; None when unlimited.
    pub limit: Option<u64>,
}

impl Memory {
    /// Usage less the inactive page cache, as the kubelet's eviction counts it.
    pub fn working_set(&self) -> u64 {
        self.usage.saturating_sub(self.inactive_file)
    }

    pub fn available(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.working_set()))
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

impl Sample {
    /// The samples of a pod's containers added up, for a pod without a cgroup of its own; no
    /// limit (the containers' limits are not the pod's). None when there is none.
    pub fn sum(samples: impl IntoIterator<Item = Sample>) -> Option<Sample> {
        samples.into_iter().reduce(|a, b| Sample {
            cpu_ns: add(a.cpu_ns, b.cpu_ns),
            memory: match (a.memory, b.memory) {
                (Some(x), Some(y)) => Some(Memory {
                    usage: x.usage.saturating_add(y.usage),
                    inactive_file: x.inactive_file.saturating_add(y.inactive_file),
                    limit: None,
                    rss: add(x.rss, y.rss),
                    page_faults: add(x.page_faults, y.page_faults),
                    major_page_faults: add(x.major_page_faults, y.major_page_faults),
                    swap: match (x.swap, y.swap) {
                        (Some(s), Some(t)) => Some(Swap { usage: s.usage.saturating_add(t.usage), limit: None }),
                        (s, t) => s.or(t).map(|s| Swap { limit: None, ..s }),
                    },
                }),
                (x, y) => x.or(y).map(|m| Memory { limit: None, ..m }),
            },
        })
    }
}

/// The host's cgroup filesystems, as skiffd sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cgroups {
    V1 { cpuacct: Option<Hierarchy>, memory: Option<Hierarchy> },
    V2 { root: PathBuf },
}

impl Cgroups {
    /// From skiffd's own mount table.
    pub fn detect() -> Result<Cgroups, StatsError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| StatsError::Read { path: path.into(), source })?;
        Cgroups::from_mountinfo(&text)
    }

    pub fn from_mountinfo(text: &str) -> Result<Cgroups, StatsError> {
        let mounts = CgroupMounts::parse(text);
        if let Some(unified) = mounts.v2_host() {
            return Ok(Cgroups::V2 { root: unified.mount.clone() });
        }
        let (cpuacct, memory) = (mounts.v1("cpuacct").cloned(), mounts.v1("memory").cloned());
        if cpuacct.is_none() && memory.is_none() {
            // No v1 controllers and no cgroup2 at /sys/fs/cgroup: a unified hierarchy elsewhere.
            return match mounts.unified() {
                Some(h) => Ok(Cgroups::V2 { root: h.mount.clone() }),
                None => Err(StatsError::NoCgroups),
            };
        }
        Ok(Cgroups::V1 { cpuacct, memory })
    }

    /// The cgroup at `path` (`linux.cgroupsPath`, cgroupfs style); None when it is not there.
    pub fn sample(&self, path: &str) -> Result<Option<Sample>, StatsError> {
        match self {
            Cgroups::V1 { cpuacct, memory } => {
                let cpu = match cpuacct.as_ref().and_then(|h| h.dir(path)) {
                    Some(dir) => super::v1::cpu(&dir)?,
                    None => None,
                };
                let memory = match memory.as_ref().and_then(|h| h.dir(path)) {
                    Some(dir) => super::v1::memory(&dir)?,
                    None => None,
                };
                Ok((cpu.is_some() || memory.is_some()).then_some(Sample { cpu_ns: cpu, memory }))
            }
            Cgroups::V2 { root } => {
                let Some(path) = cgroupfs::contained(path) else { return Ok(None) };
                let dir = root.join(path.trim_start_matches('/'));
                let (cpu, memory) = (super::v2::cpu(&dir)?, super::v2::memory(&dir)?);
                Ok((cpu.is_some() || memory.is_some()).then_some(Sample { cpu_ns: cpu, memory }))
            }
        }
    }

    /// The processes in the cgroup at `path` and every cgroup below it; None when it is not there.
    pub fn process_count(&self, path: &str) -> Result<Option<u64>, StatsError> {
        let dir = match self {
            Cgroups::V1 { cpuacct, memory } => memory.as_ref().or(cpuacct.as_ref()).and_then(|h| h.dir(path)),
            Cgroups::V2 { root } => cgroupfs::contained(path).map(|p| root.join(p.trim_start_matches('/'))),
        };
        match dir {
            Some(dir) => count_procs(&dir),
            None => Ok(None),
        }
    }
}

/// A cgroup file's text; None when it (or its cgroup) is not there. A cgroup removed while it is
/// read answers ENODEV.
pub(super) fn read(path: &Path) -> Result<Option<String>, StatsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == Io::NotFound || e.raw_os_error() == Some(nix::errno::Errno::ENODEV as i32) => Ok(None),
        Err(source) => Err(StatsError::Read { path: path.into(), source }),
    }
}

/// One number (`cpuacct.usage`, `memory.current`).
pub(super) fn number(path: &Path, text: &str) -> Result<u64, StatsError> {
    text.trim().parse().map_err(|_| StatsError::Parse { path: path.into(), reason: format!("{:?} is not a number", text.trim()) })
}

/// `key value` lines (`memory.stat`, `cpu.stat`), in file order.
pub(super) fn keyed(path: &Path, text: &str) -> Result<Vec<(String, u64)>, StatsError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(StatsError::Parse { path: path.into(), reason: format!("line {line:?} is not \"key value\"") });
        };
        let value = value.parse().map_err(|_| StatsError::Parse { path: path.into(), reason: format!("the value of {key} ({value:?}) is not a number") })?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

pub(super) fn get(pairs: &[(String, u64)], key: &str) -> Option<u64> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn count_procs(dir: &Path) -> Result<Option<u64>, StatsError> {
    let Some(procs) = read(&dir.join("cgroup.procs"))? else { return Ok(None) };
    let mut count = procs.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == Io::NotFound => return Ok(Some(count)),
        Err(source) => return Err(StatsError::Read { path: dir.into(), source }),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            count += count_procs(&entry.path())?.unwrap_or(0);
        }
    }
    Ok(Some(count))
}
