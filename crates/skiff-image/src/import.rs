//! Importing images from an OCI layout directory, an oci-archive or a docker-archive.
//!
//! An import first *plans*: it reads the small JSON documents (indexes, manifests, configs) into
//! memory, verifying each digest and media type, and collects the layers the chosen platform needs.
//! (A pull reads its configs with the layers instead, saving the registry a round trip first.)
//! Then it ingests under a temporary lease (`ingest.rs`): layers in parallel, then the JSON blobs
//! children first, each verified by the store as it commits. Last, one transaction writes the image records and
//! releases the lease. Any error releases the lease and removes the blobs this import added; a crash
//! leaves the lease for recovery to release. So the store holds the whole image or none of it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use skiff_store::{ImageRecord, Store};

use crate::docker;
use crate::error::{ImageError, Result};
use crate::media::{Kind, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, OCI_LAYOUT_VERSION};
use crate::model::{available, index_labels, manifest_labels, parse_config, parse_index, parse_manifest, select, Desc};
use crate::platform::Platform;
use crate::progress::Progress;
use crate::reference::normalize;
use crate::source::{open_source, Source};
use crate::record::image_record;

/// Annotation naming an image, as containerd and Docker write it in `index.json`.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming a tag (or full reference) in `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Layers an image may have by default. containerd and Docker fail past 128 (overlay's mount
/// options fill a page); Skiff mounts more through relative lowerdirs, and this bound keeps a
/// hostile manifest of thousands of tiny layers from costing minutes of unpacking and deletion.
pub const DEFAULT_MAX_LAYERS: usize = 500;

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Platform whose manifest is imported (the host's by default).
    pub platform: Platform,
    /// Import every platform's manifest, config and layers.
    pub all_platforms: bool,
    /// Name for the image (only when the source holds exactly one).
    pub name: Option<String>,
    /// Repository to prefix tag-only `org.opencontainers.image.ref.name` values with.
    pub base_name: Option<String>,
    /// Parallel layer ingests.
    pub parallelism: usize,
    /// Labels set on every blob stored (e.g. where a pull fetched it from).
    pub labels: BTreeMap<String, String>,
    /// On failure, keep the blobs already stored (under a lease that expires in a day) so that a
    /// retry resumes from them, instead of removing them. Pulls do this; imports do not.
    pub resumable: bool,
    /// Most layers one manifest may have; checked as soon as the manifest is read.
    pub max_layers: usize,
    /// Read each manifest's config at the same time as its layers instead of before them: from a
    /// registry, that saves the config's round trip (pulls do this). A malformed config is then
    /// found once the layers came.
    pub configs_beside_layers: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            platform: Platform::host(),
            all_platforms: false,
            name: None,
            base_name: None,
            parallelism: 4,
            labels: BTreeMap::new(),
            resumable: false,
            max_layers: DEFAULT_MAX_LAYERS,
            configs_beside_layers: false,
        }
    }
}

/// What an import stored.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    pub images: Vec<ImageRecord>,
    pub blobs_written: usize,
    pub blobs_present: usize,
    pub bytes_written: u64,
}

/// One JSON blob to store, with the GC labels naming its children.
pub(crate) struct JsonBlob {
    pub(crate) desc: Desc,
    /// None: a config read beside the layers, when they are ingested
    /// ([`ImportOptions::configs_beside_layers`]).
    pub(crate) bytes: Option<Vec<u8>>,
    pub(crate) labels: BTreeMap<String, String>,
}

/// What an import will write: built by planning from a source, then committed.
#[derive(Default)]
pub struct Plan {
    pub(crate) json: Vec<JsonBlob>,
    pub(crate) layers: Vec<Desc>,
    seen: HashSet<String>,
    /// Source paths of blobs not stored at `blobs/<alg>/<hex>` (docker-archive layers).
    pub(crate) paths: HashMap<String, String>,
    /// (image name, target descriptor)
    pub(crate) images: Vec<(String, Desc)>,
}

impl Plan {
    pub(crate) fn add_json(&mut self, desc: Desc, bytes: Vec<u8>, labels: BTreeMap<String, String>) {
        if self.seen.insert(desc.digest.to_string()) {
            self.json.push(JsonBlob { desc, bytes: Some(bytes), labels });
        }
    }

    /// A config to read when the layers are ingested, beside them.
    fn add_deferred_config(&mut self, desc: Desc) {
        if self.seen.insert(desc.digest.to_string()) {
            self.json.push(JsonBlob { desc, bytes: None, labels: BTreeMap::new() });
        }
    }

    pub(crate) fn add_layer(&mut self, desc: Desc) {
        if self.seen.insert(desc.digest.to_string()) {
            self.layers.push(desc);
        }
    }
}

