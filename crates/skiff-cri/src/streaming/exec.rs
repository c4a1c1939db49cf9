//! A streamed exec (`kubectl exec`, `crictl exec -i -t`): the command runs through the
//! container's shim, as ExecSync's does, with its stdio on FIFOs pumped to and from the client's
//! streams. It ends with the process: its exit code goes back once its output reached the
//! client. A client that goes away first takes the process with it (SIGKILL), as containerd does:
//! nothing keeps running for a connection that is gone.

use std::sync::Arc;
use std::time::Duration;

use k8s_cri::v1 as cri;
use skiff_engine::ExecSpec;
use skiff_streaming::server::{BackendError, ProcessIo};

use super::pump::{self, Pumps};
use crate::blocking::blocking;
use crate::container::fifos::{FifoSet, Wanted};
use crate::runtime::CriRuntime;

/// How long the first terminal size may take to arrive before the process starts without it.
const FIRST_SIZE_WAIT: Duration = Duration::from_millis(100);

pub(super) fn failed(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

impl CriRuntime {
    pub(crate) async fn stream_exec(&self, req: cri::ExecRequest, mut io: ProcessIo) -> Result<i32, BackendError> {
        let id = self.running(&req.container_id, "an exec").map_err(failed)?;
        let mut fifos = self.fifos_for(&io, req.tty)?;
        // A terminal starts at the client's size when it is already known (kubectl sends it first).
        let mut size = None;
        if let Some(sizes) = io.resize.as_mut() {
            if let Ok(Some(first)) = tokio::time::timeout(FIRST_SIZE_WAIT, sizes.recv()).await {
                size = Some((first.height, first.width));
            }
        }
        let spec = ExecSpec { args: req.cmd.clone(), stdio: fifos.stdio(req.tty, size), ..ExecSpec::default() };
        let manager = self.parts.manager.clone();
        let exec_id = id.clone();
        let (exec_id, pid) = blocking("an exec", move || Ok(manager.exec(&exec_id, spec)?)).await.map_err(failed)?;
        fifos.unlink();
        tracing::debug!(container = %id, pid, cmd = ?req.cmd, tty = req.tty, "streamed exec started");
        let mut pumps = self.pump(&id, Some(&exec_id), &mut fifos, &mut io).map_err(failed)?;
        drop(fifos);

        let manager = self.parts.manager.clone();
        let (wait_id, wait_exec) = (id.clone(), exec_id.clone());
        let mut wait = tokio::task::spawn_blocking(move || manager.wait(&wait_id, Some(&wait_exec)));
        let exit = tokio::select! {
            exit = &mut wait => exit,
            _ = io.gone.wait() => {
                tracing::info!(container = %id, pid, "the exec's client went away; killing the process");
                pumps.stop_input();
                let manager = self.parts.manager.clone();
                let (kill_id, kill_exec) = (id.clone(), exec_id.clone());
                let _ = blocking("killing an exec", move || Ok(manager.kill_exec(&kill_id, &kill_exec, libc::SIGKILL)?)).await;
                wait.await
            }
        };
        let exit = exit.map_err(|_| failed("waiting for the exec was cut short"))?.map_err(failed)?;
        pumps.finish().await;
        Ok(exit.code)
    }

    /// FIFOs for the streams the client opened (a terminal carries no stderr of its own).
    pub(super) fn fifos_for(&self, io: &ProcessIo, tty: bool) -> Result<FifoSet, BackendError> {
        let wanted = Wanted { stdin: io.stdin.is_some(), stdout: io.stdout.is_some(), stderr: io.stderr.is_some() && !tty };
        FifoSet::make(&self.parts.root, wanted).map_err(failed)
    }

    /// Starts the pumps between `fifos` and the client's streams in `io`.
    pub(super) fn pump(&self, id: &str, exec_id: Option<&str>, fifos: &mut FifoSet, io: &mut ProcessIo) -> std::io::Result<Pumps> {
        let mut pumps = Pumps::default();
        if let (Some(client), Some(fifo)) = (io.stdin.take(), fifos.stdin.take()) {
            pumps.stdin = Some(pump::stdin(client, fifo)?);
        }
        if let (Some(client), Some(fifo)) = (io.stdout.take(), fifos.stdout.take()) {
            pumps.outputs.push(pump::output(fifo, client, "stdout")?);
        }
        if let (Some(client), Some(fifo)) = (io.stderr.take(), fifos.stderr.take()) {
            pumps.outputs.push(pump::output(fifo, client, "stderr")?);
        }
        if let Some(sizes) = io.resize.take() {
            let manager = self.parts.manager.clone();
            let (id, exec_id) = (id.to_string(), exec_id.map(str::to_string));
            let apply = Arc::new(move |rows: u16, columns: u16| {
                if let Err(e) = manager.resize(&id, exec_id.as_deref(), rows, columns) {
                    tracing::debug!(container = %id, error = %e, "resizing a terminal");
                }
            });
            pumps.resize = Some(pump::resizes(sizes, apply));
        }
        Ok(pumps)
    }
}
