//! `images inspect`: one serialisable view of an image — index, manifest, config, history, layers —
//! and its annotations with the level each came from. Field names follow Go's style so that
//! `--format '{{.Annotations}}'` templates read as they do with ctr and docker.

use std::collections::BTreeMap;

use serde::Serialize;
use skiff_store::{ImageRecord, Store};

use crate::error::{ImageError, Result};
use crate::model::Desc;
use crate::platform::Platform;
use crate::resolve::resolve;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescView {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

impl From<&Desc> for DescView {
    fn from(d: &Desc) -> Self {
        DescView {
            media_type: d.media_type.clone(),
            digest: d.digest.to_string(),
            size: d.size,
            platform: d.platform.as_ref().map(|p| p.to_string()),
            annotations: d.annotations.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexView {
    #[serde(flatten)]
    pub descriptor: DescView,
    pub manifests: Vec<DescView>,
}

/// An annotation and the level of the image it was found at.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AnnotationSource {
    pub key: String,
    pub value: String,
    /// `index-descriptor`, `index`, `manifest-descriptor` or `manifest`.
    pub level: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectView {
    pub name: String,
    pub created: String,
    pub updated: String,
    pub platform: String,
    pub target: DescView,
    pub index: Option<IndexView>,
    pub manifest: DescView,
    pub config: DescView,
    /// The image config document itself (Architecture, Os, Config, RootFS, History, ...).
    pub image: serde_json::Value,
    pub history: serde_json::Value,
    pub layers: Vec<DescView>,
    /// Effective annotations: every level merged, later levels winning
    /// (index-descriptor < index < manifest-descriptor < manifest).
    pub annotations: BTreeMap<String, String>,
    pub annotation_sources: Vec<AnnotationSource>,
    /// The same annotations by level, for callers (not serialised: `AnnotationSources` shows them).
    #[serde(skip)]
    pub levels: skiff_store::ImageAnnotations,
    pub labels: BTreeMap<String, String>,
}

/// Builds the inspect view of `record` for `platform`.
pub fn inspect(store: &Store, record: &ImageRecord, platform: &Platform) -> Result<InspectView> {
    let r = resolve(store.content(), &Desc::from_store(&record.target), platform)?;
    let image: serde_json::Value =
        serde_json::from_slice(&r.config_bytes).map_err(|e| ImageError::malformed("config", &r.manifest.config.digest, e))?;
    let levels = [
        ("index-descriptor", &r.annotations.index_descriptor),
        ("index", &r.annotations.index),
        ("manifest-descriptor", &r.annotations.manifest_descriptor),
        ("manifest", &r.annotations.manifest),
    ];
    let mut annotations = BTreeMap::new();
    let mut sources = Vec::new();
    for (level, map) in levels {
        for (k, v) in map {
            annotations.insert(k.clone(), v.clone());
            sources.push(AnnotationSource { key: k.clone(), value: v.clone(), level });
        }
    }
    let mut manifest = DescView::from(&r.manifest_desc);
    manifest.annotations = r.manifest.annotations.clone();
    Ok(InspectView {
        name: record.name.clone(),
        created: record.created_at.clone(),
        updated: record.updated_at.clone(),
        platform: platform.to_string(),
        target: DescView::from(&r.target),
        index: r.index.as_ref().map(|(d, idx)| IndexView {
            descriptor: DescView { annotations: idx.annotations.clone(), ..DescView::from(d) },
            manifests: idx.manifests.iter().map(DescView::from).collect(),
        }),
        manifest,
        config: DescView::from(&r.manifest.config),
        history: image.get("history").cloned().unwrap_or(serde_json::Value::Array(vec![])),
        image,
        layers: r.manifest.layers.iter().map(DescView::from).collect(),
        annotations,
        annotation_sources: sources,
        levels: r.annotations.clone(),
        labels: record.labels.clone(),
    })
}
