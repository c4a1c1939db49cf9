//! `images annotate`: a new image whose manifest (or index, or descriptors) carries added or removed
//! annotations, over the same config and layers. The source image and its blobs stay as they were;
//! the rewritten documents keep every other field and its order.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::{Map, Value};
use skiff_store::{CommitOptions, ContentStore, Digest, ImageRecord, LeaseId, Store};

use crate::error::{ImageError, Result};
use crate::media::{Kind, MAX_MANIFEST_SIZE};
use crate::model::{index_labels, manifest_labels, parse_config, parse_index, parse_manifest, Desc};
use crate::platform::Platform;
use crate::reference::normalize;
use crate::resolve::{config_platform, read_json, resolve};

/// Where an annotation goes (BuildKit's annotation targets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Manifest,
    ManifestDescriptor,
    Index,
    IndexDescriptor,
}

impl FromStr for Target {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "manifest" => Ok(Target::Manifest),
            "manifest-descriptor" => Ok(Target::ManifestDescriptor),
            "index" => Ok(Target::Index),
            "index-descriptor" => Ok(Target::IndexDescriptor),
            other => Err(ImageError::InvalidArgument(format!(
                "unknown annotation target {other:?} (want manifest, manifest-descriptor, index or index-descriptor)"
            ))),
        }
    }
}

/// One change: set `key` to `value`, or remove it (`value: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub target: Target,
    /// Restricts manifest and manifest-descriptor edits to one platform.
    pub platform: Option<Platform>,
    pub key: String,
    pub value: Option<String>,
}

/// Parses `KEY=VALUE`, or BuildKit's `annotation[-TARGET][[PLATFORM]].KEY=VALUE`, which overrides the
/// default target and platform for that one annotation.
pub fn parse_set(arg: &str, target: Target, platform: Option<&Platform>) -> Result<Edit> {
    let (lhs, value) = arg
        .split_once('=')
        .ok_or_else(|| ImageError::InvalidArgument(format!("annotation {arg:?} must be KEY=VALUE")))?;
    let (target, platform, key) = match lhs.strip_prefix("annotation") {
        Some(rest) if rest.starts_with(['-', '[', '.']) => parse_buildkit_prefix(arg, rest)?,
        _ => (target, platform.cloned(), lhs.to_string()),
    };
    check_key(arg, &key)?;
    Ok(Edit { target, platform, key, value: Some(value.to_string()) })
}

/// A removal of `key` at the given target.
pub fn parse_remove(key: &str, target: Target, platform: Option<&Platform>) -> Result<Edit> {
    check_key(key, key)?;
    Ok(Edit { target, platform: platform.cloned(), key: key.to_string(), value: None })
}

fn check_key(arg: &str, key: &str) -> Result<()> {
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ImageError::InvalidArgument(format!("annotation {arg:?}: key must be non-empty, without spaces")));
    }
    Ok(())
}

fn parse_buildkit_prefix(arg: &str, rest: &str) -> Result<(Target, Option<Platform>, String)> {
    let bad = |why: &str| ImageError::InvalidArgument(format!("annotation {arg:?}: {why}"));
    let (target, rest) = match rest.strip_prefix('-') {
        Some(r) => {
            let end = r.find(['[', '.']).ok_or_else(|| bad("expected annotation-TARGET.KEY=VALUE"))?;
            (r[..end].parse::<Target>()?, &r[end..])
        }
        None => (Target::Manifest, rest),
    };
    let (platform, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let end = r.find(']').ok_or_else(|| bad("unclosed '[' in platform"))?;
            (Some(r[..end].parse::<Platform>()?), &r[end + 1..])
        }
        None => (None, rest),
    };
    let key = rest.strip_prefix('.').ok_or_else(|| bad("expected '.' before the key"))?;
    Ok((target, platform, key.to_string()))
}

/// Applies edits to a JSON object's `annotations`, dropping the field when it ends up empty.
fn apply(doc: &mut Value, edits: &[Edit]) {
    let Some(obj) = doc.as_object_mut() else { return };
    let mut ann: Map<String, Value> = obj.get("annotations").and_then(|a| a.as_object()).cloned().unwrap_or_default();
    for e in edits {
        match &e.value {
            Some(v) => ann.insert(e.key.clone(), Value::String(v.clone())),
            None => ann.remove(&e.key),
        };
    }
    if ann.is_empty() {
        obj.remove("annotations");
    } else {
        obj.insert("annotations".into(), Value::Object(ann));
    }
}

