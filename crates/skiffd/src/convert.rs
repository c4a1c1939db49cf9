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
