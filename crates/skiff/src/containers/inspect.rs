//! `skiff containers inspect`: the record, runtime annotations (with sources) and runtime spec.

use anyhow::Result;
use skiff_api::v1::{self, containers_client::ContainersClient};
use tonic::transport::Channel;

use crate::{status, Ctx};

/// A container's inspect document, by id, id prefix or name.
pub async fn inspect_doc(channel: Channel, id: String) -> Result<serde_json::Value, tonic::Status> {
    let r = ContainersClient::new(channel).inspect(v1::InspectContainerRequest { id }).await?.into_inner();
    serde_json::from_slice(&r.json).map_err(|e| tonic::Status::data_loss(format!("skiffd sent an inspect document that is not JSON: {e}")))
}

/// Documents as a JSON array, or each through a Go template.
pub fn print_docs(docs: &[serde_json::Value], format: Option<&str>) -> Result<()> {
    match format {
        Some(t) => {
            for doc in docs {
                outln!("{}", crate::template::render(t, doc)?)?;
            }
        }
        None => outln!("{}", serde_json::to_string_pretty(docs)?)?,
    }
    Ok(())
}

pub async fn inspect(ctx: &Ctx, ids: Vec<String>, format: Option<String>) -> Result<()> {
    let mut docs = Vec::new();
    for id in ids {
        docs.push(inspect_doc(ctx.channel.clone(), id).await.map_err(status)?);
    }
    print_docs(&docs, format.as_deref())
}
