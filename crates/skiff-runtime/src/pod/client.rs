//! The caller's side: runs `skiff-shim pin` with the request on stdin and reads what it pinned.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use skiff_types::ErrorKind;

use super::{unpin, validate, PinRequest, Pinned, PodError, EXIT_EXISTS, EXIT_INVALID};
use crate::RuntimeError;

/// A pin takes milliseconds; one this late is stuck (a sysctl write on a wedged kernel path).
pub const PIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Pins the namespaces `req` asks for by running `shim` (the skiff-shim binary, e.g.
/// `/proc/self/fd/N` of skiffd's sealed copy) in its `pin` mode. Blocking.
///
/// On failure nothing is left: the helper undoes what it made, and a helper that had to be
/// killed (timeout) or answered nonsense has its files removed here; its pid holder, if any,
/// exits by itself once the helper is gone without having committed it.
pub fn pin(shim: &Path, req: &PinRequest) -> Result<Pinned, RuntimeError> {
    validate(req)?;
    pin_with(spawn(shim)?, shim, req)
}

/// Starts a pin helper; it waits for its request on stdin.
pub(super) fn spawn(shim: &Path) -> Result<Child, PodError> {
    Command::new(shim)
        .arg0("skiff-shim")
        .arg("pin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PodError::Spawn { shim: shim.to_path_buf(), source })
}

/// Has `helper` (from [`spawn`], run from `shim`) pin the checked request `req`.
pub(super) fn pin_with(helper: Child, shim: &Path, req: &PinRequest) -> Result<Pinned, RuntimeError> {
    let output = match run(helper, shim, req)? {
        Outcome::Answered(answer_line) => return answer(req, &answer_line).map_err(RuntimeError::from),
        Outcome::Exited(output) => output,
    };
    if !output.status.success() {
        let kind = match output.status.code() {
            Some(EXIT_INVALID) => ErrorKind::InvalidArgument,
            Some(EXIT_EXISTS) => ErrorKind::AlreadyExists,
            _ => ErrorKind::Internal,
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = match stderr.trim() {
            "" => format!("the pin helper failed ({}) without a message", output.status),
            text => text.to_string(),
        };
        if output.status.code().is_none() {
            // Killed (the OOM killer): it could not undo what it made. The dir is the pod's
            // alone and a pin into a pinned dir stops before making anything (EXIT_EXISTS), so
            // whatever is there is this helper's.
            discard(req);
        }
        return Err(PodError::PinFailed { kind, message }.into());
    }
    answer(req, &output.stdout).map_err(RuntimeError::from)
}

/// How a helper ended its part.
enum Outcome {
    /// A whole answer line, then EOF: the helper writes it last, once the pins are made, and
    /// lets go of its stdout; its exit (it waits for its namespace child first) is reaped
    /// later, off the caller's path.
    Answered(Vec<u8>),
    /// No whole answer: its exit and stderr say why.
    Exited(Output),
}

/// Writes the request to the helper (run from `shim`) and reads its answer, or waits for its
/// exit when none comes; kills it after [`PIN_TIMEOUT`].
fn run(mut child: Child, shim: &Path, req: &PinRequest) -> Result<Outcome, PodError> {
    // Serializing plain strings, booleans and maps cannot fail.
    let input = serde_json::to_vec(req).map_err(|e| PodError::Protocol(e.to_string()))?;
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    // The wait runs on a thread so that a stuck helper can be killed.
    std::thread::spawn(move || {
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that refuses the request exits before reading it all: its exit says why.
            let _ = stdin.write_all(&input);
        }
        let mut answer_line = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_end(&mut answer_line);
        }
        if answer_line.ends_with(b"\n") {
            let _ = tx.send(Ok(Outcome::Answered(answer_line)));
            match child.wait_with_output() {
                Ok(output) if !output.status.success() => {
                    tracing::warn!(pid, status = %output.status, stderr = %String::from_utf8_lossy(&output.stderr).trim(), "the pin helper failed after its answer");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(pid, error = %e, "reaping the pin helper"),
            }
            return;
        }
        let _ = tx.send(child.wait_with_output().map(|mut output| {
            output.stdout = answer_line;
            Outcome::Exited(output)
        }));
    });
    match rx.recv_timeout(PIN_TIMEOUT) {
        Ok(result) => result.map_err(|source| PodError::Spawn { shim: shim.to_path_buf(), source }),
        Err(_) => {
            // Not reaped yet (the thread still waits for it), so the pid is still the helper's.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = rx.recv_timeout(Duration::from_secs(5));
            discard(req);
            Err(PodError::Timeout(PIN_TIMEOUT))
        }
    }
}

/// Parses the answer and checks it names what was asked, where it was asked; on a bad one,
/// undoes what it names and what the request would have made.
fn answer(req: &PinRequest, stdout: &[u8]) -> Result<Pinned, PodError> {
    let pinned: Pinned = match serde_json::from_slice(stdout) {
        Ok(p) => p,
        Err(e) => {
            discard(req);
            return Err(PodError::Protocol(e.to_string()));
        }
    };
    let expected: Vec<_> = req.files().into_iter().map(|(_, path)| path).collect();
    let got: Vec<_> = pinned.files().map(Path::to_path_buf).collect();
    let wrong = if got != expected {
        Some(format!("it names {got:?} for a request of {expected:?}"))
    } else if pinned.pid_holder.is_some() != req.pid_holder {
        Some("the pid holder is missing or was not asked for".to_string())
    } else {
        None
    };
    match wrong {
        None => Ok(pinned),
        Some(message) => {
            if let Err(e) = unpin(&pinned) {
                tracing::warn!(error = %e, "undoing a pin whose answer does not match its request");
            }
            discard(req);
            Err(PodError::Protocol(message))
        }
    }
}

/// Removes whatever a helper that did not answer properly may have left in the dir.
fn discard(req: &PinRequest) {
    let ns = req.namespaces;
    let path = |on: bool, name| on.then(|| req.dir.join(name));
    let files = Pinned { net: path(ns.net, super::NET_FILE), ipc: path(ns.ipc, super::IPC_FILE), uts: path(ns.uts, super::UTS_FILE), pid_holder: None };
    if let Err(e) = unpin(&files) {
        tracing::warn!(error = %e, dir = %req.dir.display(), "removing what a failed pin left");
    }
}
