//! `skiff inspect`: containers or images, as docker's `inspect` finds either by name.

use anyhow::{bail, Result};
use clap::ValueEnum;
use tonic::Code;

use crate::{containers, images, status, Ctx};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Container,
    Image,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Only this kind (default: a container whose id, id prefix or name matches, else an image).
    #[arg(long = "type", value_enum)]
    kind: Option<Kind>,
    /// A Go template over each document, e.g. '{{.Name}}' or '{{json .Annotations}}'.
    #[arg(long, short = 'f')]
    format: Option<String>,
    /// The platform of an image's manifest to show (default: the daemon's).
    #[arg(long)]
    platform: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

async fn one(ctx: &Ctx, name: &str, kind: Option<Kind>, platform: &str) -> Result<serde_json::Value> {
    if kind != Some(Kind::Image) {
        match containers::inspect_doc(ctx.channel.clone(), name.to_string()).await {
            Ok(doc) => return Ok(doc),
            // skiffd's container Inspect answers NotFound only for a record it does not have.
            Err(s) if s.code() == Code::NotFound && kind.is_none() => {}
            Err(s) => return Err(status(s)),
        }
    }
    match images::inspect_doc(ctx.channel.clone(), name.to_string(), platform.to_string()).await {
        Ok(doc) => Ok(doc),
        Err(s) if s.code() == Code::NotFound && kind.is_none() => bail!("no container or image {name:?} ({})", s.message()),
        Err(s) => Err(status(s)),
    }
}

/// Every name's document as one JSON array (as docker prints), or each through `--format`.
pub async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<()> {
    let platform = a.platform.unwrap_or_default();
    let mut docs = Vec::new();
    for name in &a.names {
        docs.push(one(ctx, name, a.kind, &platform).await?);
    }
    containers::print_docs(&docs, a.format.as_deref())
}
