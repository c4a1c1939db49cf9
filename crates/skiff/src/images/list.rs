//! `skiff images ls` (and `skiff images`): a table as docker's, `--output json` or `--format`.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;
use skiff_api::v1::{self, images_client::ImagesClient};
use tonic::transport::Channel;

use crate::humanize::{ago, human_size};
use crate::output::{go_fields, print_rows, ListFormat, Row};
use crate::status;

#[derive(clap::Args, Default)]
pub struct LsArgs {
    /// Names only.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    list: ListFormat,
}

#[derive(Serialize)]
struct ImageRow {
    name: String,
    /// The target digest's first 12 hex digits, as docker's IMAGE ID column.
    id: String,
    media_type: String,
    digest: String,
    /// The target descriptor's own size.
    size: u64,
    /// Manifest, config and layers of the platform used by default (compressed), as ctr's SIZE.
    content_size: u64,
    platform: String,
    /// Every platform whose content is stored.
    platforms: Vec<String>,
    created_at: String,
    annotations: BTreeMap<String, String>,
    #[serde(skip)]
    created_since: String,
}

impl Row for ImageRow {
    const HEADERS: &'static [&'static str] = &["NAME", "IMAGE ID", "TYPE", "PLATFORMS", "SIZE", "CREATED"];
    fn cells(&self) -> Vec<String> {
        let kind = if self.media_type.contains("index") || self.media_type.contains("list") { "index" } else { "manifest" };
        let platforms = if self.platforms.is_empty() { self.platform.clone() } else { self.platforms.join(",") };
        let size = if self.content_size == 0 { "-".to_string() } else { human_size(self.content_size) };
        vec![self.name.clone(), self.id.clone(), kind.into(), platforms, size, self.created_since.clone()]
    }

    /// Also docker's `Repository`, `Tag` and `CreatedSince`.
    fn template_doc(&self) -> Result<serde_json::Value> {
        let mut doc = go_fields(serde_json::to_value(self)?);
        let (repository, tag) = split_name(&self.name);
        if let Some(m) = doc.as_object_mut() {
            m.insert("Repository".into(), repository.into());
            m.insert("Tag".into(), tag.into());
            m.insert("CreatedSince".into(), self.created_since.clone().into());
        }
        Ok(doc)
    }
}

/// `repo:tag` or `repo@digest` as docker's REPOSITORY and TAG (`<none>` when there is no tag).
fn split_name(name: &str) -> (&str, &str) {
    if let Some((repo, _)) = name.split_once('@') {
        return (repo, "<none>");
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(colon) => (&name[..slash + colon], &name[slash + colon + 1..]),
        None => (name, "<none>"),
    }
}

fn row(i: &v1::Image, now: chrono::DateTime<chrono::Utc>) -> ImageRow {
    let t = i.target.clone().unwrap_or_default();
    let hex = t.digest.split_once(':').map_or(t.digest.as_str(), |(_, hex)| hex);
    ImageRow {
        name: i.name.clone(),
        id: hex.chars().take(12).collect(),
        media_type: t.media_type.clone(),
        digest: t.digest.clone(),
        size: t.size,
        content_size: i.size,
        platform: i.platform.clone(),
        platforms: i.platforms.clone(),
        created_at: i.created_at.clone(),
        annotations: t.annotations.into_iter().collect(),
        created_since: ago(&i.created_at, now),
    }
}

pub async fn ls(channel: Channel, args: LsArgs) -> Result<()> {
    let mut client = ImagesClient::new(channel).max_decoding_message_size(64 << 20);
    let mut images = client.list(v1::ListImagesRequest {}).await.map_err(status)?.into_inner().images;
    images.sort_by(|a, b| a.name.cmp(&b.name));
    if args.quiet {
        for i in &images {
            outln!("{}", i.name)?;
        }
        return Ok(());
    }
    let now = chrono::Utc::now();
    print_rows(&images.iter().map(|i| row(i, now)).collect::<Vec<_>>(), &args.list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_a_short_id_an_age_and_docker_s_name_parts() {
        let image = v1::Image {
            name: "localhost:5000/a/b:1.2".into(),
            target: Some(v1::Descriptor { digest: "sha256:0123456789abcdef0123".into(), media_type: "application/vnd.oci.image.index.v1+json".into(), ..Default::default() }),
            created_at: "2024-05-01T11:00:00Z".into(),
            platform: "linux/amd64".into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            size: 3 << 20,
            ..Default::default()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("now").with_timezone(&chrono::Utc);
        let r = row(&image, now);
        assert_eq!(r.cells(), vec!["localhost:5000/a/b:1.2", "0123456789ab", "index", "linux/amd64,linux/arm64", &human_size(3 << 20), "About an hour ago"]);
        // A record without the set shows its one platform; an unknown size shows as "-".
        let bare = row(&v1::Image { platforms: vec![], size: 0, ..image.clone() }, now);
        assert_eq!(bare.cells()[3..5], ["linux/amd64".to_string(), "-".to_string()]);
        let doc = r.template_doc().expect("doc");
        assert_eq!((doc["Repository"].as_str(), doc["Tag"].as_str(), doc["ID"].as_str()), (Some("localhost:5000/a/b"), Some("1.2"), Some("0123456789ab")));
        assert_eq!(doc["CreatedAt"], "2024-05-01T11:00:00Z", "the absolute time stays in the document");
        let json = serde_json::to_value(&r).expect("json");
        assert!(json.get("created_since").is_none() && json["created_at"] == "2024-05-01T11:00:00Z");
        assert_eq!(split_name("busybox@sha256:ab"), ("busybox", "<none>"));
        assert_eq!(split_name("localhost:5000/x"), ("localhost:5000/x", "<none>"));
    }
}
