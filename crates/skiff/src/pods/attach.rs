//! `skiff pods attach`: this terminal joins a running pod container's stdio through the CRI's
//! Attach and skiffd's streaming server (as `crictl attach` and `kubectl attach`), until the
//! container's output ends or we detach (ctrl-p ctrl-q with a tty, as `skiff attach`).

use anyhow::{Context, Result};
use k8s_cri::v1 as cri;
use skiff_streaming::client::Wanted;

use super::client;
use super::stream::{self, Ended, TransportArg, TrustArgs};
use crate::{status, Ctx};

#[derive(clap::Args)]
pub struct AttachArgs {
    /// Attach stdin too (the container must keep its stdin open).
    #[arg(long = "interactive", short = 'i')]
    stdin: bool,
    /// The container has a tty: only used when its status does not tell (it is the container's
    /// own, fixed when it was created).
    #[arg(long, short = 't')]
    tty: bool,
    /// How the streaming URL is reached.
    #[arg(long, value_enum, default_value_t)]
    transport: TransportArg,
    #[command(flatten)]
    trust: TrustArgs,
    /// The container (id or unique id prefix).
    container: String,
}

pub async fn attach(ctx: &Ctx, a: AttachArgs) -> Result<i32> {
    let mut c = client(ctx);
    let answer = c.container_status(cri::ContainerStatusRequest { container_id: a.container.clone(), verbose: true }).await.map_err(status)?.into_inner();
    let id = answer.status.map(|s| s.id).context("skiffd's container status names no container")?;
    // The verbose info holds the OCI spec the container runs with.
    let info: serde_json::Value = answer.info.get("info").and_then(|i| serde_json::from_str(i).ok()).unwrap_or_default();
    let tty = info["runtimeSpec"]["process"]["terminal"].as_bool().unwrap_or(a.tty);
    let wanted = Wanted { stdin: a.stdin, stdout: true, stderr: !tty, tty };
    let req = cri::AttachRequest { container_id: id, stdin: wanted.stdin, tty, stdout: wanted.stdout, stderr: wanted.stderr };
    let url = c.attach(req).await.map_err(status)?.into_inner().url;
    // In raw mode ctrl-c goes to the container: the detach keys are the way out.
    match stream::run(&url, &a.transport.transport().trusting(a.trust.trust()), wanted, tty && a.stdin).await? {
        Ended::Exited(code) => Ok(code),
        Ended::Detached => Ok(0),
    }
}
