//! The FIFOs a process's stdio travels through when a client attaches, made by skiffd (as
//! containerd and CRI-O make theirs in their state directories) rather than named by the client:
//! skiff-shim opens them as root, so a path of the client's choosing would aim root's reads and
//! writes at any FIFO on the host.
//!
//! `PrepareStdio` makes a set in `<root>/io/<token>/`. The directory is root's own (0711), so the
//! caller can open the FIFOs, which are made its own (0600), but cannot swap them for links to
//! something else. A create, an exec or an attach claims a set once, and the set's directory goes as soon as
//! the shim has opened its ends (an open FIFO needs no name any more). A set not claimed within
//! `UNCLAIMED_TTL` is removed, and at start every set of a previous run is.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_api::v1;

use crate::status::ApiError;

/// How long a prepared set waits for its create or exec.
pub const UNCLAIMED_TTL: Duration = Duration::from_secs(60);
/// Sets prepared and not yet claimed, at most: a client that only prepares cannot fill the disk.
pub const MAX_UNCLAIMED: usize = 1024;

/// The uid and gid the FIFOs of a set belong to: the caller's (from the socket's peer credentials).
#[derive(Clone, Copy, Debug, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Which streams a set has.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// The sets skiffd made and no request has claimed yet, and the claimed sets of created
/// containers, whose shim opens them when the container starts.
pub struct StdioFifos {
    dir: PathBuf,
    ttl: Duration,
    unclaimed: Mutex<HashMap<String, ()>>,
    held: Mutex<HashMap<String, Claim>>,
}

/// A claimed set: its directory is removed when this is dropped (after the shim opened its ends).
#[derive(Debug, Default)]
pub struct Claim {
    dir: Option<PathBuf>,
    token: String,
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            remove_set(&dir);
        }
    }
}

fn remove_set(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "removing a stdio FIFO set");
        }
    }
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> ApiError {
    move |source| ApiError::Host { what, source }
}

fn token() -> Result<String, ApiError> {
    Ok(skiff_engine::containers::random_hex(16)?)
}

impl StdioFifos {
    /// `<root>/io`, emptied of a previous run's sets.
    pub fn open(root: &Path) -> std::io::Result<Arc<StdioFifos>> {
        Self::with_ttl(root, UNCLAIMED_TTL)
    }

