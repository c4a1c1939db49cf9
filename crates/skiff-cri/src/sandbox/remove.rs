//! StopPodSandbox and RemovePodSandbox, and the undo they share with a failed or cut-short
//! RunPodSandbox. Both succeed for a sandbox that is gone or already stopped: the kubelet repeats
//! them.

use std::path::Path;

use super::record::{SandboxRecord, SandboxState};
use crate::blocking::blocking;
use crate::error::{CriError, Result};
use crate::runtime::CriRuntime;
use crate::timings::Stopwatch;

impl CriRuntime {
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let Some(record) = self.sandboxes.find(id)? else {
            return Ok(());
        };
        let _one = self.sandbox_ids.lock(&record.id).await;
        let runtime = self.clone();
        blocking("stopping a pod sandbox", move || runtime.stop(&record.id, Stopwatch::start())).await
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let Some(record) = self.sandboxes.find(id)? else {
            return Ok(());
        };
        let _one = self.sandbox_ids.lock(&record.id).await;
        let runtime = self.clone();
        blocking("removing a pod sandbox", move || {
            runtime.stop(&record.id, Stopwatch::start())?;
            runtime.remove_pod_containers(&record.id)?;
            let Some(record) = runtime.sandboxes.get(&record.id) else {
                return Ok(());
            };
            runtime.undo(&record, false)
        })
        .await
    }

    /// Detaches the network of a ready sandbox (its containers stop first, once pods hold
    /// containers) and marks it not ready. Its namespaces stay until removal.
    fn stop(&self, id: &str, mut watch: Stopwatch) -> Result<()> {
        let Some(mut record) = self.sandboxes.get(id) else {
            return Ok(());
        };
        if record.state == SandboxState::NotReady {
            return Ok(());
        }
        watch.lap("to the blocking pool");
        self.stop_pod_containers(&record.id)?;
        // A supervisor started ahead of containers that never came has nothing left to do.
        self.parts.manager.end_pod_supervisor(&record.id);
        watch.lap("stop containers");
        let plugins = self.detach(&record)?;
        watch.lap_plugins("DEL", &plugins);
        record.network_attached = false;
        record.state = SandboxState::NotReady;
        self.sandboxes.put(&record, false)?;
        watch.lap("persist not ready");
        self.timings.record(&record.id, "stop", watch);
        self.cri_events.sandbox(k8s_cri::v1::ContainerEventType::ContainerStoppedEvent, super::status::status_of(&record));
        tracing::info!(sandbox = %record.id, name = %record.name, "pod sandbox stopped");
        Ok(())
    }

    /// CNI DEL when ADD ran (or may have): repeatable, and fine once the namespace is gone.
    fn detach(&self, record: &SandboxRecord) -> Result<Vec<skiff_cni::PluginTiming>> {
        if !record.network_attached {
            return Ok(Vec::new());
        }
        let netns = record.pinned.as_ref().and_then(|p| p.net.clone()).unwrap_or_else(|| record.dir.join(skiff_runtime::pod::NET_FILE));
        Ok(self.parts.network.teardown(&self.pod_network(record, &netns))?)
    }

    /// Undoes everything `record` names, in reverse: network, namespaces, state dir, record. A
    /// removal the kubelet asked for stops at a failed network teardown and keeps the record, so
    /// its retry tries again; the undo of a failed or cut-short RunPodSandbox (`best_effort`) has
    /// no one to retry it: it logs the failure and goes on.
    pub(crate) fn undo(&self, record: &SandboxRecord, best_effort: bool) -> Result<()> {
        self.parts.manager.end_pod_supervisor(&record.id);
        match self.detach(record) {
            Err(e) if best_effort => tracing::warn!(sandbox = %record.id, error = %e, "detaching the network of an unfinished pod sandbox"),
            other => drop(other?),
        }
        match &record.pinned {
            Some(pinned) => skiff_runtime::pod::unpin(pinned)?,
            // Cut short during the pin: whatever it made is under the dir.
            None => unpin_dir(&record.dir)?,
        }
        // The shm tmpfs is unmounted before the dir goes (remove_dir_all would stop at it).
        super::files::remove_pod_files(&record.dir)?;
        match std::fs::remove_dir_all(&record.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CriError::host(format!("removing {}", record.dir.display()))(e));
            }
            _ => {}
        }
        // Durable before the answer: a removed pod must not come back, not ready, after a crash.
        self.sandboxes.delete(&record.id, true)?;
        self.timings.forget(&record.id);
        if !best_effort {
            self.cri_events.sandbox(k8s_cri::v1::ContainerEventType::ContainerDeletedEvent, super::status::status_of(record));
        }
        tracing::info!(sandbox = %record.id, name = %record.name, "pod sandbox removed");
        Ok(())
    }
}

/// Unpins the namespace files a pin may have made under `dir` before it could answer.
fn unpin_dir(dir: &Path) -> Result<()> {
    use skiff_runtime::pod::{Pinned, IPC_FILE, NET_FILE, UTS_FILE};
    let existing = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
    let pinned = Pinned { net: existing(NET_FILE), ipc: existing(IPC_FILE), uts: existing(UTS_FILE), pid_holder: None };
    Ok(skiff_runtime::pod::unpin(&pinned)?)
}
