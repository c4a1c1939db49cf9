//! Conversions between store/image types and the API's messages.

use skiff_api::v1;
use skiff_store::{ContentInfo, Descriptor, ImageRecord};

pub fn descriptor(d: &Descriptor) -> v1::Descriptor {
    v1::Descriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.to_string(),
        size: d.size,
        annotations: d.annotations.clone().into_iter().collect(),
    }
}

pub fn image(r: &ImageRecord) -> v1::Image {
    v1::Image {
        name: r.name.clone(),
        target: Some(descriptor(&r.target)),
        created_at: r.created_at.clone(),
        updated_at: r.updated_at.clone(),
        labels: r.labels.clone().into_iter().collect(),
        platform: r.platform.clone(),
        platforms: r.platforms.iter().cloned().collect(),
        size: 0,
    }
}

pub fn content_info(i: &ContentInfo) -> v1::ContentInfo {
    v1::ContentInfo {
        digest: i.digest.to_string(),
        size: i.size,
        created_at: i.created_at.clone(),
        updated_at: i.updated_at.clone(),
        labels: i.labels.clone().into_iter().collect(),
    }
}

/// Effective runtime annotations as inspect documents show them: `[{Key, Value, Source}]` and the
/// dropped ones as `[{Key, Source, Reason}]` (images inspect and containers inspect alike).
pub fn annotation_docs(effective: &skiff_runtime::Effective) -> (serde_json::Value, serde_json::Value) {
    let kept = effective
        .annotations
        .iter()
        .map(|(k, v)| serde_json::json!({"Key": k, "Value": v, "Source": effective.sources.get(k)}))
        .collect();
    let dropped = effective.dropped.iter().map(|d| serde_json::json!({"Key": d.key, "Source": d.source, "Reason": d.reason})).collect();
    (serde_json::Value::Array(kept), serde_json::Value::Array(dropped))
}