fn applies_to(edit: &Edit, platform: Option<&Platform>) -> bool {
    match (&edit.platform, platform) {
        (None, _) => true,
        (Some(want), Some(p)) => want.matches(p),
        (Some(_), None) => false,
    }
}

struct Rewriter<'a> {
    store: &'a Store,
    lease: &'a LeaseId,
    edits: &'a [Edit],
    used: Vec<bool>,
}

impl Rewriter<'_> {
    /// The edits for `target` at `platform`, marking them as used.
    fn pick(&mut self, target: Target, platform: Option<&Platform>) -> Vec<Edit> {
        let mut out = Vec::new();
        for (i, e) in self.edits.iter().enumerate() {
            if e.target == target && applies_to(e, platform) {
                self.used[i] = true;
                out.push(e.clone());
            }
        }
        out
    }

    fn store_json(&self, desc: &Desc, doc: &Value, labels: BTreeMap<String, String>) -> Result<Desc> {
        let bytes = serde_json::to_vec(doc).map_err(|e| ImageError::InvalidArgument(e.to_string()))?;
        let opts = CommitOptions { labels, lease: Some(self.lease.clone()) };
        let info = self.store.content().ingest(&mut &bytes[..], Some(Digest::of(&bytes)), None, opts)?;
        Ok(Desc { digest: info.digest, size: info.size, ..desc.clone() })
    }

    fn manifest(&mut self, desc: &Desc, platform: Option<&Platform>) -> Result<Desc> {
        let edits = self.pick(Target::Manifest, platform);
        if edits.is_empty() {
            return Ok(desc.clone());
        }
        let bytes = read_json(self.store.content(), desc, MAX_MANIFEST_SIZE)?;
        let parsed = parse_manifest(&bytes, desc)?;
        let mut doc: Value = serde_json::from_slice(&bytes).map_err(|e| ImageError::malformed("manifest", &desc.digest, e))?;
        apply(&mut doc, &edits);
        self.store_json(desc, &doc, manifest_labels(&parsed))
    }

    fn index(&mut self, desc: &Desc) -> Result<Desc> {
        let content = self.store.content();
        let bytes = read_json(content, desc, MAX_MANIFEST_SIZE)?;
        let index = parse_index(&bytes, desc)?;
        let mut doc: Value = serde_json::from_slice(&bytes).map_err(|e| ImageError::malformed("index", &desc.digest, e))?;
        for (i, entry) in index.manifests.iter().enumerate() {
            let p = entry.platform.as_ref();
            let wants_manifest = self.edits.iter().any(|e| e.target == Target::Manifest && applies_to(e, p));
            let stored = content.info(&entry.digest).is_ok();
            // A manifest that was never imported is left be, unless an edit names its platform.
            if wants_manifest
                && !stored
                && self.edits.iter().any(|e| e.target == Target::Manifest && e.platform.is_some() && applies_to(e, p))
            {
                return Err(ImageError::MissingBlob {
                    what: "manifest",
                    digest: entry.digest.to_string(),
                    source_name: "the content store (import it with --all-platforms)".into(),
                });
            }
            if wants_manifest && stored {
                if entry.kind("manifest")? != Kind::Manifest {
                    return Err(ImageError::InvalidArgument(format!("annotate does not descend into nested index {}", entry.digest)));
                }
                let new = self.manifest(entry, p)?;
                doc["manifests"][i]["digest"] = Value::String(new.digest.to_string());
                doc["manifests"][i]["size"] = Value::from(new.size);
            }
            let md = self.pick(Target::ManifestDescriptor, p);
            apply(&mut doc["manifests"][i], &md);
        }
        let root = self.pick(Target::Index, None);
        apply(&mut doc, &root);
        let new_bytes = serde_json::to_vec(&doc).map_err(|e| ImageError::InvalidArgument(e.to_string()))?;
        let new_index = parse_index(&new_bytes, desc)?;
        let labels = index_labels(&new_index, |m| content.info(&m.digest).is_ok());
        self.store_json(desc, &doc, labels)
    }
}

