//! `skiff start|stop|kill|rm`: one RPC per named container, all under way at once (as docker
//! does: stopping 50 containers takes one timeout, not 50); each id is printed when its call is
//! done, each failure named on stderr, and the command fails if any did.

use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Result};
use skiff_api::v1::{self, containers_client::ContainersClient};
use tonic::transport::Channel;

use crate::Ctx;

/// At most this many calls are in flight at once.
const PARALLEL: usize = 32;

/// Runs `call` for every id concurrently.
async fn each<F, Fut>(ctx: &Ctx, ids: Vec<String>, call: F) -> Result<()>
where
    F: Fn(ContainersClient<Channel>, String) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut calls = tokio::task::JoinSet::new();
    for id in ids {
        let call = call(ContainersClient::new(ctx.channel.clone()), id.clone());
        let permits = permits.clone();
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (id, call.await)
        });
    }
    let mut failed = 0;
    while let Some(done) = calls.join_next().await {
        match done {
            Ok((id, Ok(()))) => outln!("{id}")?,
            Ok((id, Err(s))) => {
                eprintln!("skiff: {id}: {}", s.message());
                failed += 1;
            }
            Err(e) => bail!("a request task failed: {e}"),
        }
    }
    if failed > 0 {
        bail!("{failed} container(s) failed");
    }
    Ok(())
}

pub async fn start(ctx: &Ctx, ids: Vec<String>) -> Result<()> {
    each(ctx, ids, |mut c, id| async move { c.start(v1::StartContainerRequest { id }).await.map(drop) }).await
}

pub async fn stop(ctx: &Ctx, ids: Vec<String>, timeout: Option<i64>) -> Result<()> {
    let timeout = timeout.unwrap_or(-1);
    each(ctx, ids, move |mut c, id| async move { c.stop(v1::StopContainerRequest { id, timeout }).await.map(drop) }).await
}

pub async fn kill(ctx: &Ctx, ids: Vec<String>, signal: String) -> Result<()> {
    each(ctx, ids, move |mut c, id| {
        let signal = signal.clone();
        async move { c.kill(v1::KillContainerRequest { id, signal, all: false }).await.map(drop) }
    })
    .await
}

pub async fn rm(ctx: &Ctx, ids: Vec<String>, force: bool) -> Result<()> {
    each(ctx, ids, move |mut c, id| async move { c.delete(v1::DeleteContainerRequest { id, force }).await.map(drop) }).await
}
