//! `skiff events`: container lifecycle events as they happen, one JSON object per line (as
//! `nerdctl events --format json` and `ctr events` stream them).

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use skiff_api::v1::{self, events_client::EventsClient};

use crate::{status, Ctx};

#[derive(Args)]
pub struct EventsArgs {
    /// `container=ID|NAME` or `type=created|started|oom|exited|deleted` (`event=` too, as docker);
    /// repeat a key to accept any of its values.
    #[arg(long, short = 'f')]
    filter: Vec<String>,
}

/// One line of output.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "Time")]
    time: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "ExitCode", skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(rename = "Reason", skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(rename = "Lost", skip_serializing_if = "Option::is_none")]
    lost: Option<u64>,
}

fn request(filters: &[String]) -> Result<v1::SubscribeEventsRequest> {
    let mut req = v1::SubscribeEventsRequest::default();
    for f in filters {
        match f.split_once('=') {
            Some(("container", v)) => req.containers.push(v.to_string()),
            Some(("type" | "event", v)) => req.types.push(v.to_string()),
            _ => bail!("filter {f:?} must be container=ID|NAME or type=TYPE"),
        }
    }
    Ok(req)
}

fn line(e: &v1::ContainerEvent) -> Result<String> {
    let exited = e.r#type == "exited";
    Ok(serde_json::to_string(&Line {
        time: &e.time,
        kind: &e.r#type,
        id: &e.container_id,
        name: &e.container_name,
        exit_code: exited.then_some(e.exit_code),
        reason: &e.reason,
        lost: (e.r#type == "lagged").then_some(e.lost),
    })?)
}

pub async fn run(ctx: &Ctx, args: EventsArgs) -> Result<()> {
    let req = request(&args.filter)?;
    let mut stream = EventsClient::new(ctx.channel.clone()).subscribe(req).await.map_err(status)?.into_inner();
    while let Some(event) = stream.message().await.map_err(status)? {
        outln!("{}", line(&event)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_lines() {
        let req = request(&["container=web".into(), "type=exited".into(), "event=oom".into()]).expect("filters");
        assert_eq!((req.containers, req.types), (vec!["web".to_string()], vec!["exited".to_string(), "oom".to_string()]));
        assert!(request(&["color=red".into()]).is_err());
        let e = v1::ContainerEvent { r#type: "exited".into(), container_id: "abc".into(), container_name: "web".into(), time: "t".into(), exit_code: 0, reason: "Completed".into(), lost: 0 };
        assert_eq!(line(&e).expect("line"), r#"{"Time":"t","Type":"exited","ID":"abc","Name":"web","ExitCode":0,"Reason":"Completed"}"#);
        let s = v1::ContainerEvent { r#type: "started".into(), container_id: "abc".into(), ..Default::default() };
        assert_eq!(line(&s).expect("line"), r#"{"Time":"","Type":"started","ID":"abc","Name":""}"#);
    }
}
