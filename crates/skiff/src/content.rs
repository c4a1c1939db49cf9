//! `skiff content ...`

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde::Serialize;
use skiff_api::v1::{self, content_client::ContentClient};
use tokio_stream::StreamExt;

use crate::containers::key_values;
use crate::humanize::human_size;
use crate::output::{print_rows, ListFormat, Row};
use crate::{status, Ctx};

/// Marks content imported by hand as a garbage-collection root, so `prune` keeps it.
const LABEL_GC_ROOT: &str = "io.skiff.gc.root";

#[derive(Subcommand)]
pub enum ContentCommand {
    /// List blobs.
    #[command(alias = "list")]
    Ls {
        /// Label selector, KEY or KEY=VALUE (repeatable; all must match).
        #[arg(long)]
        filter: Vec<String>,
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        list: ListFormat,
    },
    /// Show a blob's record.
    Info { digest: String },
    /// Write a blob's bytes to stdout.
    Get { digest: String },
    /// Remove blobs.
    #[command(alias = "remove", alias = "delete")]
    Rm {
        #[arg(required = true)]
        digests: Vec<String>,
    },
    /// Re-hash blobs on disk (all when none are named); fails naming every bad blob.
    Verify { digests: Vec<String> },
    /// Remove every blob no image, lease or root label reaches.
    Prune,
    /// Store a file (or stdin with -) as one blob; it is kept as a GC root.
    Import {
        file: PathBuf,
        /// Refuse the content unless it has this digest.
        #[arg(long)]
        digest: Option<String>,
        /// KEY=VALUE label (repeatable).
        #[arg(long)]
        label: Vec<String>,
    },
    /// Write a blob to a file (or stdout with -).
    Export {
        digest: String,
        #[arg(short = 'O', long = "out")]
        out: PathBuf,
    },
    /// Set (KEY=VALUE) or remove (KEY=) labels on a blob.
    Label {
        digest: String,
        #[arg(required = true)]
        labels: Vec<String>,
    },
}

#[derive(Serialize)]
struct ContentRow {
    digest: String,
    size: u64,
    created_at: String,
    labels: BTreeMap<String, String>,
}

impl Row for ContentRow {
    const HEADERS: &'static [&'static str] = &["DIGEST", "SIZE", "CREATED", "LABELS"];
    fn cells(&self) -> Vec<String> {
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![self.digest.clone(), human_size(self.size), self.created_at.clone(), labels.join(",")]
    }
}

fn row(i: v1::ContentInfo) -> ContentRow {
    ContentRow { digest: i.digest, size: i.size, created_at: i.created_at, labels: i.labels.into_iter().collect() }
}

async fn copy_blob(client: &mut ContentClient<tonic::transport::Channel>, digest: String, out: &mut dyn Write) -> Result<()> {
    let mut stream = client.read(v1::ReadContentRequest { digest }).await.map_err(status)?.into_inner();
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk.map_err(status)?.data)?;
    }
    out.flush()?;
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: ContentCommand) -> Result<()> {
    let mut client = ContentClient::new(ctx.channel.clone()).max_decoding_message_size(64 << 20);
    match cmd {
        ContentCommand::Ls { filter, quiet, list } => {
            let mut blobs = client.list(v1::ListContentRequest { filters: filter }).await.map_err(status)?.into_inner().content;
            blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
            if quiet {
                for c in &blobs {
                    outln!("{}", c.digest)?;
                }
                return Ok(());
            }
            print_rows(&blobs.into_iter().map(row).collect::<Vec<_>>(), &list)
        }
        ContentCommand::Info { digest } => {
            let info = client.info(v1::ContentInfoRequest { digest }).await.map_err(status)?.into_inner();
            outln!("{}", serde_json::to_string_pretty(&row(info))?)?;
            Ok(())
        }
        ContentCommand::Get { digest } => copy_blob(&mut client, digest, &mut crate::output::Stdout).await,
        ContentCommand::Export { digest, out } => {
            if out.as_os_str() == "-" {
                return copy_blob(&mut client, digest, &mut crate::output::Stdout).await;
            }
            let tmp = PathBuf::from(format!("{}.partial", out.display()));
            let mut file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            if let Err(e) = copy_blob(&mut client, digest, &mut file).await {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &out).with_context(|| format!("rename to {}", out.display()))?;
            Ok(())
        }
        ContentCommand::Rm { digests } => {
            for digest in digests {
                client.delete(v1::DeleteContentRequest { digest: digest.clone() }).await.map_err(status)?;
                outln!("{digest}")?;
            }
            Ok(())
        }
        ContentCommand::Verify { digests } => {
            let results = client.verify(v1::VerifyContentRequest { digests }).await.map_err(status)?.into_inner().results;
            let bad: Vec<&v1::VerifyResult> = results.iter().filter(|r| !r.ok).collect();
            for r in &bad {
                eprintln!("FAIL {}: {}", r.digest, r.error);
            }
            if !bad.is_empty() {
                bail!("{} of {} blob(s) failed verification", bad.len(), results.len());
            }
            outln!("verified {} blob(s)", results.len())?;
            Ok(())
        }
        ContentCommand::Prune => {
            let r = client.prune(v1::PruneContentRequest {}).await.map_err(status)?.into_inner();
            for d in &r.removed {
                outln!("{d}")?;
            }
            eprintln!("removed {} blob(s), {}", r.removed.len(), human_size(r.bytes));
            crate::leases::explain_held(&r.leases);
            Ok(())
        }
        ContentCommand::Import { file, digest, label } => {
            let mut labels = key_values(&label, "label")?;
            labels.entry(LABEL_GC_ROOT.into()).or_insert_with(|| "content-import".into());
            let mut reader: Box<dyn Read + Send> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin())
            } else {
                Box::new(std::fs::File::open(&file).with_context(|| format!("open {}", file.display()))?)
            };
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let first = v1::WriteContentRequest { expected_digest: digest.unwrap_or_default(), expected_size: 0, labels, data: vec![] };
            let reading = tokio::task::spawn_blocking(move || -> Result<()> {
                let _ = tx.blocking_send(first);
                loop {
                    let mut buf = vec![0u8; 1 << 20];
                    let n = reader.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.truncate(n);
                    if tx.blocking_send(v1::WriteContentRequest { data: buf, ..Default::default() }).is_err() {
                        return Ok(());
                    }
                }
            });
            let info = client.write(tokio_stream::wrappers::ReceiverStream::new(rx)).await.map_err(status)?.into_inner();
            reading.await??;
            outln!("{}", info.digest)?;
            Ok(())
        }
        ContentCommand::Label { digest, labels } => {
            let mut set = HashMap::new();
            let mut remove = Vec::new();
            for (k, v) in key_values(&labels, "label")? {
                if v.is_empty() {
                    remove.push(k);
                } else {
                    set.insert(k, v);
                }
            }
            let info = client.update_labels(v1::UpdateLabelsRequest { digest, set, remove }).await.map_err(status)?.into_inner();
            outln!("{}", serde_json::to_string_pretty(&row(info))?)?;
            Ok(())
        }
    }
}
