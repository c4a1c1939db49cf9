//! `skiff images ...`, and docker's top-level verbs for images (`images`, `pull`, `push`, `rmi`,
//! `tag`, `load`, `save`) over the same code.

mod archive;
mod list;

use anyhow::{bail, Result};
use clap::Subcommand;
use skiff_api::v1::{self, images_client::ImagesClient};
use tonic::transport::Channel;

use crate::registry::{PullArgs, PushArgs};
use crate::{status, template, Ctx};

pub use archive::{load, save, LoadArgs, SaveArgs};
pub use list::{ls, LsArgs};

#[derive(Subcommand)]
pub enum ImagesCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Import an OCI layout directory, oci-archive or docker-archive (`-`: an archive on stdin).
    Import(archive::ImportArgs),
    /// Export images as an oci-archive (default) or OCI layout directory.
    Export(archive::ExportArgs),
    /// Show an image's index, manifest, config, layers and annotations.
    Inspect {
        name: String,
        /// Go template, e.g. '{{.Annotations}}' or '{{index .Annotations "key"}}'.
        #[arg(long, short = 'f')]
        format: Option<String>,
        #[arg(long)]
        platform: Option<String>,
    },
    /// Write DST: SRC with annotations added or removed (new manifest/index over the same layers).
    Annotate {
        source: String,
        destination: String,
        /// KEY=VALUE, or BuildKit style annotation[-TARGET][[PLATFORM]].KEY=VALUE.
        #[arg(long = "annotation", short = 'a')]
        set: Vec<String>,
        /// KEY to remove.
        #[arg(long = "remove")]
        remove: Vec<String>,
        /// manifest, manifest-descriptor, index or index-descriptor.
        #[arg(long, default_value = "manifest")]
        target: String,
        /// Only the manifest (or index entry) of this platform.
        #[arg(long)]
        platform: Option<String>,
    },
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Push a stored image to a registry (as DESTINATION, default its own name).
    Push(PushArgs),
    /// Name an existing image DST too.
    Tag(TagArgs),
    /// Remove images (their content is freed when nothing else uses it).
    #[command(alias = "remove", alias = "delete")]
    Rm(RmArgs),
}

#[derive(clap::Args)]
pub struct TagArgs {
    source: String,
    destination: String,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Remove images that containers were made from (the containers keep running).
    #[arg(long, short = 'f')]
    force: bool,
    /// Names, ids (or unique id prefixes) or digests.
    #[arg(required = true)]
    names: Vec<String>,
}

/// An image's inspect document (the daemon's default platform when `platform` is empty).
pub async fn inspect_doc(channel: Channel, name: String, platform: String) -> Result<serde_json::Value, tonic::Status> {
    let mut client = ImagesClient::new(channel).max_decoding_message_size(64 << 20);
    let json = client.inspect(v1::InspectImageRequest { name, platform }).await?.into_inner().json;
    serde_json::from_slice(&json).map_err(|e| tonic::Status::data_loss(format!("skiffd sent an inspect document that is not JSON: {e}")))
}

pub async fn tag(channel: Channel, a: TagArgs) -> Result<()> {
    let mut client = ImagesClient::new(channel);
    let image = client.tag(v1::TagImageRequest { source: a.source, destination: a.destination }).await.map_err(status)?.into_inner().image.unwrap_or_default();
    outln!("{}", image.name)?;
    Ok(())
}

pub async fn rm(channel: Channel, a: RmArgs) -> Result<()> {
    let mut client = ImagesClient::new(channel);
    let mut failed = 0;
    for name in a.names {
        match client.delete(v1::DeleteImageRequest { name: name.clone(), force: a.force }).await {
            Ok(r) => outln!("{}", r.into_inner().image.unwrap_or_default().name)?,
            Err(e) => {
                eprintln!("skiff: {name}: {}", e.message());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} image(s) not removed");
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: ImagesCommand) -> Result<()> {
    let channel = ctx.channel.clone();
    match cmd {
        ImagesCommand::Ls(a) => ls(channel, a).await,
        ImagesCommand::Import(a) => archive::import(channel, a).await,
        ImagesCommand::Export(a) => archive::export(channel, a).await,
        ImagesCommand::Inspect { name, format, platform } => {
            let doc = inspect_doc(channel, name, platform.unwrap_or_default()).await.map_err(status)?;
            match format {
                Some(t) => outln!("{}", template::render(&t, &doc)?)?,
                None => outln!("{}", serde_json::to_string_pretty(&doc)?)?,
            }
            Ok(())
        }
        ImagesCommand::Annotate { source, destination, set, remove, target, platform } => {
            if let Some(bad) = set.iter().find(|s| !s.contains('=')) {
                bail!("annotation {bad:?} must be KEY=VALUE");
            }
            let req = v1::AnnotateImageRequest { source, destination, set, remove, target, platform: platform.unwrap_or_default() };
            let image = ImagesClient::new(channel).annotate(req).await.map_err(status)?.into_inner().image.unwrap_or_default();
            outln!("{} {}", image.name, image.target.map(|t| t.digest).unwrap_or_default())?;
            Ok(())
        }
        ImagesCommand::Pull(a) => crate::registry::pull_image(channel, a).await,
        ImagesCommand::Push(a) => crate::registry::push(channel, a).await,
        ImagesCommand::Tag(a) => tag(channel, a).await,
        ImagesCommand::Rm(a) => rm(channel, a).await,
    }
}
