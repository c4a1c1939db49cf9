//! Resolving a stored image for a platform: index → platform manifest → config, collecting the
//! annotations of each level on the way down.

use skiff_store::{ContentStore, ImageAnnotations};

use crate::error::{ImageError, Result};
use crate::media::{Kind, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use crate::model::{available, parse_config, parse_index, parse_manifest, select, Desc, Index, Manifest};
use crate::platform::Platform;

/// How deep nested indexes may go before Skiff gives up (guards against reference loops).
const MAX_DEPTH: usize = 4;

/// A stored image, resolved for one platform.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The descriptor the image record names.
    pub target: Desc,
    /// The index that selected the manifest, if the image has one.
    pub index: Option<(Desc, Index)>,
    /// The descriptor of the selected manifest (the index entry, or the target itself).
    pub manifest_desc: Desc,
    pub manifest: Manifest,
    pub config_bytes: Vec<u8>,
    pub config: oci_spec::image::ImageConfiguration,
    pub annotations: ImageAnnotations,
}

pub(crate) fn read_json(store: &dyn ContentStore, desc: &Desc, limit: u64) -> Result<Vec<u8>> {
    if desc.size > limit {
        return Err(ImageError::malformed("blob", &desc.digest, format!("{} bytes is over the {limit}-byte limit", desc.size)));
    }
    Ok(store.read_verified(&desc.digest, limit)?)
}

/// Walks from `target` to the manifest for `platform`.
pub fn resolve(store: &dyn ContentStore, target: &Desc, platform: &Platform) -> Result<Resolved> {
    let mut annotations = ImageAnnotations { index_descriptor: target.annotations.clone(), ..Default::default() };
    let mut current = target.clone();
    let mut index = None;
    for _ in 0..MAX_DEPTH {
        match current.kind("image")? {
            Kind::Index => {
                let idx = parse_index(&read_json(store, &current, MAX_MANIFEST_SIZE)?, &current)?;
                let chosen = select(&idx, platform).cloned().ok_or_else(|| ImageError::NoMatchingPlatform {
                    platform: platform.to_string(),
                    digest: current.digest.to_string(),
                    available: available(&idx),
                })?;
                annotations.index = idx.annotations.clone();
                annotations.manifest_descriptor = chosen.annotations.clone();
                index = Some((current, idx));
                current = chosen;
            }
            Kind::Manifest => {
                let manifest = parse_manifest(&read_json(store, &current, MAX_MANIFEST_SIZE)?, &current)?;
                let config_bytes = read_json(store, &manifest.config, MAX_CONFIG_SIZE)?;
                let config = parse_config(&config_bytes, &manifest.config)?;
                annotations.manifest = manifest.annotations.clone();
                return Ok(Resolved {
                    target: target.clone(),
                    index,
                    manifest_desc: current,
                    manifest,
                    config_bytes,
                    config,
                    annotations,
                });
            }
            other => {
                return Err(ImageError::malformed(
                    "image",
                    &current.digest,
                    format!("an image must point at an index or manifest, not a {other:?}"),
                ))
            }
        }
    }
    Err(ImageError::malformed("index", &target.digest, format!("indexes nested deeper than {MAX_DEPTH}")))
}

/// The platform a manifest's config declares.
pub fn config_platform(config: &oci_spec::image::ImageConfiguration) -> Platform {
    Platform::new(&config.os().to_string(), &config.architecture().to_string(), config.variant().as_deref())
}
