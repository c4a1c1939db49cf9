//! StartContainer, StopContainer, RemoveContainer, and what a pod's stop and removal do to its
//! containers. Stop and Remove succeed for a container that is gone or already stopped.

use std::time::Duration;

use skiff_engine::Status;

use crate::blocking::blocking;
use crate::error::{CriError, Result};
use crate::runtime::CriRuntime;
use crate::timings::Stopwatch;

/// The engine's answer for a container it no longer has.
fn gone(e: &skiff_engine::EngineError) -> bool {
    matches!(e, skiff_engine::EngineError::NoContainer(_))
}

impl CriRuntime {
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let mut watch = Stopwatch::start();
        let c = self.containers.find(id)?.ok_or_else(|| CriError::NotFound(format!("container {id:?} not found")))?;
        let runtime = self.clone();
        blocking("starting a container", move || {
            watch.lap("to the blocking pool");
            runtime.parts.manager.start(&c.id)?;
            watch.lap("engine start (shim, init, record)");
            runtime.timings.record(&c.id, "start", watch);
            Ok(())
        })
        .await
    }

    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let Some(c) = self.containers.find(id)? else {
            return Ok(());
        };
        let mut watch = Stopwatch::start();
        let runtime = self.clone();
        blocking("stopping a container", move || {
            watch.lap("to the blocking pool");
            runtime.stop_engine(&c.id, Duration::from_secs(timeout.max(0) as u64))?;
            watch.lap("engine stop (signal, exit, record)");
            runtime.timings.record(&c.id, "stop", watch);
            Ok(())
        })
        .await
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let Some(c) = self.containers.find(id)? else {
            return Ok(());
        };
        let runtime = self.clone();
        blocking("removing a container", move || runtime.remove_engine(&c.id)).await
    }

    /// The stop signal (the image's, else SIGTERM), SIGKILL after `timeout`; fine when it is not
    /// running or gone.
    fn stop_engine(&self, id: &str, timeout: Duration) -> Result<()> {
        let manager = &self.parts.manager;
        match manager.records().get(id)? {
            Some(r) if r.status == Status::Running => match manager.stop(id, timeout) {
                Err(e) if gone(&e) => Ok(()),
                Err(skiff_engine::EngineError::InvalidState { .. }) => Ok(()),
                other => Ok(other?),
            },
            _ => Ok(()),
        }
    }

    fn remove_engine(&self, id: &str) -> Result<()> {
        match self.parts.manager.delete(id, true) {
            Err(e) if gone(&e) => {}
            other => {
                other?;
            }
        }
        // Not flushed: the engine's removal just was, and a crash before this reaches the disk
        // leaves a record without its engine container, which `recover` drops.
        self.containers.delete(id, false)?;
        self.timings.forget(id);
        tracing::info!(container = %id, "cri container removed");
        Ok(())
    }

    /// StopPodSandbox: every container of the pod is killed (no grace: the kubelet stopped each
    /// one gracefully before, as containerd does).
    pub(crate) fn stop_pod_containers(&self, sandbox_id: &str) -> Result<()> {
        for c in self.containers.of_sandbox(sandbox_id) {
            self.stop_engine(&c.id, Duration::ZERO)?;
        }
        Ok(())
    }

    /// RemovePodSandbox: every container of the pod goes.
    pub(crate) fn remove_pod_containers(&self, sandbox_id: &str) -> Result<()> {
        for c in self.containers.of_sandbox(sandbox_id) {
            self.remove_engine(&c.id)?;
        }
        Ok(())
    }
}
