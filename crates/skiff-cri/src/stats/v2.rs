//! cgroup v2: `cpu.stat`, `memory.current`, `memory.max`, `memory.stat`, `memory.swap.*` of the
//! cgroup's one directory; all of them count the cgroups below too.

use std::path::Path;

use super::cgroup::{get, keyed, number, read, Memory, Swap};
use super::StatsError;

/// A number, or `max` (None).
fn limit(dir: &Path, name: &str) -> Result<Option<u64>, StatsError> {
    let path = dir.join(name);
    match read(&path)? {
        Some(text) if text.trim() == "max" => Ok(None),
        Some(text) => number(&path, &text).map(Some),
        None => Ok(None),
    }
}

fn file(dir: &Path, name: &str) -> Result<Option<u64>, StatsError> {
    let path = dir.join(name);
    read(&path)?.map(|text| number(&path, &text)).transpose()
}

pub fn cpu(dir: &Path) -> Result<Option<u64>, StatsError> {
    let path = dir.join("cpu.stat");
    let Some(text) = read(&path)? else { return Ok(None) };
    let stat = keyed(&path, &text)?;
    let usec = get(&stat, "usage_usec").ok_or_else(|| StatsError::Parse { path: path.clone(), reason: "no usage_usec".into() })?;
    Ok(Some(usec.saturating_mul(1000)))
}

pub fn memory(dir: &Path) -> Result<Option<Memory>, StatsError> {
    let Some(usage) = file(dir, "memory.current")? else { return Ok(None) };
    let stat_path = dir.join("memory.stat");
    let Some(stat) = read(&stat_path)? else { return Ok(None) };
    let stat = keyed(&stat_path, &stat)?;
    // The root cgroup and a kernel without swap accounting have no memory.swap.current.
    let swap = file(dir, "memory.swap.current")?.map(|usage| Ok::<_, StatsError>(Swap { usage, limit: limit(dir, "memory.swap.max")? })).transpose()?;
    Ok(Some(Memory {
        usage,
        inactive_file: get(&stat, "inactive_file").unwrap_or(0),
        limit: limit(dir, "memory.max")?,
        rss: get(&stat, "anon"),
        page_faults: get(&stat, "pgfault"),
        major_page_faults: get(&stat, "pgmajfault"),
        swap,
    }))
}
