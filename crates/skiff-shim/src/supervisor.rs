//! One container's supervision: its init and exec'd processes, their exits, and the requests
//! skiffd sends.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use skiff_runtime::shim::{ErrorCode, ExitStatus, Request, Response, ShimConfig, State, Status, Stdio, EXIT_FILE};

use crate::fanout::{Fanout, StdinPolicy};
use crate::io::{self, Attached, ConsoleAt, LogSink};
use crate::launcher::Launcher;
use crate::procs::{oom_kills, pidfd_open, pidfd_send_signal, write_atomically};
use crate::reaper::{Ended, Reaper};

/// How long a process's output may keep flowing after it exited (a grandchild holding the pipe).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

struct Process {
    pid: i32,
    exit: Option<ExitStatus>,
    master: Option<Arc<File>>,
    /// Lets signals reach the process even if its pid were reused after it was reaped.
    pidfd: Option<OwnedFd>,
    /// Where clients attach to its stdio (the init's; gone once it exited).
    fanout: Option<Arc<Fanout>>,
}

/// How long a failed kill waits for the init's exit before trying once more.
const KILL_RACE_WAIT: Duration = Duration::from_millis(200);

/// Exited exec'd processes kept for a late Wait; older ones are forgotten, so that a container
/// probed by ExecSync every few seconds for months does not grow its shim.
const KEPT_EXITED_EXECS: usize = 64;

pub struct Inner {
    status: Status,
    init: Process,
    execs: HashMap<String, Process>,
    /// Exec ids in the order their processes exited.
    exited_execs: VecDeque<String>,
}

pub struct Supervisor {
    config: ShimConfig,
    state_dir: PathBuf,
    /// The state dir, held open: console sockets are bound and reached through it.
    dir: File,
    launcher: Box<dyn Launcher>,
    reaper: Arc<Reaper>,
    log: Arc<LogSink>,
    inner: Mutex<Inner>,
    changed: Condvar,
}

fn failed(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error { code, message: message.into() }
}

/// A signal through a pidfd; a process that is already gone is fine.
fn signal_process(pidfd: &OwnedFd, signal: i32) -> Response {
    match pidfd_send_signal(pidfd, signal) {
        Ok(()) => Response::Ok,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Response::Ok,
        Err(e) => failed(ErrorCode::Internal, format!("signal {signal}: {e}")),
    }
}

/// A console socket named `name` in the state dir held open as `dir`.
fn console_at(dir: &File, name: &str) -> ConsoleAt {
    let fd = dir.as_raw_fd();
    ConsoleAt { bind: PathBuf::from(format!("/proc/self/fd/{fd}/{name}")), reach: PathBuf::from(format!("/proc/{}/fd/{fd}/{name}", std::process::id())) }
}

