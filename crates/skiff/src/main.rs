//! skiff: the command-line client of skiffd.

mod content;
mod images;
mod output;
mod progress;
mod registry;
mod snapshots;
mod template;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tonic::transport::Channel;

use output::Output;

/// Manage Skiff images and content through skiffd.
#[derive(Parser)]
#[command(version, name = "skiff")]
struct Cli {
    /// skiffd's socket.
    #[arg(long, global = true, env = "SKIFF_ADDRESS", default_value = skiff_api::DEFAULT_SOCKET)]
    address: PathBuf,
    /// Output format of listings.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Images: list, import, export, inspect, annotate, tag, remove.
    #[command(alias = "image", alias = "i")]
    Images {
        #[command(subcommand)]
        command: images::ImagesCommand,
    },
    /// Content-addressed blobs.
    Content {
        #[command(subcommand)]
        command: content::ContentCommand,
    },
    /// Unpacked layers and container root filesystems.
    #[command(alias = "snapshot")]
    Snapshots {
        #[command(subcommand)]
        command: snapshots::SnapshotsCommand,
    },
}

pub struct Ctx {
    pub channel: Channel,
    pub output: Output,
}

/// A status from skiffd as an error carrying its message.
pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

/// `path` made absolute against the current directory, for the daemon (which has its own).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir().context("current directory")?.join(path))
}

async fn run(cli: Cli) -> Result<()> {
    let channel = skiff_api::connect(&cli.address)
        .await
        .with_context(|| format!("connect to skiffd at {} (is it running? see --address)", cli.address.display()))?;
    let ctx = Ctx { channel, output: cli.output };
    match cli.command {
        Command::Images { command } => images::run(&ctx, command).await,
        Command::Content { command } => content::run(&ctx, command).await,
        Command::Snapshots { command } => snapshots::run(&ctx, command).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("skiff: {e:#}");
        std::process::exit(1);
    }
}
