//! At start: CRI container records whose engine container is gone are dropped; sandboxes a crash
//! cut short in RunPodSandbox are undone; ready ones whose namespaces are gone (the host
//! rebooted, someone unmounted them) are marked not ready, so the kubelet makes the pod again
//! instead of starting containers into nothing.

use super::record::SandboxState;
use crate::error::Result;
use crate::runtime::CriRuntime;

impl CriRuntime {
    pub(crate) fn recover(&self) -> Result<()> {
        crate::container::clear_exec_leftovers(&self.parts.root);
        // The CRI's container records are not flushed on their own: a CreateContainer cut short
        // before the engine's record reached the disk, or a RemoveContainer after the engine's
        // removal did, leaves one naming a container that is not there.
        for container in self.containers.list() {
            if self.parts.manager.records().get(&container.id)?.is_none() {
                tracing::warn!(container = %container.id, name = %container.metadata.name, "cri container record without its engine container; dropped");
                self.containers.delete(&container.id, false)?;
            }
        }
        for record in self.sandboxes.list() {
            match record.state {
                SandboxState::Creating => {
                    tracing::warn!(sandbox = %record.id, name = %record.name, "pod sandbox cut short by a crash; undoing it");
                    if let Err(e) = self.undo(&record, true) {
                        tracing::warn!(sandbox = %record.id, error = %e, "undoing a cut-short pod sandbox; it stays listed not ready");
                        let mut record = record;
                        record.state = SandboxState::NotReady;
                        self.sandboxes.put(&record, false)?;
                    }
                }
                SandboxState::Ready => {
                    let pinned = record.pinned.clone().unwrap_or_default();
                    let holder_gone = pinned.pid_holder.as_ref().is_some_and(|h| !h.is_alive());
                    let pins_gone = pinned.files().any(|f| skiff_cni::netns::probe(f) != skiff_cni::netns::NetnsState::Live);
                    if holder_gone || pins_gone {
                        tracing::warn!(sandbox = %record.id, holder_gone, pins_gone, "pod sandbox lost its namespaces; marked not ready");
                        let mut record = record;
                        record.state = SandboxState::NotReady;
                        self.sandboxes.put(&record, false)?;
                    }
                }
                SandboxState::NotReady => {}
            }
        }
        Ok(())
    }
}
