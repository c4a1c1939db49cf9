//! `skiff info` and `skiff version`, as far as skiffd's API tells: it has no call for the
//! daemon's version, kernel, cgroup driver or configured runtimes, so those are not shown.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;
use skiff_api::v1::{self, containers_client::ContainersClient, content_client::ContentClient, images_client::ImagesClient, snapshots_client::SnapshotsClient};

use crate::humanize::human_size;
use crate::output::Output;
use crate::{status, template, Ctx};

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A Go template over the document, e.g. '{{.Images}}' or '{{json .}}'.
    #[arg(long, short = 'f')]
    format: Option<String>,
    /// Text, or the document as JSON.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: Output,
}

/// What `info` reports (`Containers` and `Images` as docker names them).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Info {
    address: String,
    containers: usize,
    /// Containers by status (created, running, exited, unknown).
    containers_by_status: BTreeMap<String, usize>,
    images: usize,
    /// overlayfs or native.
    snapshotter: String,
    snapshots: usize,
    /// Snapshots by kind (committed, active, view).
    snapshots_by_kind: BTreeMap<String, usize>,
    /// Disk used by all snapshots' own layers.
    snapshots_bytes: u64,
    snapshots_inodes: u64,
    content_blobs: usize,
    content_bytes: u64,
}

fn counts<'a>(items: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(i.to_string()).or_insert(0) += 1;
    }
    out
}

fn text(i: &Info) -> String {
    let by = |m: &BTreeMap<String, usize>| m.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ");
    let mut s = format!("Address: {}\nContainers: {}", i.address, i.containers);
    if !i.containers_by_status.is_empty() {
        s += &format!(" ({})", by(&i.containers_by_status));
    }
    s += &format!("\nImages: {}\nSnapshotter: {}\nSnapshots: {}", i.images, i.snapshotter, i.snapshots);
    if !i.snapshots_by_kind.is_empty() {
        s += &format!(" ({})", by(&i.snapshots_by_kind));
    }
    s += &format!("\n  Disk used: {} in {} inodes", human_size(i.snapshots_bytes), i.snapshots_inodes);
    s += &format!("\nContent: {} blob(s), {}", i.content_blobs, human_size(i.content_bytes));
    s
}

pub async fn info(ctx: &Ctx, address: &std::path::Path, a: InfoArgs) -> Result<()> {
    let ch = &ctx.channel;
    let images = ImagesClient::new(ch.clone()).max_decoding_message_size(64 << 20).list(v1::ListImagesRequest {}).await.map_err(status)?.into_inner().images;
    let containers = ContainersClient::new(ch.clone()).list(v1::ListContainersRequest { all: true }).await.map_err(status)?.into_inner().containers;
    let snapshots = SnapshotsClient::new(ch.clone()).list(v1::ListSnapshotsRequest {}).await.map_err(status)?.into_inner();
    let usage = SnapshotsClient::new(ch.clone()).usage(v1::SnapshotUsageRequest { keys: Vec::new() }).await.map_err(status)?.into_inner().usage;
    let content = ContentClient::new(ch.clone()).max_decoding_message_size(64 << 20).list(v1::ListContentRequest { filters: Vec::new() }).await.map_err(status)?.into_inner().content;
    let info = Info {
        address: address.display().to_string(),
        containers: containers.len(),
        containers_by_status: counts(containers.iter().map(|c| c.status.as_str())),
        images: images.len(),
        snapshotter: snapshots.backend,
        snapshots: snapshots.snapshots.len(),
        snapshots_by_kind: counts(snapshots.snapshots.iter().map(|s| s.kind.as_str())),
        snapshots_bytes: usage.iter().map(|u| u.bytes).sum(),
        snapshots_inodes: usage.iter().map(|u| u.inodes).sum(),
        content_blobs: content.len(),
        content_bytes: content.iter().map(|c| c.size).sum(),
    };
    let doc = serde_json::to_value(&info)?;
    match (a.format, a.output) {
        (Some(t), _) => outln!("{}", template::render(&t, &doc)?)?,
        (None, Output::Json) => outln!("{}", serde_json::to_string_pretty(&doc)?)?,
        (None, Output::Table) => outln!("{}", text(&info))?,
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct VersionArgs {
    /// A Go template, e.g. '{{.Client.Version}}'.
    #[arg(long, short = 'f')]
    format: Option<String>,
}

/// This machine's architecture as OCI platforms (and docker) name it.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The client's version only: no skiffd call reports the daemon's.
pub fn version(a: VersionArgs) -> Result<()> {
    let (version, os, arch) = (env!("CARGO_PKG_VERSION"), std::env::consts::OS, oci_arch());
    let doc = serde_json::json!({ "Client": { "Version": version, "Os": os, "Arch": arch } });
    match a.format {
        Some(t) => outln!("{}", template::render(&t, &doc)?)?,
        None => {
            outln!("Client:\n Version: {version}\n OS/Arch: {os}/{arch}")?;
            outln!("Server:\n Version: not reported (skiffd's API has no version call)")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_counts_by_status_and_kind() {
        let info = Info {
            address: "/run/s.sock".into(),
            containers: 3,
            containers_by_status: counts(["running", "exited", "running"].into_iter()),
            images: 2,
            snapshotter: "overlayfs".into(),
            snapshots: 1,
            snapshots_by_kind: counts(["committed"].into_iter()),
            snapshots_bytes: 2048,
            snapshots_inodes: 7,
            content_blobs: 4,
            content_bytes: 1536,
        };
        let t = text(&info);
        assert!(t.contains("Containers: 3 (1 exited, 2 running)"), "{t}");
        assert!(t.contains("Snapshots: 1 (1 committed)\n  Disk used: 2.0 KiB in 7 inodes"), "{t}");
        assert!(t.contains("Content: 4 blob(s), 1.5 KiB"), "{t}");
        let doc = serde_json::to_value(&info).expect("json");
        assert_eq!(doc["ContainersByStatus"]["running"], 2);
        assert_eq!(doc["Snapshotter"], "overlayfs");
    }
}
