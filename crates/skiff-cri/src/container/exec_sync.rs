//! ExecSync: a command run in a running container (the kubelet's exec probes, conformance
//! suites), its output captured and its exit code returned. The process runs through the
//! container's shim in the container's namespaces and cgroup, with the container's process
//! settings (user, env, cwd, capabilities). A timeout kills that process only, never the
//! container, and answers DeadlineExceeded.
//!
//! Output comes back through two FIFOs ([`FifoSet`]).

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::Duration;

use k8s_cri::v1 as cri;
use skiff_engine::ExecSpec;

use super::fifos::{FifoSet, Wanted};
use crate::blocking::blocking;
use crate::error::{text, CriError, Result};
use crate::runtime::CriRuntime;

/// Most bytes kept of each stream (CRI-O's and the bound).
pub const STREAM_CAP: usize = 16 << 20;
/// Most bytes of both streams together, so that the answer fits in the 16 MiB message the
/// kubelet accepts (a little is left for the rest of the message).
pub const ANSWER_BUDGET: usize = (16 << 20) - (4 << 10);
/// Appended to a stream that was cut.
pub const TRUNCATED: &[u8] = b"\n[skiff: output truncated: this stream passed the exec output limit]\n";
/// How long a killed process is given to be reaped before the answer goes back anyway.
const KILLED_GRACE: Duration = Duration::from_secs(5);

/// The captured streams made to fit: each at most [`STREAM_CAP`] with its marker, together at most
/// [`ANSWER_BUDGET`] (the longer one is cut first).
pub fn fit(mut out: Captured, mut err: Captured) -> (Vec<u8>, Vec<u8>) {
    let marker = TRUNCATED.len();
    for c in [&mut out, &mut err] {
        if c.bytes.len() > STREAM_CAP - marker {
            c.bytes.truncate(STREAM_CAP - marker);
            c.cut = true;
        }
    }
    let total = |o: &Captured, e: &Captured| o.bytes.len() + e.bytes.len() + marker * (o.cut as usize + e.cut as usize);
    while total(&out, &err) > ANSWER_BUDGET {
        let over = total(&out, &err) - ANSWER_BUDGET;
        let longer = if out.bytes.len() >= err.bytes.len() { &mut out } else { &mut err };
        let excess = over + if longer.cut { 0 } else { marker };
        let keep = longer.bytes.len().saturating_sub(excess);
        longer.bytes.truncate(keep);
        longer.cut = true;
    }
    let finish = |mut c: Captured| {
        if c.cut {
            c.bytes.extend_from_slice(TRUNCATED);
        }
        c.bytes
    };
    (finish(out), finish(err))
}

/// One stream as read: the bytes kept, and whether more came than was kept.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub cut: bool,
}

/// Reads to the end, keeping at most `cap` bytes and discarding the rest (so the writer never
/// blocks on a full pipe).
fn capture(mut from: impl Read, cap: usize) -> Captured {
    let mut captured = Captured::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(captured.bytes.len());
                captured.bytes.extend_from_slice(&buf[..n.min(room)]);
                captured.cut |= n > room;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading exec output");
                break;
            }
        }
    }
    captured
}

/// Starts reading both output FIFOs of `set` (the shim holds their other ends) to their ends.
fn read_outputs(set: &mut FifoSet) -> Result<(JoinHandle<Captured>, JoinHandle<Captured>)> {
    set.unlink();
    let spawn = |file: Option<File>, name: &str| -> Result<JoinHandle<Captured>> {
        let file = file.ok_or_else(|| CriError::host(format!("the exec's {name} fifo"))(std::io::ErrorKind::NotFound.into()))?;
        nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).map_err(|e| CriError::host("making an exec fifo blocking")(e.into()))?;
        std::thread::Builder::new().name(format!("exec-{name}")).spawn(move || capture(file, STREAM_CAP)).map_err(CriError::host("starting an exec output reader"))
    };
    Ok((spawn(set.stdout.take(), "stdout")?, spawn(set.stderr.take(), "stderr")?))
}

impl CriRuntime {
    pub async fn exec_sync(&self, req: cri::ExecSyncRequest) -> Result<cri::ExecSyncResponse> {
        if req.cmd.is_empty() {
            return Err(CriError::InvalidArgument("cmd is empty: name the command to run".into()));
        }
        for arg in &req.cmd {
            text("cmd", arg)?;
        }
        if req.timeout < 0 {
            return Err(CriError::InvalidArgument(format!("timeout {} is negative: give seconds, or 0 for none", req.timeout)));
        }
        let c = self.containers.find(&req.container_id)?.ok_or_else(|| CriError::NotFound(format!("container {:?} not found", req.container_id)))?;
        let runtime = self.clone();
        blocking("an exec", move || runtime.exec_sync_blocking(&c.id, req.cmd, req.timeout as u64)).await
    }

    fn exec_sync_blocking(&self, id: &str, cmd: Vec<String>, timeout_secs: u64) -> Result<cri::ExecSyncResponse> {
        let manager = &self.parts.manager;
        self.running(id, "ExecSync")?;
        let mut fifos = FifoSet::make(&self.parts.root, Wanted { stdin: false, stdout: true, stderr: true })?;
        let (exec_id, pid) = manager.exec(id, ExecSpec { args: cmd.clone(), stdio: fifos.stdio(false, None), ..ExecSpec::default() })?;
        let (stdout, stderr) = read_outputs(&mut fifos)?;
        let timeout = (timeout_secs > 0).then(|| Duration::from_secs(timeout_secs));
        let exit = match timeout {
            Some(t) => manager.wait_exec(id, &exec_id, t)?,
            None => Some(manager.wait(id, Some(&exec_id))?),
        };
        let Some(exit) = exit else {
            tracing::info!(container = %id, pid, ?cmd, timeout_secs, "exec past its timeout; killing it");
            manager.kill_exec(id, &exec_id, libc::SIGKILL)?;
            // The readers end when the shim closes its ends after the reap.
            let _ = manager.wait_exec(id, &exec_id, KILLED_GRACE);
            return Err(CriError::DeadlineExceeded(format!("command {cmd:?} in container {id} timed out after {timeout_secs}s; it was killed, the container was not")));
        };
        let join = |h: JoinHandle<Captured>| h.join().unwrap_or_default();
        let (stdout, stderr) = fit(join(stdout), join(stderr));
        tracing::debug!(container = %id, pid, code = exit.code, "exec finished");
        Ok(cri::ExecSyncResponse { stdout, stderr, exit_code: exit.code })
    }
}

#[cfg(test)]
#[path = "exec_sync_tests.rs"]
mod tests;
