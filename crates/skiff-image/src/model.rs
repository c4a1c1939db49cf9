//! Parsed OCI/Docker documents: descriptors, indexes and manifests, validated on the way in.

use std::collections::BTreeMap;

use skiff_store::{Digest, LABEL_GC_REF_CONTENT};

use crate::error::{ImageError, Result};
use crate::media::{is_schema1, kind_of, Kind};
use crate::platform::Platform;

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desc {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
    pub platform: Option<Platform>,
}

impl Desc {
    pub(crate) fn from_oci(d: &oci_spec::image::Descriptor, what: &'static str, parent: &Digest) -> Result<Desc> {
        let digest = d
            .digest()
            .to_string()
            .parse::<Digest>()
            .map_err(|e| ImageError::malformed(what, parent, format!("descriptor: {e}")))?;
        Ok(Desc {
            media_type: d.media_type().to_string(),
            digest,
            size: d.size(),
            annotations: d.annotations().clone().unwrap_or_default().into_iter().collect(),
            platform: d.platform().as_ref().map(Platform::from_oci),
        })
    }

    pub fn to_store(&self) -> skiff_store::Descriptor {
        skiff_store::Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: self.annotations.clone(),
        }
    }

    pub fn from_store(d: &skiff_store::Descriptor) -> Desc {
        Desc {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            annotations: d.annotations.clone(),
            platform: None,
        }
    }

    /// The kind of blob, or an error naming the unsupported media type.
    pub fn kind(&self, what: &'static str) -> Result<Kind> {
        if is_schema1(&self.media_type) {
            return Err(ImageError::UnsupportedMediaType {
                media_type: format!("{} (Docker schema 1 is not supported; re-push the image with schema 2)", self.media_type),
                what,
                digest: self.digest.to_string(),
            });
        }
        kind_of(&self.media_type).ok_or_else(|| ImageError::UnsupportedMediaType {
            media_type: self.media_type.clone(),
            what,
            digest: self.digest.to_string(),
        })
    }
}

/// An image index (or Docker manifest list).
#[derive(Clone, Debug)]
pub struct Index {
    pub manifests: Vec<Desc>,
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub config: Desc,
    pub layers: Vec<Desc>,
    pub annotations: BTreeMap<String, String>,
}

/// Checks the fields common to indexes and manifests: JSON object, schema version 2, and a
/// `mediaType` field (when present) that agrees with the descriptor's.
fn check_header(bytes: &[u8], desc: &Desc, what: &'static str) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ImageError::malformed(what, &desc.digest, e))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        return Err(ImageError::UnsupportedMediaType {
            media_type: "Docker schema 1 manifest".into(),
            what,
            digest: desc.digest.to_string(),
        });
    }
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        if mt != desc.media_type {
            return Err(ImageError::malformed(
                what,
                &desc.digest,
                format!("document says mediaType {mt:?} but its descriptor says {:?}", desc.media_type),
            ));
        }
    }
    Ok(())
}

pub fn parse_index(bytes: &[u8], desc: &Desc) -> Result<Index> {
    check_header(bytes, desc, "index")?;
    let idx: oci_spec::image::ImageIndex =
        serde_json::from_slice(bytes).map_err(|e| ImageError::malformed("index", &desc.digest, e))?;
    if idx.schema_version() != 2 {
        return Err(ImageError::malformed("index", &desc.digest, format!("schemaVersion {} (want 2)", idx.schema_version())));
    }
    let manifests =
        idx.manifests().iter().map(|m| Desc::from_oci(m, "index", &desc.digest)).collect::<Result<Vec<_>>>()?;
    Ok(Index { manifests, annotations: idx.annotations().clone().unwrap_or_default().into_iter().collect() })
}

pub fn parse_manifest(bytes: &[u8], desc: &Desc) -> Result<Manifest> {
    check_header(bytes, desc, "manifest")?;
    let m: oci_spec::image::ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| ImageError::malformed("manifest", &desc.digest, e))?;
    if m.schema_version() != 2 {
        return Err(ImageError::malformed("manifest", &desc.digest, format!("schemaVersion {} (want 2)", m.schema_version())));
    }
    let config = Desc::from_oci(m.config(), "manifest", &desc.digest)?;
    if config.kind("config")? != Kind::Config {
        return Err(ImageError::UnsupportedMediaType {
            media_type: config.media_type,
            what: "config",
            digest: config.digest.to_string(),
        });
    }
    let layers = m.layers().iter().map(|l| Desc::from_oci(l, "manifest", &desc.digest)).collect::<Result<Vec<_>>>()?;
    for l in &layers {
        if l.kind("layer")? != Kind::Layer {
            return Err(ImageError::UnsupportedMediaType {
                media_type: l.media_type.clone(),
                what: "layer",
                digest: l.digest.to_string(),
            });
        }
    }
    Ok(Manifest { config, layers, annotations: m.annotations().clone().unwrap_or_default().into_iter().collect() })
}

/// Validates an image config blob and returns it parsed.
pub fn parse_config(bytes: &[u8], desc: &Desc) -> Result<oci_spec::image::ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::malformed("config", &desc.digest, e))
}

/// The garbage-collection reference labels for an index's children.
pub fn index_labels(index: &Index, stored: impl Fn(&Desc) -> bool) -> BTreeMap<String, String> {
    index
        .manifests
        .iter()
        .enumerate()
        .filter(|(_, m)| stored(m))
        .map(|(i, m)| (format!("{LABEL_GC_REF_CONTENT}m.{i}"), m.digest.to_string()))
        .collect()
}

/// The garbage-collection reference labels for a manifest's config and layers.
pub fn manifest_labels(manifest: &Manifest) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(format!("{LABEL_GC_REF_CONTENT}config"), manifest.config.digest.to_string())]);
    for (i, l) in manifest.layers.iter().enumerate() {
        labels.insert(format!("{LABEL_GC_REF_CONTENT}l.{i}"), l.digest.to_string());
    }
    labels
}

/// The manifest of `index` to use for `platform`: the first entry whose platform matches, else the
/// first manifest entry that declares no platform.
pub fn select<'a>(index: &'a Index, platform: &Platform) -> Option<&'a Desc> {
    index
        .manifests
        .iter()
        .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)))
        .or_else(|| index.manifests.iter().find(|m| m.platform.is_none() && kind_of(&m.media_type).is_some()))
}

/// The platforms an index offers, for error messages.
pub fn available(index: &Index) -> String {
    let v: Vec<String> =
        index.manifests.iter().map(|m| m.platform.as_ref().map_or_else(|| "(none)".into(), |p| p.to_string())).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

