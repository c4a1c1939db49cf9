//! `skiff containers inspect`: the record, runtime annotations (with sources) and runtime spec.

use anyhow::Result;
use skiff_api::v1::{self, containers_client::ContainersClient};

use crate::{status, Ctx};

pub async fn inspect(ctx: &Ctx, ids: Vec<String>, format: Option<String>) -> Result<()> {
    let mut client = ContainersClient::new(ctx.channel.clone());
    let mut docs = Vec::new();
    for id in ids {
        let r = client.inspect(v1::InspectContainerRequest { id }).await.map_err(status)?.into_inner();
        docs.push(serde_json::from_slice::<serde_json::Value>(&r.json)?);
    }
    match format {
        Some(t) => {
            for doc in &docs {
                outln!("{}", crate::template::render(&t, doc)?)?;
            }
        }
        None => outln!("{}", serde_json::to_string_pretty(&docs)?)?,
    }
    Ok(())
}
