//! Real pins, as root: the built `skiff-shim` (run `cargo build -p skiff-shim` first) driven
//! through [`pin`] and [`unpin`], the results checked from the host with nsenter, ip and /proc.
//! The shim runs as skiffd runs it: from a sealed memfd copy, by `/proc/self/fd/N`.

// memfd_create and its seals have no safe wrapper in std or nix.
#![allow(unsafe_code)]

mod holder;
mod pin;
mod spare;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{pin, unpin, Namespaces, PinRequest, Pinned};

/// `target/<profile>/skiff-shim`, beside the test binary's `deps` dir.
fn shim_on_disk() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let shim = dir.join("skiff-shim");
    assert!(shim.exists(), "{} is missing: run `cargo build -p skiff-shim` first", shim.display());
    shim
}

/// The shim sealed in a memfd once for all tests, as skiffd's SealedShim does.
fn shim() -> PathBuf {
    static SEALED: OnceLock<File> = OnceLock::new();
    let memfd = SEALED.get_or_init(|| seal(&shim_on_disk()).expect("sealing the shim"));
    PathBuf::from(format!("/proc/self/fd/{}", memfd.as_raw_fd()))
}

fn seal(path: &Path) -> io::Result<File> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let name = c"skiff-shim";
    // SAFETY: a valid name; the flags are plain bits. Kernels before 6.3 refuse MFD_EXEC.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC) };
    if fd < 0 {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd owned by nothing else.
    let mut memfd = unsafe { File::from_raw_fd(fd) };
    io::copy(&mut File::open(path)?, &mut memfd)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on an fd we own.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}

fn is_root() -> bool {
    // Read from /proc so as not to need another unsafe call.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        eprintln!("skipped: pinning namespaces needs root");
    }
    root
}

/// A fresh pod dir path (not made: the pin makes it), removed with what is left on drop.
struct PodDir(PathBuf);

impl PodDir {
    fn new(tag: &str) -> PodDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        PodDir(std::env::temp_dir().join(format!("skiff-pod-{}-{tag}-{n}", std::process::id())).join("pod"))
    }

    fn request(&self, net: bool, ipc: bool, uts: bool) -> PinRequest {
        PinRequest { dir: self.0.clone(), namespaces: Namespaces { net, ipc, uts }, ..Default::default() }
    }

    /// Mount points under the dir, from this process's (the host's) mount table.
    fn mounts(&self) -> Vec<String> {
        mounts_under(&self.0)
    }

    /// Asserts nothing of a pin is left: no mount, no file, no dir.
    fn assert_clean(&self) {
        assert_eq!(self.mounts(), Vec::<String>::new(), "mounts left under {}", self.0.display());
        assert!(!self.0.exists(), "{} was left behind", self.0.display());
    }
}

impl Drop for PodDir {
    fn drop(&mut self) {
        for name in ["net", "ipc", "uts"] {
            let _ = nix::mount::umount2(&self.0.join(name), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let prefix = format!("{}/", dir.display());
    table.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&prefix)).map(str::to_string).collect()
}

/// Runs a command, asserts it succeeded, returns its trimmed stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The inode of a namespace file as `stat -L` sees it.
fn ns_inode(path: &Path) -> String {
    run("stat", &["-L", "-c", "%i", &path.display().to_string()])
}

/// A pin undone on drop too, so that a failing test leaves no holder running.
struct Pinning(Pinned);

impl std::ops::Deref for Pinning {
    type Target = Pinned;
    fn deref(&self) -> &Pinned {
        &self.0
    }
}

impl Drop for Pinning {
    fn drop(&mut self) {
        let _ = unpin(&self.0);
    }
}

fn pin_ok(req: &PinRequest) -> Pinning {
    Pinning(pin(&shim(), req).unwrap_or_else(|e| panic!("pin of {}: {e}", req.dir.display())))
}

fn unpin_ok(pinned: &Pinned) {
    unpin(pinned).unwrap_or_else(|e| panic!("unpin: {e}"));
}

/// Waits until `pid` is no process at all (not even a zombie), for at most `limit`.
fn wait_gone(pid: i32, start_time: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match super::procfs::stat(pid) {
            Err(_) => return true,
            Ok(s) if s.start_time != start_time => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

/// `Rss` and `Pss` of a process, in kB.
fn rss_pss(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps_rollup");
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(0);
    (field("Rss:"), field("Pss:"))
}
