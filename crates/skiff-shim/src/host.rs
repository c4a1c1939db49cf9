//! The shim process as a host of supervisors: one container's (`skiff-shim <state>`), or every
//! container of a group (`skiff-shim --group <dir> [<state>]`, a pod's), each adopted over the
//! group socket. Every container is served on its own socket in its own state dir; the process
//! ends when its last container was deleted, or, never given one, when asked to. See `skiff_runtime::shim::GroupClient` for the
//! protocol.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context};
use skiff_runtime::shim::{ErrorCode, GroupRequest, Request, Response, RuntimeKind, ShimConfig, CONFIG_FILE, GROUP_EXITING, PID_FILE, RUNTIME_DIR, SOCKET_FILE};

use crate::launcher::{Binary, Builtin, Launcher};
use crate::reaper::Reaper;
use crate::supervisor::Supervisor;
use crate::zygote::Zygote;

pub struct Host {
    /// The group dir (canonical); None for a shim of one container.
    group: Option<PathBuf>,
    reaper: Arc<Reaper>,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    /// Containers supervised or being adopted.
    containers: usize,
    /// The last one was deleted: no more adoptions, the process is ending.
    exiting: bool,
}

pub enum AdoptError {
    /// The host is ending; the caller starts a new one.
    Exiting,
    /// The container could not be created; `last` when the host supervises nothing now (it ends
    /// once it answered).
    Failed { error: anyhow::Error, last: bool },
}

/// One container's socket and supervisor.
struct Served {
    supervisor: Arc<Supervisor>,
    listener: UnixListener,
    /// Set once the container was deleted: its accept loop ends.
    deleted: AtomicBool,
}

