//! `skiff run|ps|logs|exec|attach|start|stop|kill|rm` and `skiff containers ...`: standalone
//! containers, one file per command (`attach_cmd` is `skiff attach`; the attach plumbing `run`,
//! `exec` and `attach` share is in `attach`).

mod attach;
mod attach_cmd;
mod exec;
mod flags;
mod inspect;
mod lifecycle;
mod list;
mod logs;
mod run;

use anyhow::Result;
use clap::Subcommand;

use crate::Ctx;

pub(crate) use attach::{DetachKeys, RawTerminal};
pub use attach_cmd::{attach, AttachArgs};
pub use exec::{exec, ExecArgs};
pub use flags::key_values;
pub use inspect::{inspect, inspect_doc, print_docs};
pub use lifecycle::{kill, rm, start, stop};
pub use list::{ps, PsArgs};
pub use logs::logs;
pub use run::{run, RunArgs};

#[derive(Subcommand)]
pub enum ContainersCommand {
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// The container's record, runtime annotations (with sources) and runtime spec, as JSON.
    Inspect {
        /// A Go template over each container's document, e.g. '{{json .Spec.annotations}}'.
        #[arg(long, short = 'f')]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    #[command(alias = "remove")]
    Rm {
        #[arg(long, short = 'f')]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
}

pub async fn containers(ctx: &Ctx, cmd: ContainersCommand) -> Result<()> {
    match cmd {
        ContainersCommand::Ls(args) => ps(ctx, args).await,
        ContainersCommand::Inspect { format, containers } => inspect(ctx, containers, format).await,
        ContainersCommand::Rm { force, containers } => rm(ctx, containers, force).await,
    }
}
