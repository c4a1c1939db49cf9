//! A foreground process's stdio travels through FIFOs skiffd makes for this client
//! (`PrepareStdio`, as containerd's daemon makes them for `ctr`): skiff-shim opens them beside the
//! container's log, so output reaches the terminal and the log alike; `skiff attach` hands a set
//! to a running container the same way. Also raw mode for `-t`, forwarding of terminal size
//! changes, and the detach keys.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use skiff_api::v1::{self, containers_client::ContainersClient};

use crate::Ctx;

/// The FIFOs of one attached process, opened on our side, and the threads copying through them.
pub struct Attach {
    paths: v1::StdioPaths,
    // Our read ends, opened before the create or exec so the shim finds a reader when it opens
    // its write ends (else its output would go to the log only).
    stdout: File,
    stderr: Option<File>,
    // Read-write, so the shim's read end does not see EOF before we write.
    stdin: Option<File>,
}

impl Attach {
    /// The request's stdio: this attachment's FIFOs, or none (detached; the log only).
    pub fn paths(attach: &Option<Attach>, tty: bool) -> v1::StdioPaths {
        attach.as_ref().map(|a| a.paths.clone()).unwrap_or(v1::StdioPaths { tty, ..Default::default() })
    }

    /// This attachment's FIFOs, for the request that hands them to a process.
    pub fn stdio(&self) -> v1::StdioPaths {
        self.paths.clone()
    }

    pub async fn new(ctx: &Ctx, stdin: bool, tty: bool) -> Result<Attach> {
        let mut client = ContainersClient::new(ctx.channel.clone());
        let wanted = v1::PrepareStdioRequest { stdin, stdout: true, stderr: !tty };
        let mut paths = client.prepare_stdio(wanted).await.map_err(crate::status)?.into_inner();
        let stdout = open_reader(&paths.stdout)?;
        let stderr = if paths.stderr.is_empty() { None } else { Some(open_reader(&paths.stderr)?) };
        let stdin = if paths.stdin.is_empty() {
            None
        } else {
            Some(OpenOptions::new().read(true).write(true).open(&paths.stdin).with_context(|| format!("open {}", paths.stdin))?)
        };
        paths.tty = tty;
        if tty && std::io::stdout().is_terminal() {
            if let Some((terminal_size::Width(w), terminal_size::Height(h))) = terminal_size::terminal_size() {
                paths.rows = h as u32;
                paths.columns = w as u32;
            }
        }
        Ok(Attach { paths, stdout, stderr, stdin })
    }

    /// Once the shim opened its ends: start copying. The threads end at the process's EOF.
    pub fn copy(self) -> Result<Copying> {
        self.copy_with(false)
    }

    /// As [`copy`](Self::copy); with `detach_keys`, typing ctrl-p ctrl-q on our stdin ends the
    /// attachment instead of reaching the process (docker's default sequence).
    pub fn copy_with(self, detach_keys: bool) -> Result<Copying> {
        let mut threads = Vec::new();
        let (closed, stdout_closed) = tokio::sync::oneshot::channel();
        threads.push(copy_thread(blocking(self.stdout), std::io::stdout(), Some(closed)));
        if let Some(stderr) = self.stderr {
            threads.push(copy_thread(blocking(stderr), std::io::stderr(), None));
        }
        let (detach, detached) = tokio::sync::oneshot::channel();
        let (ended, stdin_ended) = tokio::sync::oneshot::channel();
        if let Some(fifo) = self.stdin {
            // Not joined: reading our stdin can block after the process ended.
            std::thread::spawn(move || {
                let keys = detach_keys.then(DetachKeys::default);
                match copy_stdin(std::io::stdin().lock(), fifo, keys) {
                    StdinEnd::Detached => drop(detach.send(())),
                    StdinEnd::Eof => drop(ended.send(())),
                    StdinEnd::Failed => {}
                }
            });
        }
        Ok(Copying { threads, stdout_closed, detached, stdin_ended })
    }
}

/// How copying our stdin to the process ended.
enum StdinEnd {
    /// Our stdin reached EOF (the FIFO is closed after it).
    Eof,
    /// The detach keys were typed.
    Detached,
    /// A read or a write failed (the process's side went away).
    Failed,
}

fn copy_stdin(mut from: impl Read, mut fifo: File, mut keys: Option<DetachKeys>) -> StdinEnd {
    let mut buf = vec![0u8; 32 * 1024];
    let mut forward = Vec::with_capacity(buf.len() + 1);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return StdinEnd::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return StdinEnd::Failed,
        };
        let (data, detach) = match &mut keys {
            Some(keys) => {
                forward.clear();
                let detach = keys.scan(&buf[..n], &mut forward);
                (&forward[..], detach)
            }
            None => (&buf[..n], false),
        };
        if fifo.write_all(data).is_err() {
            return StdinEnd::Failed;
        }
        if detach {
            return StdinEnd::Detached;
        }
    }
}

const CTRL_P: u8 = 0x10;
const CTRL_Q: u8 = 0x11;

/// Watches typed bytes for ctrl-p ctrl-q. A ctrl-p is held back until the next byte shows it is
/// not the sequence, then forwarded with it (as docker does).
#[derive(Debug, Default)]
pub struct DetachKeys {
    held: bool,
}

