//! docker-archive (`docker save`) import: `manifest.json` lists each image's config and layer tars.
//! Skiff stores such an image as a Docker schema 2 manifest over the same config and layers.
//! (Docker 25 and later save an OCI layout with a `manifest.json` beside it; those take the OCI path.)

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;
use skiff_store::Digest;

use crate::error::{ImageError, Result};
use crate::import::{ImportOptions, Plan};
use crate::media::{DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, MAX_CONFIG_SIZE, OCI_LAYER_ZSTD};
use crate::model::{manifest_labels, parse_config, parse_manifest, Desc};
use crate::reference::normalize;
use crate::source::Source;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn desc(media_type: &str, digest: Digest, size: u64) -> Desc {
    Desc { media_type: media_type.into(), digest, size, annotations: BTreeMap::new(), platform: None }
}

fn invalid(src: &dyn Source, reason: String) -> ImageError {
    ImageError::InvalidArchive { path: src.name().to_string(), reason }
}

/// Sniffs a layer's compression from its first bytes.
fn layer_media_type(src: &dyn Source, path: &str) -> Result<&'static str> {
    let (mut r, _) = src.open(path)?.ok_or_else(|| invalid(src, format!("layer {path} is missing")))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut magic[got..]).map_err(ImageError::io(format!("read {path}")))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(match magic {
        [0x1f, 0x8b, ..] => DOCKER_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_ZSTD,
        _ => DOCKER_LAYER,
    })
}

fn hash(src: &dyn Source, path: &str) -> Result<(Digest, u64)> {
    let (mut r, _) = src.open(path)?.ok_or_else(|| invalid(src, format!("layer {path} is missing")))?;
    Digest::of_reader(&mut r).map_err(ImageError::io(format!("read {path}")))
}

/// Plans a docker-archive import.
pub(crate) fn plan(src: &dyn Source, opts: &ImportOptions) -> Result<Plan> {
    let bytes = src
        .read_small("manifest.json", 16 << 20)?
        .ok_or_else(|| invalid(src, "neither index.json (OCI) nor manifest.json (docker-archive) found".into()))?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&bytes).map_err(|e| invalid(src, format!("manifest.json: {e}")))?;
    if entries.is_empty() {
        return Err(invalid(src, "manifest.json lists no images".into()));
    }
    let mut plan = Plan::default();
    for entry in &entries {
        // Before the config or any layer is read.
        let image = opts.name.clone().or_else(|| entry.repo_tags.iter().flatten().next().cloned()).unwrap_or_else(|| entry.config.clone());
        crate::import::check_layer_count(&image, entry.layers.len(), opts)?;
        let config = src
            .read_small(&entry.config, MAX_CONFIG_SIZE)?
            .ok_or_else(|| invalid(src, format!("config {} is missing", entry.config)))?;
        let config_desc = desc(DOCKER_CONFIG, Digest::of(&config), config.len() as u64);
        let parsed = parse_config(&config, &config_desc)?;
        let diff_ids = parsed.rootfs().diff_ids();
        if diff_ids.len() != entry.layers.len() {
            return Err(ImageError::malformed(
                "config",
                &config_desc.digest,
                format!("{} diff_ids for {} layers in manifest.json", diff_ids.len(), entry.layers.len()),
            ));
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let media_type = layer_media_type(src, path)?;
            let (_, size) = src.open(path)?.ok_or_else(|| invalid(src, format!("layer {path} is missing")))?;
            // An uncompressed layer's digest is its diffID, which the store verifies as it ingests;
            // a compressed one must be hashed first to learn its digest.
            let digest = if media_type == DOCKER_LAYER { diff_id.parse::<Digest>()? } else { hash(src, path)?.0 };
            let layer = desc(media_type, digest, size);
            plan.paths.insert(layer.digest.to_string(), path.clone());
            plan.add_layer(layer.clone());
            layers.push(layer);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": { "mediaType": DOCKER_CONFIG, "size": config_desc.size, "digest": config_desc.digest.to_string() },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": l.media_type, "size": l.size, "digest": l.digest.to_string()
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| invalid(src, e.to_string()))?;
        let manifest_desc = desc(DOCKER_MANIFEST, Digest::of(&manifest_bytes), manifest_bytes.len() as u64);
        let labels = manifest_labels(&parse_manifest(&manifest_bytes, &manifest_desc)?);
        plan.add_json(config_desc, config, BTreeMap::new());
        plan.add_json(manifest_desc.clone(), manifest_bytes, labels);
        let tags = entry.repo_tags.clone().unwrap_or_default();
        let names: Vec<String> = if let Some(n) = &opts.name {
            if entries.len() != 1 {
                return Err(ImageError::InvalidArgument(format!("--name names one image but the archive holds {}", entries.len())));
            }
            vec![normalize(n)?]
        } else if tags.is_empty() {
            return Err(ImageError::InvalidArgument(format!("image {} has no RepoTags; pass --name REF", manifest_desc.digest)));
        } else {
            tags.iter().map(|t| normalize(t)).collect::<Result<_>>()?
        };
        for name in names {
            plan.images.push((name, manifest_desc.clone()));
        }
    }
    Ok(plan)
}