/// Writes the annotated image named `dst` from `src`. Returns the new record.
pub fn annotate(store: &Store, src: &ImageRecord, dst: &str, edits: &[Edit], platform: &Platform) -> Result<ImageRecord> {
    if edits.is_empty() {
        return Err(ImageError::InvalidArgument("no annotations to add or remove".into()));
    }
    let dst = normalize(dst)?;
    let lease = store.leases().create(true, None, BTreeMap::from([("io.skiff.operation".into(), "annotate".into())]))?;
    let result = (|| {
        let target = Desc::from_store(&src.target);
        let mut rw = Rewriter { store, lease: &lease.id, edits, used: vec![false; edits.len()] };
        let mut new_target = match target.kind("image")? {
            Kind::Index => rw.index(&target)?,
            Kind::Manifest => {
                if let Some(e) = edits.iter().find(|e| e.target != Target::Manifest) {
                    return Err(ImageError::InvalidArgument(format!(
                        "image {} is a single manifest with no index; --target {:?} needs an index",
                        src.name, e.target
                    )));
                }
                let manifest = parse_manifest(&read_json(store.content(), &target, MAX_MANIFEST_SIZE)?, &target)?;
                let config_bytes = read_json(store.content(), &manifest.config, crate::media::MAX_CONFIG_SIZE)?;
                let own = config_platform(&parse_config(&config_bytes, &manifest.config)?);
                rw.manifest(&target, Some(&own))?
            }
            other => return Err(ImageError::malformed("image", &target.digest, format!("cannot annotate a {other:?}"))),
        };
        let outer = rw.pick(Target::IndexDescriptor, None);
        for e in outer {
            match &e.value {
                Some(v) => new_target.annotations.insert(e.key.clone(), v.clone()),
                None => new_target.annotations.remove(&e.key),
            };
        }
        if let Some(i) = rw.used.iter().position(|u| !u) {
            let e = &edits[i];
            return Err(ImageError::NoMatchingPlatform {
                platform: e.platform.as_ref().map_or("any".into(), |p| p.to_string()),
                digest: format!("{} (for annotation {:?})", src.target.digest, e.key),
                available: "see `skiff images inspect`".into(),
            });
        }
        let resolved = resolve(store.content(), &new_target, platform)?;
        let record = ImageRecord {
            name: dst.clone(),
            target: new_target.to_store(),
            created_at: String::new(),
            updated_at: String::new(),
            labels: src.labels.clone(),
            platform: platform.to_string(),
            platforms: crate::stored::stored(store.content(), &new_target)?.platforms,
            annotations: resolved.annotations,
        };
        Ok(store.images().put(record, Some(&lease.id))?)
    })();
    if result.is_err() {
        if let Err(e) = store.release_lease(&lease.id) {
            tracing::error!(lease = %lease.id, error = %e, "could not release annotate lease; recovery will on restart");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_buildkit_forms() {
        let e = parse_set("a.b/c=v=w", Target::Manifest, None).expect("plain");
        assert_eq!((e.target, e.key.as_str(), e.value.as_deref()), (Target::Manifest, "a.b/c", Some("v=w")));
        let e = parse_set("annotation-index.org.opencontainers.image.title=T", Target::Manifest, None).expect("index");
        assert_eq!((e.target, e.key.as_str()), (Target::Index, "org.opencontainers.image.title"));
        let e = parse_set("annotation[linux/arm64].k=v", Target::Index, None).expect("platform");
        assert_eq!(e.target, Target::Manifest);
        assert_eq!(e.platform, Some(Platform::new("linux", "arm64", None)));
        let e = parse_set("annotation-manifest-descriptor[linux/amd64].k=v", Target::Manifest, None).expect("md");
        assert_eq!(e.target, Target::ManifestDescriptor);
        assert!(parse_set("novalue", Target::Manifest, None).is_err());
        assert!(parse_set("=v", Target::Manifest, None).is_err());
        assert!(parse_set("annotation-bogus.k=v", Target::Manifest, None).is_err());
        assert!(parse_set("annotation[linux.k=v", Target::Manifest, None).is_err());
    }

    #[test]
    fn apply_keeps_other_fields_and_drops_empty_annotations() {
        let mut doc: Value = serde_json::from_str(r#"{"z":1,"annotations":{"a":"1"},"b":2}"#).expect("json");
        let set = Edit { target: Target::Manifest, platform: None, key: "c".into(), value: Some("3".into()) };
        apply(&mut doc, std::slice::from_ref(&set));
        assert_eq!(doc.to_string(), r#"{"z":1,"annotations":{"a":"1","c":"3"},"b":2}"#);
        let rm_a = Edit { value: None, key: "a".into(), ..set.clone() };
        let rm_c = Edit { value: None, ..set };
        apply(&mut doc, &[rm_a, rm_c]);
        assert_eq!(doc.to_string(), r#"{"z":1,"b":2}"#);
    }
}
