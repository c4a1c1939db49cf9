//! `skiff ps` / `skiff containers ls`.

use std::collections::HashMap;

use anyhow::Result;
use serde::Serialize;
use skiff_api::v1::{self, containers_client::ContainersClient};

use crate::output::{print_rows, ListFormat, Row};
use crate::{status, Ctx};

#[derive(Serialize)]
struct ContainerRow {
    id: String,
    name: String,
    image: String,
    command: Vec<String>,
    status: String,
    exit_code: i32,
    reason: String,
    runtime: String,
    pid: i32,
    created_at: String,
    started_at: String,
    finished_at: String,
    labels: HashMap<String, String>,
    /// The CRI pod (namespace/name) it belongs to; empty for Skiff's own containers.
    pod: String,
    pod_sandbox_id: String,
}

impl Row for ContainerRow {
    const HEADERS: &'static [&'static str] = &["CONTAINER ID", "NAME", "IMAGE", "COMMAND", "STATUS", "RUNTIME", "POD"];
    fn cells(&self) -> Vec<String> {
        let status = match self.status.as_str() {
            "exited" => format!("Exited ({}) {}", self.exit_code, self.reason),
            "running" => format!("Up (pid {})", self.pid),
            other => other.to_string(),
        };
        let mut command = self.command.join(" ");
        if command.chars().count() > 30 {
            command = command.chars().take(29).collect::<String>() + "…";
        }
        vec![self.id[..12.min(self.id.len())].to_string(), self.name.clone(), self.image.clone(), command, status, self.runtime.clone(), if self.pod.is_empty() { "-".into() } else { self.pod.clone() }]
    }
}

/// `skiff ps` and `skiff containers ls`.
#[derive(clap::Args)]
pub struct PsArgs {
    /// Include containers that are not running.
    #[arg(long, short = 'a')]
    all: bool,
    /// Only ids.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    list: ListFormat,
}

pub async fn ps(ctx: &Ctx, args: PsArgs) -> Result<()> {
    let PsArgs { all, quiet, list } = args;
    let list = &list;
    let mut client = ContainersClient::new(ctx.channel.clone());
    let listed = client.list(v1::ListContainersRequest { all }).await.map_err(status)?.into_inner();
    if quiet {
        for c in &listed.containers {
            outln!("{}", c.id)?;
        }
        return Ok(());
    }
    let rows: Vec<ContainerRow> = listed
        .containers
        .into_iter()
        .map(|c| ContainerRow {
            id: c.id,
            name: c.name,
            image: c.image,
            command: c.command,
            status: c.status,
            exit_code: c.exit_code,
            reason: c.reason,
            runtime: c.runtime,
            pid: c.pid,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            labels: c.labels,
            pod: c.pod,
            pod_sandbox_id: c.pod_sandbox_id,
        })
        .collect();
    print_rows(&rows, list)
}
