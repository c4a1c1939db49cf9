//! The CRI `ImageService`: ListImages, ImageStatus, PullImage, RemoveImage, ImageFsInfo, over the
//! same store, registry client and unpacker as Skiff's own Images API.

mod fsinfo;
mod lookup;
pub mod model;
mod pull;

use std::path::PathBuf;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use skiff_image::Platform;
use skiff_registry::{ClientOptions, PullOptions};
use skiff_snapshot::Unpacker;
use skiff_store::Store;
use tonic::{Request, Response, Status};

use crate::blocking::blocking;
use crate::error::CriError;
use lookup::{check_reference, find_image, find_in, Grouped};
use model::{cri_image, FactsCache};

/// What the image service is made of; skiffd builds it from its config.
pub struct ImageParts {
    pub store: Arc<Store>,
    pub unpacker: Arc<Unpacker>,
    /// The platform images are pulled and run for.
    pub platform: Platform,
    /// skiffd's registry client options (hosts.toml directory, configured credentials, retries).
    pub registry: ClientOptions,
    /// skiffd's pull options (parallelism, the layer limit); the platform is `platform`.
    pub pull: PullOptions,
    /// The runtime handlers skiffd knows: an image spec naming another one is refused.
    pub handlers: Vec<String>,
    /// Removed containers' leftovers: swept before a RemoveImage collects snapshots.
    pub removals: Arc<skiff_engine::containers::sweeper::Sweeper>,
    /// skiffd's root: the image filesystem is its snapshot directory.
    pub root: PathBuf,
}

#[derive(Clone)]
pub struct CriImages {
    parts: Arc<ImageParts>,
    facts: Arc<FactsCache>,
    /// Pulls of one reference are made one after the other (the second finds the content stored
    /// and only resolves the tag again): two pods starting at once never fetch an image twice.
    pulls: Arc<crate::locks::KeyedLocks>,
    usage: Arc<fsinfo::UsageCache>,
}

impl CriImages {
    pub fn new(parts: ImageParts) -> CriImages {
        CriImages { parts: Arc::new(parts), facts: Arc::default(), pulls: Arc::default(), usage: Arc::default() }
    }

    /// The stored image a container's ImageSpec names: (its id, the name of one of its records);
    /// None when it is not stored. Blocking.
    pub fn resolve(&self, reference: &str) -> Result<Option<(String, String)>, CriError> {
        let found = find_image(&self.parts.store, &self.facts, &self.parts.platform, reference)?;
        Ok(found.and_then(|(facts, records)| records.first().map(|r| (facts.id.clone(), r.name.clone()))))
    }

    /// The snapshotter images are unpacked by: containers' writable layers are its active snapshots.
    pub(crate) fn snapshotter(&self) -> &Arc<dyn skiff_snapshot::Snapshotter> {
        self.parts.unpacker.snapshotter()
    }

    fn check_handler(&self, spec: &cri::ImageSpec) -> Result<(), CriError> {
        let handler = &spec.runtime_handler;
        if handler.is_empty() || self.parts.handlers.iter().any(|h| h == handler) {
            return Ok(());
        }
        Err(CriError::InvalidArgument(format!("image.runtime_handler {handler:?} is not a configured runtime handler ({})", self.parts.handlers.join(", "))))
    }
}

fn spec_image(spec: Option<&cri::ImageSpec>) -> Result<&cri::ImageSpec, CriError> {
    spec.ok_or_else(|| CriError::InvalidArgument("image is missing: give an ImageSpec naming the image".into()))
}

#[tonic::async_trait]
impl ImageService for CriImages {
    async fn list_images(&self, req: Request<cri::ListImagesRequest>) -> Result<Response<cri::ListImagesResponse>, Status> {
        let wanted = req.into_inner().filter.and_then(|f| f.image).map(|i| i.image).filter(|i| !i.is_empty());
        let listed = move |store: &skiff_store::Store, all: Grouped| -> Result<Vec<cri::Image>, CriError> {
            let found = match &wanted {
                Some(reference) => {
                    check_reference(reference)?;
                    find_in(store, &all, reference)?.into_iter().collect()
                }
                None => all,
            };
            Ok(found.iter().map(|(f, records)| cri_image(f, records)).collect())
        };
        let images = match self.facts.all_known(&self.parts.store, &self.parts.platform)? {
            Some(all) => listed(&self.parts.store, all)?,
            None => {
                let (parts, facts) = (self.parts.clone(), self.facts.clone());
                blocking("listing images", move || listed(&parts.store, facts.all(&parts.store, &parts.platform)?)).await?
            }
        };
        Ok(Response::new(cri::ListImagesResponse { images }))
    }

