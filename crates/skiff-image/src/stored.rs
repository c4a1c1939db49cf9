//! What of an image the store holds. A pull or import of one platform stores the whole index but
//! only that platform's manifest, config and layers, so an index may name manifests that are not
//! here. Export, push and the image record's platform set all start from this walk, so that none of
//! them hands on a descriptor whose content is missing.

use std::collections::BTreeSet;

use serde_json::Value;
use skiff_store::{ContentStore, Digest};

use crate::error::{ImageError, Result};
use crate::media::{is_schema1, kind_of, Kind, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use crate::model::{available, parse_config, parse_index, parse_manifest, select, Desc};
use crate::platform::Platform;
use crate::resolve::{config_platform, read_json};

/// How deep nested indexes may go (as in resolve).
const MAX_DEPTH: usize = 4;

/// The stored part of an image.
#[derive(Clone, Debug)]
pub struct Stored {
    /// What names the stored part: the target itself when all of it is stored, else an index
    /// rewritten to list only the stored entries (in `made`); for one platform, its manifest.
    pub top: Desc,
    /// Blobs from the store, children before parents, each once.
    pub blobs: Vec<Desc>,
    /// Indexes rewritten to leave out what is not stored, children before parents. Their bytes are
    /// not in the store; they keep every other field of the original, annotations included.
    pub made: Vec<(Desc, Vec<u8>)>,
    /// Index entries left out because their content is not (completely) stored.
    pub missing: Vec<Desc>,
    /// The platforms of the manifests included.
    pub platforms: BTreeSet<String>,
}

impl Stored {
    /// The platforms of the `missing` entries, for messages (`(none)` for an entry without one).
    pub fn missing_platforms(&self) -> String {
        let v: Vec<String> =
            self.missing.iter().map(|m| m.platform.as_ref().map_or_else(|| format!("(none: {})", m.digest), |p| p.to_string())).collect();
        v.join(", ")
    }
}

/// What a walk gathers; `Stored` once the top is known.
#[derive(Default)]
struct Found {
    blobs: Vec<Desc>,
    made: Vec<(Desc, Vec<u8>)>,
    missing: Vec<Desc>,
    platforms: BTreeSet<String>,
}

impl Found {
    fn with_top(self, top: Desc) -> Stored {
        Stored { top, blobs: self.blobs, made: self.made, missing: self.missing, platforms: self.platforms }
    }
}

struct Walk<'a> {
    content: &'a dyn ContentStore,
    out: Found,
    seen: BTreeSet<Digest>,
}

impl Walk<'_> {
    fn present(&self, d: &Desc) -> bool {
        self.content.info(&d.digest).is_ok()
    }

    fn push_blob(&mut self, d: &Desc) {
        if self.seen.insert(d.digest.clone()) {
            self.out.blobs.push(d.clone());
        }
    }

    /// The manifest's platform: its index entry's, else its config's.
    fn manifest_platform(&self, desc: &Desc, config: &Desc) -> Result<Platform> {
        match &desc.platform {
            Some(p) => Ok(p.clone()),
            None => Ok(config_platform(&parse_config(&read_json(self.content, config, MAX_CONFIG_SIZE)?, config)?)),
        }
    }

    /// Adds a manifest and its config and layers when all are stored; returns whether it did.
    fn manifest(&mut self, desc: &Desc) -> Result<bool> {
        if !self.present(desc) {
            return Ok(false);
        }
        let manifest = parse_manifest(&read_json(self.content, desc, MAX_MANIFEST_SIZE)?, desc)?;
        let children: Vec<&Desc> = std::iter::once(&manifest.config).chain(&manifest.layers).collect();
        if children.iter().any(|c| !self.present(c)) {
            return Ok(false);
        }
        let platform = self.manifest_platform(desc, &manifest.config)?;
        for c in children {
            self.push_blob(c);
        }
        self.push_blob(desc);
        // A config that names no platform adds none (and does not block any).
        if !platform.os.is_empty() && !platform.architecture.is_empty() {
            self.out.platforms.insert(platform.to_string());
        }
        Ok(true)
    }

    /// The descriptor that stands for `desc` once what is not stored is left out, or `None` when
    /// nothing of it is stored.
    fn keep(&mut self, desc: &Desc, depth: usize) -> Result<Option<Desc>> {
        if depth > MAX_DEPTH {
            return Err(ImageError::malformed("index", &desc.digest, format!("indexes nested deeper than {MAX_DEPTH}")));
        }
        match desc.kind("manifest")? {
            Kind::Manifest => {
                if self.manifest(desc)? {
                    return Ok(Some(desc.clone()));
                }
                self.out.missing.push(desc.clone());
                Ok(None)
            }
            Kind::Index => {
                if !self.present(desc) {
                    self.out.missing.push(desc.clone());
                    return Ok(None);
                }
                let bytes = read_json(self.content, desc, MAX_MANIFEST_SIZE)?;
                let index = parse_index(&bytes, desc)?;
                let mut kept = Vec::new();
                for (i, entry) in index.manifests.iter().enumerate() {
                    // An entry Skiff cannot take (an artifact, schema 1) was never imported: it is
                    // left out like any other entry whose content is not here.
                    if !matches!(kind_of(&entry.media_type), Some(Kind::Index | Kind::Manifest)) || is_schema1(&entry.media_type) {
                        self.out.missing.push(entry.clone());
                        continue;
                    }
                    if let Some(d) = self.keep(entry, depth + 1)? {
                        kept.push((i, d));
                    }
                }
                if kept.is_empty() {
                    return Ok(None);
                }
                let unchanged = kept.len() == index.manifests.len() && kept.iter().all(|(i, d)| d.digest == index.manifests[*i].digest);
                if unchanged {
                    self.push_blob(desc);
                    return Ok(Some(desc.clone()));
                }
                let made = rewrite_index(&bytes, desc, &kept)?;
                self.out.made.push(made.clone());
                Ok(Some(made.0))
            }
            other => Err(ImageError::malformed("image", &desc.digest, format!("an image must be an index or a manifest, not a {other:?}"))),
        }
    }
}

