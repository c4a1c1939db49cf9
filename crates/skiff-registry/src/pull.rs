//! Pull: resolve a reference, then run the import pipeline with the registry as its source —
//! platform selection, digest and media-type checks, concurrent layer fetches streamed into the
//! store, blobs already stored skipped, one transaction for the image record.

use std::collections::BTreeMap;

use skiff_image::import::{commit_plan, plan_image, ImportOptions, ImportReport, DEFAULT_MAX_LAYERS};
use skiff_image::source::StoreFirst;
use skiff_image::{Platform, Progress, Reference};
use skiff_store::Store;

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
    let target = client.resolve(&reference)?;
    tracing::info!(reference = %reference, digest = %target.digest, media_type = %target.media_type, "resolved");
    let registry = RegistrySource::new(&client);
    let source = StoreFirst { store: store.content(), inner: &registry };
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