    async fn image_status(&self, req: Request<cri::ImageStatusRequest>) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let reference = spec_image(req.image.as_ref())?.image.clone();
        check_reference(&reference)?;
        // The kubelet asks before every container start: when nothing must be read from content
        // (the facts are known, no verbose manifest and config), it is answered here.
        if !req.verbose {
            if let Some(all) = self.facts.all_known(&self.parts.store, &self.parts.platform)? {
                let found = find_in(&self.parts.store, &all, &reference)?;
                return Ok(Response::new(cri::ImageStatusResponse { image: found.map(|(f, records)| cri_image(&f, &records)), info: Default::default() }));
            }
        }
        let (parts, facts) = (self.parts.clone(), self.facts.clone());
        let answer = blocking("reading an image's status", move || {
            // The reference was checked above.
            let Some((f, records)) = find_in(&parts.store, &facts.all(&parts.store, &parts.platform)?, &reference)? else {
                // Not an error: the kubelet asks to learn whether it must pull.
                return Ok(cri::ImageStatusResponse::default());
            };
            let mut info = std::collections::HashMap::new();
            if req.verbose {
                info.insert("info".to_string(), verbose_info(&parts, &records[0])?);
            }
            Ok(cri::ImageStatusResponse { image: Some(cri_image(&f, &records)), info })
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn pull_image(&self, req: Request<cri::PullImageRequest>) -> Result<Response<cri::PullImageResponse>, Status> {
        let req = req.into_inner();
        let spec = spec_image(req.image.as_ref())?;
        self.check_handler(spec)?;
        let reference = spec.image.clone();
        if reference.is_empty() {
            return Err(CriError::InvalidArgument("image.image is empty: name the image to pull".into()).into());
        }
        crate::error::text("image.image", &reference)?;
        let normalized = skiff_image::normalize(&reference).map_err(CriError::from)?;
        let client = pull::client_options(&self.parts.registry, req.auth.as_ref())?;
        let _one_at_a_time = self.pulls.lock(&normalized).await;
        let (parts, facts) = (self.parts.clone(), self.facts.clone());
        // On the blocking pool, a pull goes on when the kubelet hangs up: what it stored stays
        // consistent either way (its lease releases or keeps the blobs as a whole).
        let image_ref = blocking("pulling an image", move || {
            let opts = PullOptions { platform: parts.platform.clone(), ..parts.pull.clone() };
            let started = std::time::Instant::now();
            let pulled = skiff_engine::pull::pull_image(&parts.store, &parts.unpacker, &normalized, &client, &opts, false, &skiff_image::NoProgress)?;
            let record = pulled.report.images.first().ok_or_else(|| CriError::InvalidArgument(format!("pulling {normalized} stored no image")))?;
            let id = facts.facts(&parts.store, record, &parts.platform)?.id.clone();
            tracing::info!(reference = %normalized, image = %id, elapsed = ?started.elapsed(), "cri pull");
            Ok(id)
        })
        .await?;
        Ok(Response::new(cri::PullImageResponse { image_ref }))
    }

    async fn remove_image(&self, req: Request<cri::RemoveImageRequest>) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let reference = spec_image(req.get_ref().image.as_ref())?.image.clone();
        let (parts, facts) = (self.parts.clone(), self.facts.clone());
        blocking("removing an image", move || {
            // Missing is not an error: RemoveImage is repeated by the kubelet's image GC.
            let Some((f, records)) = find_image(&parts.store, &facts, &parts.platform, &reference)? else {
                return Ok(());
            };
            for record in &records {
                match parts.store.images().delete(&record.name) {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let (content, snapshots) = skiff_engine::unpack::collect_after_removals(&parts.removals, &parts.store, &parts.unpacker, &parts.platform)?;
            tracing::info!(image = %f.id, names = records.len(), blobs = content.removed.len(), snapshots = snapshots.len(), "cri image removed");
            Ok(())
        })
        .await?;
        Ok(Response::new(cri::RemoveImageResponse {}))
    }

    async fn image_fs_info(&self, _req: Request<cri::ImageFsInfoRequest>) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        let (parts, usage) = (self.parts.clone(), self.usage.clone());
        let fs = blocking("measuring the image filesystem", move || usage.measure(&parts.root, parts.unpacker.snapshotter().as_ref())).await?;
        Ok(Response::new(cri::ImageFsInfoResponse { image_filesystems: vec![fs], container_filesystems: Vec::new() }))
    }
}

/// ImageStatus's verbose `info`: the image as `skiff images inspect` shows it — manifest, config,
/// the image config document and the annotations of every level with their source.
fn verbose_info(parts: &ImageParts, record: &skiff_store::ImageRecord) -> Result<String, CriError> {
    let platform = skiff_engine::images::platform_to_show(record, "", &parts.platform)?;
    let view = skiff_image::inspect::inspect(&parts.store, record, &platform)?;
    serde_json::to_string(&view).map_err(|source| CriError::Encode { what: "the image's info", source })
}
