//! cgroup v1: `cpuacct.usage` of the cpuacct hierarchy, `memory.*` of the memory one. The
//! `total_*` keys of `memory.stat` count the cgroups below too, as usage does (a pod's cgroup
//! holds its containers').

use std::path::Path;

use super::cgroup::{get, keyed, number, read, Memory, Swap};
use super::StatsError;

/// What the kernel reports for "no limit": the largest page-aligned value, which no one sets.
/// Anything past 2^62 is taken for it, as the kubelet and containerd do.
const UNLIMITED: u64 = 1 << 62;

fn limit(value: u64) -> Option<u64> {
    (value <= UNLIMITED).then_some(value)
}

fn file(dir: &Path, name: &str) -> Result<Option<u64>, StatsError> {
    let path = dir.join(name);
    read(&path)?.map(|text| number(&path, &text)).transpose()
}

pub fn cpu(dir: &Path) -> Result<Option<u64>, StatsError> {
    file(dir, "cpuacct.usage")
}

pub fn memory(dir: &Path) -> Result<Option<Memory>, StatsError> {
    let Some(usage) = file(dir, "memory.usage_in_bytes")? else { return Ok(None) };
    let stat_path = dir.join("memory.stat");
    let Some(stat) = read(&stat_path)? else { return Ok(None) };
    let stat = keyed(&stat_path, &stat)?;
    let mem_limit = file(dir, "memory.limit_in_bytes")?.and_then(limit);
    // memsw is there only when the kernel accounts swap (swapaccount=1).
    let swap = match file(dir, "memory.memsw.usage_in_bytes")? {
        Some(memsw) => {
            let memsw_limit = file(dir, "memory.memsw.limit_in_bytes")?.and_then(limit);
            Some(Swap {
                usage: memsw.saturating_sub(usage),
                // memsw caps memory and swap together: what it allows past the memory limit.
                limit: memsw_limit.zip(mem_limit).map(|(both, mem)| both.saturating_sub(mem)),
            })
        }
        None => None,
    };
    Ok(Some(Memory {
        usage,
        inactive_file: get(&stat, "total_inactive_file").unwrap_or(0),
        limit: mem_limit,
        rss: get(&stat, "total_rss"),
        page_faults: get(&stat, "total_pgfault"),
        major_page_faults: get(&stat, "total_pgmajfault"),
        swap,
    }))
}