impl Supervisor {
    /// Creates the container (its init waits for Start).
    pub fn create(config: ShimConfig, state_dir: PathBuf, launcher: Box<dyn Launcher>, reaper: Arc<Reaper>) -> Result<Arc<Supervisor>, String> {
        let dir = File::open(&state_dir).map_err(|e| format!("opening the state dir {}: {e}", state_dir.display()))?;
        let log = Arc::new(LogSink::open(&config.log_path).map_err(|e| format!("opening log {}: {e}", config.log_path.display()))?);
        let policy = StdinPolicy { open: config.open_stdin, once: config.stdin_once };
        let (child, pending) = io::prepare(&config.stdio, policy, Some(log.clone()), console_at(&dir, "console.sock")).map_err(|e| format!("stdio: {e}"))?;
        let pid = match launcher.create(child) {
            Ok(pid) => pid,
            Err(e) => {
                // A failed create can leave the runtime's state and cgroup behind.
                let _ = launcher.delete();
                return Err(e.to_string());
            }
        };
        // Opened before Start, while the init is blocked and cannot have exited.
        let init_pidfd = pidfd_open(pid);
        let attached = match pending.attach() {
            Ok(a) => a,
            Err(e) => {
                let _ = launcher.kill(libc::SIGKILL, true);
                let _ = launcher.delete();
                return Err(format!("attaching the container's stdio: {e}"));
            }
        };
        let inner = Inner {
            status: Status::Created,
            init: Process { pid, exit: None, master: attached.master.clone(), pidfd: init_pidfd, fanout: Some(attached.fanout.clone()) },
            execs: HashMap::new(),
            exited_execs: VecDeque::new(),
        };
        let supervisor = Arc::new(Supervisor { config, state_dir, dir, launcher, reaper, log, inner: Mutex::new(inner), changed: Condvar::new() });
        supervisor.watch(pid, None, attached);
        tracing::info!(container = %supervisor.config.id, pid, "container created");
        Ok(supervisor)
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn watch(self: &Arc<Self>, pid: i32, exec_id: Option<String>, mut attached: Attached) {
        let this = self.clone();
        std::thread::spawn(move || {
            let ended = this.reaper.wait(pid);
            attached.drain(DRAIN_LIMIT);
            let oom_killed = exec_id.is_none()
                && ended == Ended::Signaled(libc::SIGKILL)
                && this.config.cgroup_path.as_deref().is_some_and(|p| oom_kills(p) > 0);
            let exit = ExitStatus {
                pid,
                code: ended.code(),
                signal: match ended {
                    Ended::Signaled(s) => Some(s),
                    Ended::Exited(_) => None,
                },
                oom_killed,
                exited_at: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
                lost: false,
                start_error: None,
            };
            tracing::info!(container = %this.config.id, pid, exec_id = exec_id.as_deref().unwrap_or(""), code = exit.code, oom_killed, "process exited");
            if exec_id.is_none() {
                match serde_json::to_vec(&exit) {
                    Ok(bytes) => {
                        if let Err(e) = write_atomically(&this.state_dir.join(EXIT_FILE), &bytes) {
                            tracing::error!(container = %this.config.id, error = %e, "writing the exit file");
                        }
                    }
                    Err(e) => tracing::error!(container = %this.config.id, error = %e, "encoding the exit status"),
                }
            }
            let mut inner = this.lock();
            match &exec_id {
                None => {
                    inner.init.exit = Some(exit);
                    inner.status = Status::Stopped;
                    inner.init.pidfd = None;
                    inner.init.fanout = None;
                }
                Some(id) => {
                    if let Some(p) = inner.execs.get_mut(id) {
                        p.exit = Some(exit);
                        p.pidfd = None;
                    }
                    inner.exited_execs.push_back(id.clone());
                    while inner.exited_execs.len() > KEPT_EXITED_EXECS {
                        if let Some(old) = inner.exited_execs.pop_front() {
                            inner.execs.remove(&old);
                        }
                    }
                }
            }
            drop(inner);
            this.changed.notify_all();
            // After the exit is recorded: a client that sees its output end asks for the exit
            // and gets it at once.
            attached.fanout.finish();
        });
    }

    fn state(&self) -> State {
        let inner = self.lock();
        State { pid: inner.init.pid, status: inner.status, exit: inner.init.exit.clone() }
    }

    /// Handles one request. `Delete` answers Ok and then the caller ends the shim.
    pub fn handle(self: &Arc<Self>, request: Request) -> Response {
        match request {
            Request::State => Response::State(self.state()),
            Request::Start => {
                if self.lock().status != Status::Created {
                    return failed(ErrorCode::FailedPrecondition, "container is not in the created state");
                }
                match self.launcher.start() {
                    Ok(()) => {
                        let mut inner = self.lock();
                        if inner.status == Status::Created {
                            inner.status = Status::Running;
                        }
                        Response::Ok
                    }
                    Err(e) => failed(ErrorCode::Internal, format!("start: {e}")),
                }
            }
            Request::Wait { exec_id } => {
                let mut inner = self.lock();
                loop {
                    let process = match &exec_id {
                        None => Some(&inner.init),
                        Some(id) => inner.execs.get(id),
                    };
                    match process {
                        None => return failed(ErrorCode::NotFound, format!("no exec'd process {:?}", exec_id.unwrap_or_default())),
                        Some(Process { exit: Some(exit), .. }) => return Response::Exited(exit.clone()),
                        Some(_) => inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner()),
                    }
                }
            }
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::KillExec { exec_id, signal } => self.kill_exec(&exec_id, signal),
            Request::Exec { exec_id, process, stdio } => self.exec(exec_id, process, stdio),
            Request::Attach { stdio } => self.attach(&stdio),
            Request::ResizePty { exec_id, rows, columns } => {
                let inner = self.lock();
                let master = match &exec_id {
                    None => inner.init.master.clone(),
                    Some(id) => inner.execs.get(id).and_then(|p| p.master.clone()),
                };
                drop(inner);
                match master {
                    Some(m) => match io::resize(&m, rows, columns) {
                        Ok(()) => Response::Ok,
                        Err(e) => failed(ErrorCode::Internal, format!("resize: {e}")),
                    },
                    None => failed(ErrorCode::FailedPrecondition, "the process has no terminal"),
                }
            }
            Request::ReopenLog => match self.log.reopen() {
                Ok(()) => Response::Ok,
                Err(e) => failed(ErrorCode::Internal, format!("reopening the log: {e}")),
            },
            Request::Delete => self.delete(),
        }
    }

    fn kill(&self, signal: i32, all: bool) -> Response {
        let inner = self.lock();
        if inner.init.exit.is_some() {
            return Response::Ok;
        }
        if !all {
            if let Some(pidfd) = &inner.init.pidfd {
                return signal_process(pidfd, signal);
            }
        }
        drop(inner);
        let Err(first) = self.launcher.kill(signal, all) else { return Response::Ok };
        // The runtime signals the processes it listed in the cgroup one by one, and fails on one
        // that exited in between (libcontainer: `/proc/<pid>/stat` not found), typically the
        // init itself under a SIGKILL to all: once the init's exit is seen, or a second pass
        // over what is left succeeds, the signal reached everything there was.
        if self.init_exited_within(KILL_RACE_WAIT) {
            tracing::debug!(container = %self.config.id, error = %first, "kill raced with the exit");
            return Response::Ok;
        }
        match self.launcher.kill(signal, all) {
            Ok(()) => {
                tracing::debug!(container = %self.config.id, error = %first, "kill raced with a process's exit; a second pass succeeded");
                Response::Ok
            }
            Err(_) if self.init_exited_within(KILL_RACE_WAIT) => Response::Ok,
            Err(e) => failed(ErrorCode::Internal, format!("kill: {e}")),
        }
    }

