//! The typed client skiffd uses to drive one shim: one method per request, each returning what
//! that request answers or a [`ShimError`] naming the operation. Blocking; the wire helpers
//! ([`request_line`], [`parse_answer`]) let an async caller speak the same protocol.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_types::{ErrorKind, HasKind};

use super::{ErrorCode, ExitStatus, Request, Response, State, Stdio, EXIT_FILE, SOCKET_FILE};

/// How a shim request failed.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("shim of {dir} is not reachable: {source}")]
    Unreachable { dir: PathBuf, source: std::io::Error },
    #[error("shim {op}: the connection failed: {source}")]
    Io { op: &'static str, source: std::io::Error },
    #[error("shim {op}: no answer within {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("shim {op}: {message}")]
    Protocol { op: &'static str, message: String },
    /// The shim refused or failed the request; its message is for the user as it is.
    #[error("{message}")]
    Failed { op: &'static str, code: ErrorCode, message: String },
}

impl HasKind for ShimError {
    fn kind(&self) -> ErrorKind {
        match self {
            ShimError::Unreachable { .. } | ShimError::Io { .. } | ShimError::Timeout { .. } => ErrorKind::Unavailable,
            ShimError::Protocol { .. } => ErrorKind::Internal,
            ShimError::Failed { code, .. } => match code {
                ErrorCode::NotFound => ErrorKind::NotFound,
                ErrorCode::FailedPrecondition => ErrorKind::FailedPrecondition,
                ErrorCode::InvalidArgument => ErrorKind::InvalidArgument,
                ErrorCode::Internal => ErrorKind::Internal,
            },
        }
    }
}

/// The name of a request in errors and logs.
fn op_name(request: &Request) -> &'static str {
    match request {
        Request::Start => "start",
        Request::State => "state",
        Request::Wait { .. } => "wait",
        Request::Kill { .. } => "kill",
        Request::Exec { .. } => "exec",
        Request::Attach { .. } => "attach",
        Request::KillExec { .. } => "kill-exec",
        Request::ResizePty { .. } => "resize",
        Request::ReopenLog => "reopen-log",
        Request::Delete => "delete",
    }
}

/// One request as it goes on the wire: a JSON line.
pub fn request_line(request: &Request) -> Vec<u8> {
    // Plain derived enums of strings and numbers always serialize.
    let mut line = serde_json::to_vec(request).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The answer line to `request`: the shim's refusal becomes `ShimError::Failed`.
pub fn parse_answer(request: &Request, answer: &str) -> Result<Response, ShimError> {
    let op = op_name(request);
    if answer.is_empty() {
        return Err(ShimError::Protocol { op, message: "the shim closed the connection without answering".into() });
    }
    match serde_json::from_str(answer).map_err(|e| ShimError::Protocol { op, message: format!("unreadable answer: {e}") })? {
        Response::Error { code, message } => Err(ShimError::Failed { op, code, message }),
        other => Ok(other),
    }
}

fn unexpected(request: &Request, answer: Response) -> ShimError {
    ShimError::Protocol { op: op_name(request), message: format!("unexpected answer {answer:?}") }
}

/// How long a request may take when the caller sets no bound: long enough for a loaded host.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking client for one shim.
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

    /// The shim's socket, reached through an fd of its directory: a state dir can be longer than
    /// a socket address allows (108 bytes), this path never is. The fd must stay open while the
    /// path is used.
    pub fn socket_via(&self) -> Result<(std::fs::File, String), ShimError> {
        let dir = std::fs::File::open(&self.state_dir).map_err(|source| ShimError::Unreachable { dir: self.state_dir.clone(), source })?;
        let path = format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd());
        Ok((dir, path))
    }

    fn connect(&self) -> Result<UnixStream, ShimError> {
        connect_in(&self.state_dir)
    }

    /// Whether a shim answers on this state dir.
    pub fn alive(&self) -> bool {
        self.connect().is_ok()
    }

    /// Sends one request; `timeout` bounds the wait for the answer (None: as long as it takes).
    fn call(&self, request: &Request, timeout: Option<Duration>) -> Result<Response, ShimError> {
        let op = op_name(request);
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ShimError::Timeout { op, timeout: timeout.unwrap_or_default() },
            _ => ShimError::Io { op, source },
        };
        let mut stream = self.connect()?;
        stream.set_read_timeout(timeout).map_err(io)?;
        stream.write_all(&request_line(request)).map_err(io)?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).map_err(io)?;
        parse_answer(request, &answer)
    }

    fn expect_ok(&self, request: Request, timeout: Duration) -> Result<(), ShimError> {
        match self.call(&request, Some(timeout))? {
            Response::Ok => Ok(()),
            other => Err(unexpected(&request, other)),
        }
    }

    pub fn state(&self) -> Result<State, ShimError> {
        let request = Request::State;
        match self.call(&request, Some(Duration::from_secs(10)))? {
            Response::State(s) => Ok(s),
            other => Err(unexpected(&request, other)),
        }
    }

    /// Starts the container's init.
    pub fn start(&self) -> Result<(), ShimError> {
        self.expect_ok(Request::Start, DEFAULT_TIMEOUT)
    }

    /// Waits up to `timeout` (None: as long as it takes) for the init's (or an exec's) exit.
    pub fn wait(&self, exec_id: Option<&str>, timeout: Option<Duration>) -> Result<ExitStatus, ShimError> {
        let request = Request::Wait { exec_id: exec_id.map(str::to_string) };
        match self.call(&request, timeout)? {
            Response::Exited(exit) => Ok(exit),
            other => Err(unexpected(&request, other)),
        }
    }

    /// Signals the init, or with `all` every process of the container.
    pub fn kill(&self, signal: i32, all: bool) -> Result<(), ShimError> {
        self.expect_ok(Request::Kill { signal, all }, Duration::from_secs(10))
    }

    /// Signals one exec'd process; fine when it already exited.
    pub fn kill_exec(&self, exec_id: &str, signal: i32) -> Result<(), ShimError> {
        self.expect_ok(Request::KillExec { exec_id: exec_id.to_string(), signal }, Duration::from_secs(10))
    }

    /// SIGKILL to every process of the container, then its init's exit.
    pub fn kill_all(&self) -> Result<ExitStatus, ShimError> {
        self.kill(SIGKILL, true)?;
        self.wait(None, Some(DEFAULT_TIMEOUT))
    }

    /// Runs `process` (an OCI `process` object) in the container; returns its pid.
    pub fn exec(&self, exec_id: &str, process: serde_json::Value, stdio: Stdio) -> Result<i32, ShimError> {
        let request = Request::Exec { exec_id: exec_id.to_string(), process, stdio };
        match self.call(&request, Some(DEFAULT_TIMEOUT))? {
            Response::Exec { pid } => Ok(pid),
            other => Err(unexpected(&request, other)),
        }
    }

    /// Attaches a client's FIFOs to the running init's stdio (see [`Request::Attach`]).
    pub fn attach(&self, stdio: Stdio) -> Result<(), ShimError> {
        self.expect_ok(Request::Attach { stdio }, Duration::from_secs(10))
    }

    pub fn resize(&self, exec_id: Option<&str>, rows: u16, columns: u16) -> Result<(), ShimError> {
        self.expect_ok(Request::ResizePty { exec_id: exec_id.map(str::to_string), rows, columns }, Duration::from_secs(5))
    }

    pub fn reopen_log(&self) -> Result<(), ShimError> {
        self.expect_ok(Request::ReopenLog, Duration::from_secs(5))
    }

    /// Deletes the stopped container; the shim ends after answering.
    pub fn delete(&self) -> Result<(), ShimError> {
        self.expect_ok(Request::Delete, DEFAULT_TIMEOUT)
    }
}

/// Connects to the `shim.sock` of `dir` through an fd of the directory (see
/// [`ShimClient::socket_via`]).
pub(super) fn connect_in(dir: &Path) -> Result<UnixStream, ShimError> {
    let unreachable = |source| ShimError::Unreachable { dir: dir.to_path_buf(), source };
    let handle = std::fs::File::open(dir).map_err(unreachable)?;
    UnixStream::connect(format!("/proc/self/fd/{}/{SOCKET_FILE}", handle.as_raw_fd())).map_err(unreachable)
}

/// SIGKILL's number on every Linux architecture.
const SIGKILL: i32 = 9;

/// Reads `<state>/exit.json` if the shim wrote it.
pub fn read_exit_file(state_dir: &Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
