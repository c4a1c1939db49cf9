//! `skiff-shim [--group <group-dir>] <state-dir>`: supervises a container for skiffd, and with
//! `--group` every container later adopted into that group (a pod's; see `host`);
//! `skiff-shim --group <group-dir>` starts a pod's supervisor ahead of its containers. See
//! `skiff_runtime::shim` for the protocol and the state dir, and `zygote` for why libcontainer
//! runs in a child process.
//!
//! Start-up, in order: seal `/proc/self/exe` (a container must never be able to overwrite the
//! binary that supervises it); fork, the first process waiting for the daemon to report that the
//! container was created (its exit status and stderr are what skiffd sees); in the daemon: new
//! session in the shim's dir (the group dir, else the state dir), stdio to /dev/null and the shim
//! log, child subreaper, start the reaper, create the container (in a zygote), serve.
//! `skiff-shim zygote` is that helper; `skiff-shim pin` makes a pod's namespaces.

// fork() runs here (daemonizing) while the process is single-threaded; the zygote's fd is placed
// between fork and exec; pidfds and pty ioctls need raw syscalls. Each unsafe block says why it holds.
#![allow(unsafe_code)]

mod fanout;
mod host;
mod io;
mod launcher;
mod netns;
mod pin;
mod procs;
mod reaper;
mod supervisor;
mod zygote;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use nix::unistd::{fork, ForkResult};
use skiff_runtime::shim::{GROUP_FLAG, LOG_FILE, PID_FILE};

use crate::host::{AdoptError, Host};
use crate::reaper::Reaper;

fn main() {
    if let Err(e) = pentacle::ensure_sealed() {
        eprintln!("skiff-shim: sealing the binary: {e}");
        std::process::exit(1);
    }
    // Run from a memfd, the kernel names the process after its fd number ("12"); ps and top
    // should say what it is.
    let _ = nix::sys::prctl::set_name(c"skiff-shim");
    one_malloc_arena();
    // After the sealing: the pid holder pin forks is PID 1 in a pod, its /proc/1/exe in view.
    if std::env::args_os().nth(1).is_some_and(|a| a == "pin") {
        pin::main();
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "zygote") {
        // The shim's cwd is the state dir: libcontainer's logs go to the shim log.
        let _ = init_logging();
        zygote::main();
    }
    let (group, state_dir) = match parse_args(std::env::args_os().skip(1).collect()) {
        Some(args) => args,
        None => {
            eprintln!("usage: skiff-shim [{GROUP_FLAG} GROUP_DIR] STATE_DIR | {GROUP_FLAG} GROUP_DIR");
            std::process::exit(2);
        }
    };
    let (ready_r, ready_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skiff-shim: pipe: {e}");
            std::process::exit(1);
        }
    };
    let Some(home) = group.clone().or_else(|| state_dir.clone()) else {
        std::process::exit(2);
    };
    // SAFETY: single-threaded so far.
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("skiff-shim: fork: {e}");
            std::process::exit(1);
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(ready_w);
            let mut answer = String::new();
            let _ = File::from(ready_r).read_to_string(&mut answer);
            if answer == "ok" {
                std::process::exit(0);
            }
            if answer.is_empty() {
                answer = format!("the shim exited while starting; see {}", home.join(LOG_FILE).display());
            }
            eprintln!("{answer}");
            std::process::exit(1);
        }
        Ok(ForkResult::Child) => {}
    }
    drop(ready_r);
    let mut ready = File::from(ready_w);
    let fail = |ready: &mut File, e: anyhow::Error| -> ! {
        tracing::error!(error = format!("{e:#}"), "shim start failed");
        let _ = ready.write_all(format!("{e:#}").as_bytes());
        std::process::exit(1);
    };
    let (host, group_listener) = match start(&home, group.is_some(), state_dir.as_deref()) {
        Ok(started) => started,
        Err(e) => fail(&mut ready, e),
    };
    let _ = ready.write_all(b"ok");
    drop(ready);
    match group_listener {
        Some(listener) => host.serve_group(listener),
        // The first container's thread serves it; the process ends with its Delete.
        None => loop {
            std::thread::park();
        },
    }
}

