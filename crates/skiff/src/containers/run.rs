//! `skiff run`: create (pulling the image when it is not stored), start, attach, wait.

use anyhow::{Context, Result};
use clap::Args;
use skiff_api::v1::{self, containers_client::ContainersClient};

use super::attach::{Attach, Copying, RawTerminal, ResizeForwarder};
use super::flags::{key_values, parse_memory, parse_volume};
use crate::output::StdoutClosed;
use crate::registry::RegistryFlags;
use crate::{status, Ctx};

#[derive(Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container's id.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Keep the container's stdin open: attached here until it ends (then the container reads
    /// EOF), or with -d for `skiff attach` to write to later.
    #[arg(long, short = 'i')]
    interactive: bool,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    #[arg(long)]
    name: Option<String>,
    /// The image's platform to run, os/arch[/variant] (default: skiffd's); pulled if not stored.
    #[arg(long)]
    platform: Option<String>,
    /// KEY=VALUE, over the image's environment.
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// Bind mount SOURCE:DEST[:ro|rw].
    #[arg(long = "volume", short = 'v')]
    volumes: Vec<String>,
    /// KEY=VALUE annotation for the runtime spec (over the image's).
    #[arg(long = "annotation", short = 'a')]
    annotations: Vec<String>,
    /// KEY=VALUE label on the container record.
    #[arg(long = "label", short = 'l')]
    labels: Vec<String>,
    /// Runtime handler ([runtime.handlers.NAME]); default: skiffd's default handler.
    #[arg(long)]
    runtime: Option<String>,
    /// USER[:GROUP] (names or ids) to run as.
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    /// Replace the image's entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    /// none (a network namespace with loopback only) or host.
    #[arg(long = "net", default_value = "none")]
    network: String,
    /// Memory limit, e.g. 64m, 1g, or bytes.
    #[arg(long, short = 'm')]
    memory: Option<String>,
    #[arg(long)]
    read_only: bool,
    /// Pull over plain HTTP if the image must be pulled (hosts without a hosts.toml).
    #[arg(long)]
    plain_http: bool,
    image: String,
    /// The command (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

async fn create(ctx: &Ctx, req: v1::CreateContainerRequest, registry: &RegistryFlags) -> Result<v1::Container> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    match client.create(req.clone()).await {
        Ok(r) => r.into_inner().container.context("skiffd answered no container"),
        // skiffd's create answers NotFound only when the image (or its platform) is not stored;
        // what a stored image lacks is DataLoss.
        Err(s) if skiff_api::status::kind_of(&s) == skiff_types::ErrorKind::NotFound => {
            // Not stored yet: pull it, as `docker run` does.
            let pull = v1::PullImageRequest {
                reference: req.image.clone(),
                platform: req.platform.clone(),
                registry: Some(registry.options()?),
                ..Default::default()
            };
            match crate::registry::pull(ctx.channel.clone(), pull, false).await {
                // stdout is the container's: what was pulled is told on stderr, as docker run does.
                Ok(stored) => crate::stored::summary(&stored, "fetched", false),
                // Both halves: what is missing here, and why fetching it did not work.
                Err(e) => anyhow::bail!("{}; pulling it failed: {e:#}", s.message()),
            }
            client.create(req).await.map_err(status)?.into_inner().container.context("skiffd answered no container")
        }
        Err(s) => Err(status(s)),
    }
}

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    let annotations = key_values(&args.annotations, "annotation")?;
    let labels = key_values(&args.labels, "label")?;
    let mounts = args.volumes.iter().map(|v| parse_volume(v)).collect::<Result<Vec<_>>>()?;
    let memory_limit = args.memory.as_deref().map(parse_memory).transpose()?.unwrap_or(0);
    let attach = if args.detach { None } else { Some(Attach::new(ctx, args.interactive, args.tty).await?) };
    let entrypoint: Vec<String> = args.entrypoint.iter().filter(|e| !e.is_empty()).cloned().collect();
    let req = v1::CreateContainerRequest {
        image: args.image.clone(),
        name: args.name.clone().unwrap_or_default(),
        args: args.command.clone(),
        has_entrypoint: args.entrypoint.is_some(),
        entrypoint,
        env: args.env.clone(),
        mounts,
        annotations,
        labels,
        runtime: args.runtime.clone().unwrap_or_default(),
        stdio: Some(Attach::paths(&attach, args.tty)),
        user: args.user.clone().unwrap_or_default(),
        workdir: args.workdir.clone().unwrap_or_default(),
        hostname: args.hostname.clone().unwrap_or_default(),
        network: args.network.clone(),
        memory_limit,
        auto_remove: args.rm && args.detach,
        readonly_rootfs: args.read_only,
        platform: args.platform.clone().unwrap_or_default(),
        open_stdin: args.interactive,
        // As docker's: attached here, our stdin's end is the container's; detached, its stdin
        // stays open for whoever attaches.
        stdin_once: args.interactive && !args.detach,
    };
    let registry = RegistryFlags { plain_http: args.plain_http, user: None };
    let container = create(ctx, req, &registry).await?;
    let mut client = ContainersClient::new(ctx.channel.clone());
    let Some(attach) = attach else {
        client.start(v1::StartContainerRequest { id: container.id.clone() }).await.map_err(status)?;
        outln!("{}", container.id)?;
        return Ok(0);
    };
    let raw = RawTerminal::enter(args.tty && args.interactive);
    let _resize = ResizeForwarder::start(ctx, args.tty, &container.id, "");
    let started = client.start(v1::StartContainerRequest { id: container.id.clone() }).await;
    // Only now: the start brought up the shim, which opened its ends of the FIFOs (a read of a
    // FIFO no writer has opened yet would see its end at once); what the container wrote since
    // waits in them.
    let Copying { threads, mut stdout_closed, .. } = attach.copy()?;
    let wait = v1::WaitContainerRequest { id: container.id.clone(), exec_id: String::new() };
    let outcome = match started {
        Ok(_) => tokio::select! {
            exit = client.wait(wait) => exit,
            Ok(()) = &mut stdout_closed => {
                // Nobody reads our output any more: end quietly as docker's CLI does, leaving the
                // container running with its output in its log. Signalling it would not work: as
                // its pid namespace's init, it ignores SIGPIPE unless it handles it. With --rm the
                // container is ours to remove, and no one wants its output: it goes now.
                drop(raw);
                if args.rm {
                    client.delete(v1::DeleteContainerRequest { id: container.id.clone(), force: true }).await.map_err(status)?;
                }
                return Err(StdoutClosed.into());
            }
        },
        Err(s) => Err(s),
    };
    for t in threads {
        let _ = t.join();
    }
    drop(raw);
    if args.rm {
        client.delete(v1::DeleteContainerRequest { id: container.id.clone(), force: true }).await.map_err(status)?;
    }
    let exit = outcome.map_err(status)?.into_inner();
    Ok(exit.exit_code)
}
