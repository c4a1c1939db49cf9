//! A process's stdio: pipes (or a pty) between the process and the shim, copied into the
//! container's CRI-format log, to and from the FIFOs its creator gave, and to the clients that
//! attach later (see `fanout`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use skiff_runtime::shim::Stdio;

use crate::fanout::{Fanout, StdinPolicy, Stream};

/// Longest log line; longer ones are split into `P` (partial) entries (containerd's default).
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// The container log, in the CRI format: `RFC3339Nano STREAM P|F MESSAGE\n`.
pub struct LogSink {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogSink {
    pub fn open(path: &Path) -> std::io::Result<LogSink> {
        Ok(LogSink { path: path.to_path_buf(), file: Mutex::new(open_log(path)?) })
    }

    fn write_entry(&self, stream: &str, partial: bool, message: &[u8]) {
        let mut entry = Vec::with_capacity(message.len() + 48);
        entry.extend_from_slice(Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true).as_bytes());
        entry.push(b' ');
        entry.extend_from_slice(stream.as_bytes());
        entry.extend_from_slice(if partial { b" P " } else { b" F " });
        entry.extend_from_slice(message);
        entry.push(b'\n');
        if let Ok(mut file) = self.file.lock() {
            if let Err(e) = file.write_all(&entry) {
                tracing::warn!(path = %self.path.display(), error = %e, "writing the container log");
            }
        }
    }

    /// Reopens the file (after a rotation renamed it).
    pub fn reopen(&self) -> std::io::Result<()> {
        let fresh = open_log(&self.path)?;
        if let Ok(mut file) = self.file.lock() {
            *file = fresh;
        }
        Ok(())
    }
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o640).open(path)
}

/// Cuts a byte stream into log entries: a full line per `\n`, partial entries for lines longer
/// than [`MAX_LOG_LINE`]. Bytes pass through unchanged (no UTF-8 assumption).
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> Self {
        LineSplitter { buf: Vec::new() }
    }

    /// Feeds bytes; `emit(partial, message)` for each complete entry.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(bool, &[u8])) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(n) if n <= MAX_LOG_LINE => {
                    emit(false, &rest[..n]);
                    start += n + 1;
                }
                _ if rest.len() > MAX_LOG_LINE => {
                    emit(true, &rest[..MAX_LOG_LINE]);
                    start += MAX_LOG_LINE;
                }
                _ => break,
            }
        }
        self.buf.drain(..start);
    }

    /// The stream ended: what is left is a last (full) entry.
    pub fn finish(&mut self, mut emit: impl FnMut(bool, &[u8])) {
        if !self.buf.is_empty() {
            emit(false, &self.buf);
            self.buf.clear();
        }
    }
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new()
    }
}

/// The fds the process gets, and what is needed to finish wiring after it was created.
pub struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// With a terminal: the socket the runtime sends the pty master to.
    pub console_socket: Option<PathBuf>,
}

/// The shim's side of a process's stdio, before the process exists.
pub struct Pending {
    stdio: Stdio,
    policy: StdinPolicy,
    log: Option<Arc<LogSink>>,
    kind: PendingKind,
}

enum PendingKind {
    Pipes { stdin: Option<File>, stdout: File, stderr: File },
    Console { listener: UnixListener, path: PathBuf },
}

/// The shim's side of a running process's stdio.
pub struct Attached {
    copiers: Vec<JoinHandle<()>>,
    /// Each copier holds a sender: this disconnects the moment the last copier has ended.
    copiers_done: mpsc::Receiver<()>,
    /// The pty master, for resizes.
    pub master: Option<Arc<File>>,
    /// Where clients attach; finished once the process exited and its output was copied.
    pub fanout: Arc<Fanout>,
}

fn pipe() -> std::io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open("/dev/null")?.into())
}

/// Where a terminal's console socket is bound (`bind`, by this process) and where the runtime
/// reaches it (`reach`). Both go through an fd of the container's state dir
/// (`/proc/self/fd/N/<name>`, `/proc/<shim pid>/fd/N/<name>`): a long state path cannot overflow
/// a socket address, and containers of one shim never share a name.
pub struct ConsoleAt {
    pub bind: PathBuf,
    pub reach: PathBuf,
}

/// Makes the stdio of a process to be created. A terminal's console socket is at `console`; it
/// is removed once the master arrived. The shim holds a stdin pipe when the creator gave a stdin
/// FIFO or `policy` keeps stdin open for clients to come.
pub fn prepare(stdio: &Stdio, policy: StdinPolicy, log: Option<Arc<LogSink>>, console: ConsoleAt) -> std::io::Result<(ChildStdio, Pending)> {
    if stdio.tty {
        let _ = std::fs::remove_file(&console.bind);
        let listener = UnixListener::bind(&console.bind)?;
        let child = ChildStdio { stdin: dev_null()?, stdout: dev_null()?, stderr: dev_null()?, console_socket: Some(console.reach) };
        let pending = PendingKind::Console { listener, path: console.bind };
        return Ok((child, Pending { stdio: stdio.clone(), policy, log, kind: pending }));
    }
    let (stdin_child, stdin_shim) = if stdio.stdin.is_some() || policy.open {
        let (r, w) = pipe()?;
        (OwnedFd::from(r), Some(w))
    } else {
        (dev_null()?, None)
    };
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let child = ChildStdio { stdin: stdin_child, stdout: stdout_w.into(), stderr: stderr_w.into(), console_socket: None };
    Ok((child, Pending { stdio: stdio.clone(), policy, log, kind: PendingKind::Pipes { stdin: stdin_shim, stdout: stdout_r, stderr: stderr_r } }))
}

