//! `skiff logs`: a container's output from its log.

use std::io::Write;

use anyhow::Result;
use skiff_api::v1::{self, containers_client::ContainersClient};
use tokio_stream::StreamExt;

use crate::{status, Ctx};

pub async fn logs(ctx: &Ctx, id: String, follow: bool, tail: u64) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    let mut stream = client.logs(v1::ContainerLogsRequest { id, follow, tail }).await.map_err(status)?.into_inner();
    let (mut out, mut err) = (crate::output::Stdout, std::io::stderr().lock());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(status)?;
        if chunk.stream == "stderr" {
            err.write_all(&chunk.data)?;
        } else {
            out.write_all(&chunk.data)?;
            out.flush()?;
        }
    }
    Ok(())
}
