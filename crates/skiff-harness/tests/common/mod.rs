//! What the harness's tests check from outside it: processes and mounts on the host.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use skiff_harness::Harness;
use skiff_testimage::{write_layout, ImageSpec};

pub const IMAGE: &str = "localhost/harness/busybox:1";

/// Imports a busybox image (Debian's busybox-static) as `IMAGE`.
pub fn import_busybox(h: &Harness) {
    let spec = ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)");
    let layout = h.dir().join("layout");
    write_layout(&spec, &layout).expect("layout");
    h.cli_ok([Path::new("images"), Path::new("import"), layout.as_path()]).expect("import");
}

fn cmdline(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc").expect("/proc").flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// Live skiff-shim processes with an argument under `dir`.
pub fn shims_under(dir: &Path) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&p| alive(p))
        .filter(|&p| {
            let args = cmdline(p);
            args.first().is_some_and(|a| a == "skiff-shim") && args.iter().skip(1).any(|a| Path::new(a).starts_with(dir))
        })
        .collect()
}

/// Live processes other than ours with anything (argument, executable, cwd) under `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    pids()
        .into_iter()
        .filter(|&p| p != me && alive(p))
        .filter(|&p| {
            let link = |n: &str| std::fs::read_link(format!("/proc/{p}/{n}")).unwrap_or_default();
            cmdline(p).iter().any(|a| Path::new(a).starts_with(dir)) || link("exe").starts_with(dir) || link("cwd").starts_with(dir)
        })
        .collect()
}

/// Mount points under `dir` in our mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// `skiff`'s cgroup dirs for container `id` that exist.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join("skiff").join(id)];
    dirs.extend(std::fs::read_dir(base).expect("/sys/fs/cgroup").flatten().map(|c| c.path().join("skiff").join(id)));
    dirs.retain(|d| d.is_dir());
    dirs
}

pub fn run(cmd: &str, args: &[&str]) {
    let status = std::process::Command::new(cmd).args(args).status().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd} {args:?}: {status}");
}
