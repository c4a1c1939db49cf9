//! The API socket: one daemon per path. A lock file beside the socket (`<socket>.lock`, flock held
//! for the daemon's life) tells a second skiffd the path is taken, even when that one has another
//! root; a socket that still answers is never replaced either. At shutdown the path is removed
//! only while it is still the socket this daemon bound.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tokio::net::UnixListener;

/// The bound socket and the lock that makes it this daemon's.
pub struct ApiSocket {
    path: PathBuf,
    /// (device, inode) of the socket file as bound.
    identity: (u64, u64),
    _lock: File,
}

fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[allow(unsafe_code)]
fn try_lock(file: &File) -> std::io::Result<()> {
    // SAFETY: flock on an fd this function borrows; no memory is touched.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl ApiSocket {
    /// Takes the socket's lock, removes a stale socket (one nothing answers on), binds and sets
    /// the mode.
    pub fn bind(path: &Path, mode: u32) -> Result<(UnixListener, ApiSocket)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let lock_file = lock_path(path);
        let lock = File::options().create(true).truncate(false).write(true).open(&lock_file).with_context(|| format!("open {}", lock_file.display()))?;
        if let Err(e) = try_lock(&lock) {
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                bail!("socket {} is in use by another skiffd (it holds {}); give this one another --socket", path.display(), lock_file.display());
            }
            return Err(e).with_context(|| format!("lock {}", lock_file.display()));
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => bail!("{} exists and is not a socket; not replacing it", path.display()),
            Ok(_) if std::os::unix::net::UnixStream::connect(path).is_ok() => {
                bail!("socket {} answers: another daemon serves it; give this one another --socket", path.display())
            }
            // Ours to take: the lock is held and nothing answers (a daemon that is gone).
            Ok(_) => std::fs::remove_file(path).with_context(|| format!("remove stale socket {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
        }
        let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))?;
        let meta = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
        Ok((listener, ApiSocket { path: path.to_path_buf(), identity: (meta.dev(), meta.ino()), _lock: lock }))
    }

    /// Removes the socket path if it is still the socket bound here.
    pub fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(socket = %self.path.display(), error = %e, "removing the socket");
                }
            }
            Ok(_) => tracing::warn!(socket = %self.path.display(), "the socket path is another socket now; left in place"),
            Err(_) => {}
        }
    }
}