/// Reads a JSON blob from the source and checks its size and digest.
pub(crate) fn read_verified(src: &dyn Source, desc: &Desc, what: &'static str, limit: u64) -> Result<Vec<u8>> {
    if desc.size > limit {
        return Err(ImageError::malformed(what, &desc.digest, format!("{} bytes is over the {limit}-byte limit", desc.size)));
    }
    let missing = || ImageError::MissingBlob { what, digest: desc.digest.to_string(), source_name: src.name().to_string() };
    let (reader, _) = src.open_blob(desc)?.ok_or_else(missing)?;
    let mut bytes = Vec::with_capacity(desc.size as usize);
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ImageError::io(format!("read {what} {} from {}", desc.digest, src.name())))?;
    if bytes.len() as u64 != desc.size {
        return Err(skiff_store::StoreError::SizeMismatch { digest: desc.digest.to_string(), expected: desc.size, actual: bytes.len() as u64 }.into());
    }
    let actual = skiff_store::Digest::of(&bytes);
    if actual != desc.digest {
        return Err(skiff_store::StoreError::DigestMismatch { expected: desc.digest.clone(), actual }.into());
    }
    Ok(bytes)
}

/// Plans one image named `name` whose top descriptor is `desc` (an index or a manifest).
pub fn plan_image(src: &dyn Source, desc: &Desc, name: String, opts: &ImportOptions) -> Result<Plan> {
    let mut plan = Plan::default();
    plan_tree(src, &mut plan, desc, &name, opts, 0)?;
    plan.images.push((name, desc.clone()));
    Ok(plan)
}

/// Refuses a manifest of image `image` with more layers than the options allow.
pub(crate) fn check_layer_count(image: &str, count: usize, opts: &ImportOptions) -> Result<()> {
    if count > opts.max_layers {
        return Err(ImageError::TooManyLayers { image: image.to_string(), count, limit: opts.max_layers });
    }
    Ok(())
}

/// Plans the tree below `desc` of image `name`: for an index, the selected platform's entry (or every entry).
fn plan_tree(src: &dyn Source, plan: &mut Plan, desc: &Desc, name: &str, opts: &ImportOptions, depth: usize) -> Result<()> {
    if depth > 4 {
        return Err(ImageError::malformed("index", &desc.digest, "indexes nested too deep"));
    }
    match desc.kind("manifest")? {
        Kind::Index => {
            let bytes = read_verified(src, desc, "index", MAX_MANIFEST_SIZE)?;
            let index = parse_index(&bytes, desc)?;
            let chosen: Vec<Desc> = if opts.all_platforms {
                index.manifests.clone()
            } else {
                let one = select(&index, &opts.platform).ok_or_else(|| ImageError::NoMatchingPlatform {
                    platform: opts.platform.to_string(),
                    digest: desc.digest.to_string(),
                    available: available(&index),
                })?;
                vec![one.clone()]
            };
            for child in &chosen {
                plan_tree(src, plan, child, name, opts, depth + 1)?;
            }
            let labels = index_labels(&index, |m| chosen.iter().any(|c| c.digest == m.digest));
            plan.add_json(desc.clone(), bytes, labels);
        }
        Kind::Manifest => {
            let bytes = read_verified(src, desc, "manifest", MAX_MANIFEST_SIZE)?;
            let manifest = parse_manifest(&bytes, desc)?;
            // Before the config or any layer is read.
            check_layer_count(&format!("{name} ({})", desc.digest), manifest.layers.len(), opts)?;
            if opts.configs_beside_layers {
                plan.add_deferred_config(manifest.config.clone());
            } else {
                let config = read_verified(src, &manifest.config, "config", MAX_CONFIG_SIZE)?;
                parse_config(&config, &manifest.config)?;
                plan.add_json(manifest.config.clone(), config, BTreeMap::new());
            }
            for l in &manifest.layers {
                plan.add_layer(l.clone());
            }
            plan.add_json(desc.clone(), bytes, manifest_labels(&manifest));
        }
        other => {
            return Err(ImageError::malformed(
                "index.json entry",
                &desc.digest,
                format!("an image must be an index or a manifest, not a {other:?}"),
            ))
        }
    }
    Ok(())
}

fn image_name(entry: &Desc, opts: &ImportOptions, count: usize) -> Result<String> {
    if let Some(n) = &opts.name {
        if count != 1 {
            return Err(ImageError::InvalidArgument(format!(
                "--name names one image but the source holds {count}; use --base-name instead"
            )));
        }
        return normalize(n);
    }
    if let Some(n) = entry.annotations.get(ANNOTATION_IMAGE_NAME) {
        return normalize(n);
    }
    match entry.annotations.get(ANNOTATION_REF_NAME) {
        Some(r) if r.contains('/') => normalize(r),
        Some(tag) => match &opts.base_name {
            Some(base) => normalize(&format!("{base}:{tag}")),
            None => Err(ImageError::InvalidArgument(format!(
                "image {} is tagged only {tag:?}; pass --base-name REPO or --name REF",
                entry.digest
            ))),
        },
        None => Err(ImageError::InvalidArgument(format!("image {} has no name; pass --name REF", entry.digest))),
    }
}

