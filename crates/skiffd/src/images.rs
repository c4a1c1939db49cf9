//! The Images service.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use skiff_api::v1::{self, images_server::Images};
use skiff_image::annotate::{annotate, parse_remove, parse_set, Target};
use skiff_image::export::{export, ExportFormat, ExportOptions};
use skiff_image::import::{import, ImportOptions};
use skiff_image::{inspect::inspect, normalize, Platform};
use skiff_engine::containers::Records;
use skiff_engine::images::{check_unused, content_size, find, lookup, platform_or, platform_to_show};
use skiff_engine::unpack::collect_after_removals;
use skiff_store::Store;
use tokio::sync::mpsc;
use tokio::io::AsyncWriteExt;
use tokio_stream::{wrappers::ReceiverStream, Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::blocking::{blocking, ChannelProgress};
use crate::convert;
use crate::status::ApiError;

pub struct ImagesService {
    pub store: Arc<Store>,
    pub annotation_policy: skiff_runtime::ImageAnnotationPolicy,
    pub platform: Platform,
    pub import_parallelism: usize,
    /// Most layers an imported or pulled image may have.
    pub max_layers: usize,
    pub registry: crate::config::RegistryConfig,
    pub unpacker: Arc<skiff_snapshot::Unpacker>,
    /// The containers' records, to refuse removing an image they were made from.
    pub containers: Records,
    /// Removed containers' leftovers: swept before an image removal collects snapshots.
    pub removals: Arc<skiff_engine::containers::sweeper::Sweeper>,
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn absolute(path: &str) -> Result<PathBuf, ApiError> {
    crate::validate::text("path", path)?;
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(ApiError::BadRequest(format!("path {path:?} must be absolute (the daemon does not share your working directory)")));
    }
    Ok(p)
}

/// What an import reads must be a regular file (an archive) or a directory (a layout): a FIFO,
/// socket or device would block the import, and shutdown with it, on a read that never ends.
fn importable(path: &std::path::Path) -> Result<(), ApiError> {
    // A missing path is the import's own error to give (it names the path).
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
    if meta.is_file() || meta.is_dir() {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!("{} is neither a regular file nor a directory: an import reads an archive or an OCI layout", path.display())))
}

static SPOOL_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Where streamed imports are spooled; emptied when skiffd starts.
pub fn spool_dir(root: &std::path::Path) -> PathBuf {
    root.join("import-spool")
}

impl ImagesService {
    /// Imports the archive or layout at `path` on the blocking pool, streaming progress and the
    /// result; `remove_after` deletes `path` when done (a spooled stream).
    fn start_import(
        &self,
        req: v1::ImportImageRequest,
        path: PathBuf,
        remove_after: bool,
    ) -> Result<mpsc::Receiver<Result<v1::ImportImageEvent, Status>>, ApiError> {
        let opts = ImportOptions {
            platform: platform_or(&req.platform, &self.platform)?,
            all_platforms: req.all_platforms,
            name: Some(req.name).filter(|s| !s.is_empty()),
            base_name: Some(req.base_name).filter(|s| !s.is_empty()),
            parallelism: self.import_parallelism,
            max_layers: self.max_layers,
            ..Default::default()
        };
        let (store, unpacker, default) = (self.store.clone(), self.unpacker.clone(), self.platform.clone());
        let no_unpack = req.no_unpack;
        let (tx, rx) = mpsc::channel(64);
        tokio::task::spawn_blocking(move || {
            let progress = ChannelProgress::new(tx.clone(), |total, done| v1::ImportImageEvent {
                event: Some(v1::import_image_event::Event::Progress(v1::Progress { total, done })),
            });
            tracing::info!(path = %path.display(), "import");
            let result = (|| {
                let r = import(&store, &path, &opts, &progress)?;
                tracing::info!(images = r.images.len(), blobs = r.blobs_written, bytes = r.bytes_written, "imported");
                crate::stored::finish(&store, &unpacker, &r, no_unpack, &default)
            })();
            if remove_after {
                let _ = std::fs::remove_file(&path);
            }
            let msg = result
                .map(|r| v1::ImportImageEvent { event: Some(v1::import_image_event::Event::Result(r)) })
                .map_err(Status::from);
            if let Err(e) = &msg {
                tracing::warn!(path = %path.display(), error = %e.message(), "import failed");
            }
            let _ = tx.blocking_send(msg);
        });
        Ok(rx)
    }
}

