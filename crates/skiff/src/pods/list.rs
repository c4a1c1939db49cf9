//! `skiff pods ls` and `skiff pods inspect`.

use anyhow::{bail, Result};
use k8s_cri::v1 as cri;
use serde::Serialize;

use super::client;
use crate::output::{print_rows, ListFormat, Row};
use crate::{status, Ctx};

#[derive(Serialize)]
struct PodRow {
    id: String,
    name: String,
    namespace: String,
    state: String,
    created_at: String,
    ip: String,
    containers: usize,
    runtime: String,
}

impl Row for PodRow {
    const HEADERS: &'static [&'static str] = &["POD ID", "NAME", "NAMESPACE", "STATE", "IP", "CONTAINERS", "CREATED", "RUNTIME"];
    fn cells(&self) -> Vec<String> {
        let created = crate::humanize::ago(&self.created_at, chrono::Utc::now());
        vec![self.id[..self.id.len().min(13)].to_string(), self.name.clone(), self.namespace.clone(), self.state.clone(), self.ip.clone(), self.containers.to_string(), created, self.runtime.clone()]
    }
}

fn state(s: i32) -> String {
    match cri::PodSandboxState::try_from(s) {
        Ok(cri::PodSandboxState::SandboxReady) => "ready".into(),
        _ => "notready".into(),
    }
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn ls(ctx: &crate::Ctx, quiet: bool, list: &ListFormat) -> Result<()> {
    let mut c = client(ctx);
    let pods = c.list_pod_sandbox(cri::ListPodSandboxRequest::default()).await.map_err(status)?.into_inner().items;
    if quiet {
        for p in &pods {
            outln!("{}", p.id)?;
        }
        return Ok(());
    }
    let containers = c.list_containers(cri::ListContainersRequest::default()).await.map_err(status)?.into_inner().containers;
    let mut rows = Vec::new();
    for p in pods {
        let st = c.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: p.id.clone(), verbose: false }).await.map_err(status)?;
        let ip = st.into_inner().status.and_then(|s| s.network).map(|n| n.ip).unwrap_or_default();
        let m = p.metadata.unwrap_or_default();
        rows.push(PodRow {
            containers: containers.iter().filter(|c| c.pod_sandbox_id == p.id).count(),
            id: p.id,
            name: m.name,
            namespace: m.namespace,
            state: state(p.state),
            created_at: rfc3339(p.created_at),
            ip,
            runtime: p.runtime_handler,
        });
    }
    print_rows(&rows, list)
}

pub async fn inspect(ctx: &Ctx, pods: &[String]) -> Result<()> {
    let mut c = client(ctx);
    let mut docs = Vec::new();
    let mut failed = 0;
    for id in pods {
        match c.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose: true }).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                let info: serde_json::Value = answer.info.get("info").and_then(|i| serde_json::from_str(i).ok()).unwrap_or(serde_json::Value::Null);
                docs.push(serde_json::json!({ "status": answer.status, "info": info }));
            }
            Err(s) => {
                eprintln!("skiff: {id}: {}", s.message());
                failed += 1;
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&docs)?)?;
    if failed > 0 {
        bail!("{failed} pod(s) not found");
    }
    Ok(())
}
