//! One attached client: its buffers, and the threads that move its bytes — the output pump
//! (the client's FIFOs, written without blocking as they take it) and the stdin pump (the
//! client's stdin FIFO into the process's stdin).
//!
//! Each client has two pipes of its own: `wake`, written once per push so that the output pump
//! looks at its buffers, and `hangup`, whose write end is dropped to end the client: both pumps
//! poll its read end, which then reports POLLHUP.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{AttachError, Fanout, Stream, FINISH_FLUSH, MAX_PENDING};

pub struct Client {
    pub id: u64,
    /// The process's own client (its FIFOs given at create): only its stdin goes through here.
    pub own: bool,
    queue: Mutex<Queue>,
    wake: OwnedFd,
    hangup: Mutex<Option<OwnedFd>>,
}

struct Queue {
    /// Which streams the client takes.
    wants: [bool; 2],
    pending: [Vec<u8>; 2],
    /// Dropped rather than finished: the output pump stops without flushing.
    discard: bool,
}

/// The read ends of a client's pipes, for its pumps.
pub struct Ends {
    pub wake: OwnedFd,
    pub hangup: OwnedFd,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?)
}

impl Client {
    pub fn new(id: u64, own: bool, wants: [bool; 2]) -> std::io::Result<(Arc<Client>, Ends)> {
        let (wake_r, wake_w) = pipe()?;
        let (hangup_r, hangup_w) = pipe()?;
        let queue = Queue { wants, pending: [Vec::new(), Vec::new()], discard: false };
        let client = Client { id, own, queue: Mutex::new(queue), wake: wake_w, hangup: Mutex::new(Some(hangup_w)) };
        Ok((Arc::new(client), Ends { wake: wake_r, hangup: hangup_r }))
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues output for the client; false when that would put it more than MAX_PENDING behind.
    pub fn push(&self, stream: Stream, data: &[u8]) -> bool {
        let s = stream as usize;
        let mut queue = self.queue();
        if !queue.wants[s] || queue.discard {
            return true;
        }
        if queue.pending[s].len() + data.len() > MAX_PENDING {
            return false;
        }
        queue.pending[s].extend_from_slice(data);
        drop(queue);
        // A full wake pipe means a wake-up is pending already.
        let _ = nix::unistd::write(&self.wake, &[1]);
        true
    }

    /// Ends the client: with `discard` at once, else once what is pending went out (or
    /// FINISH_FLUSH passed).
    pub fn hang_up(&self, discard: bool) {
        if discard {
            let mut queue = self.queue();
            queue.discard = true;
            queue.pending = [Vec::new(), Vec::new()];
        }
        self.hangup.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Opens a client's FIFO for writing without blocking: it must have a reader already.
pub fn open_writer(stream: &'static str, path: &Path) -> Result<File, AttachError> {
    let file = OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).map_err(|source| match source.raw_os_error() {
        Some(libc::ENXIO) => AttachError::NoReader { stream, path: path.to_path_buf() },
        _ => AttachError::Open { stream, path: path.to_path_buf(), source },
    })?;
    check_fifo(stream, path, file)
}

/// Opens a client's stdin FIFO for reading; it stays non-blocking (the pump polls it).
pub fn open_reader(stream: &'static str, path: &Path) -> Result<File, AttachError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| AttachError::Open { stream, path: path.to_path_buf(), source })?;
    check_fifo(stream, path, file)
}

/// The shim is root: what it opens for a client must be the FIFO skiffd made, never a file.
fn check_fifo(stream: &'static str, path: &Path, file: File) -> Result<File, AttachError> {
    let is_fifo = file.metadata().map(|m| m.file_type().is_fifo()).unwrap_or(false);
    if !is_fifo {
        return Err(AttachError::NotFifo { stream, path: path.to_path_buf() });
    }
    Ok(file)
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new().name(name.into()).spawn(body).map(|_| ())
}

/// Starts the thread writing the client's output FIFOs (`fifos[stream]`).
pub fn spawn_output(fanout: Arc<Fanout>, client: Arc<Client>, wake: OwnedFd, hangup: OwnedFd, fifos: [Option<File>; 2]) -> std::io::Result<()> {
    spawn("attach-out", move || {
        let gone = pump_output(&client, &wake, &hangup, &fifos);
        if gone {
            tracing::info!(client = client.id, "an attached client went away");
        }
        fanout.remove(client.id);
        // The FIFOs close here: the client sees EOF.
    })
}

/// Writes what is pending as the FIFOs take it, until the client is dropped, its reader goes
/// (true), or it was finished and is flushed.
fn pump_output(client: &Client, wake: &OwnedFd, hangup: &OwnedFd, fifos: &[Option<File>; 2]) -> bool {
    let mut finishing: Option<Instant> = None;
    loop {
        let pending = {
            let queue = client.queue();
            if queue.discard {
                return false;
            }
            [!queue.pending[0].is_empty(), !queue.pending[1].is_empty()]
        };
        let timeout = match finishing {
            Some(since) => {
                let left = FINISH_FLUSH.saturating_sub(since.elapsed());
                if !pending.contains(&true) || left.is_zero() {
                    return false;
                }
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        // Once finishing, the hung-up pipe would report POLLHUP on every poll.
        if finishing.is_none() {
            fds.push(PollFd::new(hangup.as_fd(), PollFlags::POLLIN));
        }
        let mut streams = Vec::new();
        for (s, fifo) in fifos.iter().enumerate() {
            if let Some(fifo) = fifo {
                // Even with nothing to write, POLLERR tells that the reader went.
                let events = if pending[s] { PollFlags::POLLOUT } else { PollFlags::empty() };
                fds.push(PollFd::new(fifo.as_fd(), events));
                streams.push(s);
            }
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
        let revents: Vec<PollFlags> = fds.iter().map(|fd| fd.revents().unwrap_or(PollFlags::empty())).collect();
        if !revents[0].is_empty() {
            let mut sink = [0u8; 64];
            while matches!(nix::unistd::read(wake_fd(wake), &mut sink), Ok(n) if n > 0) {}
        }
        let first_stream = if finishing.is_none() {
            if !revents[1].is_empty() {
                finishing = Some(Instant::now());
            }
            2
        } else {
            1
        };
        for (i, &s) in streams.iter().enumerate() {
            let events = revents[first_stream + i];
            if events.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                return true;
            }
            if events.contains(PollFlags::POLLOUT) {
                if let Some(fifo) = &fifos[s] {
                    if write_pending(client, s, fifo).is_err() {
                        return true;
                    }
                }
            }
        }
    }
}

fn wake_fd(fd: &OwnedFd) -> std::os::fd::RawFd {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

/// Writes as much of a stream's pending bytes as the FIFO takes now.
fn write_pending(client: &Client, s: usize, mut fifo: &File) -> std::io::Result<()> {
    let mut queue = client.queue();
    if queue.pending[s].is_empty() {
        return Ok(());
    }
    match fifo.write(&queue.pending[s]) {
        Ok(n) => {
            queue.pending[s].drain(..n);
            Ok(())
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Starts the thread feeding the process's stdin from the client's stdin FIFO.
pub fn spawn_stdin(fanout: Arc<Fanout>, client: Arc<Client>, fifo: File, hangup: OwnedFd) -> std::io::Result<()> {
    spawn("attach-in", move || pump_stdin(&fanout, &client, fifo, &hangup))
}

fn pump_stdin(fanout: &Fanout, client: &Client, fifo: File, hangup: &OwnedFd) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN), PollFd::new(hangup.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            // The client was ended (dropped, or the process exited).
            break;
        }
        if fds[0].revents().is_none_or(|r| r.is_empty()) {
            continue;
        }
        match (&fifo).read(&mut buf) {
            Ok(0) => {
                fanout.stdin_ended(client);
                return;
            }
            Ok(n) => {
                if fanout.write_stdin(&buf[..n]).is_err() {
                    // The process's stdin is gone (closed, or the process exited).
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Err(_) => {
                fanout.stdin_ended(client);
                return;
            }
        }
    }
    fanout.release_stdin(client.id);
}
