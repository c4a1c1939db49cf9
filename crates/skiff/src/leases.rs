//! `skiff leases ls|rm` (as `ctr leases`): what keeps content from garbage collection.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::Subcommand;
use serde::Serialize;
use skiff_api::v1::{self, leases_client::LeasesClient};

use crate::humanize::human_size;
use crate::output::{print_rows, ListFormat, Row};
use crate::{status, Ctx};

#[derive(Subcommand)]
pub enum LeasesCommand {
    /// List leases with what they hold.
    #[command(alias = "list")]
    Ls {
        /// Only ids.
        #[arg(long, short = 'q')]
        quiet: bool,
        #[command(flatten)]
        list: ListFormat,
    },
    /// Release leases; what only they held goes at the next `content prune` or image removal.
    #[command(alias = "remove", alias = "delete")]
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Serialize)]
struct LeaseRow {
    id: String,
    created_at: String,
    expires_at: String,
    temporary: bool,
    labels: BTreeMap<String, String>,
    blobs: u32,
    bytes: u64,
}

impl Row for LeaseRow {
    const HEADERS: &'static [&'static str] = &["ID", "CREATED", "EXPIRES", "BLOBS", "SIZE", "LABELS"];
    fn cells(&self) -> Vec<String> {
        let expires = if self.temporary { "at restart".to_string() } else if self.expires_at.is_empty() { "never".to_string() } else { self.expires_at.clone() };
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![self.id.clone(), self.created_at.clone(), expires, self.blobs.to_string(), human_size(self.bytes), labels.join(",")]
    }
}

fn row(l: v1::Lease) -> LeaseRow {
    LeaseRow { id: l.id, created_at: l.created_at, expires_at: l.expires_at, temporary: l.temporary, labels: l.labels.into_iter().collect(), blobs: l.blobs, bytes: l.bytes }
}

/// What `content prune` could not remove because leases hold it, and how to release them.
pub fn explain_held(leases: &[v1::Lease]) {
    for l in leases {
        let what = l.labels.get("io.skiff.operation").map_or(String::new(), |op| format!(" (a {op})"));
        eprintln!("lease {}{what} still holds {} blob(s), {}: skiff leases rm {}", l.id, l.blobs, human_size(l.bytes), l.id);
    }
}

pub async fn run(ctx: &Ctx, cmd: LeasesCommand) -> Result<()> {
    let mut client = LeasesClient::new(ctx.channel.clone());
    match cmd {
        LeasesCommand::Ls { quiet, list } => {
            let leases = client.list(v1::ListLeasesRequest {}).await.map_err(status)?.into_inner().leases;
            if quiet {
                for l in &leases {
                    outln!("{}", l.id)?;
                }
                return Ok(());
            }
            print_rows(&leases.into_iter().map(row).collect::<Vec<_>>(), &list)
        }
        LeasesCommand::Rm { ids } => {
            let mut failed = 0;
            for id in ids {
                match client.delete(v1::DeleteLeaseRequest { id: id.clone() }).await {
                    Ok(_) => outln!("{id}")?,
                    Err(s) => {
                        eprintln!("skiff: {id}: {}", s.message());
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} lease(s) not released");
            }
            Ok(())
        }
    }
}
