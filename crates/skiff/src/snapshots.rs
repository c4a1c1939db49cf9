//! `skiff snapshots ...`

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;
use skiff_api::v1::{self, snapshots_client::SnapshotsClient};

use crate::humanize::human_size;
use crate::output::{print_rows, ListFormat, Row};
use crate::{status, Ctx};

#[derive(Subcommand)]
pub enum SnapshotsCommand {
    /// List snapshots (layers are committed snapshots named by chain ID).
    #[command(alias = "list")]
    Ls {
        #[command(flatten)]
        list: ListFormat,
    },
    /// Disk used by each snapshot's own layer.
    Usage {
        keys: Vec<String>,
        #[command(flatten)]
        list: ListFormat,
    },
    /// Remove snapshots that nothing is built on.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// The mounts that make an active snapshot or view.
    Mounts {
        key: String,
        #[command(flatten)]
        list: ListFormat,
    },
}

#[derive(Serialize)]
struct SnapshotRow {
    key: String,
    kind: String,
    parent: String,
    created_at: String,
    labels: BTreeMap<String, String>,
}

impl Row for SnapshotRow {
    const HEADERS: &'static [&'static str] = &["KEY", "KIND", "PARENT", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![self.key.clone(), self.kind.clone(), self.parent.clone(), self.created_at.clone()]
    }
}

#[derive(Serialize)]
struct UsageRow {
    key: String,
    bytes: u64,
    inodes: u64,
}

impl Row for UsageRow {
    const HEADERS: &'static [&'static str] = &["KEY", "SIZE", "INODES"];
    fn cells(&self) -> Vec<String> {
        vec![self.key.clone(), human_size(self.bytes), self.inodes.to_string()]
    }
}

#[derive(Serialize)]
struct MountRow {
    r#type: String,
    source: String,
    options: Vec<String>,
}

impl Row for MountRow {
    const HEADERS: &'static [&'static str] = &["TYPE", "SOURCE", "OPTIONS"];
    fn cells(&self) -> Vec<String> {
        vec![self.r#type.clone(), self.source.clone(), self.options.join(",")]
    }
}

pub async fn run(ctx: &Ctx, cmd: SnapshotsCommand) -> Result<()> {
    let mut client = SnapshotsClient::new(ctx.channel.clone());
    match cmd {
        SnapshotsCommand::Ls { list } => {
            let mut snapshots = client.list(v1::ListSnapshotsRequest {}).await.map_err(status)?.into_inner().snapshots;
            snapshots.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            let rows: Vec<SnapshotRow> = snapshots
                .into_iter()
                .map(|s| SnapshotRow { key: s.key, kind: s.kind, parent: s.parent, created_at: s.created_at, labels: s.labels.into_iter().collect() })
                .collect();
            print_rows(&rows, &list)
        }
        SnapshotsCommand::Usage { keys, list } => {
            let usage = client.usage(v1::SnapshotUsageRequest { keys }).await.map_err(status)?.into_inner().usage;
            let rows: Vec<UsageRow> = usage.into_iter().map(|u| UsageRow { key: u.key, bytes: u.bytes, inodes: u.inodes }).collect();
            print_rows(&rows, &list)
        }
        SnapshotsCommand::Rm { keys } => {
            for key in keys {
                client.remove(v1::RemoveSnapshotRequest { key: key.clone() }).await.map_err(status)?;
                outln!("{key}")?;
            }
            Ok(())
        }
        SnapshotsCommand::Mounts { key, list } => {
            let mounts = client.mounts(v1::SnapshotMountsRequest { key }).await.map_err(status)?.into_inner().mounts;
            let rows: Vec<MountRow> = mounts.into_iter().map(|m| MountRow { r#type: m.r#type, source: m.source, options: m.options }).collect();
            print_rows(&rows, &list)
        }
    }
}
