//! `skiff pods exec`: a command in a pod's container. Without `-i`/`-t` through the CRI's
//! ExecSync, as the kubelet's exec probes run it (`crictl exec -s`): its output printed once it
//! ended. With them through the CRI's Exec and skiffd's streaming server, as `crictl exec -it`
//! and `kubectl exec -it` do: our stdin, stdout and stderr joined to the command's as it runs.
//! Either way its exit code is skiff's own.

use std::io::Write;

use anyhow::Result;
use k8s_cri::v1 as cri;
use skiff_streaming::client::Wanted;

use super::client;
use super::stream::{self, Ended, TransportArg, TrustArgs};
use crate::{status, Ctx};

#[derive(clap::Args)]
pub struct ExecArgs {
    /// Seconds before the command is killed (0: no limit); the container is left running.
    /// ExecSync only (without -i and -t).
    #[arg(long, default_value_t = 0)]
    timeout: i64,
    /// Keep stdin attached: ours is the command's (through the CRI's Exec).
    #[arg(long = "interactive", short = 'i')]
    stdin: bool,
    /// A terminal for the command (ours in raw mode when stdin is one; stderr joins stdout).
    #[arg(long, short = 't')]
    tty: bool,
    /// How the streaming URL is reached, with -i or -t.
    #[arg(long, value_enum, default_value_t)]
    transport: TransportArg,
    #[command(flatten)]
    trust: TrustArgs,
    /// The container (id or unique id prefix).
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Prints the command's stdout and stderr; answers its exit code.
pub async fn exec(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    if a.stdin || a.tty {
        return exec_streaming(ctx, a).await;
    }
    let req = cri::ExecSyncRequest { container_id: a.container, cmd: a.command, timeout: a.timeout };
    let answer = client(ctx).exec_sync(req).await.map_err(status)?.into_inner();
    std::io::stdout().write_all(&answer.stdout)?;
    std::io::stdout().flush()?;
    std::io::stderr().write_all(&answer.stderr)?;
    Ok(answer.exit_code)
}

async fn exec_streaming(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    // A tty carries stderr on stdout: the CRI refuses both.
    let wanted = Wanted { stdin: a.stdin, stdout: true, stderr: !a.tty, tty: a.tty };
    let req = cri::ExecRequest { container_id: a.container, cmd: a.command, tty: wanted.tty, stdin: wanted.stdin, stdout: wanted.stdout, stderr: wanted.stderr };
    let url = client(ctx).exec(req).await.map_err(status)?.into_inner().url;
    match stream::run(&url, &a.transport.transport().trusting(a.trust.trust()), wanted, false).await? {
        Ended::Exited(code) => Ok(code),
        // Without detach keys an exec does not detach.
        Ended::Detached => Ok(0),
    }
}
