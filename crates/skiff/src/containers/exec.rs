//! `skiff exec`: a process in a running container.

use anyhow::Result;
use clap::Args;
use skiff_api::v1::{self, containers_client::ContainersClient};

use super::attach::{Attach, Copying, RawTerminal, ResizeForwarder};
use crate::output::StdoutClosed;
use crate::{status, Ctx};

#[derive(Args)]
pub struct ExecArgs {
    #[arg(long, short = 'i')]
    interactive: bool,
    #[arg(long, short = 't')]
    tty: bool,
    /// Start it and print its pid, without waiting.
    #[arg(long, short = 'd')]
    detach: bool,
    #[arg(long, short = 'e')]
    env: Vec<String>,
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub async fn exec(ctx: &Ctx, args: ExecArgs) -> Result<i32> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    let attach = if args.detach { None } else { Some(Attach::new(ctx, args.interactive, args.tty).await?) };
    let req = v1::ExecContainerRequest {
        id: args.container.clone(),
        args: args.command.clone(),
        env: args.env.clone(),
        user: args.user.clone().unwrap_or_default(),
        workdir: args.workdir.clone().unwrap_or_default(),
        stdio: Some(Attach::paths(&attach, args.tty)),
    };
    let started = client.exec(req).await.map_err(status)?.into_inner();
    let Some(attach) = attach else {
        outln!("{}", started.pid)?;
        return Ok(0);
    };
    let raw = RawTerminal::enter(args.tty && args.interactive);
    let Copying { threads, mut stdout_closed, .. } = attach.copy()?;
    let _resize = ResizeForwarder::start(ctx, args.tty, &args.container, &started.exec_id);
    let wait = v1::WaitContainerRequest { id: args.container.clone(), exec_id: started.exec_id };
    let exit = tokio::select! {
        exit = client.wait(wait) => exit,
        // Nobody reads our output any more: end quietly, as docker's CLI does; the process runs
        // on (skiffd has no RPC to signal an exec'd process alone).
        Ok(()) = &mut stdout_closed => return Err(StdoutClosed.into()),
    };
    for t in threads {
        let _ = t.join();
    }
    drop(raw);
    Ok(exit.map_err(status)?.into_inner().exit_code)
}
