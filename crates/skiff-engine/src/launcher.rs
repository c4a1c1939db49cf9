//! The launcher seam: how a container's state dir gets a supervisor. The real one runs
//! skiff-shim from a sealed in-memory copy of its binary, one process per group (a pod's
//! containers share one) or per container; tests put a fake in its place that serves the same
//! shim protocol in-process.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use skiff_runtime::shim::{self, GroupClient, GROUP_FLAG};

use crate::error::{EngineError, Result};

/// Gives a state dir holding its `shim.json` a supervisor; returns once the container exists
/// (its socket is served) or with the shim's error.
pub trait Launcher: Send + Sync {
    /// `group`: the dir of the supervisor the container shares with the others of its group
    /// (made if missing); None for a supervisor of its own.
    fn spawn(&self, state_dir: &Path, group: Option<&Path>) -> Result<()>;
    /// Starts a group's supervisor ahead of its containers (a pod's, while its network is set
    /// up), so that its first container's start finds it; nothing when one serves already.
    fn prepare(&self, group: &Path) -> Result<()>;
    /// Ends a group's supervisor if it supervises nothing (started ahead, or its containers all
    /// gone), then removes the group's dir once none serves it.
    fn release(&self, group: &Path);
}

/// How many fresh copies of the shim are sealed before a busy refusal is the answer.
const SEAL_ATTEMPTS: u32 = 5;

/// skiff-shim, copied once into a sealed memfd: every shim runs from it, so replacing the binary
/// on disk (or a container writing to it) cannot change a running supervisor.
pub struct SealedShim {
    binary: File,
    /// One lock per group dir: the choice between adopting into the group's shim and starting
    /// one is made by one caller at a time.
    groups: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
}

impl SealedShim {
    /// Seals a copy of `path` (empty: `skiff-shim` next to the running executable).
    pub fn new(path: &Path) -> Result<SealedShim> {
        let path = if path.as_os_str().is_empty() {
            std::env::current_exe().map_err(EngineError::io("locating the running executable"))?.with_file_name("skiff-shim")
        } else {
            PathBuf::from(path)
        };
        // The write seal is refused (EBUSY) while the kernel still holds extra references to the
        // fresh copy's pages; it waits only ~150 ms for them, which a loaded host can outlast.
        // A new copy is made and sealed again.
        let mut attempt = 0;
        let binary = loop {
            attempt += 1;
            let mut source = File::open(&path).map_err(EngineError::io(format!("opening the shim binary {}", path.display())))?;
            match pentacle::SealOptions::new().executable(true).close_on_exec(true).copy_and_seal(&mut source) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < SEAL_ATTEMPTS => {
                    tracing::warn!(shim = %path.display(), attempt, "sealing the shim's copy was refused (busy pages); copying again");
                }
                sealed => break sealed.map_err(EngineError::io(format!("sealing {}", path.display())))?,
            }
        };
        Ok(SealedShim { binary, groups: Mutex::new(HashMap::new()) })
    }

    /// The sealed copy as a path to execute (`/proc/self/fd/N`), for skiff-shim's other modes
    /// (`pin` makes a pod's namespaces).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.binary.as_raw_fd()))
    }
}

impl SealedShim {
    /// Runs `skiff-shim ARGS…`; it daemonizes, and its first process exits once the container
    /// exists.
    fn run(&self, args: &[&std::ffi::OsStr]) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let output = Command::new(self.path())
            .arg0("skiff-shim")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(EngineError::io("running skiff-shim"))?;
        if !output.status.success() {
            return Err(EngineError::CreateFailed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
        }
        Ok(())
    }

    fn group_lock(&self, dir: &Path) -> Arc<Mutex<()>> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        // Locks no caller holds are forgotten: a node sees many pods come and go.
        groups.retain(|_, lock| Arc::strong_count(lock) > 1);
        groups.entry(dir.to_path_buf()).or_default().clone()
    }
}

impl Launcher for SealedShim {
    fn spawn(&self, state_dir: &Path, group: Option<&Path>) -> Result<()> {
        let Some(dir) = group else {
            return self.run(&[state_dir.as_os_str()]);
        };
        let lock = self.group_lock(dir);
        let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
        match GroupClient::new(dir).adopt(state_dir) {
            Ok(()) => return Ok(()),
            // None serves the group, or the one there is exiting: start one.
            Err(e) if shim::needs_new_shim(&e) => {}
            Err(e) => return Err(EngineError::CreateFailed(e.to_string())),
        }
        skiff_store::private_dir(dir, skiff_store::PRIVATE_MODE)?;
        self.run(&[std::ffi::OsStr::new(GROUP_FLAG), dir.as_os_str(), state_dir.as_os_str()])
    }

    fn prepare(&self, group: &Path) -> Result<()> {
        let lock = self.group_lock(group);
        let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
        if GroupClient::new(group).alive() {
            return Ok(());
        }
        skiff_store::private_dir(group, skiff_store::PRIVATE_MODE)?;
        self.run(&[std::ffi::OsStr::new(GROUP_FLAG), group.as_os_str()])
    }

    fn release(&self, group: &Path) {
        let lock = self.group_lock(group);
        let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !GroupClient::new(group).end_if_idle() {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(group) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %group.display(), error = %e, "removing a supervisor group's dir");
            }
        }
    }
}
