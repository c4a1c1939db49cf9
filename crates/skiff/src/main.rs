//! skiff: the command-line client of skiffd.

// First, for the `outln!` macro the others use.
#[macro_use]
mod output;
mod containers;
mod content;
mod events;
mod humanize;
mod images;
mod info;
mod inspect;
mod leases;
mod pods;
mod progress;
mod registry;
mod snapshots;
mod stored;
mod template;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tonic::transport::Channel;


/// Manage Skiff images, content and containers through skiffd.
#[derive(Parser)]
#[command(version, name = "skiff")]
struct Cli {
    /// skiffd's socket.
    #[arg(long, global = true, env = "SKIFF_ADDRESS", default_value = skiff_api::DEFAULT_SOCKET)]
    address: PathBuf,
    #[command(subcommand)]
    command: Command,
}

/// `skiff NOUN VERB`, plus the top-level verbs docker, nerdctl and podman users type.
#[derive(Subcommand)]
enum Command {
    /// Images: list (the default, as `docker images`), import, export, inspect, annotate, tag, remove.
    #[command(alias = "image", alias = "i", args_conflicts_with_subcommands = true)]
    Images {
        #[command(flatten)]
        list: images::LsArgs,
        #[command(subcommand)]
        command: Option<images::ImagesCommand>,
    },
    /// Content-addressed blobs.
    Content {
        #[command(subcommand)]
        command: content::ContentCommand,
    },
    /// Leases: what keeps content from garbage collection (a pull cut short keeps its blobs a day).
    #[command(alias = "lease")]
    Leases {
        #[command(subcommand)]
        command: leases::LeasesCommand,
    },
    /// Unpacked layers and container root filesystems.
    #[command(alias = "snapshot")]
    Snapshots {
        #[command(subcommand)]
        command: snapshots::SnapshotsCommand,
    },
    /// Containers: list, inspect, remove.
    #[command(alias = "container", alias = "c")]
    Containers {
        #[command(subcommand)]
        command: containers::ContainersCommand,
    },
    /// Kubernetes pod sandboxes, through the CRI skiffd serves beside Skiff's own API.
    #[command(alias = "pod", alias = "p")]
    Pods {
        #[command(subcommand)]
        command: pods::PodsCommand,
    },
    /// Run a command in a new container (pulls the image if it is not stored).
    Run(containers::RunArgs),
    /// Run a command in a running container.
    Exec(containers::ExecArgs),
    /// Join a running container's output (and stdin, if it keeps it open); ctrl-p ctrl-q detaches from a terminal.
    Attach(containers::AttachArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// A container's output (from its log).
    Logs {
        /// Keep following until the container exits.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, default_value_t = 0)]
        tail: u64,
        container: String,
    },
    /// Start created containers.
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop containers: the image's stop signal (default SIGTERM), then SIGKILL after the timeout.
    Stop {
        /// Seconds to wait before SIGKILL (default: skiffd's runtime.stop_timeout_secs).
        #[arg(long, short = 't')]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers' main process.
    Kill {
        #[arg(long, short = 's', default_value = "SIGKILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Container lifecycle events as they happen, as JSON lines.
    Events(events::EventsArgs),
    /// Remove containers.
    Rm {
        /// Kill running containers first.
        #[arg(long, short = 'f')]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// A container's or image's document: a container whose id, id prefix or name matches, else an image.
    Inspect(inspect::InspectArgs),
    /// Pull an image from a registry (images pull).
    Pull(registry::PullArgs),
    /// Push a stored image to a registry (images push).
    Push(registry::PushArgs),
    /// Remove images (images rm).
    Rmi(images::RmArgs),
    /// Name an existing image DST too (images tag).
    Tag(images::TagArgs),
    /// Store the images of an archive from stdin or -i FILE (images import).
    Load(images::LoadArgs),
    /// Write images to an oci-archive, -o FILE (images export).
    Save(images::SaveArgs),
    /// What skiffd holds: containers by status, images, snapshots and their disk use, content.
    Info(info::InfoArgs),
    /// The client's version (skiffd's API does not report the daemon's).
    Version(info::VersionArgs),
}

pub struct Ctx {
    pub channel: Channel,
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

/// Runs the command; Some(code) when the process should exit with a container's exit code.
async fn run(cli: Cli) -> Result<Option<i32>> {
    if let Command::Version(args) = cli.command {
        return info::version(args).map(|()| None);
    }
    let channel = skiff_api::connect(&cli.address)
        .await
        .with_context(|| format!("connect to skiffd at {} (is it running? see --address)", cli.address.display()))?;
    let ctx = Ctx { channel };
    let ch = || ctx.channel.clone();
    let done = match cli.command {
        Command::Images { list, command: None } => images::ls(ch(), list).await,
        Command::Images { command: Some(command), .. } => images::run(&ctx, command).await,
        Command::Content { command } => content::run(&ctx, command).await,
        Command::Snapshots { command } => snapshots::run(&ctx, command).await,
        Command::Leases { command } => leases::run(&ctx, command).await,
        Command::Pods { command } => return pods::run(&ctx, command).await,
        Command::Containers { command } => containers::containers(&ctx, command).await,
        Command::Run(args) => return containers::run(&ctx, args).await.map(Some),
        Command::Exec(args) => return containers::exec(&ctx, args).await.map(Some),
        Command::Attach(args) => return containers::attach(&ctx, args).await.map(Some),
        Command::Ps(args) => containers::ps(&ctx, args).await,
        Command::Logs { follow, tail, container } => containers::logs(&ctx, container, follow, tail).await,
        Command::Start { containers } => containers::start(&ctx, containers).await,
        Command::Stop { time, containers } => containers::stop(&ctx, containers, time).await,
        Command::Kill { signal, containers } => containers::kill(&ctx, containers, signal).await,
        Command::Rm { force, containers } => containers::rm(&ctx, containers, force).await,
        Command::Events(args) => events::run(&ctx, args).await,
        Command::Inspect(args) => inspect::inspect(&ctx, args).await,
        Command::Pull(args) => registry::pull_image(ch(), args).await,
        Command::Push(args) => registry::push(ch(), args).await,
        Command::Rmi(args) => images::rm(ch(), args).await,
        Command::Tag(args) => images::tag(ch(), args).await,
        Command::Load(args) => images::load(ch(), args).await,
        Command::Save(args) => images::save(ch(), args).await,
        Command::Info(args) => info::info(&ctx, &cli.address, args).await,
        Command::Version(args) => info::version(args),
    };
    done.map(|()| None)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(None) => {}
        Ok(Some(code)) => std::process::exit(code),
        // The reader of our output is gone (`skiff images ls | head -1`): a quiet success, as
        // ripgrep does. Rust ignores SIGPIPE; restoring its default (death by signal, status 141,
        // as coreutils) would also kill us on a write to skiffd's socket or a container's FIFO
        // whose reader went away, which must be reported instead.
        Err(e) if output::is_stdout_closed(&e) => {}
        Err(e) => {
            eprintln!("skiff: {e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
