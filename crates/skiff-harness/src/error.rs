//! What can go wrong starting, driving or tearing down a harness.

use std::path::PathBuf;
use std::process::ExitStatus;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name} not found (looked at {}): build it with `cargo build -p skiffd -p skiff -p skiff-shim`, set SKIFF_BIN_DIR, or pass its path to the builder", paths(looked))]
    BinaryNotFound { name: String, looked: Vec<PathBuf> },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{} --print-default-config` failed ({status}): {stderr}", skiffd.display())]
    DefaultConfig { skiffd: PathBuf, status: String, stderr: String },
    #[error("skiffd exited ({status}) while starting; its log:\n{log}")]
    Exited { status: ExitStatus, log: String },
    #[error("skiffd did not answer on {} within {secs}s; its log:\n{log}", socket.display())]
    NotReady { socket: PathBuf, secs: u64, log: String },
    #[error("skiffd did not exit within {secs}s of SIGTERM, so it was killed; its log:\n{log}")]
    StopTimeout { secs: u64, log: String },
    #[error("subscribe to skiffd's events (the harness follows every container created): {0}")]
    Subscribe(String),
    #[error("skiffd is not running (start it again with restart())")]
    NotRunning,
    #[error("connect to skiffd at {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("invalid bridge name {0:?}: 1 to 15 characters of letters, digits, '-', '_' or '.'")]
    BadBridgeName(String),
    #[error("invalid subnet {0:?}: expected an IPv4 /24 such as 10.200.7.0/24")]
    BadSubnet(String),
    #[error("interface {0} already exists on this host: pick another bridge name (the harness deletes its bridge at teardown)")]
    BridgeExists(String),
    #[error("subnet {0} is in use on this host (a route covers it, or another live harness holds it)")]
    SubnetInUse(String),
    #[error("no free /24 between 10.200.0.0 and 10.250.255.0: each one is routed on this host or held by another harness")]
    NoFreeSubnet,
    #[error("`skiff {args}` failed ({status}): {stderr}")]
    CliFailed { args: String, status: ExitStatus, stderr: String },
    #[error("the async runtime for {what} panicked")]
    RuntimePanicked { what: String },
}

impl Error {
    /// Wraps an I/O error with what was being done, for `map_err`.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

fn paths(looked: &[PathBuf]) -> String {
    if looked.is_empty() {
        return "nothing".into();
    }
    looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
