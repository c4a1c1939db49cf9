//! Our side of `skiff pods exec -i|-t` and `skiff pods attach`: the URL skiffd's streaming server
//! answered, upgraded (SPDY/3.1 by default, as kubectl and crictl), and our stdin, stdout and
//! stderr copied to and from its streams; raw mode and the terminal's size with a tty, as
//! kubectl's remotecommand client does.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result};
use skiff_streaming::client::{Finished, Remote, Transport, Trust, Wanted};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use crate::containers::{DetachKeys, RawTerminal};
use crate::output::StdoutClosed;

/// `--transport`: how the streaming URL is reached.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum TransportArg {
    /// SPDY/3.1 (kubectl's transport through the kubelet, crictl's default).
    #[default]
    Spdy,
    /// A WebSocket (client-go's newer transport, remotecommand v5).
    Websocket,
}

impl TransportArg {
    pub fn transport(self) -> Transport {
        match self {
            TransportArg::Spdy => Transport::spdy(),
            TransportArg::Websocket => Transport::websocket(),
        }
    }
}

/// How an `https://` streaming URL is checked (skiffd with `[cri] stream_tls_cert`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TrustArgs {
    /// CA certificates (PEM) to check the streaming server's certificate against [default: the
    /// system's]
    #[arg(long, value_name = "FILE", conflicts_with = "stream_insecure")]
    stream_ca: Option<std::path::PathBuf>,
    /// Take any certificate from the streaming server (crictl's way): encrypted, not authenticated
    #[arg(long)]
    stream_insecure: bool,
}

impl TrustArgs {
    pub fn trust(&self) -> Trust {
        match (&self.stream_ca, self.stream_insecure) {
            (_, true) => Trust::Insecure,
            (Some(ca), false) => Trust::Ca(ca.clone()),
            (None, false) => Trust::System,
        }
    }
}

/// How a session ended.
pub enum Ended {
    /// The remote side ended its streams, with this exit code.
    Exited(i32),
    /// The detach keys were typed; the container runs on.
    Detached,
}

/// What the stdin thread hands the task writing to the remote stdin.
enum Input {
    Data(Vec<u8>),
    Eof,
    Detached,
}

/// How copying one output stream ended.
enum Copied {
    /// The remote stream ended.
    Ended,
    /// Our side stopped taking bytes (`| head -1`).
    Closed,
}

/// Connects `url`, copies until the remote output ends (or the detach keys, with `detach_keys`).
pub async fn run(url: &str, transport: &Transport, wanted: Wanted, detach_keys: bool) -> Result<Ended> {
    let mut remote = Remote::connect(url, transport, wanted).await.context("connecting to skiffd's streaming server")?;
    let raw = RawTerminal::enter(wanted.tty && wanted.stdin);
    let mut winch = None;
    if wanted.tty && std::io::stdout().is_terminal() {
        send_size(&mut remote).await;
        winch = signal(SignalKind::window_change()).ok();
    }
    let stdout = remote.stdout.take().map(|r| tokio::spawn(copy_out(r, Ours::Stdout)));
    let stderr = remote.stderr.take().map(|r| tokio::spawn(copy_out(r, Ours::Stderr)));
    let (detach, mut detached) = oneshot::channel();
    if let Some(writer) = remote.stdin.take() {
        let (tx, rx) = mpsc::channel(8);
        // A thread, not joined: a read of our stdin can block after the session ended.
        std::thread::spawn(move || read_stdin(tx, detach_keys));
        tokio::spawn(feed(rx, writer, detach));
    }
    let outputs = async {
        let out = match stdout {
            Some(task) => task.await.context("the stdout copy")?,
            None => Ok(Copied::Ended),
        };
        if let Some(task) = stderr {
            task.await.context("the stderr copy")?.context("reading the remote stderr")?;
        }
        anyhow::Ok(out)
    };
    tokio::pin!(outputs);
    let mut watch_detach = true;
    let out = loop {
        tokio::select! {
            out = &mut outputs => break out,
            Some(()) = size_changed(&mut winch) => send_size(&mut remote).await,
            fired = &mut detached, if watch_detach => {
                watch_detach = false;
                if fired.is_ok() {
                    drop(raw);
                    remote.abandon().await;
                    return Ok(Ended::Detached);
                }
            }
        }
    };
    drop(raw);
    match out?.context("reading the remote stdout")? {
        Copied::Closed => {
            remote.abandon().await;
            Err(StdoutClosed.into())
        }
        Copied::Ended => {
            let done = remote.finish().await.context("reading the session's end")?;
            Ok(Ended::Exited(exit_code(&done)))
        }
    }
}

