//! New resource limits for a live container (the CRI's UpdateContainerResources): written into
//! its cgroup (cgroupfs, v1 or v2) as the runtime's own update would, and kept in its spec so
//! that what `inspect` shows is what is in force.

use std::collections::BTreeMap;

use super::state::{Action, Status};
use super::Manager;
use crate::cgroupfs::CgroupMounts;
use crate::error::{EngineError, Result};

/// What to change; `None` leaves a limit as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceUpdate {
    pub cpu_period: Option<u64>,
    /// Microseconds per period; 0 or less lifts the quota.
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// Bytes; 0 or less lifts the limit.
    pub memory_limit: Option<i64>,
    /// Memory plus swap, in bytes (the CRI's and cgroup v1's sense); -1 lifts it.
    pub memory_swap_limit: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    /// cgroup v2 files by name (the CRI's `unified`), written as given on a v2 host.
    pub unified: BTreeMap<String, String>,
}

/// One cgroup file write: the controller (v1 mount) it is under, the file, the value.
#[derive(Debug, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
}

fn write(controller: &'static str, file: &str, value: impl ToString) -> Write {
    Write { controller, file: file.to_string(), value: value.to_string() }
}

/// The v1 writes, in an order the kernel accepts: memory+swap must never be below memory, so
/// when the swap limit grows it goes first, and when it shrinks it goes last.
pub fn v1_writes(u: &ResourceUpdate, current_memsw: Option<i64>) -> Vec<Write> {
    let mut w = Vec::new();
    if let Some(p) = u.cpu_period {
        w.push(write("cpu", "cpu.cfs_period_us", p));
    }
    if let Some(q) = u.cpu_quota {
        w.push(write("cpu", "cpu.cfs_quota_us", if q > 0 { q } else { -1 }));
    }
    if let Some(s) = u.cpu_shares {
        w.push(write("cpu", "cpu.shares", s.max(2)));
    }
    if let Some(c) = &u.cpuset_cpus {
        w.push(write("cpuset", "cpuset.cpus", c));
    }
    if let Some(m) = &u.cpuset_mems {
        w.push(write("cpuset", "cpuset.mems", m));
    }
    let memory = u.memory_limit.map(|m| write("memory", "memory.limit_in_bytes", if m > 0 { m } else { -1 }));
    let swap = u.memory_swap_limit.map(|s| write("memory", "memory.memsw.limit_in_bytes", if s > 0 { s } else { -1 }));
    let swap_grows = match (u.memory_swap_limit, current_memsw) {
        (Some(new), Some(old)) => new <= 0 || new >= old,
        _ => true,
    };
    match (memory, swap) {
        (Some(m), Some(s)) if swap_grows => w.extend([s, m]),
        (Some(m), Some(s)) => w.extend([m, s]),
        (m, s) => w.extend(m.into_iter().chain(s)),
    }
    if let Some(p) = u.pids_limit {
        w.push(write("pids", "pids.max", if p > 0 { p.to_string() } else { "max".into() }));
    }
    w
}

/// The v2 writes (one unified hierarchy: the controller is empty).
pub fn v2_writes(u: &ResourceUpdate, current_period: u64) -> Vec<Write> {
    let mut w = Vec::new();
    if u.cpu_quota.is_some() || u.cpu_period.is_some() {
        let period = u.cpu_period.unwrap_or(current_period);
        let quota = match u.cpu_quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".into(),
        };
        w.push(write("", "cpu.max", format!("{quota} {period}")));
    }
    if let Some(s) = u.cpu_shares {
        // runc's map from cgroup v1 shares [2, 262144] to v2 weights [1, 10000].
        let s = s.clamp(2, 262_144);
        w.push(write("", "cpu.weight", 1 + ((s - 2) * 9999) / 262_142));
    }
    if let Some(c) = &u.cpuset_cpus {
        w.push(write("", "cpuset.cpus", c));
    }
    if let Some(m) = &u.cpuset_mems {
        w.push(write("", "cpuset.mems", m));
    }
    let max = |v: i64| if v > 0 { v.to_string() } else { "max".to_string() };
    if let Some(m) = u.memory_limit {
        w.push(write("", "memory.max", max(m)));
    }
    if let Some(s) = u.memory_swap_limit {
        // v2's swap.max is the swap alone; the CRI gives memory plus swap.
        let swap = match (s, u.memory_limit) {
            (s, Some(m)) if s > 0 && m > 0 => (s - m).max(0).to_string(),
            (s, _) if s > 0 => s.to_string(),
            _ => "max".into(),
        };
        w.push(write("", "memory.swap.max", swap));
    }
    if let Some(p) = u.pids_limit {
        w.push(write("", "pids.max", max(p)));
    }
    for (file, value) in &u.unified {
        w.push(Write { controller: "", file: file.clone(), value: value.clone() });
    }
    w
}

