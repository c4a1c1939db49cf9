//! Pull: resolve a reference, then run the import pipeline with the registry as its source —
//! platform selection, digest and media-type checks, concurrent layer fetches streamed into the
//! store, blobs already stored skipped, one transaction for the image record.

use std::collections::BTreeMap;
use std::io::Read;

use skiff_image::import::{commit_plan, plan_image, ImportOptions, ImportReport, DEFAULT_MAX_LAYERS};
use skiff_image::model::Desc;
use skiff_image::source::{Source, StoreFirst};
use skiff_image::{Platform, Progress, Reference};
use skiff_store::{ContentStore, Digest, Store};

use crate::client::{Access, Client, ClientOptions};
use crate::source::RegistrySource;

/// Label naming the repository a blob was pulled from, per host; push uses it to mount across
/// repositories instead of uploading.
pub const LABEL_DISTRIBUTION_SOURCE: &str = "io.skiff.distribution.source.";

#[derive(Clone, Debug)]
pub struct PullOptions {
    pub platform: Platform,
    pub all_platforms: bool,
    /// Layers fetched at once.
    pub parallelism: usize,
    /// Most layers a manifest may have: a manifest with more is refused before any blob is fetched.
    pub max_layers: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions { platform: Platform::host(), all_platforms: false, parallelism: 4, max_layers: DEFAULT_MAX_LAYERS }
    }
}

/// Pulls `reference` into `store`. A failed pull keeps the blobs it completed (under a lease that
/// expires in a day), so pulling again resumes; partial blobs are never kept.
pub fn pull(
    store: &Store,
    reference: &str,
    client_opts: &ClientOptions,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> skiff_image::Result<ImportReport> {
    let reference = reference.parse::<Reference>()?.with_default_tag();
    let client = Client::new(&reference, client_opts, Access::Pull)?;
    let (target, fetched) = if may_be_stored(store, &reference) {
        (client.resolve(&reference)?, None)
    } else {
        let (desc, bytes) = client.fetch_manifest(&reference)?;
        (desc, Some(bytes))
    };
    tracing::info!(reference = %reference, digest = %target.digest, media_type = %target.media_type, fetched = fetched.is_some(), "resolved");
    let registry = RegistrySource::new(&client);
    let stored_first = StoreFirst { store: store.content(), inner: &registry };
    let source = Fetched { digest: target.digest.clone(), bytes: fetched, inner: &stored_first };
    let import = ImportOptions {
        platform: opts.platform.clone(),
        all_platforms: opts.all_platforms,
        name: None,
        base_name: None,
        parallelism: opts.parallelism,
        labels: BTreeMap::from([(format!("{LABEL_DISTRIBUTION_SOURCE}{}", reference.domain), reference.repository.clone())]),
        resumable: true,
        max_layers: opts.max_layers,
        configs_beside_layers: true,
    };
    let plan = plan_image(&source, &target, reference.to_string(), &import)?;
    commit_plan(store, &source, plan, &import, progress)
}

/// Whether the manifest `reference` names may be in the store already: an image of that name is
/// (a re-pull, as a kubelet with `imagePullPolicy: Always` makes), or the digest asked for is.
/// Then a HEAD finds out without fetching the manifest (and Docker Hub does not count a HEAD as a
/// pull). Otherwise the manifest is needed anyway, and one GET resolves and fetches it at once.
fn may_be_stored(store: &Store, reference: &Reference) -> bool {
    match &reference.digest {
        Some(digest) => store.content().info(digest).is_ok(),
        None => store.images().get(&reference.to_string()).is_ok(),
    }
}

/// The manifest (or index) fetched while resolving, served to the pipeline without a second
/// request (it checks the bytes against the digest as it does any blob's); every other blob comes
/// from `inner`.
struct Fetched<'a> {
    digest: Digest,
    bytes: Option<Vec<u8>>,
    inner: &'a dyn Source,
}

impl Source for Fetched<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn open(&self, path: &str) -> skiff_image::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        self.inner.open(path)
    }

    fn open_blob(&self, desc: &Desc) -> skiff_image::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        match &self.bytes {
            Some(bytes) if desc.digest == self.digest => Ok(Some((Box::new(bytes.as_slice()), bytes.len() as u64))),
            _ => self.inner.open_blob(desc),
        }
    }
}