impl DetachKeys {
    /// Appends to `out` what of `input` goes to the process; true when the sequence was typed
    /// (nothing after it is forwarded).
    pub fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if std::mem::take(&mut self.held) {
                if b == CTRL_Q {
                    return true;
                }
                out.push(CTRL_P);
            }
            if b == CTRL_P {
                self.held = true;
            } else {
                out.push(b);
            }
        }
        false
    }
}

/// The threads copying an attached process's output to ours.
pub struct Copying {
    pub threads: Vec<JoinHandle<()>>,
    /// Fires when our stdout's reader went away (`skiff run ... | head -1`); closed unfired when
    /// the output simply ended.
    pub stdout_closed: tokio::sync::oneshot::Receiver<()>,
    /// Fires when the detach keys were typed (with [`Attach::copy_with`]).
    pub detached: tokio::sync::oneshot::Receiver<()>,
    /// Fires when our stdin reached EOF and the process's stdin FIFO was closed.
    pub stdin_ended: tokio::sync::oneshot::Receiver<()>,
}

/// A FIFO opened for reading without waiting for a writer (the shim opens its end later).
fn open_reader(path: &str) -> Result<File> {
    use nix::fcntl::OFlag;
    OpenOptions::new().read(true).custom_flags(OFlag::O_NONBLOCK.bits()).open(path).with_context(|| format!("open {path}"))
}

/// Made blocking once the shim's write end is open: EOF then means the process's output ended.
fn blocking(file: File) -> File {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    if let Ok(flags) = fcntl(file.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK));
    }
    file
}

fn copy_thread(mut from: File, mut to: impl Write + Send + 'static, mut on_closed: Option<tokio::sync::oneshot::Sender<()>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Err(e) = to.write_all(&buf[..n]).and_then(|_| to.flush()) {
                        if e.kind() == std::io::ErrorKind::BrokenPipe {
                            if let Some(tx) = on_closed.take() {
                                let _ = tx.send(());
                            }
                        }
                        break;
                    }
                }
            }
        }
    })
}

/// Raw mode on our terminal while a `-t` process runs; restored on drop.
pub struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    pub fn enter(tty: bool) -> RawTerminal {
        let stdin = std::io::stdin();
        if !tty || !stdin.is_terminal() {
            return RawTerminal(None);
        }
        match nix::sys::termios::tcgetattr(&stdin) {
            Ok(saved) => {
                let mut raw = saved.clone();
                nix::sys::termios::cfmakeraw(&mut raw);
                let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
                RawTerminal(Some(saved))
            }
            Err(_) => RawTerminal(None),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Forwards our terminal's size changes (SIGWINCH) to the process's pty until dropped.
pub struct ResizeForwarder(Option<tokio::task::JoinHandle<()>>);

impl ResizeForwarder {
    pub fn start(ctx: &Ctx, tty: bool, id: &str, exec_id: &str) -> ResizeForwarder {
        if !tty || !std::io::stdout().is_terminal() {
            return ResizeForwarder(None);
        }
        let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
            return ResizeForwarder(None);
        };
        let mut client = ContainersClient::new(ctx.channel.clone());
        let (id, exec_id) = (id.to_string(), exec_id.to_string());
        ResizeForwarder(Some(tokio::spawn(async move {
            while winch.recv().await.is_some() {
                if let Some((terminal_size::Width(w), terminal_size::Height(h))) = terminal_size::terminal_size() {
                    let req = v1::ResizeContainerRequest { id: id.clone(), exec_id: exec_id.clone(), rows: h as u32, columns: w as u32 };
                    let _ = client.resize(req).await;
                }
            }
        })))
    }
}

impl Drop for ResizeForwarder {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(keys: &mut DetachKeys, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let detach = keys.scan(input, &mut out);
        (out, detach)
    }

    #[test]
    fn ctrl_p_ctrl_q_detaches_and_anything_else_passes() {
        let mut keys = DetachKeys::default();
        assert_eq!(scan(&mut keys, b"ls\r"), (b"ls\r".to_vec(), false));
        // A ctrl-p waits for the next byte, which may come in the next read.
        assert_eq!(scan(&mut keys, b"a\x10"), (b"a".to_vec(), false));
        assert_eq!(scan(&mut keys, b"b"), (b"\x10b".to_vec(), false));
        assert_eq!(scan(&mut keys, b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(scan(&mut keys, b"\x11after"), (Vec::new(), true), "the sequence across two reads");
        let mut keys = DetachKeys::default();
        assert_eq!(scan(&mut keys, b"x\x10\x11y"), (b"x".to_vec(), true), "nothing after it is forwarded");
    }

    #[test]
    fn copying_stdin_tells_eof_from_a_detach() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let fifo = || OpenOptions::new().read(true).write(true).open(&path).expect("open fifo");
        let mut reader = OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(&path).expect("reader");
        assert!(matches!(copy_stdin(&b"plain\n"[..], fifo(), Some(DetachKeys::default())), StdinEnd::Eof));
        assert!(matches!(copy_stdin(&b"keep\x10\x11dropped"[..], fifo(), Some(DetachKeys::default())), StdinEnd::Detached));
        assert!(matches!(copy_stdin(&b"\x10\x11raw"[..], fifo(), None), StdinEnd::Eof), "no keys: bytes pass as they are");
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        assert_eq!(got, b"plain\nkeep\x10\x11raw");
    }
}
