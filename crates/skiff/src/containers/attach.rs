//! A foreground process's stdio travels through FIFOs this client makes (as `ctr` does): skiff-shim
//! opens them beside the container's log, so output reaches the terminal and the log alike. Also
//! raw mode for `-t` and forwarding of terminal size changes.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use skiff_api::v1::{self, containers_client::ContainersClient};

use crate::Ctx;

/// The FIFOs of one attached process, and the threads copying to and from them.
pub struct Attach {
    dir: PathBuf,
    paths: v1::StdioPaths,
    // Held open until the shim opened its ends (so its opens do not block or see EOF).
    holders: Vec<File>,
    stdin: Option<File>,
}

fn mkfifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).with_context(|| format!("mkfifo {}", path.display()))
}

fn open_rdwr(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).open(path).with_context(|| format!("open {}", path.display()))
}

impl Attach {
    /// The request's stdio: this attachment's FIFOs, or none (detached; the log only).
    pub fn paths(attach: &Option<Attach>, tty: bool) -> v1::StdioPaths {
        attach.as_ref().map(|a| a.paths.clone()).unwrap_or(v1::StdioPaths { tty, ..Default::default() })
    }

    pub fn new(stdin: bool, tty: bool) -> Result<Attach> {
        let dir = std::env::temp_dir().join(format!("skiff-io-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)));
        std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut paths = v1::StdioPaths { tty, ..Default::default() };
        let mut holders = Vec::new();
        let mut stdin_file = None;
        let make = |name: &str| -> Result<String> {
            let p = dir.join(name);
            mkfifo(&p)?;
            Ok(p.display().to_string())
        };
        paths.stdout = make("stdout")?;
        holders.push(open_rdwr(Path::new(&paths.stdout))?);
        if !tty {
            paths.stderr = make("stderr")?;
            holders.push(open_rdwr(Path::new(&paths.stderr))?);
        }
        if stdin {
            paths.stdin = make("stdin")?;
            stdin_file = Some(open_rdwr(Path::new(&paths.stdin))?);
        }
        if tty && std::io::stdout().is_terminal() {
            if let Some((terminal_size::Width(w), terminal_size::Height(h))) = terminal_size::terminal_size() {
                paths.rows = h as u32;
                paths.columns = w as u32;
            }
        }
        Ok(Attach { dir, paths, holders, stdin: stdin_file })
    }

    /// Once the shim opened its ends: start copying. The threads end at the process's EOF.
    pub fn copy(mut self) -> Result<Copying> {
        let mut threads = Vec::new();
        let (closed, stdout_closed) = tokio::sync::oneshot::channel();
        // Fresh read-only fds, so EOF arrives when the shim closes its write ends.
        threads.push(copy_thread(open_reader(&self.paths.stdout)?, std::io::stdout(), Some(closed)));
        if !self.paths.stderr.is_empty() {
            threads.push(copy_thread(open_reader(&self.paths.stderr)?, std::io::stderr(), None));
        }
        self.holders.clear();
        if let Some(mut fifo) = self.stdin.take() {
            // Not joined: reading our stdin can block after the process ended.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut fifo);
            });
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(Copying { threads, stdout_closed })
    }
}

/// The threads copying an attached process's output to ours.
pub struct Copying {
    pub threads: Vec<JoinHandle<()>>,
    /// Fires when our stdout's reader went away (`skiff run ... | head -1`); closed unfired when
    /// the output simply ended.
    pub stdout_closed: tokio::sync::oneshot::Receiver<()>,
}

impl Drop for Attach {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A FIFO opened for reading without waiting for a writer, then made blocking.
fn open_reader(path: &str) -> Result<File> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new().read(true).custom_flags(OFlag::O_NONBLOCK.bits()).open(path).with_context(|| format!("open {path}"))?;
    if let Ok(flags) = fcntl(file.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK));
    }
    Ok(file)
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
