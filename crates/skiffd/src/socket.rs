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

/// How long a held lock or an answering socket is asked again before the path is called taken.
const TAKEN_GRACE: std::time::Duration = std::time::Duration::from_millis(1000);

/// Another holds the lock or answers on the socket; the message says which.
struct Taken(String);

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
        // A daemon killed a moment ago can leave its lock and socket held for a few ms by a child
        // it was forking (the fds go at the child's exec): both are asked again for a while before
        // the path is called taken.
        let started = std::time::Instant::now();
        let mut held = None;
        loop {
            match Self::take(path, &lock, &lock_file) {
                Err(Taken(why)) if started.elapsed() < TAKEN_GRACE => {
                    held = Some(why);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(Taken(why)) => bail!(why),
                Ok(result) => {
                    result?;
                    break;
                }
            }
        }
        if let Some(why) = held {
            tracing::info!(socket = %path.display(), waited = ?started.elapsed(), was = %why, "the socket was held for a moment (by a gone daemon's child); taken now");
        }
        let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))?;
        let meta = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
        Ok((listener, ApiSocket { path: path.to_path_buf(), identity: (meta.dev(), meta.ino()), _lock: lock }))
    }

    /// One try at the lock and the path: `Err(Taken)` while another holds either, else the
    /// outcome of clearing the path for the bind.
    fn take(path: &Path, lock: &File, lock_file: &Path) -> std::result::Result<Result<()>, Taken> {
        if let Err(e) = try_lock(lock) {
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Taken(format!("socket {} is in use by another skiffd (it holds {}); give this one another --socket", path.display(), lock_file.display())));
            }
            return Ok(Err(e).with_context(|| format!("lock {}", lock_file.display())));
        }
        Ok(match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => Err(anyhow::anyhow!("{} exists and is not a socket; not replacing it", path.display())),
            Ok(_) if std::os::unix::net::UnixStream::connect(path).is_ok() => {
                return Err(Taken(format!("socket {} answers: another daemon serves it; give this one another --socket", path.display())));
            }
            // Ours to take: the lock is held and nothing answers (a daemon that is gone).
            Ok(_) => std::fs::remove_file(path).with_context(|| format!("remove stale socket {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("stat {}", path.display())),
        })
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
