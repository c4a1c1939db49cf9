//! `skiff images ...`

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use skiff_api::v1::{self, images_client::ImagesClient};

use crate::output::{human_size, print_rows, Row};
use crate::progress::Step;
use crate::{absolute, progress, status, template, Ctx};

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Layout,
    OciArchive,
}

/// Which content an import or pull stores, and whether it is unpacked.
#[derive(clap::Args)]
pub struct ContentFlags {
    /// Platform whose manifest to take, os/arch[/variant] (default: the daemon's).
    #[arg(long)]
    platform: Option<String>,
    /// Take every platform's content.
    #[arg(long)]
    all_platforms: bool,
    /// Store the content only; do not unpack the layers into snapshots.
    #[arg(long)]
    no_unpack: bool,
}

#[derive(Subcommand)]
pub enum ImagesCommand {
    /// List images.
    #[command(alias = "list")]
    Ls {
        /// Names only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Import an OCI layout directory, oci-archive or docker-archive (`-`: an archive on stdin).
    Import {
        path: PathBuf,
        /// Name the image (when the source holds one).
        #[arg(long)]
        name: Option<String>,
        /// Repository to prefix tag-only ref names with.
        #[arg(long)]
        base_name: Option<String>,
        #[command(flatten)]
        content: ContentFlags,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Export images as an oci-archive (default) or OCI layout directory.
    Export {
        /// Output file (archive) or directory (layout); must not exist.
        #[arg(short = 'O', long = "out")]
        out: PathBuf,
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long, value_enum, default_value = "oci-archive")]
        format: ExportFormat,
        /// Export only this platform's manifest.
        #[arg(long)]
        platform: Option<String>,
        #[arg(short, long)]
        quiet: bool,
    },
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
    Pull {
        reference: String,
        #[command(flatten)]
        content: ContentFlags,
        #[command(flatten)]
        registry: crate::registry::RegistryFlags,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Push a stored image to a registry (as DESTINATION, default its own name).
    Push {
        name: String,
        destination: Option<String>,
        /// Push only this platform's manifest (with the index).
        #[arg(long)]
        platform: Option<String>,
        #[command(flatten)]
        registry: crate::registry::RegistryFlags,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Name an existing image DST too.
    Tag { source: String, destination: String },
    /// Remove images (their content is freed when nothing else uses it).
    #[command(alias = "remove", alias = "delete")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Serialize)]
struct ImageRow {
    name: String,
    media_type: String,
    digest: String,
    size: u64,
    platform: String,
    created_at: String,
    annotations: BTreeMap<String, String>,
}

impl Row for ImageRow {
    const HEADERS: &'static [&'static str] = &["NAME", "DIGEST", "TYPE", "PLATFORM", "CREATED"];
    fn cells(&self) -> Vec<String> {
        let kind = if self.media_type.contains("index") || self.media_type.contains("list") { "index" } else { "manifest" };
        vec![self.name.clone(), self.digest.clone(), kind.into(), self.platform.clone(), self.created_at.clone()]
    }
}

fn row(i: &v1::Image) -> ImageRow {
    let t = i.target.clone().unwrap_or_default();
    ImageRow {
        name: i.name.clone(),
        media_type: t.media_type,
        digest: t.digest,
        size: t.size,
        platform: i.platform.clone(),
        created_at: i.created_at.clone(),
        annotations: t.annotations.into_iter().collect(),
    }
}

/// Standard input as a stream of import chunks, the request first.
fn stdin_chunks(req: v1::ImportImageRequest) -> tokio_stream::wrappers::ReceiverStream<v1::ImportChunk> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        use std::io::Read;
        if tx.blocking_send(v1::ImportChunk { request: Some(req), data: Vec::new() }).is_err() {
            return;
        }
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut buf = vec![0u8; 1 << 20];
            match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(v1::ImportChunk { request: None, data: buf }).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Ending the stream early makes the import fail on a truncated archive.
                    eprintln!("skiff: reading standard input: {e}");
                    return;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Prints what an import or pull stored: each image, then (unless quiet) a summary on stderr.
pub fn print_stored(r: &v1::ImportResult, blob_verb: &str, quiet: bool) -> Result<()> {
    for i in &r.images {
        outln!("{} {}", i.name, i.target.as_ref().map_or("", |t| t.digest.as_str()))?;
    }
    if !quiet {
        eprintln!(
            "{} image(s): {} blob(s) {blob_verb} ({}), {} already stored; {} layer(s) unpacked, {} already unpacked",
            r.images.len(),
            r.blobs_written,
            human_size(r.bytes_written),
            r.blobs_present,
            r.layers_unpacked,
            r.layers_present
        );
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: ImagesCommand) -> Result<()> {
    let mut client = ImagesClient::new(ctx.channel.clone()).max_decoding_message_size(64 << 20);
    match cmd {
        ImagesCommand::Ls { quiet } => {
            let mut images = client.list(v1::ListImagesRequest {}).await.map_err(status)?.into_inner().images;
            images.sort_by(|a, b| a.name.cmp(&b.name));
            if quiet {
                for i in &images {
                    outln!("{}", i.name)?;
                }
                return Ok(());
            }
            print_rows(&images.iter().map(row).collect::<Vec<_>>(), ctx.output)
        }
        ImagesCommand::Import { path, name, base_name, content, quiet } => {
            let from_stdin = path.as_os_str() == "-";
            let req = v1::ImportImageRequest {
                path: if from_stdin { String::new() } else { absolute(&path)?.display().to_string() },
                platform: content.platform.unwrap_or_default(),
                all_platforms: content.all_platforms,
                name: name.unwrap_or_default(),
                base_name: base_name.unwrap_or_default(),
                no_unpack: content.no_unpack,
            };
            let mut stream = if from_stdin {
                client.import_stream(stdin_chunks(req)).await.map_err(status)?.into_inner()
            } else {
                client.import(req).await.map_err(status)?.into_inner()
            };
            let pb = progress::bar("importing", quiet);
            let r = progress::follow(&mut stream, &pb, "import", |ev| match ev.event {
                Some(v1::import_image_event::Event::Progress(p)) => Step::Progress(p.total, p.done),
                Some(v1::import_image_event::Event::Result(r)) => Step::Done(r),
                None => Step::Other,
            })
            .await?;
            print_stored(&r, "written", quiet)
        }
        ImagesCommand::Export { out, names, format, platform, quiet } => {
            let req = v1::ExportImageRequest {
                names,
                path: absolute(&out)?.display().to_string(),
                format: match format {
                    ExportFormat::Layout => "layout".into(),
                    ExportFormat::OciArchive => "oci-archive".into(),
                },
                platform: platform.unwrap_or_default(),
            };
            let mut stream = client.export(req).await.map_err(status)?.into_inner();
            let pb = progress::bar("exporting", quiet);
            let r = progress::follow(&mut stream, &pb, "export", |ev| match ev.event {
                Some(v1::export_image_event::Event::Progress(p)) => Step::Progress(p.total, p.done),
                Some(v1::export_image_event::Event::Result(r)) => Step::Done(r),
                None => Step::Other,
            })
            .await?;
            if !quiet {
                eprintln!("exported {} blob(s) to {}", r.blobs, out.display());
            }
            Ok(())
        }
        ImagesCommand::Inspect { name, format, platform } => {
            let req = v1::InspectImageRequest { name, platform: platform.unwrap_or_default() };
            let json = client.inspect(req).await.map_err(status)?.into_inner().json;
            let doc: serde_json::Value = serde_json::from_slice(&json)?;
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
            let image = client.annotate(req).await.map_err(status)?.into_inner().image.unwrap_or_default();
            outln!("{} {}", image.name, image.target.map(|t| t.digest).unwrap_or_default())?;
            Ok(())
        }
        ImagesCommand::Pull { reference, content, registry, quiet } => {
            let req = v1::PullImageRequest {
                reference,
                platform: content.platform.unwrap_or_default(),
                all_platforms: content.all_platforms,
                registry: Some(registry.options()?),
                no_unpack: content.no_unpack,
            };
            crate::registry::pull(ctx.channel.clone(), req, quiet).await
        }
        ImagesCommand::Push { name, destination, platform, registry, quiet } => {
            crate::registry::push(ctx.channel.clone(), name, destination, platform, &registry, quiet).await
        }
        ImagesCommand::Tag { source, destination } => {
            let image = client.tag(v1::TagImageRequest { source, destination }).await.map_err(status)?.into_inner().image.unwrap_or_default();
            outln!("{}", image.name)?;
            Ok(())
        }
        ImagesCommand::Rm { names } => {
            let mut failed = 0;
            for name in names {
                match client.delete(v1::DeleteImageRequest { name: name.clone() }).await {
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
    }
}
