//! What a pin made so far, taken back in reverse unless the pin succeeded.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

#[derive(Default)]
pub struct Undo {
    dir: Option<PathBuf>,
    files: Vec<PathBuf>,
    mounts: Vec<PathBuf>,
    /// The namespace child and the pipe end whose closing lets it exit.
    child: Option<(Pid, OwnedFd)>,
    holder: Option<Pid>,
    disarmed: bool,
}

impl Undo {
    pub fn made_dir(&mut self, dir: &Path) {
        self.dir = Some(dir.to_path_buf());
    }

    pub fn made_file(&mut self, path: &Path) {
        self.files.push(path.to_path_buf());
    }

    pub fn mounted(&mut self, path: &Path) {
        self.mounts.push(path.to_path_buf());
    }

    pub fn child(&mut self, pid: Pid, release: OwnedFd) {
        self.child = Some((pid, release));
    }

    pub fn holder(&mut self, pid: i32) {
        self.holder = Some(Pid::from_raw(pid));
    }

    /// Keeps everything; hands back the child and its release.
    pub fn disarm(mut self) -> Option<(Pid, OwnedFd)> {
        self.disarmed = true;
        self.child.take()
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.disarmed {
            return;
        }
        // The holder is still the child's child (unreaped while the child lives, so its pid
        // cannot be reused): kill it before releasing the child. Uncommitted, it would exit
        // by itself; a committed one (the answer could not be written) would not.
        if let Some(holder) = self.holder {
            let _ = kill(holder, Signal::SIGKILL);
        }
        if let Some((pid, release)) = self.child.take() {
            drop(release);
            let _ = waitpid(pid, None);
        }
        for path in self.mounts.iter().rev() {
            let _ = umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW);
        }
        for path in self.files.iter().rev() {
            let _ = std::fs::remove_file(path);
        }
        if let Some(dir) = &self.dir {
            // Only if empty: nothing of anyone else's goes.
            let _ = std::fs::remove_dir(dir);
        }
    }
}
