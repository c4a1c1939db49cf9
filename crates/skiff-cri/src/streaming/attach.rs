//! A streamed attach (`kubectl attach`): the client joins the running container's stdio through
//! its shim, which copies the container's output to every attached client beside the log and
//! feeds the container's stdin from one. It ends when the container exits (its output ends) or
//! when the client goes away; the container runs on either way.

use k8s_cri::v1 as cri;
use skiff_streaming::server::{BackendError, ProcessIo};

use super::exec::failed;
use crate::blocking::blocking;
use crate::runtime::CriRuntime;

impl CriRuntime {
    pub(crate) async fn stream_attach(&self, req: cri::AttachRequest, mut io: ProcessIo) -> Result<(), BackendError> {
        let id = self.running(&req.container_id, "an attach").map_err(failed)?;
        let mut fifos = self.fifos_for(&io, req.tty)?;
        let stdio = fifos.stdio(req.tty, None);
        let manager = self.parts.manager.clone();
        let attach_id = id.clone();
        blocking("an attach", move || Ok(manager.attach(&attach_id, stdio)?)).await.map_err(failed)?;
        fifos.unlink();
        let mut pumps = self.pump(&id, None, &mut fifos, &mut io).map_err(failed)?;
        drop(fifos);

        let outputs = std::mem::take(&mut pumps.outputs);
        let aborts: Vec<_> = outputs.iter().map(|o| o.abort_handle()).collect();
        let ended = async {
            if outputs.is_empty() {
                // No output to see the exit by: wait for it (a thread of the blocking pool, for
                // as long as the client stays).
                let manager = self.parts.manager.clone();
                let wait_id = id.clone();
                let _ = tokio::task::spawn_blocking(move || manager.wait(&wait_id, None)).await;
            }
            // The container's output ends when it exits.
            for output in outputs {
                let _ = output.await;
            }
        };
        tokio::select! {
            _ = ended => {}
            _ = io.gone.wait() => {
                tracing::debug!(container = %id, "an attached client went away");
                // Our FIFO ends close: the shim drops this client at its next write.
                aborts.iter().for_each(|a| a.abort());
            }
        }
        pumps.stop_input();
        Ok(())
    }
}
