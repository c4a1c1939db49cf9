//! `skiff start|stop|kill|rm`: one RPC per named container, each id printed when done.

use anyhow::Result;
use skiff_api::v1::{self, containers_client::ContainersClient};

use crate::{status, Ctx};

pub async fn start(ctx: &Ctx, ids: Vec<String>) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.start(v1::StartContainerRequest { id: id.clone() }).await.map_err(status)?;
        outln!("{id}")?;
    }
    Ok(())
}

pub async fn stop(ctx: &Ctx, ids: Vec<String>, timeout: Option<i64>) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.stop(v1::StopContainerRequest { id: id.clone(), timeout: timeout.unwrap_or(-1) }).await.map_err(status)?;
        outln!("{id}")?;
    }
    Ok(())
}

pub async fn kill(ctx: &Ctx, ids: Vec<String>, signal: String) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.kill(v1::KillContainerRequest { id: id.clone(), signal: signal.clone(), all: false }).await.map_err(status)?;
        outln!("{id}")?;
    }
    Ok(())
}

pub async fn rm(ctx: &Ctx, ids: Vec<String>, force: bool) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    for id in ids {
        client.delete(v1::DeleteContainerRequest { id: id.clone(), force }).await.map_err(status)?;
        outln!("{id}")?;
    }
    Ok(())
}
