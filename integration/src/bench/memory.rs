//! Memory of a runtime's processes from /proc: RSS (`VmRSS` of status) and PSS (`Pss` of
//! smaps_rollup, which shares each page among the processes mapping it, so sums of PSS are
//! honest where sums of RSS count shared pages once per process).

use std::path::Path;

use anyhow::{anyhow, Context, Result};

/// One process's memory, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss_kb: u64,
    pub pss_kb: u64,
    /// The anonymous part of `pss_kb` (heap, stacks, written data); the rest is file pages,
    /// mostly the binary's text, which the kernel can drop and read again.
    pub pss_anon_kb: u64,
}

impl std::ops::Add for Mem {
    type Output = Mem;
    fn add(self, o: Mem) -> Mem {
        Mem { rss_kb: self.rss_kb + o.rss_kb, pss_kb: self.pss_kb + o.pss_kb, pss_anon_kb: self.pss_anon_kb + o.pss_anon_kb }
    }
}

/// The value in kB of the line `key:` of a /proc status-style file.
fn field_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

pub fn of(pid: u32) -> Result<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("read /proc/{pid}/status (is the process gone?)"))?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).with_context(|| format!("read /proc/{pid}/smaps_rollup"))?;
    Ok(Mem {
        rss_kb: field_kb(&status, "VmRSS").ok_or_else(|| anyhow!("/proc/{pid}/status has no VmRSS (a kernel thread?)"))?,
        pss_kb: field_kb(&rollup, "Pss").ok_or_else(|| anyhow!("/proc/{pid}/smaps_rollup has no Pss"))?,
        // Older kernels lack the split: all of it then counts as anonymous.
        pss_anon_kb: field_kb(&rollup, "Pss_Anon").or_else(|| field_kb(&rollup, "Pss")).unwrap_or(0),
    })
}

/// A process as the supervisor search sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub args: Vec<String>,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    (!args.is_empty() && state != "Z").then_some(Proc { pid, ppid, args })
}

pub fn processes() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).filter_map(read_proc).collect())
        .unwrap_or_default()
}

/// The supervisors among `procs`: argv[0] named `name` with an argument holding `marker`, the
/// daemon's own children of that name (a helper it keeps waiting, as skiffd's spare pin
/// helper), and processes of that name whose parent is one (skiff-shim's zygote, forked with the
/// shim's arguments or not). Without a marker every process of that name counts.
pub fn supervisors(procs: &[Proc], name: &str, marker: Option<&str>, daemon: u32) -> Vec<u32> {
    let named: Vec<&Proc> = procs.iter().filter(|p| p.args.first().is_some_and(|a0| Path::new(a0).file_name().is_some_and(|n| n == name))).collect();
    let marked = |p: &Proc| marker.is_none_or(|m| p.args.iter().skip(1).any(|a| a.contains(m)));
    let mut chosen: Vec<u32> = named.iter().filter(|p| marked(p) || p.ppid == daemon).map(|p| p.pid).collect();
    loop {
        let more: Vec<u32> = named.iter().filter(|p| !chosen.contains(&p.pid) && chosen.contains(&p.ppid)).map(|p| p.pid).collect();
        if more.is_empty() {
            break;
        }
        chosen.extend(more);
    }
    chosen.sort_unstable();
    chosen
}

/// The daemon and its supervisors at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub daemon: Mem,
    pub shim_name: String,
    pub shims: usize,
    pub shims_mem: Mem,
}

pub fn snapshot(daemon_pid: u32, shim_name: Option<&str>, marker: Option<&str>) -> Result<Snapshot> {
    let daemon = of(daemon_pid)?;
    let Some(name) = shim_name else { return Ok(Snapshot { daemon, ..Default::default() }) };
    let pids = supervisors(&processes(), name, marker, daemon_pid);
    let mut shims_mem = Mem::default();
    let mut shims = 0;
    for pid in pids {
        // A supervisor that exits between the scan and the read is not one of the pods' any more.
        if let Ok(m) = of(pid) {
            shims_mem = shims_mem + m;
            shims += 1;
        }
    }
    Ok(Snapshot { daemon, shim_name: name.to_string(), shims, shims_mem })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, args: &[&str]) -> Proc {
        Proc { pid, ppid, args: args.iter().map(|a| a.to_string()).collect() }
    }

    #[test]
    fn supervisors_are_the_marked_ones_and_their_same_named_children() {
        let procs = [
            p(10, 1, &["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-address", "/tmp/a/containerd.sock"]),
            p(11, 1, &["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-address", "/tmp/other/containerd.sock"]),
            p(20, 5, &["skiff-shim", "--state", "/tmp/a/root/containers/x"]),
            p(21, 20, &["skiff-shim"]),
            p(22, 21, &["skiff-shim", "zygote"]),
            p(23, 20, &["sleep", "3600"]),
            p(30, 1, &["skiff-shim", "--state", "/tmp/b/root/containers/y"]),
            p(31, 1, &["/tmp/a/skiff-shim-not"]),
            // The daemon's (pid 5) spare pin helper, and another daemon's.
            p(40, 5, &["skiff-shim", "pin"]),
            p(41, 6, &["skiff-shim", "pin"]),
        ];
        assert_eq!(supervisors(&procs, "containerd-shim-runc-v2", Some("/tmp/a/"), 5), [10]);
        assert_eq!(supervisors(&procs, "skiff-shim", Some("/tmp/a/"), 5), [20, 21, 22, 40]);
        assert_eq!(supervisors(&procs, "skiff-shim", None, 5), [20, 21, 22, 30, 40, 41]);
        assert!(supervisors(&procs, "runc", None, 5).is_empty());
    }

    #[test]
    fn our_own_memory_reads_and_kb_fields_parse() {
        let me = of(std::process::id()).expect("own memory");
        assert!(me.rss_kb > 0 && me.pss_kb > 0 && me.pss_kb <= me.rss_kb + 4, "{me:?}");
        assert_eq!(field_kb("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS"), Some(1234));
        assert_eq!(field_kb("Pss_Anon:  5 kB\nPss:  7 kB\n", "Pss"), Some(7));
        assert_eq!(field_kb("VmRSSx: 1 kB\n", "VmRSS"), None);
        assert!(of(u32::MAX).expect_err("no such pid").to_string().contains("is the process gone"));
        let found = processes();
        assert!(found.iter().any(|p| p.pid == std::process::id() && p.ppid > 0));
    }
}
