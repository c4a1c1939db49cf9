//! The launcher seam: how a shim is started for a container's state dir. The real one runs
//! skiff-shim from a sealed in-memory copy of its binary; tests put a fake in its place that
//! serves the same shim protocol in-process.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{EngineError, Result};

/// Starts a shim for a state dir holding its `shim.json`; returns once the container exists
/// (the shim serves its socket) or with the shim's error.
pub trait Launcher: Send + Sync {
    fn spawn(&self, state_dir: &Path) -> Result<()>;
}

/// skiff-shim, copied once into a sealed memfd: every shim runs from it, so replacing the binary
/// on disk (or a container writing to it) cannot change a running supervisor.
pub struct SealedShim {
    binary: File,
}

impl SealedShim {
    /// Seals a copy of `path` (empty: `skiff-shim` next to the running executable).
    pub fn new(path: &Path) -> Result<SealedShim> {
        let path = if path.as_os_str().is_empty() {
            std::env::current_exe().map_err(EngineError::io("locating the running executable"))?.with_file_name("skiff-shim")
        } else {
            PathBuf::from(path)
        };
        let mut source = File::open(&path).map_err(EngineError::io(format!("opening the shim binary {}", path.display())))?;
        let binary = pentacle::SealOptions::new()
            .executable(true)
            .close_on_exec(true)
            .copy_and_seal(&mut source)
            .map_err(EngineError::io(format!("sealing {}", path.display())))?;
        Ok(SealedShim { binary })
    }

    /// The sealed copy as a path to execute (`/proc/self/fd/N`), for skiff-shim's other modes
    /// (`pin` makes a pod's namespaces).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.binary.as_raw_fd()))
    }
}

impl Launcher for SealedShim {
    fn spawn(&self, state_dir: &Path) -> Result<()> {
        use std::os::unix::process::CommandExt;
        // The shim daemonizes: its first process exits once the container exists.
        let output = Command::new(self.path())
            .arg0("skiff-shim")
            .arg(state_dir)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(EngineError::io("running skiff-shim"))?;
        if !output.status.success() {
            return Err(EngineError::CreateFailed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
        }
        Ok(())
    }
}