    fn with_ttl(root: &Path, ttl: Duration) -> std::io::Result<Arc<StdioFifos>> {
        let dir = root.join("io");
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::DirBuilder::new().mode(0o711).create(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        Ok(Arc::new(StdioFifos { dir, ttl, unclaimed: Mutex::new(HashMap::new()), held: Mutex::new(HashMap::new()) }))
    }

    fn unclaimed(&self) -> std::sync::MutexGuard<'_, HashMap<String, ()>> {
        self.unclaimed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes a set owned by `owner`, removed unless claimed within the TTL.
    pub fn prepare(self: &Arc<Self>, owner: Owner, wanted: Wanted) -> Result<v1::StdioPaths, ApiError> {
        let token = token()?;
        {
            let mut unclaimed = self.unclaimed();
            if unclaimed.len() >= MAX_UNCLAIMED {
                return Err(ApiError::Busy(format!("{MAX_UNCLAIMED} stdio FIFO sets are prepared and not claimed yet; create or exec with them first")));
            }
            unclaimed.insert(token.clone(), ());
        }
        let made = self.make(&token, owner, wanted);
        if made.is_err() {
            self.unclaimed().remove(&token);
            remove_set(&self.dir.join(&token));
        }
        let fifos = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(fifos.ttl).await;
            if fifos.unclaimed().remove(&token).is_some() {
                remove_set(&fifos.dir.join(&token));
            }
        });
        made
    }

    fn make(&self, token: &str, owner: Owner, wanted: Wanted) -> Result<v1::StdioPaths, ApiError> {
        let set = self.dir.join(token);
        std::fs::DirBuilder::new().mode(0o711).create(&set).map_err(io_error(format!("creating {}", set.display())))?;
        let fifo = |name: &str, want: bool| -> Result<String, ApiError> {
            if !want {
                return Ok(String::new());
            }
            let path = set.join(name);
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| ApiError::Host { what: format!("mkfifo {}", path.display()), source: e.into() })?;
            std::os::unix::fs::lchown(&path, Some(owner.uid), Some(owner.gid)).map_err(io_error(format!("chown {}", path.display())))?;
            Ok(path.display().to_string())
        };
        Ok(v1::StdioPaths {
            stdin: fifo("stdin", wanted.stdin)?,
            stdout: fifo("stdout", wanted.stdout)?,
            stderr: fifo("stderr", wanted.stderr)?,
            ..Default::default()
        })
    }

    /// The set `paths` names, claimed: every non-empty path must be `<root>/io/<token>/<stream>`
    /// of one unclaimed set, for the stream it is given as.
    pub fn claim(&self, paths: &v1::StdioPaths) -> Result<Claim, ApiError> {
        let given = [("stdin", &paths.stdin), ("stdout", &paths.stdout), ("stderr", &paths.stderr)];
        let mut token: Option<String> = None;
        for (stream, path) in given.iter().filter(|(_, p)| !p.is_empty()) {
            crate::validate::text(stream, path)?;
            let this = self.token_of(stream, path)?;
            if token.as_ref().is_some_and(|t| *t != this) {
                return Err(ApiError::BadRequest(format!("{stream} {path} is from another stdio set than the other streams")));
            }
            token = Some(this);
        }
        let Some(token) = token else {
            return Ok(Claim::default());
        };
        if self.unclaimed().remove(&token).is_none() {
            return Err(ApiError::BadRequest(format!(
                "the stdio FIFOs {} were claimed already or expired (a set serves one create or exec, within {} s)",
                self.dir.join(&token).display(),
                self.ttl.as_secs()
            )));
        }
        // From here on the set is this request's: dropped on any refusal below, it goes.
        let mut claim = Claim { dir: Some(self.dir.join(&token)), token, stdin: None, stdout: None, stderr: None };
        let pick = |stream: &str, path: &str| -> Result<Option<PathBuf>, ApiError> {
            if path.is_empty() {
                return Ok(None);
            }
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_fifo() => Ok(Some(PathBuf::from(path))),
                _ => Err(ApiError::BadRequest(format!("{stream} {path} is no longer the FIFO skiffd made"))),
            }
        };
        claim.stdin = pick("stdin", &paths.stdin)?;
        claim.stdout = pick("stdout", &paths.stdout)?;
        claim.stderr = pick("stderr", &paths.stderr)?;
        Ok(claim)
    }

    /// Keeps a created container's claimed set until its start has had the shim open it (a
    /// create makes no process; the start brings up the shim).
    pub fn hold(&self, container: &str, claim: Claim) {
        if claim.dir.is_some() {
            self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(container.to_string(), claim);
        }
    }

    /// The held set of `container` goes: its start has answered (the shim opened the FIFOs, or
    /// never will), or it was removed.
    pub fn release(&self, container: &str) {
        let claim = self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(container);
        drop(claim);
    }

    /// A claim whose request failed before the shim opened the FIFOs: the set is unclaimed again
    /// (until its TTL from `prepare` runs out), so the client can retry with it — `skiff run`
    /// pulls a missing image, then creates again with the same FIFOs.
    pub fn give_back(&self, mut claim: Claim) {
        if let Some(dir) = claim.dir.take() {
            if dir.exists() {
                self.unclaimed().insert(std::mem::take(&mut claim.token), ());
            }
        }
    }

    fn token_of(&self, stream: &str, path: &str) -> Result<String, ApiError> {
        let refused = || {
            ApiError::BadRequest(format!(
                "{stream} {path} is not a FIFO skiffd made: attach stdio through the FIFOs PrepareStdio makes (the skiff CLI does)"
            ))
        };
        let rest = Path::new(path).strip_prefix(&self.dir).map_err(|_| refused())?;
        let parts: Vec<Component> = rest.components().collect();
        match parts.as_slice() {
            [Component::Normal(token), Component::Normal(name)] if name.to_str() == Some(stream) => {
                let token = token.to_str().ok_or_else(refused)?;
                if token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(token.to_string())
                } else {
                    Err(refused())
                }
            }
            _ => Err(refused()),
        }
    }
}

#[cfg(test)]
#[path = "fifos_tests.rs"]
mod tests;