#[tonic::async_trait]
impl Images for ImagesService {
    type ImportStream = EventStream<v1::ImportImageEvent>;
    type ImportStreamStream = EventStream<v1::ImportImageEvent>;
    type ExportStream = EventStream<v1::ExportImageEvent>;
    type PullStream = EventStream<v1::PullImageEvent>;
    type PushStream = EventStream<v1::PushImageEvent>;

    async fn pull(&self, req: Request<v1::PullImageRequest>) -> Result<Response<Self::PullStream>, Status> {
        let rx = crate::registry::start_pull(self.store.clone(), self.unpacker.clone(), &self.registry, &self.platform, self.max_layers, req.into_inner())?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn push(&self, req: Request<v1::PushImageRequest>) -> Result<Response<Self::PushStream>, Status> {
        let rx = crate::registry::start_push(self.store.clone(), &self.registry, req.into_inner())?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list(&self, _: Request<v1::ListImagesRequest>) -> Result<Response<v1::ListImagesResponse>, Status> {
        let store = self.store.clone();
        let default = self.platform.clone();
        let images = blocking(move || {
            let records = store.images().list()?;
            Ok(records
                .iter()
                .map(|r| v1::Image {
                    // A listing shows what it can: an image it cannot resolve has no size.
                    size: content_size(&store, r, &default).unwrap_or_else(|e| {
                        tracing::debug!(image = %r.name, error = %e, "no size for the listing");
                        0
                    }),
                    ..convert::image(r)
                })
                .collect())
        })
        .await?;
        Ok(Response::new(v1::ListImagesResponse { images }))
    }

    async fn inspect(&self, req: Request<v1::InspectImageRequest>) -> Result<Response<v1::InspectImageResponse>, Status> {
        let (store, default, policy) = (self.store.clone(), self.platform.clone(), self.annotation_policy.clone());
        let req = req.into_inner();
        let json = blocking(move || {
            let record = lookup(&store, &req.name)?;
            let view = inspect(&store, &record, &platform_to_show(&record, &req.platform, &default)?)?;
            let mut doc = serde_json::to_value(&view).map_err(|source| ApiError::Encode { what: "the image document", source })?;
            // What a container's config.json would carry from this image under the configured policy.
            let effective = skiff_runtime::merge(&view.levels, &Default::default(), &Default::default(), &policy)?;
            let (kept, dropped) = crate::convert::annotation_docs(&effective);
            doc["RuntimeAnnotations"] = kept;
            doc["DroppedAnnotations"] = dropped;
            crate::status::json_bytes("the image document", &doc)
        })
        .await?;
        Ok(Response::new(v1::InspectImageResponse { json }))
    }

    async fn import(&self, req: Request<v1::ImportImageRequest>) -> Result<Response<Self::ImportStream>, Status> {
        let req = req.into_inner();
        let path = absolute(&req.path)?;
        importable(&path)?;
        let rx = self.start_import(req, path, false)?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn import_stream(&self, req: Request<Streaming<v1::ImportChunk>>) -> Result<Response<Self::ImportStreamStream>, Status> {
        let mut stream = req.into_inner();
        let first = stream.next().await.ok_or_else(|| ApiError::BadRequest("empty import stream".into()))??;
        let request = first.request.ok_or_else(|| ApiError::BadRequest("the first import chunk must carry the request".into()))?;
        // The importer reads archives in place, so the bytes are spooled to a file under the root.
        let n = SPOOL_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let spool = spool_dir(self.store.root()).join(format!("{}-{n}.tar", std::process::id()));
        let written = async {
            skiff_store::private_dir(&spool_dir(self.store.root()), skiff_store::PRIVATE_MODE).map_err(std::io::Error::other)?;
            let mut file = tokio::fs::File::create(&spool).await?;
            file.write_all(&first.data).await?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                file.write_all(&chunk.data).await?;
            }
            file.flush().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&spool).await;
            return Err(Status::internal(format!("spool import stream: {e}")));
        }
        let rx = self.start_import(request, spool, true)?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn export(&self, req: Request<v1::ExportImageRequest>) -> Result<Response<Self::ExportStream>, Status> {
        let req = req.into_inner();
        let format = match req.format.as_str() {
            "" | "oci-archive" => ExportFormat::Archive,
            "layout" => ExportFormat::Layout,
            other => return Err(ApiError::BadRequest(format!("unknown export format {other:?} (want layout or oci-archive)")).into()),
        };
        let opts = ExportOptions { platform: if req.platform.is_empty() { None } else { Some(platform_or(&req.platform, &self.platform).map_err(ApiError::from)?) } };
        let path = absolute(&req.path)?;
        let store = self.store.clone();
        let records = {
            let store = store.clone();
            let names = req.names.clone();
            blocking(move || Ok(names.iter().map(|n| lookup(&store, n)).collect::<Result<Vec<_>, _>>()?)).await?
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::task::spawn_blocking(move || {
            let progress = ChannelProgress::new(tx.clone(), |total, done| v1::ExportImageEvent {
                event: Some(v1::export_image_event::Event::Progress(v1::Progress { total, done })),
            });
            let msg = export(&store, &records, &path, format, &opts, &progress)
                .map(|blobs| v1::ExportImageEvent { event: Some(v1::export_image_event::Event::Result(v1::ExportResult { blobs })) })
                .map_err(|e| Status::from(ApiError::from(e)));
            let _ = tx.blocking_send(msg);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn annotate(&self, req: Request<v1::AnnotateImageRequest>) -> Result<Response<v1::AnnotateImageResponse>, Status> {
        let req = req.into_inner();
        let (store, default) = (self.store.clone(), self.platform.clone());
        let image = blocking(move || {
            let target: Target = if req.target.is_empty() { Target::Manifest } else { req.target.parse()? };
            let only = if req.platform.is_empty() { None } else { Some(req.platform.parse::<Platform>()?) };
            let mut edits = Vec::new();
            for s in &req.set {
                edits.push(parse_set(s, target, only.as_ref())?);
            }
            for k in &req.remove {
                edits.push(parse_remove(k, target, only.as_ref())?);
            }
            let src = lookup(&store, &req.source)?;
            let platform = platform_to_show(&src, "", &default)?;
            tracing::info!(source = %src.name, destination = %req.destination, edits = edits.len(), "annotate");
            Ok(annotate(&store, &src, &req.destination, &edits, &platform)?)
        })
        .await?;
        Ok(Response::new(v1::AnnotateImageResponse { image: Some(convert::image(&image)) }))
    }

    async fn tag(&self, req: Request<v1::TagImageRequest>) -> Result<Response<v1::TagImageResponse>, Status> {
        let req = req.into_inner();
        let store = self.store.clone();
        let image = blocking(move || {
            let mut record = lookup(&store, &req.source)?;
            record.name = normalize(&req.destination)?;
            Ok(store.images().put(record, None)?)
        })
        .await?;
        Ok(Response::new(v1::TagImageResponse { image: Some(convert::image(&image)) }))
    }

    async fn delete(&self, req: Request<v1::DeleteImageRequest>) -> Result<Response<v1::DeleteImageResponse>, Status> {
        let req = req.into_inner();
        let (store, unpacker, default, containers, removals) = (self.store.clone(), self.unpacker.clone(), self.platform.clone(), self.containers.clone(), self.removals.clone());
        let image = blocking(move || {
            let records = match find(&store, &req.name)? {
                found if found.is_empty() => vec![lookup(&store, &req.name)?],
                found => found,
            };
            if records.len() > 1 && !req.force {
                let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
                return Err(ApiError::BadRequest(format!(
                    "{} names {} images ({}): remove them by name, or force",
                    req.name,
                    names.len(),
                    names.join(", ")
                )));
            }
            if !req.force {
                check_unused(&store, &containers, &records[0])?;
            }
            let mut removed = Vec::new();
            for record in &records {
                removed.push(store.images().delete(&record.name)?);
            }
            // Like containerd's GC after an image delete: free what only this image used.
            let (content, snapshots) = collect_after_removals(&removals, &store, &unpacker, &default)?;
            tracing::info!(images = removed.len(), blobs = content.removed.len(), snapshots = snapshots.len(), "image removed");
            Ok(removed.swap_remove(0))
        })
        .await?;
        Ok(Response::new(v1::DeleteImageResponse { image: Some(convert::image(&image)) }))
    }
}