impl Host {
    pub fn new(group: Option<PathBuf>, reaper: Arc<Reaper>) -> Arc<Host> {
        Arc::new(Host { group, reaper, live: Mutex::new(Live::default()) })
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the container of `state_dir` (its init waits for Start) and serves its socket.
    pub fn adopt(self: &Arc<Self>, state_dir: &Path) -> Result<(), AdoptError> {
        {
            let mut live = self.live();
            if live.exiting {
                return Err(AdoptError::Exiting);
            }
            live.containers += 1;
        }
        match self.supervise(state_dir) {
            Ok(served) => {
                let host = self.clone();
                std::thread::spawn(move || host.serve_container(served));
                Ok(())
            }
            Err(error) => Err(AdoptError::Failed { error, last: self.release() }),
        }
    }

    fn supervise(&self, state_dir: &Path) -> anyhow::Result<Arc<Served>> {
        let state_dir = std::fs::canonicalize(state_dir).with_context(|| format!("state dir {}", state_dir.display()))?;
        let config_path = state_dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
        let config: ShimConfig = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", config_path.display()))?;
        let root = state_dir.join(RUNTIME_DIR);
        std::fs::create_dir_all(&root).context("creating the runtime state dir")?;
        let launcher: Box<dyn Launcher> = match &config.runtime {
            RuntimeKind::Builtin => {
                Box::new(Builtin { zygote: Zygote::default(), id: config.id.clone(), root, bundle: config.bundle.clone(), loopback_up: config.loopback_up })
            }
            RuntimeKind::Binary { path } => {
                check_executable(path)?;
                Box::new(Binary {
                    path: path.clone(),
                    id: config.id.clone(),
                    root,
                    bundle: config.bundle.clone(),
                    state_dir: state_dir.clone(),
                    reaper: self.reaper.clone(),
                })
            }
        };
        // skiffd kills the pid of a container's shim that stopped answering. A shim of one
        // container writes it first, so that a create cut short is killed with its shim; a group's
        // only once the container is served: a failed adoption must not name the process that
        // supervises the pod's other containers.
        let pid_file = state_dir.join(PID_FILE);
        let write_pid = || std::fs::write(&pid_file, std::process::id().to_string()).context("writing the pid file");
        if self.group.is_none() {
            write_pid()?;
        }
        let supervisor = Supervisor::create(config, state_dir.clone(), launcher, self.reaper.clone()).map_err(|e| anyhow!(e))?;
        let served = listen_in(&state_dir).and_then(|listener| {
            if self.group.is_some() {
                write_pid()?;
            }
            Ok(listener)
        });
        match served {
            Ok(listener) => Ok(Arc::new(Served { supervisor, listener, deleted: AtomicBool::new(false) })),
            Err(e) => {
                supervisor.abandon();
                let _ = std::fs::remove_file(state_dir.join(SOCKET_FILE));
                Err(e)
            }
        }
    }

    /// Ends the host if it supervises nothing (a pod's supervisor started ahead of containers
    /// that never came); true when it does.
    fn end_if_idle(&self) -> bool {
        let mut live = self.live();
        if live.containers > 0 || live.exiting {
            return false;
        }
        self.close(&mut live);
        true
    }

    /// One container deleted or not adopted after all; true when it was the last (the group
    /// socket is gone then, so no one hands this process a new container).
    fn release(&self) -> bool {
        let mut live = self.live();
        live.containers = live.containers.saturating_sub(1);
        if live.containers > 0 {
            return false;
        }
        self.close(&mut live);
        true
    }

    /// No adoption is taken from here on: the group socket and pid file go, so that the next
    /// container of the group starts a new shim; the caller ends the process once it answered.
    fn close(&self, live: &mut Live) {
        live.exiting = true;
        if let Some(dir) = &self.group {
            let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
            let _ = std::fs::remove_file(dir.join(PID_FILE));
        }
    }

    fn serve_container(self: Arc<Self>, served: Arc<Served>) {
        for stream in served.listener.incoming() {
            if served.deleted.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let (host, served) = (self.clone(), served.clone());
            // A thread per connection: Wait blocks until an exit.
            std::thread::spawn(move || host.answer(stream, &served));
        }
    }

    /// Answers one request of a container's socket. After a successful Delete the container's
    /// socket and pid file go before the answer does; the last container's answer ends the process.
    fn answer(&self, stream: UnixStream, served: &Served) {
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            return;
        }
        let (response, deleted) = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let is_delete = matches!(request, Request::Delete);
                let response = served.supervisor.handle(request);
                let deleted = is_delete && matches!(response, Response::Ok);
                (response, deleted)
            }
            Err(e) => (Response::Error { code: ErrorCode::InvalidArgument, message: format!("bad request: {e}") }, false),
        };
        let mut last = false;
        if deleted && !served.deleted.swap(true, Ordering::SeqCst) {
            let dir = served.supervisor.state_dir();
            let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
            let _ = std::fs::remove_file(dir.join(PID_FILE));
            // Wakes the accept loop, which sees `deleted` and ends.
            let _ = nix::sys::socket::shutdown(served.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            last = self.release();
            tracing::info!(container = %served.supervisor.id(), "container deleted");
        }
        write_line(&stream, &response);
        if last {
            tracing::info!("no container left; shim exits");
            std::process::exit(0);
        }
    }

    /// Serves the group socket: adoptions, one thread each.
    pub fn serve_group(self: Arc<Self>, listener: UnixListener) -> ! {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let host = self.clone();
            std::thread::spawn(move || host.answer_group(stream));
        }
        std::process::exit(1)
    }

    fn answer_group(self: Arc<Self>, stream: UnixStream) {
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            return;
        }
        let (response, last) = match serde_json::from_str::<GroupRequest>(&line) {
            Ok(GroupRequest::Adopt { state_dir }) => match self.adopt(&state_dir) {
                Ok(()) => (Response::Ok, false),
                Err(AdoptError::Exiting) => (Response::Error { code: ErrorCode::FailedPrecondition, message: GROUP_EXITING.into() }, false),
                Err(AdoptError::Failed { error, last }) => {
                    tracing::error!(state_dir = %state_dir.display(), error = format!("{error:#}"), "adoption failed");
                    (Response::Error { code: ErrorCode::Internal, message: format!("{error:#}") }, last)
                }
            },
            Ok(GroupRequest::EndIfIdle) => (Response::Ok, self.end_if_idle()),
            Err(e) => (Response::Error { code: ErrorCode::InvalidArgument, message: format!("bad request: {e}") }, false),
        };
        write_line(&stream, &response);
        if last {
            tracing::info!("no container left; shim exits");
            std::process::exit(0);
        }
    }
}

fn write_line(mut stream: &UnixStream, response: &Response) {
    if let Ok(mut bytes) = serde_json::to_vec(response) {
        bytes.push(b'\n');
        let _ = stream.write_all(&bytes);
    }
}

/// Binds `shim.sock` in `dir` (through an fd of it: the path may be longer than a socket address
/// allows), root's alone.
pub fn listen_in(dir: &Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let handle = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let socket = format!("/proc/self/fd/{}/{SOCKET_FILE}", handle.as_raw_fd());
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).context("binding the shim socket")?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).context("socket permissions")?;
    Ok(listener)
}

fn check_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("runtime binary {}", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(anyhow!("runtime binary {} is not an executable file", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutting_a_listener_down_ends_its_accept_loop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = Arc::new(listen_in(dir.path()).expect("listen"));
        let accepting = listener.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let first = accepting.accept().map(|_| ());
            let _ = done_tx.send(first.is_err());
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Both).expect("shutdown");
        let failed = done_rx.recv_timeout(std::time::Duration::from_secs(5)).expect("accept returned");
        assert!(failed, "accept after shutdown fails instead of waiting");
    }
}
