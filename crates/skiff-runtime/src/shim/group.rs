//! A group's supervisor: one skiff-shim process serving several containers (a pod's), as
//! containerd's runc shim serves every container of a pod. A pod of N containers then costs one
//! supervisor, not N.
//!
//! The group dir holds the process's own files: `shim.sock` (answers [`GroupRequest`] lines),
//! `shim.pid` and `shim.log`. A group's shim is started ahead of its containers as
//! `skiff-shim --group <group dir>` (a pod's, while its network is set up), or with its first
//! container as `skiff-shim --group <group dir> <state>`; containers are adopted over the group
//! socket. One that never got a container ends when asked ([`GroupRequest::EndIfIdle`]).
//! Each container still has its state dir and its `shim.sock` there, so skiffd drives it as it
//! drives a shim of its own. When its last container is deleted the process removes the group
//! socket and pid file, answers, and exits; an adoption that comes in while it is exiting is
//! refused with [`GROUP_EXITING`], and the caller starts a new one.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::connect_in;
use super::{ErrorCode, Response, ShimError};

/// The flag before a group dir on skiff-shim's command line.
pub const GROUP_FLAG: &str = "--group";

/// The message of a refused adoption by a group shim that is exiting (its last container was
/// deleted): start a new one.
pub const GROUP_EXITING: &str = "the group's supervisor is exiting";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum GroupRequest {
    /// Supervise the container whose `shim.json` is in `state_dir`: create it (the init waits
    /// for Start) and serve its socket. Answered `Ok` once it serves.
    Adopt { state_dir: PathBuf },
    /// End, if no container is supervised or being adopted (the pod is going away, or a
    /// restart found the group): answered `Ok` either way, then the idle shim exits.
    EndIfIdle,
}

/// How long an adoption may take: a container's create, on a loaded host.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A blocking client for a group's shim.
#[derive(Clone, Debug)]
pub struct GroupClient {
    dir: PathBuf,
}

impl GroupClient {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        GroupClient { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a group shim answers in this dir.
    pub fn alive(&self) -> bool {
        connect_in(&self.dir).is_ok()
    }

    /// Has an idle group shim (one no container was adopted into, or whose containers are all
    /// gone) exit; one that supervises containers carries on. Answers whether none serves now.
    pub fn end_if_idle(&self) -> bool {
        let Ok(mut stream) = connect_in(&self.dir) else { return true };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Ok(mut line) = serde_json::to_vec(&GroupRequest::EndIfIdle) else { return false };
        line.push(b'\n');
        if stream.write_all(&line).is_err() {
            return !self.alive();
        }
        let mut answer = String::new();
        let _ = BufReader::new(stream).read_line(&mut answer);
        !self.alive()
    }

    /// Hands the container of `state_dir` to the group's shim. `Unreachable` means no shim
    /// serves the group; `Failed` with [`GROUP_EXITING`] that it is on its way out; any other
    /// `Failed` is the container's create failing.
    pub fn adopt(&self, state_dir: &Path) -> Result<(), ShimError> {
        let op = "adopt";
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ShimError::Timeout { op, timeout: ADOPT_TIMEOUT },
            _ => ShimError::Io { op, source },
        };
        let mut stream = connect_in(&self.dir)?;
        stream.set_read_timeout(Some(ADOPT_TIMEOUT)).map_err(io)?;
        let request = GroupRequest::Adopt { state_dir: state_dir.to_path_buf() };
        let mut line = serde_json::to_vec(&request).map_err(|e| ShimError::Protocol { op, message: e.to_string() })?;
        line.push(b'\n');
        stream.write_all(&line).map_err(io)?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).map_err(io)?;
        if answer.is_empty() {
            return Err(ShimError::Protocol { op, message: "the group's shim closed the connection without answering".into() });
        }
        match serde_json::from_str(&answer).map_err(|e| ShimError::Protocol { op, message: format!("unreadable answer: {e}") })? {
            Response::Ok => Ok(()),
            Response::Error { code, message } => Err(ShimError::Failed { op, code, message }),
            other => Err(ShimError::Protocol { op, message: format!("unexpected answer {other:?}") }),
        }
    }
}

/// Whether an adoption failed because no live group shim took it (none serves the dir, or the
/// one there is exiting): then a new one is to be started.
pub fn needs_new_shim(error: &ShimError) -> bool {
    match error {
        ShimError::Unreachable { .. } => true,
        ShimError::Failed { code: ErrorCode::FailedPrecondition, message, .. } => message == GROUP_EXITING,
        _ => false,
    }
}
