//! The zygote: a single-threaded child of the shim that makes every libcontainer call.
//!
//! libcontainer forks (clone3) inside the calling process and changes process-wide state: it
//! `chdir`s, makes the caller non-dumpable, and writes the spec's `oomScoreAdj` to the caller's
//! own `/proc/self/oom_score_adj`. None of that may touch the shim's threads, so the shim forks
//! this process before it starts any thread and sends it calls over a SEQPACKET socket pair, with
//! the child's stdio as SCM_RIGHTS. Containers are built `as_sibling`, so their init and exec'd
//! processes are the shim's children: the shim reaps them and keeps their exit codes.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

use crate::netns;

const MAX_MESSAGE: usize = 64 * 1024;

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
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
enum Reply {
    Ok { pid: Option<i32> },
    Err { message: String },
}

/// The shim's end of the zygote.
pub struct Zygote {
    socket: Mutex<OwnedFd>,
}

impl Zygote {
    /// Forks the zygote. Must be called while the process is single-threaded; `close_in_child`
    /// are fds the zygote must not keep open (e.g. the readiness pipe).
    pub fn fork(close_in_child: &[RawFd]) -> std::io::Result<Zygote> {
        let (shim_end, zygote_end) =
            socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(std::io::Error::from)?;
        // SAFETY: the shim has no other thread yet (main forks the zygote before starting any),
        // so the child may run arbitrary code.
        match unsafe { fork() }.map_err(std::io::Error::from)? {
            ForkResult::Child => {
                let _ = nix::sys::prctl::set_name(c"skiff-zygote");
                drop(shim_end);
                for fd in close_in_child {
                    let _ = nix::unistd::close(*fd);
                }
                serve(zygote_end)
            }
            ForkResult::Parent { .. } => Ok(Zygote { socket: Mutex::new(shim_end) }),
        }
    }

    /// Makes one call; `fds` travel with it.
    pub fn call(&self, call: &Call, fds: &[RawFd]) -> Result<Option<i32>, String> {
        let socket = self.socket.lock().map_err(|_| "zygote lock poisoned".to_string())?;
        let payload = serde_json::to_vec(call).map_err(|e| e.to_string())?;
        let iov = [IoSlice::new(&payload)];
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
        sendmsg::<()>(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).map_err(|e| format!("zygote send: {e}"))?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = nix::unistd::read(socket.as_raw_fd(), &mut buf).map_err(|e| format!("zygote receive: {e}"))?;
        if n == 0 {
            return Err("the zygote exited".into());
        }
        match serde_json::from_slice(&buf[..n]).map_err(|e| format!("zygote reply: {e}"))? {
            Reply::Ok { pid } => Ok(pid),
            Reply::Err { message } => Err(message),
        }
    }
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
