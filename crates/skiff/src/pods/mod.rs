//! `skiff pods`: Kubernetes pod sandboxes through the CRI skiffd serves on the same socket, for
//! a look at what the kubelet made and for trying pods by hand (as `crictl pods|runp|create|rmp`),
//! and the streaming calls (exec -it, attach, port-forward) through skiffd's streaming server.

mod attach;
mod exec;
mod forward;
mod list;
mod run;
mod stream;

use anyhow::Result;
use clap::Subcommand;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::output::ListFormat;
use crate::Ctx;

#[derive(Subcommand)]
pub enum PodsCommand {
    /// List pod sandboxes.
    #[command(alias = "list")]
    Ls {
        /// Only ids.
        #[arg(long, short = 'q')]
        quiet: bool,
        #[command(flatten)]
        list: ListFormat,
    },
    /// A sandbox's status as the CRI answers it (verbose), as JSON.
    Inspect {
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Make a pod sandbox (pinned namespaces, CNI network, pod files); prints its id.
    Run(run::RunArgs),
    /// Create and start a container in a pod; prints its id.
    Create(run::CreateArgs),
    /// Run a command in a pod's running container (the CRI's ExecSync, as exec probes; with -i
    /// or -t the CRI's Exec, streamed); exits with the command's exit code.
    Exec(exec::ExecArgs),
    /// Join a running pod container's stdio (the CRI's Attach); ctrl-p ctrl-q detaches from a tty.
    Attach(attach::AttachArgs),
    /// Forward local ports to ports in a pod (the CRI's PortForward) until ctrl-c.
    PortForward(forward::ForwardArgs),
    /// Stop pod sandboxes (their containers are killed, the network detached) and remove them.
    #[command(alias = "remove", alias = "delete")]
    Rm {
        #[arg(required = true)]
        pods: Vec<String>,
    },
}

/// The CRI's RuntimeService on skiffd's socket.
fn client(ctx: &Ctx) -> RuntimeServiceClient<Channel> {
    RuntimeServiceClient::new(ctx.channel.clone()).max_decoding_message_size(16 << 20)
}

/// Runs the command; Some(code) when skiff should exit with an exec'd command's exit code.
pub async fn run(ctx: &Ctx, cmd: PodsCommand) -> Result<Option<i32>> {
    match cmd {
        PodsCommand::Ls { quiet, list } => list::ls(ctx, quiet, &list).await?,
        PodsCommand::Inspect { pods } => list::inspect(ctx, &pods).await?,
        PodsCommand::Run(args) => run::run_pod(ctx, args).await?,
        PodsCommand::Create(args) => run::create(ctx, args).await?,
        PodsCommand::Exec(args) => return exec::exec(ctx, args).await.map(Some),
        PodsCommand::Attach(args) => return attach::attach(ctx, args).await.map(Some),
        PodsCommand::PortForward(args) => forward::port_forward(ctx, args).await?,
        PodsCommand::Rm { pods } => run::rm(ctx, &pods).await?,
    }
    Ok(None)
}
