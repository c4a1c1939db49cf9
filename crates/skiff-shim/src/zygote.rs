//! The zygote: a single-threaded helper process that makes the shim's libcontainer calls.
//!
//! libcontainer forks (clone3) inside the calling process and changes process-wide state: it
//! `chdir`s, makes the caller non-dumpable, and writes the spec's `oomScoreAdj` to the caller's
//! own `/proc/self/oom_score_adj`. None of that may touch the shim's threads, so each call runs in
//! a `skiff-shim zygote` (the shim's own sealed binary, exec'd, so single-threaded from its first
//! instruction), sent over a SEQPACKET socket pair with the child's stdio as SCM_RIGHTS. The
//! helper serves the calls that come close together (create, then start) and ends when it has
//! been idle for a moment: a running container costs the shim's pages alone, not a second
//! process holding libcontainer. Containers are built `as_sibling`, so their init and exec'd processes are the
//! shim's children (the helper's siblings): the shim reaps them and keeps their exit codes; the
//! helper's own exit is reaped and forgotten.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::netns;

const MAX_MESSAGE: usize = 64 * 1024;
/// The fd the helper finds its end of the socket pair on.
const HELPER_FD: RawFd = 3;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Call {
    /// Builds the container; fds: stdin, stdout, stderr. Answers the init's pid.
    Create { id: String, root: PathBuf, bundle: PathBuf, console_socket: Option<PathBuf>, loopback_up: bool },
    Start { id: String, root: PathBuf },
    /// Runs `process` (an OCI process JSON file) in the container; fds as for Create.
    Exec { id: String, root: PathBuf, process: PathBuf, console_socket: Option<PathBuf> },
    Kill { id: String, root: PathBuf, signal: i32, all: bool },
    Delete { id: String, root: PathBuf },
    /// Nothing: answered once the helper is up and reading calls.
    Ready,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
enum Reply {
    Ok { pid: Option<i32> },
    Err { message: String },
}

/// How long a helper outlives its last call: the kubelet's create and start come moments apart
/// and share one; a container left running keeps none.
const IDLE: Duration = Duration::from_secs(2);

/// The shim's way to libcontainer: a helper started for a call and kept for the next ones until
/// it has been idle for [`IDLE`]; one call at a time (libcontainer's state of a container is not
/// safe against two writers).
#[derive(Default, Clone)]
pub struct Zygote {
    /// Our end of the live helper's socket, and when it was last used.
    live: Arc<Kept>,
}

/// A helper's socket kept for a later call, and when it was last used (or made).
type Kept = Mutex<Option<(OwnedFd, Instant)>>;

/// Lets the helper kept in `slot` go once it has been idle for [`IDLE`] (closing its socket ends
/// it), unless a call took or used it since.
fn let_go_when_idle(slot: impl std::ops::Deref<Target = Kept> + Send + 'static) {
    std::thread::spawn(move || {
        std::thread::sleep(IDLE);
        let mut kept = slot.lock().unwrap_or_else(|e| e.into_inner());
        if kept.as_ref().is_some_and(|(_, at)| at.elapsed() >= IDLE) {
            *kept = None;
        }
    });
}

/// A helper started before any call (by a pod's supervisor started ahead of its containers), for
/// the first call that needs one; unused, it ends after [`IDLE`] as a kept one does.
static SPARE: Kept = Mutex::new(None);

/// Starts the spare helper and waits until it reads calls (the pod's network setup runs
/// meanwhile, so its start-up does not compete with the pod's first container for the CPU).
pub fn prewarm() {
    let socket = match spawn_helper().and_then(|socket| exchange(&socket, &Call::Ready, &[])?.map(|_| socket)) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(error = %e, "starting a spare libcontainer helper");
            return;
        }
    };
    *SPARE.lock().unwrap_or_else(|e| e.into_inner()) = Some((socket, Instant::now()));
    let_go_when_idle(&SPARE);
}