/// Opens a client FIFO for writing without blocking on a missing reader (then the output goes
/// to the log only).
fn open_fifo_writer(path: &Path) -> Option<File> {
    let file = OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).ok()?;
    set_blocking(file.as_raw_fd());
    Some(file)
}

fn set_blocking(fd: RawFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK));
    }
}

/// Copies one output stream to the log, the creator's FIFO (blocking: the process goes at that
/// reader's pace, as before attach existed) and the attached clients (never blocking) until EOF.
fn copy_output(
    mut from: impl Read + Send + 'static,
    stream: Stream,
    log: Option<Arc<LogSink>>,
    mut to: Option<File>,
    fanout: Arc<Fanout>,
    done: mpsc::Sender<()>,
) -> JoinHandle<()> {
    let name = stream.name();
    std::thread::spawn(move || {
        let _done = done;
        let mut splitter = LineSplitter::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: a pty whose last slave fd closed.
                Err(_) => break,
            };
            if let Some(log) = &log {
                splitter.push(&buf[..n], |partial, message| log.write_entry(name, partial, message));
            }
            if let Some(fifo) = &mut to {
                // The client went away: keep logging, stop forwarding.
                if fifo.write_all(&buf[..n]).is_err() {
                    to = None;
                }
            }
            fanout.broadcast(stream, &buf[..n]);
        }
        if let Some(log) = &log {
            splitter.finish(|partial, message| log.write_entry(name, partial, message));
        }
    })
}

/// Opens the creator's stdin FIFO; without a writer yet it still opens (the feeder waits for one).
fn open_own_stdin(path: &Path) -> Option<File> {
    match crate::fanout::open_reader("stdin", path) {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!(error = %e, "the creator's stdin is not attached");
            None
        }
    }
}

fn receive_master(listener: &UnixListener) -> std::io::Result<File> {
    let (stream, _) = listener.accept()?;
    let mut buf = [0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { File::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other("the runtime sent no terminal over the console socket"))
}

/// Sets a pty's window size.
pub fn resize(master: &File, rows: u16, columns: u16) -> std::io::Result<()> {
    let size = libc::winsize { ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Pending {
    /// Wires the created process's stdio: receives the pty master, starts the copiers.
    pub fn attach(self) -> std::io::Result<Attached> {
        let stdout_fifo = self.stdio.stdout.as_deref().and_then(open_fifo_writer);
        let stdin_fifo = self.stdio.stdin.as_deref().and_then(open_own_stdin);
        match self.kind {
            PendingKind::Pipes { stdin, stdout, stderr } => {
                let stderr_fifo = self.stdio.stderr.as_deref().and_then(open_fifo_writer);
                let fanout = Fanout::new(false, self.policy, stdin.map(Arc::new));
                if let Some(fifo) = stdin_fifo {
                    fanout.feed_own(fifo)?;
                }
                let (done, copiers_done) = mpsc::channel();
                let copiers = vec![
                    copy_output(stdout, Stream::Stdout, self.log.clone(), stdout_fifo, fanout.clone(), done.clone()),
                    copy_output(stderr, Stream::Stderr, self.log, stderr_fifo, fanout.clone(), done),
                ];
                Ok(Attached { copiers, copiers_done, master: None, fanout })
            }
            PendingKind::Console { listener, path } => {
                let master = receive_master(&listener);
                let _ = std::fs::remove_file(&path);
                let master = Arc::new(master?);
                if let Some((rows, columns)) = self.stdio.size {
                    resize(&master, rows, columns)?;
                }
                let fanout = Fanout::new(true, self.policy, Some(master.clone()));
                if let Some(fifo) = stdin_fifo {
                    fanout.feed_own(fifo)?;
                }
                let (done, copiers_done) = mpsc::channel();
                let copiers = vec![copy_output(SharedFile(master.clone()), Stream::Stdout, self.log, stdout_fifo, fanout.clone(), done)];
                Ok(Attached { copiers, copiers_done, master: Some(master), fanout })
            }
        }
    }
}

/// The pty master as the output copier reads it (its stdin writers share the same file).
struct SharedFile(Arc<File>);

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Attached {
    /// Waits (up to `limit`) for the output to drain after the process ended; a grandchild that
    /// escaped with the pipe open must not hold up the exit. The attached clients are finished
    /// separately ([`Fanout::finish`]), once the exit is recorded.
    pub fn drain(&mut self, limit: Duration) {
        // Woken by the last copier's end, not by polling: the exit is reported as soon as the
        // output is in the log.
        if let Err(mpsc::RecvTimeoutError::Disconnected) = self.copiers_done.recv_timeout(limit) {
            for copier in std::mem::take(&mut self.copiers) {
                let _ = copier.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new();
        for c in chunks {
            s.push(c, |p, m| out.push((p, m.to_vec())));
        }
        s.finish(|p, m| out.push((p, m.to_vec())));
        out
    }

    #[test]
    fn lines_split_across_reads_and_at_the_limit() {
        assert_eq!(split(&[b"he", b"llo\nwor", b"ld\n"]), vec![(false, b"hello".to_vec()), (false, b"world".to_vec())]);
        assert_eq!(split(&[b"no newline"]), vec![(false, b"no newline".to_vec())]);
        let long = vec![b'x'; MAX_LOG_LINE * 2 + 10];
        let mut input = long.clone();
        input.push(b'\n');
        let out = split(&[&input]);
        assert_eq!(out.len(), 3);
        assert!(out[0].0 && out[1].0 && !out[2].0);
        assert_eq!(out.iter().map(|(_, m)| m.len()).sum::<usize>(), long.len());
        // Not UTF-8: passed through as bytes.
        assert_eq!(split(&[b"\xff\xfe\n"]), vec![(false, b"\xff\xfe".to_vec())]);
    }
}
