//! `skiff images import|export` and docker's `load` / `save`: images from and to OCI layouts,
//! oci-archives and docker-archives.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::ValueEnum;
use skiff_api::v1::{self, images_client::ImagesClient};
use tonic::transport::Channel;

use crate::progress::{self, Step};
use crate::stored::{print_stored, summary, ContentFlags};
use crate::{absolute, status};

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Layout,
    OciArchive,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// An OCI layout directory, oci-archive or docker-archive; `-`: an archive on stdin.
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
}

/// docker's `load`: an archive from a file or stdin.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The archive (oci-archive or docker-archive) or OCI layout; default: stdin.
    #[arg(short, long)]
    input: Option<PathBuf>,
    #[command(flatten)]
    content: ContentFlags,
    /// No progress and no summary.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
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
}

/// docker's `save`: an oci-archive of the named images. skiffd writes the file itself, so there is
/// no stdout form: `-o` is required.
#[derive(clap::Args)]
pub struct SaveArgs {
    /// The archive to write; must not exist.
    #[arg(short, long, required = true)]
    output: PathBuf,
    #[arg(required = true)]
    names: Vec<String>,
    /// Save only this platform's manifest.
    #[arg(long)]
    platform: Option<String>,
    #[arg(short, long)]
    quiet: bool,
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
async fn import_from(channel: Channel, path: Option<PathBuf>, name: Option<String>, base_name: Option<String>, content: ContentFlags, quiet: bool) -> Result<v1::ImportResult> {
    let mut client = ImagesClient::new(channel).max_decoding_message_size(64 << 20);
    let req = v1::ImportImageRequest {
        path: match &path {
            Some(p) => absolute(p)?.display().to_string(),
            None => String::new(),
        },
        platform: content.platform.unwrap_or_default(),
        all_platforms: content.all_platforms,
        name: name.unwrap_or_default(),
        base_name: base_name.unwrap_or_default(),
        no_unpack: content.no_unpack,
    };
    let mut stream = match path {
        None => client.import_stream(stdin_chunks(req)).await.map_err(status)?.into_inner(),
        Some(_) => client.import(req).await.map_err(status)?.into_inner(),
    };
    let pb = progress::bar("importing", quiet);
    progress::follow(&mut stream, &pb, "import", |ev| match ev.event {
        Some(v1::import_image_event::Event::Progress(p)) => Step::Progress(p.total, p.done),
        Some(v1::import_image_event::Event::Result(r)) => Step::Done(r),
        None => Step::Other,
    })
    .await
}

pub async fn import(channel: Channel, a: ImportArgs) -> Result<()> {
    let path = (a.path.as_os_str() != "-").then_some(a.path);
    let r = import_from(channel, path, a.name, a.base_name, a.content, a.quiet).await?;
    print_stored(&r, "written", a.quiet)
}

pub async fn load(channel: Channel, a: LoadArgs) -> Result<()> {
    if a.input.is_none() && std::io::stdin().is_terminal() {
        bail!("load reads an archive from stdin or -i FILE, and stdin is a terminal");
    }
    let r = import_from(channel, a.input, None, None, a.content, a.quiet).await?;
    for i in &r.images {
        outln!("Loaded image: {}", i.name)?;
    }
    summary(&r, "written", a.quiet);
    Ok(())
}

async fn export_to(channel: Channel, out: PathBuf, names: Vec<String>, format: ExportFormat, platform: Option<String>, quiet: bool) -> Result<()> {
    let mut client = ImagesClient::new(channel);
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

pub async fn export(channel: Channel, a: ExportArgs) -> Result<()> {
    export_to(channel, a.out, a.names, a.format, a.platform, a.quiet).await
}

pub async fn save(channel: Channel, a: SaveArgs) -> Result<()> {
    export_to(channel, a.output, a.names, ExportFormat::OciArchive, a.platform, a.quiet).await
}
