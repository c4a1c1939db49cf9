//! ContainerStatus and ListContainers: the CRI's metadata from memory, the state from the engine
//! record. Labels and annotations go back exactly as the kubelet sent them.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use skiff_engine::{ContainerRecord, Status};

use super::CriContainer;
use crate::error::{CriError, Result};
use crate::runtime::CriRuntime;
use crate::sandbox::status::selects;

/// RFC 3339 as nanoseconds since the epoch (0 when unset).
fn ns(time: &str) -> i64 {
    crate::rfc3339_ns(time).unwrap_or(0)
}

fn state(r: &ContainerRecord) -> cri::ContainerState {
    cri_state(r.status)
}

fn cri_state(status: Status) -> cri::ContainerState {
    match status {
        Status::Creating | Status::Created => cri::ContainerState::ContainerCreated,
        Status::Running => cri::ContainerState::ContainerRunning,
        Status::Exited => cri::ContainerState::ContainerExited,
    }
}

fn status_of(c: &CriContainer, r: &ContainerRecord) -> cri::ContainerStatus {
    let (exit_code, reason, finished_at) = match &r.exit {
        Some(e) => (e.code, e.reason().as_str().to_string(), ns(&e.exited_at)),
        None => (0, String::new(), 0),
    };
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(c.metadata.clone()),
        state: state(r) as i32,
        created_at: c.created_at,
        started_at: ns(&r.started_at),
        finished_at,
        exit_code,
        image: Some(c.image.clone()),
        image_ref: c.image_ref.clone(),
        image_id: c.image_ref.clone(),
        reason,
        // Why it never ran, when its start failed; nothing otherwise, as containerd.
        message: r.exit.as_ref().and_then(|e| e.start_error.clone()).unwrap_or_default(),
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        mounts: c.mounts.clone(),
        log_path: c.log_path.clone(),
        resources: c.resources.clone().map(|linux| cri::ContainerResources { linux: Some(linux), windows: None }),
        user: None,
    }
}

fn listed(c: &CriContainer, state: cri::ContainerState) -> cri::Container {
    cri::Container {
        id: c.id.clone(),
        pod_sandbox_id: c.sandbox_id.clone(),
        metadata: Some(c.metadata.clone()),
        image: Some(c.image.clone()),
        image_ref: c.image_ref.clone(),
        image_id: c.image_ref.clone(),
        state: state as i32,
        created_at: c.created_at,
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
    }
}

impl CriRuntime {
    fn engine_record(&self, c: &CriContainer) -> Result<ContainerRecord> {
        self.parts.manager.records().get(&c.id)?.ok_or_else(|| CriError::NotFound(format!("container {} has no engine record", c.id)))
    }

    pub fn container_status(&self, req: &cri::ContainerStatusRequest) -> Result<cri::ContainerStatusResponse> {
        let c = self.containers.find(&req.container_id)?.ok_or_else(|| CriError::NotFound(format!("container {:?} not found", req.container_id)))?;
        let r = self.engine_record(&c)?;
        let mut info = HashMap::new();
        if req.verbose {
            let spec = self.parts.manager.spec(&c.id).unwrap_or(serde_json::Value::Null);
            let doc = serde_json::json!({ "sandboxID": c.sandbox_id, "pid": r.pid, "runtimeHandler": r.runtime, "annotations": r.annotations, "runtimeSpec": spec });
            info.insert("info".to_string(), serde_json::to_string(&doc).map_err(|source| CriError::Encode { what: "the container's info", source })?);
            if let Some(timings) = self.timings.json(&c.id) {
                info.insert("timings".to_string(), timings);
            }
        }
        Ok(cri::ContainerStatusResponse { status: Some(status_of(&c, &r)), info })
    }

    /// The statuses of a pod's containers (for its events), each from its engine record.
    pub(crate) fn pod_container_statuses(&self, sandbox_id: &str) -> Vec<cri::ContainerStatus> {
        let records = self.parts.manager.records();
        self.containers.of_sandbox(sandbox_id).iter().filter_map(|c| Some(status_of(c, &records.get(&c.id).ok()??))).collect()
    }

    pub fn list_containers(&self, req: &cri::ListContainersRequest) -> Result<Vec<cri::Container>> {
        let filter = req.filter.clone().unwrap_or_default();
        let records = self.parts.manager.records();
        Ok(self.containers.select(|c| {
            if !c.id.starts_with(&filter.id) || !c.sandbox_id.starts_with(&filter.pod_sandbox_id) || !selects(&filter.label_selector, &c.labels) {
                return None;
            }
            let state = cri_state(records.status(&c.id)?);
            if filter.state.as_ref().is_some_and(|s| s.state != state as i32) {
                return None;
            }
            Some(listed(c, state))
        }))
    }
}
