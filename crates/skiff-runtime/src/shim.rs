//! The protocol between skiffd and `skiff-shim`, the per-container supervisor.
//!
//! skiffd writes a [`ShimConfig`] to `<state>/shim.json` and runs `skiff-shim <state>`; the shim
//! creates the container (the init waits for `Start`), and its first process exits 0 once the
//! daemon it forked serves `<state>/shim.sock` (or 1, with the error on stderr): one JSON [`Request`] line
//! per connection, answered by one JSON [`Response`] line. When the init exits the shim writes
//! `<state>/exit.json` (atomically), so a restarted skiffd learns the exit even if the shim is gone.
//!
//! State directory layout:
//! ```text
//! <state>/shim.json      ShimConfig (skiffd → shim)
//! <state>/shim.sock      the shim's socket
//! <state>/shim.pid       the shim daemon's pid
//! <state>/shim.log       the shim's own log (libcontainer's too; never the container's stderr)
//! <state>/exit.json      ExitStatus of the init, once it exited
//! <state>/runtime/       the OCI runtime's state root (libcontainer or the external binary)
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "shim.json";
pub const SOCKET_FILE: &str = "shim.sock";
pub const PID_FILE: &str = "shim.pid";
pub const LOG_FILE: &str = "shim.log";
pub const EXIT_FILE: &str = "exit.json";
pub const RUNTIME_DIR: &str = "runtime";

/// Which OCI runtime runs the container.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RuntimeKind {
    /// youki's libcontainer, linked into the shim.
    Builtin,
    /// A runc-compatible binary (runc, crun, urunc, kata-runtime …).
    Binary { path: PathBuf },
}

/// Where a process's stdio is attached besides the log: FIFOs the client made (as `ctr` does).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub tty: bool,
    /// Initial terminal size (rows, columns) when `tty`.
    pub size: Option<(u16, u16)>,
}

/// What the shim is asked to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// The bundle: `config.json` and the mounted `rootfs`.
    pub bundle: PathBuf,
    /// The container's log, in the CRI format.
    pub log_path: PathBuf,
    pub runtime: RuntimeKind,
    pub stdio: Stdio,
    /// The container's cgroup (as in `linux.cgroupsPath`), to read OOM kills from.
    pub cgroup_path: Option<String>,
    /// Bring loopback up in the container's new network namespace (libcontainer leaves it down).
    pub loopback_up: bool,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Stopped,
}

/// How a process ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    pub pid: i32,
    /// The exit code, or 128 + the signal that killed it.
    pub code: i32,
    pub signal: Option<i32>,
    /// Killed by the kernel's OOM killer (the cgroup's `oom_kill` count rose).
    pub oom_killed: bool,
    /// RFC 3339.
    pub exited_at: String,
}

impl ExitStatus {
    pub fn reason(&self) -> &'static str {
        if self.oom_killed {
            "OOMKilled"
        } else if self.code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub pid: i32,
    pub status: Status,
    pub exit: Option<ExitStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Request {
    Start,
    State,
    /// Blocks until the init (no `exec_id`) or that exec'd process exited.
    Wait { exec_id: Option<String> },
    /// Signals the init, or with `all` every process of the container.
    Kill { signal: i32, all: bool },
    /// Runs `process` (an OCI `process` object) in the container.
    Exec { exec_id: String, process: serde_json::Value, stdio: Stdio },
    ResizePty { exec_id: Option<String>, rows: u16, columns: u16 },
    /// Reopens the log file (after the caller rotated it).
    ReopenLog,
    /// Deletes the container (it must be stopped) and ends the shim.
    Delete,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Response {
    Ok,
    State(State),
    Exited(ExitStatus),
    Exec { pid: i32 },
    Error { code: ErrorCode, message: String },
}

/// The few ways a shim request fails, mapped to gRPC codes by skiffd.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    FailedPrecondition,
    InvalidArgument,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("shim of {dir} is not reachable: {source}")]
    Unreachable { dir: PathBuf, source: std::io::Error },
    #[error("shim connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("shim protocol: {0}")]
    Protocol(String),
    #[error("{message}")]
    Failed { code: ErrorCode, message: String },
}

/// A blocking client for one shim (skiffd calls it from blocking tasks).
#[derive(Clone, Debug)]
pub struct ShimClient {
    state_dir: PathBuf,
}

impl ShimClient {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        ShimClient { state_dir: state_dir.into() }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn connect(&self) -> Result<UnixStream, ShimError> {
        // A state dir can be longer than a socket address allows (108 bytes); reaching the socket
        // through an fd of its directory keeps the address short whatever the root is.
        let unreachable = |source| ShimError::Unreachable { dir: self.state_dir.clone(), source };
        let dir = std::fs::File::open(&self.state_dir).map_err(unreachable)?;
        UnixStream::connect(format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd())).map_err(unreachable)
    }

    /// Whether a shim answers on this state dir.
    pub fn alive(&self) -> bool {
        self.connect().is_ok()
    }

    /// Sends one request; `timeout` bounds the wait for the answer (None: wait as long as it takes).
    pub fn call(&self, request: &Request, timeout: Option<Duration>) -> Result<Response, ShimError> {
        let mut stream = self.connect()?;
        stream.set_read_timeout(timeout)?;
        let mut line = serde_json::to_vec(request).map_err(|e| ShimError::Protocol(e.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer)?;
        if answer.is_empty() {
            return Err(ShimError::Protocol("shim closed the connection without answering".into()));
        }
        match serde_json::from_str(&answer).map_err(|e| ShimError::Protocol(e.to_string()))? {
            Response::Error { code, message } => Err(ShimError::Failed { code, message }),
            other => Ok(other),
        }
    }
}

/// Reads `<state>/exit.json` if the shim wrote it.
pub fn read_exit_file(state_dir: &Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