/// The spare helper, when one is waiting; else a new one.
fn spare_or_spawn() -> Result<OwnedFd, String> {
    match SPARE.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some((socket, _)) => Ok(socket),
        None => spawn_helper(),
    }
}

/// Starts a helper; answers our end of its socket. The helper ends when that end is closed.
fn spawn_helper() -> Result<OwnedFd, String> {
    let (shim_end, helper_end) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(|e| format!("zygote socket: {e}"))?;
    let helper_raw = helper_end.as_raw_fd();
    let mut command = std::process::Command::new("/proc/self/exe");
    command.arg0("skiff-shim").arg("zygote").stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) run.
    unsafe {
        command.pre_exec(move || {
            let rc = if helper_raw == HELPER_FD { libc::fcntl(HELPER_FD, libc::F_SETFD, 0) } else { libc::dup2(helper_raw, HELPER_FD) };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Not waited for here: the shim's reaper reaps every child, this one too.
    command.spawn().map_err(|e| format!("starting the zygote: {e}"))?;
    Ok(shim_end)
}

/// One call over the socket: the outer error is the transport's (the helper is then in doubt),
/// the inner one the call's own.
fn exchange(socket: &OwnedFd, call: &Call, fds: &[RawFd]) -> Result<Result<Option<i32>, String>, String> {
    let payload = serde_json::to_vec(call).map_err(|e| e.to_string())?;
    let iov = [IoSlice::new(&payload)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).map_err(|e| format!("zygote send: {e}"))?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let n = nix::unistd::read(socket.as_raw_fd(), &mut buf).map_err(|e| format!("zygote receive: {e}"))?;
    if n == 0 {
        return Err("the zygote exited without answering; see the shim log".into());
    }
    Ok(match serde_json::from_slice(&buf[..n]).map_err(|e| format!("zygote reply: {e}"))? {
        Reply::Ok { pid } => Ok(pid),
        Reply::Err { message } => Err(message),
    })
}

impl Zygote {
    /// Makes one call in the live helper (a new one if none is); `fds` travel with it.
    pub fn call(&self, call: &Call, fds: &[RawFd]) -> Result<Option<i32>, String> {
        let mut live = self.live.lock().map_err(|_| "zygote lock poisoned".to_string())?;
        // A helper ends only when its socket is closed, and only this lock closes it: a kept
        // one is alive (unless killed, and then the call fails and the next one starts afresh).
        let socket = match live.take() {
            Some((socket, _)) => socket,
            None => spare_or_spawn()?,
        };
        // A transport failure puts the helper in doubt: it is let go (closing ends it).
        let answer = exchange(&socket, call, fds)?;
        *live = Some((socket, Instant::now()));
        drop(live);
        let_go_when_idle(self.live.clone());
        answer
    }
}

/// `skiff-shim zygote`: serves calls on fd 3 until the shim closes its end.
pub fn main() -> ! {
    let _ = nix::sys::prctl::set_name(c"skiff-zygote");
    // A container's init and its exec'd processes inherit this process's signal dispositions
    // through libcontainer's exec, and Rust's start-up ignores SIGPIPE: they would start with it
    // ignored, where runc's and containerd's start with the default (`yes | head` would never
    // end). A reply to a shim that is gone then ends this helper by SIGPIPE instead of exit(1).
    // SAFETY: SIG_DFL installs no handler; nothing here relies on SIGPIPE being ignored.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: the shim put our end of the socket pair on this fd before exec.
    serve(unsafe { OwnedFd::from_raw_fd(HELPER_FD) })
}

fn serve(socket: OwnedFd) -> ! {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let mut space = nix::cmsg_space!([RawFd; 3]);
        let (len, mut fds) = {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(msg) if msg.bytes == 0 => std::process::exit(0),
                Ok(msg) => {
                    let mut fds = Vec::new();
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for cmsg in cmsgs {
                            if let ControlMessageOwned::ScmRights(received) = cmsg {
                                // SAFETY: the kernel just installed these fds for us.
                                fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                            }
                        }
                    }
                    (msg.bytes, fds)
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => std::process::exit(1),
            }
        };
        let reply = match serde_json::from_slice::<Call>(&buf[..len]) {
            Ok(call) => match handle(call, &mut fds) {
                Ok(pid) => Reply::Ok { pid },
                Err(message) => Reply::Err { message },
            },
            Err(e) => Reply::Err { message: format!("bad zygote call: {e}") },
        };
        drop(fds);
        let payload = serde_json::to_vec(&reply).unwrap_or_default();
        if nix::unistd::write(&socket, &payload).is_err() {
            std::process::exit(1);
        }
    }
}