/// A file name the caller gave (the CRI's `unified` keys): one plain name of a cgroup file.
fn check_file(file: &str) -> Result<()> {
    let plain = !file.is_empty() && file.contains('.') && !file.contains('/') && file != "." && file != ".." && !file.contains('\0');
    if plain {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!("unified: {file:?} is not a cgroup file name")))
    }
}

impl Manager {
    /// Writes new limits into a running container's cgroup, then into its spec; a created
    /// container's go into its spec alone.
    pub fn update_resources(&self, id_or_name: &str, update: &ResourceUpdate) -> Result<()> {
        let record = self.records.find(id_or_name)?;
        if !record.status.allows(Action::UpdateResources) {
            return Err(EngineError::InvalidState { name: record.name.clone(), state: record.status, action: Action::UpdateResources });
        }
        for file in update.unified.keys() {
            check_file(file)?;
        }
        let mounts = CgroupMounts::detect().map_err(EngineError::io("reading /proc/self/mountinfo"))?;
        if mounts.v2_host().is_none() && !update.unified.is_empty() {
            return Err(EngineError::InvalidArgument("unified: this host's cgroups are v1; unified files apply to cgroup v2 only".into()));
        }
        if record.status == Status::Created {
            // No cgroup yet: its start makes one from the spec.
            self.keep_in_spec(&record.id, update)?;
            tracing::info!(id = %record.id, "created container's resources updated in its spec");
            return Ok(());
        }
        let path = record.cgroup_path();
        let missing = |what: &str| EngineError::InvalidArgument(format!("this host has no {what} cgroup hierarchy holding {path}"));
        let writes = if let Some(unified) = mounts.v2_host() {
            let dir = unified.dir(&path).ok_or_else(|| missing("unified"))?;
            let period = std::fs::read_to_string(dir.join("cpu.max")).ok().and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse().ok())).unwrap_or(100_000);
            v2_writes(update, period).into_iter().map(|w| (dir.join(&w.file), w.value)).collect::<Vec<_>>()
        } else {
            let memsw = mounts.v1("memory").and_then(|m| m.dir(&path)).and_then(|d| std::fs::read_to_string(d.join("memory.memsw.limit_in_bytes")).ok()).and_then(|s| s.trim().parse().ok());
            let mut out = Vec::new();
            for w in v1_writes(update, memsw) {
                let hierarchy = mounts.v1(w.controller).ok_or_else(|| EngineError::InvalidArgument(format!("this host has no {} cgroup controller for {}", w.controller, w.file)))?;
                let dir = hierarchy.dir(&path).ok_or_else(|| missing(w.controller))?;
                out.push((dir.join(&w.file), w.value));
            }
            out
        };
        for (path, value) in &writes {
            std::fs::write(path, value).map_err(|source| EngineError::Io { context: format!("setting {} to {value}", path.display()), source })?;
        }
        self.keep_in_spec(&record.id, update)?;
        tracing::info!(id = %record.id, writes = writes.len(), "container resources updated");
        Ok(())
    }

    /// The spec's `linux.resources` brought in line with what was written.
    fn keep_in_spec(&self, id: &str, u: &ResourceUpdate) -> Result<()> {
        let mut spec = self.spec(id)?;
        let r = &mut spec["linux"]["resources"];
        let set = |r: &mut serde_json::Value, group: &str, key: &str, value: serde_json::Value| {
            if !r[group].is_object() {
                r[group] = serde_json::json!({});
            }
            r[group][key] = value;
        };
        if let Some(v) = u.cpu_period {
            set(r, "cpu", "period", v.into());
        }
        if let Some(v) = u.cpu_quota {
            set(r, "cpu", "quota", v.into());
        }
        if let Some(v) = u.cpu_shares {
            set(r, "cpu", "shares", v.into());
        }
        if let Some(v) = &u.cpuset_cpus {
            set(r, "cpu", "cpus", v.as_str().into());
        }
        if let Some(v) = &u.cpuset_mems {
            set(r, "cpu", "mems", v.as_str().into());
        }
        if let Some(v) = u.memory_limit {
            set(r, "memory", "limit", v.into());
        }
        if let Some(v) = u.memory_swap_limit {
            set(r, "memory", "swap", v.into());
        }
        if let Some(v) = u.pids_limit {
            set(r, "pids", "limit", v.into());
        }
        for (k, v) in &u.unified {
            set(r, "unified", k, v.as_str().into());
        }
        let path = self.bundle(id).join("config.json");
        let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| EngineError::InvalidArgument(format!("encoding the spec: {e}")))?;
        // Whole or not at all: a reader (a restart, `inspect`) never sees half a spec.
        let fresh = path.with_extension("json.new");
        super::create::write_private(&fresh, &bytes)?;
        std::fs::rename(&fresh, &path).map_err(|source| EngineError::Io { context: format!("replacing {}", path.display()), source })?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
