//! Undoing a pin: the bind mounts go (lazily: a container still joining holds its own
//! reference), then the files, then the pid holder. Each step takes "already gone" as done, so
//! a second unpin, or one of a half-made pin, succeeds.
//!
//! The holder is not the caller's child (it was double-forked and reparented to init or the
//! nearest subreaper), so it cannot be reaped here: unpin kills it through a pidfd, after
//! checking through that same pidfd's process that it is still the holder (start time), and
//! waits until it has exited. Whoever it was reparented to reaps it.

// pidfd_open and pidfd_send_signal have no safe wrapper in std or nix.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{procfs, PidHolder, Pinned, PodError};
use crate::RuntimeError;

/// How long a SIGKILLed holder may take to exit (it does nothing; only a wedged kernel delays it).
const HOLDER_EXIT: Duration = Duration::from_secs(5);

/// Bind mounts stacked on one file by mistake are unmounted too, up to this many.
const MAX_STACKED: usize = 16;

/// Unpins what `pinned` names; idempotent.
/// Unpins what `pinned` names; idempotent. Every step is tried; the first failure is returned
/// (a retry redoes only what is left).
pub fn unpin(pinned: &Pinned) -> Result<(), RuntimeError> {
    let mut first = pinned.pid_holder.as_ref().and_then(|h| stop_holder(h).err());
    for path in pinned.files() {
        if let Err(source) = unmount(path).and_then(|()| remove(path)) {
            first.get_or_insert(PodError::Unpin { path: path.to_path_buf(), source });
        }
    }
    first.map_or(Ok(()), |e| Err(e.into()))
}

fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn unmount(path: &Path) -> io::Result<()> {
    for _ in 0..MAX_STACKED {
        // NOFOLLOW: a symlink planted in the dir must not get something else unmounted.
        match umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue,
            // Not a mount point (any more), or no such file: nothing (left) to unmount.
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other(format!("still a mount point after {MAX_STACKED} unmounts")))
}

fn stop_holder(holder: &PidHolder) -> Result<(), PodError> {
    let err = |source| PodError::Holder { pid: holder.pid, source };
    let pidfd = match pidfd_open(holder.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    // The pidfd was opened first: if the pid was reused before, the stat read now is the new
    // process's (another start time) and it is left alone; after, the pidfd still names the
    // process whose start time matched.
    match procfs::start_time(holder.pid) {
        Ok(t) if t == holder.start_time => {}
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    match pidfd_send_signal(&pidfd, libc::SIGKILL) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    wait_exited(&pidfd, holder.pid)
}

/// A pidfd polls readable once its process has exited (zombie or reaped).
fn wait_exited(pidfd: &OwnedFd, pid: i32) -> Result<(), PodError> {
    let deadline = Instant::now() + HOLDER_EXIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(PodError::HolderAlive { pid, after: HOLDER_EXIT }),
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(PodError::Holder { pid, source: e.into() }),
        }
    }
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd, a null siginfo and no flags.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
