//! `skiff pods exec`: a command in a pod's container through the CRI's ExecSync, as the kubelet's
//! exec probes run it (`crictl exec -s`): its output printed, its exit code skiff's own.

use std::io::Write;

use anyhow::Result;
use k8s_cri::v1 as cri;

use super::client;
use crate::{status, Ctx};

#[derive(clap::Args)]
pub struct ExecArgs {
    /// Seconds before the command is killed (0: no limit); the container is left running.
    #[arg(long, default_value_t = 0)]
    timeout: i64,
    /// The container (id or unique id prefix).
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Prints the command's stdout and stderr; answers its exit code.
pub async fn exec(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    let req = cri::ExecSyncRequest { container_id: a.container, cmd: a.command, timeout: a.timeout };
    let answer = client(ctx).exec_sync(req).await.map_err(status)?.into_inner();
    std::io::stdout().write_all(&answer.stdout)?;
    std::io::stdout().flush()?;
    std::io::stderr().write_all(&answer.stderr)?;
    Ok(answer.exit_code)
}
