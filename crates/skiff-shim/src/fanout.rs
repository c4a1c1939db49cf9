//! A running process's stdio shared between its log, its own client and the clients that attach
//! later (`Request::Attach`: `skiff attach`, the CRI's Attach).
//!
//! Output. The copiers in `io` write the log and the process's own stdio (the FIFOs given at
//! create: `skiff run`, `skiff exec`, ExecSync) themselves, with backpressure as before: the
//! process waits for that reader as it would for a terminal or a pipe. Each attached client then
//! gets the same bytes through a thread of its own, which writes its FIFOs without blocking from
//! a buffer of at most [`MAX_PENDING`] bytes per stream. A client that falls further behind than
//! that is dropped: its FIFOs are closed, so it sees EOF, and neither the process, the log nor
//! the other clients ever wait for it. A client whose reader went away (EPIPE, or POLLERR on the
//! FIFO while it is idle) is dropped at once. containerd's CRI writes every attached writer in
//! turn under one lock (`pkg/ioutil.WriterGroup`) and conmon writes its attach sockets with a
//! blocking `write_all`: in both a client that stops reading freezes the container's output and
//! its log (cri-o/cri-o#7945). When the process exits, each client gets what is pending (for up
//! to [`FINISH_FLUSH`]) and then EOF.
//!
//! Stdin. One client at a time feeds the process's stdin (the shim's end of its stdin pipe, or
//! the pty master); an attach asking for stdin while another client holds it is refused with
//! FailedPrecondition. conmon and containerd instead take every attacher's input and interleave
//! it, which no one can make sense of. Only a container made with `open_stdin` takes attached
//! stdin at all. When a client's stdin ends (EOF), or the client goes, then:
//! - without a terminal, with `stdin_once`, the process's stdin is closed (it reads EOF) and the
//!   client's output goes on until the exit; so is it when the process's own stdin ends and the
//!   container does not keep stdin open (as before attach existed);
//! - otherwise an attached client's attachment ends (its output flushed, then closed), as
//!   docker's and containerd's do, and the process's stdin stays open for the next client; the
//!   process's own client keeps its output until the exit.

mod pump;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use skiff_runtime::shim::{ErrorCode, Stdio};

pub use pump::open_reader;
use pump::{open_writer, Client};

/// Bytes of one stream an attached client may be behind before it is dropped.
pub const MAX_PENDING: usize = 1024 * 1024;
/// How long an attached client may take to read what is pending once the process exited.
pub const FINISH_FLUSH: Duration = Duration::from_secs(2);

/// An output stream, as the index of a client's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What the container asked of its stdin at create.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdinPolicy {
    /// Keep stdin open for clients that attach later.
    pub open: bool,
    /// Close it when the first attached client's stdin ends (without a terminal).
    pub once: bool,
}

