//! Pull and Push: registry work on the blocking pool, progress streamed back as it happens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use skiff_api::v1::{self, pull_image_event::Event as PullEvent, push_image_event::Event as PushEvent};
use skiff_image::{Platform, Progress};
use skiff_registry::push::push_source;
use skiff_registry::{push, AuthConfig, ClientOptions, Credentials, Hosts, PullOptions};
use skiff_store::Store;
use tokio::sync::mpsc;
use tonic::Status;

use crate::blocking::ChannelProgress;
use crate::config::RegistryConfig;
use skiff_engine::images::{lookup, platform_or};
use crate::status::ApiError;

/// Client options from skiffd's config and the request's overrides.
pub fn client_options(cfg: &RegistryConfig, req: Option<&v1::RegistryOptions>) -> Result<ClientOptions, ApiError> {
    let mut auth = AuthConfig::default();
    for (host, a) in &cfg.auths {
        auth.insert(host, Credentials { username: a.username.clone(), password: a.password.clone() });
    }
    let docker = if cfg.docker_config.is_empty() {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")));
        dir.map(|d| d.join("config.json")).filter(|p| p.is_file())
    } else {
        Some(std::path::PathBuf::from(&cfg.docker_config))
    };
    if let Some(path) = docker {
        auth.load_docker_config(&path)?;
    }
    let mut opts = ClientOptions::new(Hosts { config_path: Some(cfg.config_path.clone()) }, auth);
    opts.retries = cfg.retries;
    if let Some(r) = req {
        opts.plain_http = r.plain_http;
        if !r.username.is_empty() {
            opts.credentials = Some(Credentials { username: r.username.clone(), password: r.password.clone() });
        }
    }
    Ok(opts)
}

/// Pull progress: overall bytes, and per blob at most every MiB.
struct PullProgress<F: Fn(u64, u64) -> v1::PullImageEvent> {
    overall: ChannelProgress<v1::PullImageEvent, F>,
    tx: mpsc::Sender<Result<v1::PullImageEvent, Status>>,
    last: Mutex<HashMap<String, u64>>,
}

impl<F: Fn(u64, u64) -> v1::PullImageEvent + Sync> Progress for PullProgress<F> {
    fn total(&self, bytes: u64) {
        self.overall.total(bytes)
    }
    fn advance(&self, bytes: u64) {
        self.overall.advance(bytes)
    }
    fn blob(&self, digest: &str, size: u64, skipped: bool) {
        let blob = v1::BlobProgress { digest: digest.to_string(), size, done: size, skipped };
        let _ = self.tx.try_send(Ok(v1::PullImageEvent { event: Some(PullEvent::Blob(blob)) }));
    }
    fn blob_progress(&self, digest: &str, done: u64, size: u64) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let prev = last.entry(digest.to_string()).or_insert(0);
        if done < *prev + (1 << 20) && done != size {
            return;
        }
        *prev = done;
        let blob = v1::BlobProgress { digest: digest.to_string(), size, done, skipped: false };
        let _ = self.tx.try_send(Ok(v1::PullImageEvent { event: Some(PullEvent::Blob(blob)) }));
    }
}

pub fn start_pull(
    store: Arc<Store>,
    unpacker: Arc<skiff_snapshot::Unpacker>,
    cfg: &RegistryConfig,
    default_platform: &Platform,
    max_layers: usize,
    req: v1::PullImageRequest,
) -> Result<mpsc::Receiver<Result<v1::PullImageEvent, Status>>, ApiError> {
    let client = client_options(cfg, req.registry.as_ref())?;
    let opts = PullOptions {
        platform: platform_or(&req.platform, default_platform)?,
        all_platforms: req.all_platforms,
        parallelism: cfg.max_concurrent_downloads,
        max_layers,
    };
    let (tx, rx) = mpsc::channel(256);
    tokio::task::spawn_blocking(move || {
        let progress = PullProgress {
            overall: ChannelProgress::new(tx.clone(), |total, done| v1::PullImageEvent {
                event: Some(PullEvent::Progress(v1::Progress { total, done })),
            }),
            tx: tx.clone(),
            last: Mutex::new(HashMap::new()),
        };
        tracing::info!(reference = %req.reference, "pull");
        let msg = (|| {
            let pulled = skiff_engine::pull::pull_image(&store, &unpacker, &req.reference, &client, &opts, req.no_unpack, &progress)?;
            let result = crate::stored::result(&pulled.report, pulled.layers_unpacked, pulled.layers_present);
            Ok::<_, ApiError>(v1::PullImageEvent { event: Some(PullEvent::Result(result)) })
        })()
        .map_err(Status::from);
        if let Err(e) = &msg {
            tracing::warn!(reference = %req.reference, error = %e.message(), "pull failed");
        }
        let _ = tx.blocking_send(msg);
    });
    Ok(rx)
}

pub fn start_push(
    store: Arc<Store>,
    cfg: &RegistryConfig,
    req: v1::PushImageRequest,
) -> Result<mpsc::Receiver<Result<v1::PushImageEvent, Status>>, ApiError> {
    let client = client_options(cfg, req.registry.as_ref())?;
    let platform = if req.platform.is_empty() { None } else { Some(req.platform.parse::<Platform>()?) };
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        let progress = ChannelProgress::new(tx.clone(), |total, done| v1::PushImageEvent {
            event: Some(PushEvent::Progress(v1::Progress { total, done })),
        });
        let result = (|| {
            // `REPO@sha256:…` names stored content by digest: an image's target or one of its platform manifests.
            let record = match push_source(&store, &req.name)? {
                Some(r) => r,
                None => lookup(&store, &req.name)?,
            };
            let dest = if req.destination.is_empty() { record.name.clone() } else { req.destination.clone() };
            tracing::info!(image = %record.name, destination = %dest, "push");
            Ok::<_, ApiError>(push(&store, &record, &dest, &client, platform, &progress)?)
        })();
        let msg = result
            .map(|r| v1::PushImageEvent {
                event: Some(PushEvent::Result(v1::PushResult {
                    uploaded: r.uploaded as u32,
                    mounted: r.mounted as u32,
                    present: r.present as u32,
                    manifests: r.manifests as u32,
                    bytes_uploaded: r.bytes_uploaded,
                })),
            })
            .map_err(Status::from);
        let _ = tx.blocking_send(msg);
    });
    Ok(rx)
}