/// Plans an OCI layout: `oci-layout` + `index.json`, one image per `index.json` entry.
fn plan_oci(src: &dyn Source, opts: &ImportOptions) -> Result<Plan> {
    if let Some(layout) = src.read_small("oci-layout", 64 << 10)? {
        let v: serde_json::Value = serde_json::from_slice(&layout)
            .map_err(|e| ImageError::InvalidArchive { path: src.name().into(), reason: format!("oci-layout: {e}") })?;
        let version = v.get("imageLayoutVersion").and_then(|s| s.as_str()).unwrap_or("");
        if version != OCI_LAYOUT_VERSION {
            return Err(ImageError::InvalidArchive {
                path: src.name().into(),
                reason: format!("unsupported imageLayoutVersion {version:?} (want {OCI_LAYOUT_VERSION})"),
            });
        }
    }
    let index_bytes = src.read_small("index.json", MAX_MANIFEST_SIZE)?.ok_or_else(|| ImageError::InvalidArchive {
        path: src.name().into(),
        reason: "no index.json (not an OCI layout)".into(),
    })?;
    let top = Desc {
        media_type: crate::media::OCI_INDEX.into(),
        digest: skiff_store::Digest::of(&index_bytes),
        size: index_bytes.len() as u64,
        annotations: BTreeMap::new(),
        platform: None,
    };
    let index = parse_index(&index_bytes, &top)?;
    if index.manifests.is_empty() {
        return Err(ImageError::InvalidArchive { path: src.name().into(), reason: "index.json lists no images".into() });
    }
    let mut plan = Plan::default();
    for entry in &index.manifests {
        let name = image_name(entry, opts, index.manifests.len())?;
        plan_tree(src, &mut plan, entry, &name, opts, 0)?;
        // The naming annotations say how the layout names the image; the record's name says it
        // from here on (export writes them back), so they are not kept as image annotations.
        let mut target = entry.clone();
        target.annotations.remove(ANNOTATION_IMAGE_NAME);
        target.annotations.remove(ANNOTATION_REF_NAME);
        // Two entries that name different images the same (two repositories' `v1` under one
        // --base-name): storing both would leave whichever came last, silently.
        if let Some((_, other)) = plan.images.iter().find(|(n, t)| *n == name && t.digest != target.digest) {
            return Err(ImageError::InvalidArchive {
                path: src.name().into(),
                reason: format!(
                    "two images are both named {name} ({} and {}); their index.json names (io.containerd.image.name or a full org.opencontainers.image.ref.name) must tell them apart",
                    other.digest, target.digest
                ),
            });
        }
        if plan.images.iter().any(|(n, _)| *n == name) {
            continue;
        }
        plan.images.push((name, target));
    }
    Ok(plan)
}

/// Imports the images at `path` (directory or archive) into `store`.
pub fn import(store: &Store, path: &Path, opts: &ImportOptions, progress: &dyn Progress) -> Result<ImportReport> {
    let src = open_source(path)?;
    let plan = if src.open("index.json")?.is_some() { plan_oci(src.as_ref(), opts)? } else { docker::plan(src.as_ref(), opts)? };
    commit_plan(store, src.as_ref(), plan, opts, progress)
}

/// Ingests a plan under a lease and writes its image records, releasing the lease with them.
pub fn commit_plan(
    store: &Store,
    src: &dyn Source,
    plan: Plan,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let lease = if opts.resumable {
        let day = std::time::Duration::from_secs(24 * 3600);
        store.leases().create(false, Some(day), BTreeMap::from([("io.skiff.operation".into(), "pull".into())]))?
    } else {
        store.leases().create(true, None, BTreeMap::from([("io.skiff.operation".into(), "import".into())]))?
    };
    match crate::ingest::ingest_plan(store, src, &plan, &lease.id, opts, progress) {
        Ok(mut report) => {
            let records = match plan.images.iter().map(|(name, target)| image_record(store, name, target, opts)).collect::<Result<Vec<_>>>() {
                Ok(records) => records,
                Err(e) => {
                    store.release_lease(&lease.id)?;
                    return Err(e);
                }
            };
            report.images = store.images().put_all(records, Some(&lease.id))?;
            Ok(report)
        }
        Err(e) if opts.resumable => {
            tracing::info!(lease = %lease.id, "keeping the blobs stored so far for a retry (lease expires in 24h)");
            Err(e)
        }
        Err(e) => {
            if let Err(cleanup) = store.release_lease(&lease.id) {
                tracing::error!(lease = %lease.id, error = %cleanup, "could not release import lease; recovery will on restart");
            }
            Err(e)
        }
    }
}
