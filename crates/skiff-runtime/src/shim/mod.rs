//! The protocol between skiffd and `skiff-shim`, the per-container supervisor.
//!
//! skiffd writes a [`ShimConfig`] to `<state>/shim.json` and runs `skiff-shim <state>`; the shim
//! creates the container (the init waits for `Start`), and its first process exits 0 once the
//! daemon it forked serves `<state>/shim.sock` (or 1, with the error on stderr): one JSON [`Request`] line
//! per connection, answered by one JSON [`Response`] line. When the init exits the shim writes
//! `<state>/exit.json` (atomically), so a restarted skiffd learns the exit even if the shim is gone.
//!
//! A container may instead be supervised by its group's shim (a pod's: one process for all its
//! containers): the first is started as `skiff-shim --group <group dir> <state>`, the next ones
//! are handed to it with [`GroupClient::adopt`]; see [`group`](GroupClient). Each container keeps
//! its own state dir and socket either way, so skiffd drives it the same.
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

use std::path::PathBuf;

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
    /// Keep the init's stdin open for clients that [`Request::Attach`] later (the CRI's `stdin`,
    /// `skiff run -i`): the shim holds a stdin pipe even when no FIFO was given at create.
    /// Without it an attach that asks for stdin is refused.
    #[serde(default)]
    pub open_stdin: bool,
    /// Close the init's stdin once the first client attached to it ends its stdin (the CRI's
    /// `stdin_once`); without a terminal only, as containerd and docker do.
    #[serde(default)]
    pub stdin_once: bool,
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
    /// Not seen: the shim died without writing it, so skiffd made this one up (code 255).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
    /// The container never ran: its start failed with this (code 128, reason StartError, as
    /// containerd records a task that could not be made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

/// Why a process ended, as the CRI's `reason` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    Completed,
    Error,
    OomKilled,
    /// The exit was lost with its shim.
    Unknown,
    /// It never ran: its start failed.
    StartError,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Completed => "Completed",
            ExitReason::Error => "Error",
            ExitReason::OomKilled => "OOMKilled",
            ExitReason::Unknown => "Unknown",
            ExitReason::StartError => "StartError",
        }
    }
}

impl ExitStatus {
    /// The exit of a process whose shim is gone without a word: code 255, reason Unknown.
    pub fn lost(exited_at: String) -> ExitStatus {
        ExitStatus { pid: 0, code: 255, signal: None, oom_killed: false, exited_at, lost: true, start_error: None }
    }

    /// The end of a container whose start failed before its process ran: code 128, reason
    /// StartError, the error kept as the message.
    pub fn start_failed(exited_at: String, error: String) -> ExitStatus {
        ExitStatus { pid: 0, code: 128, signal: None, oom_killed: false, exited_at, lost: false, start_error: Some(error) }
    }

    pub fn reason(&self) -> ExitReason {
        if self.start_error.is_some() {
            ExitReason::StartError
        } else if self.lost {
            ExitReason::Unknown
        } else if self.oom_killed {
            ExitReason::OomKilled
        } else if self.code == 0 {
            ExitReason::Completed
        } else {
            ExitReason::Error
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
    /// Signals one exec'd process only (an ExecSync past its timeout), never the container.
    KillExec { exec_id: String, signal: i32 },
    /// Runs `process` (an OCI `process` object) in the container.
    Exec { exec_id: String, process: serde_json::Value, stdio: Stdio },
    /// Attaches one more client to the running init's stdio: its output (stdout, and stderr
    /// without a terminal) goes to these FIFOs as well as to the log until the init exits, when
    /// they are closed; its stdin FIFO, if given, feeds the init's stdin (one client at a time,
    /// and only when the container keeps stdin open). `tty` must be the container's; `size`
    /// resizes its terminal. Answered `Ok` once the FIFOs are wired.
    Attach { stdio: Stdio },
    ResizePty { exec_id: Option<String>, rows: u16, columns: u16 },
    /// Reopens the log file (after the caller rotated it).
    ReopenLog,
    /// Deletes the container (it must be stopped); the shim ends when it supervises no other.
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

mod client;
mod group;

pub use client::{parse_answer, read_exit_file, request_line, ShimClient, ShimError};
pub use group::{needs_new_shim, GroupClient, GroupRequest, GROUP_EXITING, GROUP_FLAG};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shim_json_from_before_the_stdin_flags_still_reads() {
        let old = r#"{"id":"c1","bundle":"/b","log_path":"/l","runtime":{"kind":"builtin"},
            "stdio":{"stdin":null,"stdout":null,"stderr":null,"tty":false,"size":null},"cgroup_path":null,"loopback_up":true}"#;
        let config: ShimConfig = serde_json::from_str(old).expect("an old shim.json parses");
        assert!(!config.open_stdin && !config.stdin_once, "the stdin flags default off");
    }

    #[test]
    fn an_attach_goes_on_the_wire_with_its_fifos() {
        let stdio = Stdio { stdin: Some("/io/x/stdin".into()), stdout: Some("/io/x/stdout".into()), stderr: None, tty: true, size: Some((24, 80)) };
        let line = request_line(&Request::Attach { stdio: stdio.clone() });
        let text = String::from_utf8(line).expect("utf-8");
        assert!(text.starts_with(r#"{"op":"attach","stdio":{"#) && text.ends_with('\n'), "{text}");
        match serde_json::from_str::<Request>(text.trim_end()).expect("parses back") {
            Request::Attach { stdio: back } => assert_eq!(back, stdio),
            other => panic!("read back as {other:?}"),
        }
    }
}
