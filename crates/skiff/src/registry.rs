//! `skiff images pull|push` (and `skiff pull|push`): registry transfers through skiffd, with
//! per-layer progress bars.

use std::collections::HashMap;

use anyhow::{bail, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use skiff_api::v1::{self, images_client::ImagesClient, pull_image_event::Event as PullEvent, push_image_event::Event as PushEvent};
use tonic::transport::Channel;

use crate::humanize::human_size;
use crate::stored::{print_stored, ContentFlags};
use crate::progress::Step;
use crate::{progress, status};

/// Registry flags shared by pull and push.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RegistryFlags {
    /// Talk plain HTTP to hosts that have no hosts.toml.
    #[arg(long)]
    pub plain_http: bool,
    /// Credentials, USER:PASSWORD (over skiffd's configured ones).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
}

#[derive(clap::Args)]
pub struct PullArgs {
    reference: String,
    #[command(flatten)]
    content: ContentFlags,
    #[command(flatten)]
    registry: RegistryFlags,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct PushArgs {
    name: String,
    destination: Option<String>,
    /// Push only this platform's manifest (with the index).
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryFlags,
    #[arg(short, long)]
    quiet: bool,
}

impl RegistryFlags {
    pub fn options(&self) -> Result<v1::RegistryOptions> {
        let (username, password) = match &self.user {
            None => (String::new(), String::new()),
            Some(u) => match u.split_once(':') {
                Some((n, p)) if !n.is_empty() => (n.to_string(), p.to_string()),
                _ => bail!("--user must be USER:PASSWORD"),
            },
        };
        Ok(v1::RegistryOptions { plain_http: self.plain_http, username, password })
    }
}

fn layer_bar(multi: &MultiProgress, digest: &str, size: u64) -> ProgressBar {
    let pb = multi.add(ProgressBar::new(size));
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}") {
        pb.set_style(style.progress_chars("=> "));
    }
    let short = digest.trim_start_matches("sha256:");
    pb.set_prefix(short[..short.len().min(12)].to_string());
    pb
}

pub async fn pull_image(channel: Channel, a: PullArgs) -> Result<()> {
    let req = v1::PullImageRequest {
        reference: a.reference,
        platform: a.content.platform.unwrap_or_default(),
        all_platforms: a.content.all_platforms,
        registry: Some(a.registry.options()?),
        no_unpack: a.content.no_unpack,
    };
    print_stored(&pull(channel, req, a.quiet).await?, "fetched", a.quiet)
}

/// Pulls with progress bars on stderr (none when `quiet`); returns what was stored.
pub async fn pull(channel: Channel, req: v1::PullImageRequest, quiet: bool) -> Result<v1::ImportResult> {
    let mut client = ImagesClient::new(channel);
    let mut stream = client.pull(req).await.map_err(status)?.into_inner();
    let multi = MultiProgress::with_draw_target(if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
    let overall = multi.add(progress::bar("total", quiet));
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let result = progress::follow(&mut stream, &overall, "pull", |ev| match ev.event {
        Some(PullEvent::Progress(p)) => Step::Progress(p.total, p.done),
        Some(PullEvent::Blob(b)) => {
            let bar = bars.entry(b.digest.clone()).or_insert_with(|| layer_bar(&multi, &b.digest, b.size));
            bar.set_position(b.done);
            if b.skipped {
                bar.finish_with_message("already stored");
            } else if b.done >= b.size {
                bar.finish_with_message("done");
            }
            Step::Other
        }
        Some(PullEvent::Result(r)) => Step::Done(r),
        None => Step::Other,
    })
    .await;
    let _ = multi.clear();
    result
}

pub async fn push(channel: Channel, a: PushArgs) -> Result<()> {
    let mut client = ImagesClient::new(channel);
    let quiet = a.quiet;
    let req = v1::PushImageRequest {
        name: a.name,
        destination: a.destination.unwrap_or_default(),
        platform: a.platform.unwrap_or_default(),
        registry: Some(a.registry.options()?),
    };
    let mut stream = client.push(req).await.map_err(status)?.into_inner();
    let pb = progress::bar("pushing", quiet);
    let r = progress::follow(&mut stream, &pb, "push", |ev| match ev.event {
        Some(PushEvent::Progress(p)) => Step::Progress(p.total, p.done),
        Some(PushEvent::Result(r)) => Step::Done(r),
        None => Step::Other,
    })
    .await?;
    if !quiet {
        eprintln!(
            "pushed: {} blob(s) uploaded ({}), {} mounted, {} already there, {} manifest(s)",
            r.uploaded,
            human_size(r.bytes_uploaded),
            r.mounted,
            r.present,
            r.manifests
        );
    }
    Ok(())
}