/// The remote exit code; a failure without one (the command did not start, the container went
/// away) is reported on our stderr and is 1, as kubectl does.
fn exit_code(done: &Finished) -> i32 {
    // The protocols before v4 send nothing on success.
    if done.error.trim().is_empty() {
        return 0;
    }
    if let Ok(code) = done.exit_code() {
        return code;
    }
    let message = done.status().ok().and_then(|s| s["message"].as_str().map(str::to_string)).unwrap_or_else(|| done.error.trim().to_string());
    eprintln!("skiff: {message}");
    1
}

async fn send_size(remote: &mut Remote) {
    // A terminal that reports no size (0x0, a pty nobody sized) leaves the remote's default.
    if let Some((terminal_size::Width(w @ 1..), terminal_size::Height(h @ 1..))) = terminal_size::terminal_size() {
        // A lost resize leaves the old size; the session goes on.
        let _ = remote.resize(w, h).await;
    }
}

async fn size_changed(winch: &mut Option<Signal>) -> Option<()> {
    match winch {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Our output streams, written from a blocking thread (the CLI's runtime has one thread).
#[derive(Clone, Copy)]
enum Ours {
    Stdout,
    Stderr,
}

impl Ours {
    fn write(self, bytes: &[u8]) -> std::io::Result<()> {
        // Flushed each time: an interactive shell's prompt has no newline.
        match self {
            Ours::Stdout => std::io::stdout().lock().write_all(bytes).and_then(|()| std::io::stdout().lock().flush()),
            Ours::Stderr => std::io::stderr().lock().write_all(bytes),
        }
    }
}

async fn copy_out(mut from: Box<dyn AsyncRead + Send + Unpin>, to: Ours) -> std::io::Result<Copied> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(Copied::Ended);
        }
        let chunk = buf[..n].to_vec();
        if !tokio::task::spawn_blocking(move || to.write(&chunk).is_ok()).await.unwrap_or(false) {
            return Ok(Copied::Closed);
        }
    }
}

fn read_stdin(tx: mpsc::Sender<Input>, detach_keys: bool) {
    let mut keys = detach_keys.then(DetachKeys::default);
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Our stdin is unreadable: the remote's ends as if it reached its end.
            Err(_) => break,
        };
        let (data, detach) = match &mut keys {
            Some(keys) => {
                let mut out = Vec::with_capacity(n + 1);
                let detach = keys.scan(&buf[..n], &mut out);
                (out, detach)
            }
            None => (buf[..n].to_vec(), false),
        };
        if !data.is_empty() && tx.blocking_send(Input::Data(data)).is_err() {
            return;
        }
        if detach {
            let _ = tx.blocking_send(Input::Detached);
            return;
        }
    }
    let _ = tx.blocking_send(Input::Eof);
}

async fn feed(mut rx: mpsc::Receiver<Input>, mut to: Box<dyn AsyncWrite + Send + Unpin>, detach: oneshot::Sender<()>) {
    while let Some(input) = rx.recv().await {
        match input {
            Input::Data(data) => {
                if to.write_all(&data).await.is_err() || to.flush().await.is_err() {
                    return;
                }
            }
            // The remote's stdin ends with ours (`echo x | skiff pods exec -i C cat`).
            Input::Eof => {
                let _ = to.shutdown().await;
                return;
            }
            Input::Detached => {
                let _ = detach.send(());
                return;
            }
        }
    }
}
