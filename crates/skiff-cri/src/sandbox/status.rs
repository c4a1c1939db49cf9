//! PodSandboxStatus and ListPodSandbox, answered from memory. Labels, annotations and the
//! namespace options go back exactly as the kubelet sent them: it compares them, and recreates a
//! pod whose network option differs from what it asked.

use std::collections::HashMap;

use k8s_cri::v1 as cri;

use super::record::SandboxRecord;
use crate::error::{CriError, Result};
use crate::runtime::CriRuntime;

pub(crate) fn status_of(r: &SandboxRecord) -> cri::PodSandboxStatus {
    let (ip, additional_ips) = match r.ips.split_first() {
        Some((first, rest)) => (first.clone(), rest.iter().map(|ip| cri::PodIp { ip: ip.clone() }).collect()),
        None => (String::new(), Vec::new()),
    };
    cri::PodSandboxStatus {
        id: r.id.clone(),
        metadata: Some(r.metadata()),
        state: r.state.as_cri() as i32,
        created_at: r.created_at,
        network: Some(cri::PodSandboxNetworkStatus { ip, additional_ips }),
        linux: Some(cri::LinuxPodSandboxStatus { namespaces: Some(cri::Namespace { options: Some(r.namespace_options().cloned().unwrap_or_default()) }) }),
        labels: r.config.labels.clone(),
        annotations: r.config.annotations.clone(),
        runtime_handler: r.runtime_handler.clone(),
    }
}

fn listed(r: &SandboxRecord) -> cri::PodSandbox {
    cri::PodSandbox {
        id: r.id.clone(),
        metadata: Some(r.metadata()),
        state: r.state.as_cri() as i32,
        created_at: r.created_at,
        labels: r.config.labels.clone(),
        annotations: r.config.annotations.clone(),
        runtime_handler: r.runtime_handler.clone(),
    }
}

/// Every pair of `selector` is a label of `labels`, with that value.
pub fn selects(selector: &HashMap<String, String>, labels: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

impl CriRuntime {
    pub fn pod_sandbox_status(&self, req: &cri::PodSandboxStatusRequest) -> Result<cri::PodSandboxStatusResponse> {
        let record = self
            .sandboxes
            .find(&req.pod_sandbox_id)?
            .ok_or_else(|| CriError::NotFound(format!("pod sandbox {:?} not found", req.pod_sandbox_id)))?;
        let mut info = HashMap::new();
        if req.verbose {
            let doc = serde_json::json!({
                "name": record.name,
                "dir": record.dir,
                "state": record.state,
                "pinned": record.pinned,
                "networkAttached": record.network_attached,
                "config": record.config,
            });
            info.insert("info".to_string(), serde_json::to_string(&doc).map_err(|source| CriError::Encode { what: "the sandbox's info", source })?);
            if let Some(timings) = self.timings.json(&record.id) {
                info.insert("timings".to_string(), timings);
            }
        }
        // With them, a kubelet running the evented PLEG refreshes the pod from this one answer.
        Ok(cri::PodSandboxStatusResponse {
            status: Some(status_of(&record)),
            info,
            containers_statuses: self.pod_container_statuses(&record.id),
            timestamp: crate::now_ns(),
        })
    }

    pub fn list_pod_sandbox(&self, req: &cri::ListPodSandboxRequest) -> Vec<cri::PodSandbox> {
        let filter = req.filter.clone().unwrap_or_default();
        self.sandboxes.select(|r| {
            let wanted = r.id.starts_with(&filter.id)
                && filter.state.as_ref().is_none_or(|s| s.state == r.state.as_cri() as i32)
                && selects(&filter.label_selector, &r.config.labels);
            wanted.then(|| listed(r))
        })
    }
}
