//! `skiff-shim <state-dir>`: supervises one container for skiffd. See `skiff_runtime::shim` for
//! the protocol and the state dir, and `zygote` for why libcontainer runs in a child process.
//!
//! Start-up, in order: seal `/proc/self/exe` (a container must never be able to overwrite the
//! binary that supervises it); fork, the first process waiting for the daemon to report that the
//! container was created (its exit status and stderr are what skiffd sees); in the daemon: new
//! session, stdio to /dev/null and the shim log, child subreaper, start the reaper, create the
//! container (in a one-shot zygote), serve. `skiff-shim zygote` is that helper; `skiff-shim pin`
//! makes a pod's namespaces.

// fork() runs here (daemonizing) while the process is single-threaded; the zygote's fd is placed
// between fork and exec; pidfds and pty ioctls need raw syscalls. Each unsafe block says why it holds.
#![allow(unsafe_code)]

mod io;
mod launcher;
mod netns;
mod pin;
mod reaper;
mod supervisor;
mod zygote;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use nix::unistd::{fork, ForkResult};
use skiff_runtime::shim::{Request, Response, RuntimeKind, ShimConfig, CONFIG_FILE, LOG_FILE, PID_FILE, RUNTIME_DIR, SOCKET_FILE};

use crate::launcher::{Binary, Builtin, Launcher};
use crate::reaper::Reaper;
use crate::supervisor::Supervisor;

fn main() {
    if let Err(e) = pentacle::ensure_sealed() {
        eprintln!("skiff-shim: sealing the binary: {e}");
        std::process::exit(1);
    }
    // Run from a memfd, the kernel names the process after its fd number ("12"); ps and top
    // should say what it is.
    let _ = nix::sys::prctl::set_name(c"skiff-shim");
    // After the sealing: the pid holder pin forks is PID 1 in a pod, its /proc/1/exe in view.
    if std::env::args_os().nth(1).is_some_and(|a| a == "pin") {
        pin::main();
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "zygote") {
        // The shim's cwd is the state dir: libcontainer's logs go to the shim log.
        let _ = init_logging();
        zygote::main();
    }
    let Some(state_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: skiff-shim STATE_DIR");
        std::process::exit(2);
    };
    let (ready_r, ready_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skiff-shim: pipe: {e}");
            std::process::exit(1);
        }
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
                answer = format!("the shim exited while starting; see {}", state_dir.join(LOG_FILE).display());
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
    let supervisor = match start(&state_dir) {
        Ok(s) => s,
        Err(e) => fail(&mut ready, e),
    };
    let listener = match listen() {
        Ok(l) => l,
        Err(e) => fail(&mut ready, e),
    };
    let _ = ready.write_all(b"ok");
    drop(ready);
    serve(listener, supervisor);
}

fn start(state_dir: &Path) -> anyhow::Result<Arc<Supervisor>> {
    let state_dir = std::fs::canonicalize(state_dir).with_context(|| format!("state dir {}", state_dir.display()))?;
    std::env::set_current_dir(&state_dir).context("entering the state dir")?;
    nix::unistd::setsid().context("setsid")?;
    detach_stdio().context("redirecting stdio")?;
    init_logging().context("opening the shim log")?;
    nix::sys::prctl::set_child_subreaper(true).context("becoming a child subreaper")?;

    let bytes = std::fs::read(CONFIG_FILE).with_context(|| format!("reading {CONFIG_FILE}"))?;
    let config: ShimConfig = serde_json::from_slice(&bytes).with_context(|| format!("parsing {CONFIG_FILE}"))?;
    let root = state_dir.join(RUNTIME_DIR);
    std::fs::create_dir_all(&root).context("creating the runtime state dir")?;
    let reaper = Arc::new(Reaper::default());
    let launcher: Box<dyn Launcher> = match &config.runtime {
        RuntimeKind::Builtin => Box::new(Builtin {
            zygote: zygote::Zygote::default(),
            id: config.id.clone(),
            root,
            bundle: config.bundle.clone(),
            loopback_up: config.loopback_up,
        }),
        RuntimeKind::Binary { path } => {
            check_executable(path)?;
            Box::new(Binary {
                path: path.clone(),
                id: config.id.clone(),
                root,
                bundle: config.bundle.clone(),
                state_dir: state_dir.clone(),
                reaper: reaper.clone(),
            })
        }
    };
    let reaper_thread = reaper.clone();
    std::thread::spawn(move || reaper_thread.run());
    std::fs::write(PID_FILE, std::process::id().to_string()).context("writing the pid file")?;
    Supervisor::create(config, state_dir, launcher, reaper).map_err(|e| anyhow!(e))
}

fn check_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("runtime binary {}", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(anyhow!("runtime binary {} is not an executable file", path.display()));
    }
    Ok(())
}

fn detach_stdio() -> std::io::Result<()> {
    let null = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let log = OpenOptions::new().create(true).append(true).open(LOG_FILE)?;
    nix::unistd::dup2(null.as_raw_fd(), 0)?;
    nix::unistd::dup2(null.as_raw_fd(), 1)?;
    nix::unistd::dup2(log.as_raw_fd(), 2)?;
    Ok(())
}

fn init_logging() -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_SHIM_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A file of its own, not fd 2: libcontainer logs from the container's init after it made the
    // container's stderr its fd 2, and those lines must not land in the container's log.
    let file = OpenOptions::new().create(true).append(true).open(LOG_FILE)?;
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
    Ok(())
}

fn listen() -> anyhow::Result<UnixListener> {
    let _ = std::fs::remove_file(SOCKET_FILE);
    let listener = UnixListener::bind(SOCKET_FILE).context("binding the shim socket")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(SOCKET_FILE, std::fs::Permissions::from_mode(0o600)).context("socket permissions")?;
    Ok(listener)
}

fn serve(listener: UnixListener, supervisor: Arc<Supervisor>) -> ! {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let supervisor = supervisor.clone();
        // A thread per connection: Wait blocks until an exit.
        std::thread::spawn(move || {
            if let Some(true) = answer(stream, &supervisor) {
                let _ = std::fs::remove_file(SOCKET_FILE);
                tracing::info!("container deleted; shim exits");
                std::process::exit(0);
            }
        });
    }
    std::process::exit(1)
}

/// Answers one request; Some(true) when it was a successful Delete.
fn answer(stream: UnixStream, supervisor: &Arc<Supervisor>) -> Option<bool> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).ok()?;
    let (response, deleted) = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let is_delete = matches!(request, Request::Delete);
            let response = supervisor.handle(request);
            let deleted = is_delete && matches!(response, Response::Ok);
            (response, deleted)
        }
        Err(e) => (Response::Error { code: skiff_runtime::shim::ErrorCode::InvalidArgument, message: format!("bad request: {e}") }, false),
    };
    let mut bytes = serde_json::to_vec(&response).ok()?;
    bytes.push(b'\n');
    let _ = (&stream).write_all(&bytes);
    Some(deleted)
}