fn take_stdio(fds: &mut Vec<OwnedFd>) -> Result<(OwnedFd, OwnedFd, OwnedFd), String> {
    if fds.len() != 3 {
        return Err(format!("expected 3 stdio fds, got {}", fds.len()));
    }
    let stderr = fds.pop().ok_or("no stderr")?;
    let stdout = fds.pop().ok_or("no stdout")?;
    let stdin = fds.pop().ok_or("no stdin")?;
    Ok((stdin, stdout, stderr))
}

/// A builder for container `id` under `root`, with the stdio fds of the call (stdin, stdout, stderr).
fn builder(id: String, root: PathBuf, console_socket: Option<PathBuf>, fds: &mut Vec<OwnedFd>) -> Result<ContainerBuilder, String> {
    let (stdin, stdout, stderr) = take_stdio(fds)?;
    Ok(ContainerBuilder::new(id, SyscallType::default())
        .with_root_path(root)
        .map_err(|e| describe(&e))?
        .with_console_socket(console_socket)
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr))
}

fn describe(e: &libcontainer::error::LibcontainerError) -> String {
    // libcontainer's top-level messages are terse ("failed to create container: io error");
    // the source chain says what went wrong.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn handle(call: Call, fds: &mut Vec<OwnedFd>) -> Result<Option<i32>, String> {
    match call {
        Call::Create { id, root, bundle, console_socket, loopback_up } => {
            let container = builder(id, root, console_socket, fds)?
                .validate_id()
                .map_err(|e| describe(&e))?
                .as_init(bundle)
                .with_systemd(false)
                .with_detach(true)
                .as_sibling(true)
                .build()
                .map_err(|e| describe(&e))?;
            let pid = container.pid().ok_or("libcontainer created the container without a pid")?;
            if loopback_up {
                netns::loopback_up(pid.as_raw()).map_err(|e| format!("bringing loopback up in the container: {e}"))?;
            }
            Ok(Some(pid.as_raw()))
        }
        Call::Start { id, root } => {
            let mut container = Container::load(root.join(&id)).map_err(|e| describe(&e))?;
            container.start().map_err(|e| describe(&e))?;
            Ok(None)
        }
        Call::Exec { id, root, process, console_socket } => {
            let pid = builder(id, root, console_socket, fds)?
                .as_tenant()
                .with_process(Some(process))
                .as_sibling(true)
                .with_detach(true)
                .build()
                .map_err(|e| describe(&e))?;
            Ok(Some(pid.as_raw()))
        }
        Call::Kill { id, root, signal, all } => {
            let mut container = Container::load(root.join(&id)).map_err(|e| describe(&e))?;
            let signal = Signal::try_from(signal).map_err(|e| e.to_string())?;
            container.kill(signal, all).map_err(|e| describe(&e))?;
            Ok(None)
        }
        Call::Ready => Ok(None),
        Call::Delete { id, root } => {
            let dir = root.join(&id);
            if !dir.exists() {
                return Ok(None);
            }
            // The init can be reaped between two of delete's checks of /proc/<pid> (seen ~1 in
            // 50-100 runs): one retry settles it.
            let attempt = || -> Result<(), String> {
                let mut container = Container::load(dir.clone()).map_err(|e| describe(&e))?;
                container.delete(true).map_err(|e| describe(&e))
            };
            attempt().or_else(|first| if dir.exists() { attempt().map_err(|_| first) } else { Ok(()) })?;
            Ok(None)
        }
    }
}