/// The index `bytes` listing only the `kept` entries (by position, with the descriptor to use for
/// each), every other field as it was.
fn rewrite_index(bytes: &[u8], desc: &Desc, kept: &[(usize, Desc)]) -> Result<(Desc, Vec<u8>)> {
    let mut doc: Value = serde_json::from_slice(bytes).map_err(|e| ImageError::malformed("index", &desc.digest, e))?;
    let entries = doc
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| ImageError::malformed("index", &desc.digest, "no manifests array"))?
        .clone();
    let mut out = Vec::with_capacity(kept.len());
    for (i, d) in kept {
        let mut entry = entries.get(*i).cloned().ok_or_else(|| ImageError::malformed("index", &desc.digest, "entry out of range"))?;
        entry["digest"] = Value::String(d.digest.to_string());
        entry["size"] = Value::from(d.size);
        out.push(entry);
    }
    doc["manifests"] = Value::Array(out);
    let new = serde_json::to_vec(&doc).map_err(|e| ImageError::malformed("index", &desc.digest, e))?;
    Ok((Desc { digest: Digest::of(&new), size: new.len() as u64, ..desc.clone() }, new))
}

/// The stored part of the image at `target`: every manifest whose config and layers are all stored,
/// with the indexes above them (rewritten where they name more).
pub fn stored(content: &dyn ContentStore, target: &Desc) -> Result<Stored> {
    let mut walk = Walk { content, out: Found::default(), seen: BTreeSet::new() };
    match walk.keep(target, 0)? {
        Some(top) => Ok(walk.out.with_top(top)),
        None => Err(ImageError::MissingBlob {
            what: "image content",
            digest: format!("{} (no platform's manifest, config and layers are all stored)", target.digest),
            source_name: "the content store".into(),
        }),
    }
}

/// The stored manifest of `target` for `platform`, as the index entry that selects it describes it
/// (its platform and annotations), with its config and layers.
pub fn stored_platform(content: &dyn ContentStore, target: &Desc, platform: &Platform) -> Result<Stored> {
    let mut walk = Walk { content, out: Found::default(), seen: BTreeSet::new() };
    let mut current = target.clone();
    for _ in 0..MAX_DEPTH {
        match current.kind("image")? {
            Kind::Index => {
                let index = parse_index(&read_json(content, &current, MAX_MANIFEST_SIZE)?, &current)?;
                current = select(&index, platform).cloned().ok_or_else(|| ImageError::NoMatchingPlatform {
                    platform: platform.to_string(),
                    digest: current.digest.to_string(),
                    available: available(&index),
                })?;
            }
            Kind::Manifest => {
                if !walk.manifest(&current)? {
                    return Err(ImageError::MissingBlob {
                        what: "manifest",
                        digest: format!("{} for {platform}", current.digest),
                        source_name: format!("the content store (pull or import it with --platform {platform})"),
                    });
                }
                // An entry without a platform (or an image that is one manifest) says it in its config.
                if let Some(own) = walk.out.platforms.iter().next().filter(|_| current.platform.is_none()) {
                    if !own.parse::<Platform>().is_ok_and(|p| platform.matches(&p)) {
                        return Err(ImageError::NoMatchingPlatform {
                            platform: platform.to_string(),
                            digest: target.digest.to_string(),
                            available: own.clone(),
                        });
                    }
                }
                return Ok(walk.out.with_top(current));
            }
            other => return Err(ImageError::malformed("image", &current.digest, format!("cannot take a platform from a {other:?}"))),
        }
    }
    Err(ImageError::malformed("index", &target.digest, format!("indexes nested deeper than {MAX_DEPTH}")))
}