/// Why an attach was refused.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("the container's process has exited")]
    Exited,
    #[error("the container has a terminal: attach with tty")]
    NeedsTty,
    #[error("the container has no terminal: attach without tty")]
    NoTty,
    #[error("a terminal has one output stream: attach stdout, without stderr")]
    StderrWithTty,
    #[error("an attach needs at least one of stdin, stdout and stderr")]
    NoStreams,
    #[error("the container was not created with stdin open (the CRI's stdin, skiff run -i): attach without stdin")]
    StdinNotOpen,
    #[error("the container's stdin was closed when its first client's input ended (stdin_once): attach without stdin")]
    StdinClosed,
    #[error("another client is attached to the container's stdin (one at a time): attach without stdin, or later")]
    StdinTaken,
    #[error("{stream} {} is not a FIFO", path.display())]
    NotFifo { stream: &'static str, path: std::path::PathBuf },
    #[error("{stream} FIFO {} has no reader: open it for reading before attaching", path.display())]
    NoReader { stream: &'static str, path: std::path::PathBuf },
    #[error("opening the {stream} FIFO {}: {source}", path.display())]
    Open { stream: &'static str, path: std::path::PathBuf, source: std::io::Error },
    #[error("wiring the attachment: {0}")]
    Io(#[from] std::io::Error),
}

impl AttachError {
    /// The shim protocol's code for it.
    pub fn code(&self) -> ErrorCode {
        match self {
            AttachError::Exited | AttachError::StdinNotOpen | AttachError::StdinClosed | AttachError::StdinTaken => ErrorCode::FailedPrecondition,
            AttachError::NeedsTty
            | AttachError::NoTty
            | AttachError::StderrWithTty
            | AttachError::NoStreams
            | AttachError::NotFifo { .. }
            | AttachError::NoReader { .. } => ErrorCode::InvalidArgument,
            AttachError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => ErrorCode::NotFound,
            AttachError::Open { .. } | AttachError::Io(_) => ErrorCode::Internal,
        }
    }
}

/// One process's fan-out: its attached clients and its stdin.
pub struct Fanout {
    tty: bool,
    policy: StdinPolicy,
    state: Mutex<State>,
}

struct State {
    clients: Vec<Arc<Client>>,
    /// Where stdin goes: the shim's end of the stdin pipe, or the pty master; None once closed
    /// (the process sees EOF when the last in-flight write let go of it).
    stdin: Option<Arc<File>>,
    /// The client feeding stdin.
    stdin_owner: Option<u64>,
    /// Closed by a client's end (stdin_once, or the process's own stdin's EOF).
    stdin_closed: bool,
    /// The process exited: no attach any more.
    finished: bool,
    next_id: u64,
}

impl Fanout {
    /// `stdin`: the process's stdin as the shim writes it, when there is one.
    pub fn new(tty: bool, policy: StdinPolicy, stdin: Option<Arc<File>>) -> Arc<Fanout> {
        let state = State { clients: Vec::new(), stdin, stdin_owner: None, stdin_closed: false, finished: false, next_id: 1 };
        Arc::new(Fanout { tty, policy, state: Mutex::new(state) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands output to every attached client that takes this stream; drops those that are too
    /// far behind. Never blocks on a client.
    pub fn broadcast(&self, stream: Stream, data: &[u8]) {
        let mut state = self.state();
        if state.clients.is_empty() {
            return;
        }
        let mut behind = Vec::new();
        for client in &state.clients {
            if !client.push(stream, data) {
                behind.push(client.id);
            }
        }
        for id in behind {
            tracing::warn!(client = id, stream = stream.name(), limit = MAX_PENDING, "an attached client fell too far behind; dropped");
            self.remove_locked(&mut state, id, true);
        }
    }

    /// Feeds the process's stdin from its own client's FIFO (the one given at create).
    pub fn feed_own(self: &Arc<Self>, fifo: File) -> std::io::Result<()> {
        let mut state = self.state();
        let id = state.take_id();
        let (client, ends) = Client::new(id, true, [false, false])?;
        pump::spawn_stdin(self.clone(), client.clone(), fifo, ends.hangup)?;
        state.stdin_owner = Some(id);
        state.clients.push(client);
        Ok(())
    }

    /// Attaches a client's FIFOs (see the module docs for what it gets).
    pub fn attach(self: &Arc<Self>, stdio: &Stdio) -> Result<(), AttachError> {
        match (stdio.tty, self.tty) {
            (false, true) => return Err(AttachError::NeedsTty),
            (true, false) => return Err(AttachError::NoTty),
            _ => {}
        }
        if self.tty && stdio.stderr.is_some() {
            return Err(AttachError::StderrWithTty);
        }
        if stdio.stdin.is_none() && stdio.stdout.is_none() && stdio.stderr.is_none() {
            return Err(AttachError::NoStreams);
        }
        // Checked and claimed under one lock: two attaches cannot both take stdin.
        let mut state = self.state();
        if state.finished {
            return Err(AttachError::Exited);
        }
        if stdio.stdin.is_some() {
            if !self.policy.open {
                return Err(AttachError::StdinNotOpen);
            }
            if state.stdin_closed || state.stdin.is_none() {
                return Err(AttachError::StdinClosed);
            }
            if state.stdin_owner.is_some() {
                return Err(AttachError::StdinTaken);
            }
        }
        let open_out = |stream: Stream, path: &Option<std::path::PathBuf>| path.as_deref().map(|p: &Path| open_writer(stream.name(), p)).transpose();
        let stdout = open_out(Stream::Stdout, &stdio.stdout)?;
        let stderr = open_out(Stream::Stderr, &stdio.stderr)?;
        let stdin = stdio.stdin.as_deref().map(|p| open_reader("stdin", p)).transpose()?;
        let id = state.take_id();
        let (client, ends) = Client::new(id, false, [stdout.is_some(), stderr.is_some()])?;
        if stdout.is_some() || stderr.is_some() {
            let hangup = ends.hangup.try_clone()?;
            pump::spawn_output(self.clone(), client.clone(), ends.wake, hangup, [stdout, stderr])?;
        }
        if let Some(fifo) = stdin {
            if let Err(e) = pump::spawn_stdin(self.clone(), client.clone(), fifo, ends.hangup) {
                client.hang_up(true);
                return Err(e.into());
            }
            state.stdin_owner = Some(id);
        }
        state.clients.push(client);
        tracing::info!(client = id, stdin = stdio.stdin.is_some(), "client attached");
        Ok(())
    }

    /// Writes to the process's stdin (blocking: the process's pace is the client's).
    fn write_stdin(&self, data: &[u8]) -> std::io::Result<()> {
        let target = self.state().stdin.clone();
        match target {
            Some(file) => (&*file).write_all(data),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// A client's stdin reached EOF: see the module docs.
    fn stdin_ended(&self, client: &Client) {
        let mut state = self.state();
        if state.stdin_owner != Some(client.id) {
            return;
        }
        state.stdin_owner = None;
        if !self.tty && (self.policy.once || (client.own && !self.policy.open)) {
            state.close_stdin();
        } else if !client.own {
            // Its attachment ends: what is pending still goes out.
            state.clients.retain(|c| c.id != client.id);
            client.hang_up(false);
        }
    }

    /// A client's stdin pump ended without EOF (the process's stdin is gone): it feeds no more.
    fn release_stdin(&self, id: u64) {
        let mut state = self.state();
        if state.stdin_owner == Some(id) {
            state.stdin_owner = None;
        }
    }

    /// Drops a client (gone, or behind): its FIFOs close without waiting for what is pending.
    fn remove(&self, id: u64) {
        let mut state = self.state();
        self.remove_locked(&mut state, id, true);
    }

    fn remove_locked(&self, state: &mut State, id: u64, discard: bool) {
        let Some(at) = state.clients.iter().position(|c| c.id == id) else { return };
        let client = state.clients.remove(at);
        client.hang_up(discard);
        if state.stdin_owner == Some(id) {
            state.stdin_owner = None;
            // A client that goes is done with its stdin as surely as one that sent EOF.
            if !self.tty && self.policy.once {
                state.close_stdin();
            }
        }
    }

    /// The process exited and its output was copied: every client gets what is pending, then
    /// EOF; the process's stdin is let go; no attach is taken any more.
    pub fn finish(&self) {
        let clients = {
            let mut state = self.state();
            state.finished = true;
            state.stdin = None;
            state.stdin_owner = None;
            std::mem::take(&mut state.clients)
        };
        for client in clients {
            client.hang_up(false);
        }
    }

    /// Attached clients (and the process's own stdin feeder), for tests and logs.
    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.state().clients.len()
    }
}

impl State {
    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
        self.stdin_closed = true;
    }
}