    /// Whether the init's exit is recorded, waiting up to `limit` for it.
    fn init_exited_within(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut inner = self.lock();
        while inner.init.exit.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = self.changed.wait_timeout(inner, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    fn kill_exec(&self, exec_id: &str, signal: i32) -> Response {
        let inner = self.lock();
        match inner.execs.get(exec_id) {
            None => failed(ErrorCode::NotFound, format!("no exec'd process {exec_id:?}")),
            Some(Process { exit: Some(_), .. }) => Response::Ok,
            Some(Process { pidfd: Some(pidfd), .. }) => signal_process(pidfd, signal),
            Some(Process { pidfd: None, .. }) => failed(ErrorCode::Internal, format!("exec'd process {exec_id:?} cannot be signalled safely: no pidfd")),
        }
    }

    /// Attaches a client to the running init's stdio.
    fn attach(&self, stdio: &Stdio) -> Response {
        let inner = self.lock();
        if inner.status != Status::Running {
            return failed(ErrorCode::FailedPrecondition, "container is not running");
        }
        let (fanout, master) = (inner.init.fanout.clone(), inner.init.master.clone());
        drop(inner);
        let Some(fanout) = fanout else { return failed(ErrorCode::FailedPrecondition, "container is not running") };
        if let Err(e) = fanout.attach(stdio) {
            return failed(e.code(), e.to_string());
        }
        if let (Some(master), Some((rows, columns))) = (master, stdio.size) {
            if let Err(e) = io::resize(&master, rows, columns) {
                tracing::warn!(container = %self.config.id, error = %e, "resizing the terminal for an attached client");
            }
        }
        Response::Ok
    }

    fn exec(self: &Arc<Self>, exec_id: String, process: serde_json::Value, stdio: Stdio) -> Response {
        if exec_id.is_empty() || !exec_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return failed(ErrorCode::InvalidArgument, format!("bad exec id {exec_id:?}"));
        }
        {
            let inner = self.lock();
            if inner.status != Status::Running {
                return failed(ErrorCode::FailedPrecondition, "container is not running");
            }
            if inner.execs.contains_key(&exec_id) {
                return failed(ErrorCode::InvalidArgument, format!("exec id {exec_id:?} is in use"));
            }
        }
        let process_file = self.state_dir.join(format!("exec-{exec_id}.json"));
        if let Err(e) = serde_json::to_vec(&process).map_err(std::io::Error::other).and_then(|b| std::fs::write(&process_file, b)) {
            return failed(ErrorCode::Internal, format!("writing the exec process: {e}"));
        }
        let console = console_at(&self.dir, &format!("exec-{exec_id}.sock"));
        let result = io::prepare(&stdio, StdinPolicy::default(), None, console)
            .map_err(|e| failed(ErrorCode::Internal, format!("exec stdio: {e}")))
            .and_then(|(child, pending)| {
                let pid = self.launcher.exec(&process_file, child).map_err(|e| failed(ErrorCode::InvalidArgument, format!("exec: {e}")))?;
                let attached = pending.attach().map_err(|e| failed(ErrorCode::Internal, format!("exec stdio: {e}")))?;
                Ok((pid, attached))
            });
        let _ = std::fs::remove_file(&process_file);
        match result {
            Ok((pid, attached)) => {
                // Opened before the watcher can reap it: a zombie still has its pidfd.
                let pidfd = pidfd_open(pid);
                self.lock().execs.insert(exec_id.clone(), Process { pid, exit: None, master: attached.master.clone(), pidfd, fanout: None });
                self.watch(pid, Some(exec_id), attached);
                Response::Exec { pid }
            }
            Err(response) => response,
        }
    }

    /// Ends and deletes a created container that will not be served after all.
    pub fn abandon(&self) {
        let _ = self.delete();
    }

    fn delete(&self) -> Response {
        let status = self.lock().status;
        if status == Status::Running {
            return failed(ErrorCode::FailedPrecondition, "container is running: stop or kill it first");
        }
        if status == Status::Created {
            // Never started: its init is blocked; end it before deleting.
            let _ = self.launcher.kill(libc::SIGKILL, true);
            let mut inner = self.lock();
            while inner.init.exit.is_none() {
                inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
            }
        }
        match self.launcher.delete() {
            Ok(()) => Response::Ok,
            Err(e) => failed(ErrorCode::Internal, format!("delete: {e}")),
        }
    }
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