/// A shim's threads (reaper, sockets, output copiers, watchers) each would get a glibc malloc
/// arena of their own, a few hundred KiB resident apiece for a process that allocates little:
/// one arena serves them all. Called while the process is single-threaded.
fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// `[--group GROUP_DIR] STATE_DIR`, or `--group GROUP_DIR` alone.
fn parse_args(args: Vec<std::ffi::OsString>) -> Option<(Option<PathBuf>, Option<PathBuf>)> {
    match args.as_slice() {
        [state] if state != GROUP_FLAG => Some((None, Some(PathBuf::from(state)))),
        [flag, group] if flag == GROUP_FLAG => Some((Some(PathBuf::from(group)), None)),
        [flag, group, state] if flag == GROUP_FLAG => Some((Some(PathBuf::from(group)), Some(PathBuf::from(state)))),
        _ => None,
    }
}

/// Sets the process up in `home` (the group dir, or the one container's state dir), creates the
/// first container when one is given, and for a group binds the group socket. A group's shim
/// started ahead of its containers starts a libcontainer helper too, for its first one.
fn start(home: &Path, grouped: bool, state_dir: Option<&Path>) -> anyhow::Result<(Arc<Host>, Option<std::os::unix::net::UnixListener>)> {
    let home = std::fs::canonicalize(home).with_context(|| format!("shim dir {}", home.display()))?;
    std::env::set_current_dir(&home).context("entering the shim dir")?;
    nix::unistd::setsid().context("setsid")?;
    detach_stdio().context("redirecting stdio")?;
    init_logging().context("opening the shim log")?;
    nix::sys::prctl::set_child_subreaper(true).context("becoming a child subreaper")?;
    let reaper = Arc::new(Reaper::default());
    let reaper_thread = reaper.clone();
    std::thread::spawn(move || reaper_thread.run());
    let host = Host::new(grouped.then(|| home.clone()), reaper);
    match state_dir.map(|dir| host.adopt(dir)) {
        Some(Ok(())) => {}
        Some(Err(AdoptError::Exiting)) => return Err(anyhow!("the shim is exiting")),
        Some(Err(AdoptError::Failed { error, .. })) => return Err(error),
        None => zygote::prewarm(),
    }
    if !grouped {
        return Ok((host, None));
    }
    std::fs::write(PID_FILE, std::process::id().to_string()).context("writing the group's pid file")?;
    let listener = host::listen_in(&home)?;
    Ok((host, Some(listener)))
}

fn detach_stdio() -> std::io::Result<()> {
    let null = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let log = OpenOptions::new().create(true).append(true).open(LOG_FILE)?;
    nix::unistd::dup2(null.as_raw_fd(), 0)?;
    nix::unistd::dup2(null.as_raw_fd(), 1)?;
    nix::unistd::dup2(log.as_raw_fd(), 2)?;
    Ok(())
}

/// Info, without two warnings libcontainer gives on every create and exec here, which would fill
/// the log of a container probed every few seconds: a cgroup v1 controller the kernel lacks
/// ("cgroup hugetlb not supported"), and an intermediate process "already reaped" (the shim reaps
/// every child, by design). Their errors still show.
const DEFAULT_LOG_FILTER: &str = "info,libcgroups::v1::manager=error,libcontainer::process::container_main_process=error";

fn init_logging() -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_SHIM_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    // A file of its own, not fd 2: libcontainer logs from the container's init after it made the
    // container's stderr its fd 2, and those lines must not land in the container's log.
    let file = OpenOptions::new().create(true).append(true).open(LOG_FILE)?;
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
    Ok(())
}
