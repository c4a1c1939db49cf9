//! skiffd: opens the store (taking its lock), recovers from any interrupted work, and serves Skiff's
//! gRPC API on a unix socket until SIGTERM or SIGINT.

mod blocking;
mod config;
mod containers;
mod content;
mod convert;
mod images;
mod leases;
mod events;
mod registry;
mod snapshots;
mod socket;
mod status;
mod stored;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use skiff_api::v1::{
    containers_server::ContainersServer, content_server::ContentServer, events_server::EventsServer, images_server::ImagesServer, leases_server::LeasesServer,
    snapshots_server::SnapshotsServer,
};
use skiff_engine::{EventBus, Manager, ManagerParts, SealedShim};
use skiff_snapshot::{apply::Limits, overlay_supported, Backend, FsSnapshotter, Unpacker};
use skiff_store::{Store, StoreOptions};
use tokio::signal::unix::{signal, SignalKind};
use skiff_cri::cri::{image_service_server::ImageServiceServer, runtime_service_server::RuntimeServiceServer};
use tokio_stream::wrappers::UnixListenerStream;

use config::Config;

/// The Skiff daemon.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (default: the embedded config/skiffd.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Store root, overriding the config's `root`.
    #[arg(long)]
    root: Option<PathBuf>,
    /// API socket, overriding the config's `socket`.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print the effective configuration's default (embedded) text and exit.
    #[arg(long)]
    print_default_config: bool,
}

async fn shutdown_signal() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}

/// glibc raises its mmap threshold each time a large block is freed (up to 32 MiB); from then on
/// big buffers (sled's 512 KiB log buffers, import and pull buffers) come from the heap arenas,
/// whose tops are only trimmed past twice that, so a long-running daemon's RSS creeps up with
/// every segment sled rolls over (measured: 1.4 MB anonymous fresh, 4.7 MB after one import,
/// 8.4 MB after 1,600 containers). Fixed thresholds (glibc's own defaults, made static) keep large
/// blocks mmapped, returned to the kernel when freed, and trim the arenas promptly. Arenas are
/// capped at two: each thread of the blocking pool that allocates would otherwise get one of its
/// own (up to eight per core), every one keeping pages of its own resident.
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn fix_malloc_thresholds() {
    const THRESHOLD: libc::c_int = 128 << 10;
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(target_env = "gnu"))]
fn fix_malloc_thresholds() {}

fn main() -> Result<()> {
    fix_malloc_thresholds();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?.block_on(serve())
}

async fn serve() -> Result<()> {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", config::DEFAULT_CONFIG);
        return Ok(());
    }
    let mut cfg = Config::load(args.config.as_deref())?;
    if let Some(root) = args.root {
        cfg.root = root;
    }
    if let Some(socket) = args.socket {
        cfg.socket = socket;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();

    let opts = StoreOptions { cache_capacity: cfg.store.cache_capacity_mib << 20 };
    let (store, recovered) = Store::open(&cfg.root, &opts).with_context(|| format!("open store at {}", cfg.root.display()))?;
    tracing::info!(root = %cfg.root.display(), ?recovered, "store open");
    let backend = match cfg.snapshotter.backend.as_str() {
        "overlayfs" => Backend::Overlay,
        "native" => Backend::Native,
        _ if overlay_supported(&cfg.root) => Backend::Overlay,
        _ => {
            tracing::warn!("overlayfs cannot be mounted here; using the native (copying) snapshotter");
            Backend::Native
        }
    };
    let snapshotter = FsSnapshotter::open(&cfg.root, store.db().clone(), backend).context("open snapshotter")?;
    let limits = Limits { floor: cfg.snapshotter.layer_expansion_floor_mib << 20, ratio: cfg.snapshotter.layer_expansion_ratio };
    let unpacker = Arc::new(Unpacker::new(Arc::new(snapshotter), limits));
    let interrupted = unpacker.clean_interrupted().context("clean interrupted unpacks")?;
    tracing::info!(?backend, interrupted, "snapshotter ready");
    // Streamed imports a crash interrupted.
    let _ = std::fs::remove_dir_all(images::spool_dir(&cfg.root));
    let store = Arc::new(store);

    let snapshots = snapshots::SnapshotsService { unpacker: unpacker.clone(), backend };
    let bus = EventBus::default();
    let shim = Arc::new(SealedShim::new(&cfg.runtime.shim).context("preparing the shim")?);
    let manager = Manager::new(ManagerParts {
        store: store.clone(),
        unpacker: unpacker.clone(),
        platform: cfg.platform()?,
        launcher: shim.clone(),
        config: cfg.runtime.clone(),
        root: cfg.root.clone(),
        events: bus.clone(),
    })?;
    // Reconnects to the shims that outlived a previous skiffd and follows them again.
    manager.recover().context("recover containers")?;
    let content = content::ContentService { store: store.clone(), unpacker: unpacker.clone(), platform: cfg.platform()?, removals: manager.sweeper() };
    let images = images::ImagesService {
        store: store.clone(),
        annotation_policy: cfg.runtime.image_annotations.clone(),
        platform: cfg.platform()?,
        import_parallelism: cfg.images.import_parallelism,
        max_layers: cfg.images.max_layers,
        registry: cfg.registry.clone(),
        unpacker: unpacker.clone(),
        // The manager's records: one memory copy of them per store.
        containers: manager.records().clone(),
        removals: manager.sweeper(),
    };
    // Shutdown: streams that would never end by themselves (logs -f, events) watch `stopping`;
    // requests still under way get the configured deadline, then skiffd exits without them.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let fifos = containers::StdioFifos::open(&cfg.root).context("preparing the stdio FIFO directory")?;
    let containers = containers::ContainersService { manager: manager.clone(), fifos, stopping: stopping_rx.clone() };
    let events = events::EventsService { bus, stopping: stopping_rx.clone() };
    let cri_images = skiff_cri::CriImages::new(skiff_cri::ImageParts {
        store: store.clone(),
        unpacker: unpacker.clone(),
        platform: cfg.platform()?,
        registry: registry::client_options(&cfg.registry, None)?,
        pull: skiff_registry::PullOptions { parallelism: cfg.registry.max_concurrent_downloads, max_layers: cfg.images.max_layers, ..Default::default() },
        handlers: cfg.runtime.handler_names(),
        root: cfg.root.clone(),
        removals: manager.sweeper(),
    });
    let network = skiff_cni::Cni::new(skiff_cni::CniOptions {
        conf_dir: cfg.cri.cni_conf_dir.clone(),
        plugin_dirs: cfg.cri.cni_bin_dirs.clone(),
        cache_dir: cfg.cri.cni_cache_dir.clone(),
        plugin_timeout: std::time::Duration::from_secs(cfg.cri.cni_plugin_timeout_secs),
    });
    // Bound before the runtime is made, so that Exec, Attach and PortForward can make its URLs.
    let stream_server = skiff_streaming::server::StreamServer::bind(&cfg.stream_server()?).context("the CRI streaming server")?;
    let cri_runtime = skiff_cri::CriRuntime::new(skiff_cri::RuntimeParts {
        handlers: cfg.runtime.handler_names(),
        network: Arc::new(network),
        sandboxes: store.db().sandboxes.clone(),
        root: cfg.root.clone(),
        shim: shim.path(),
        default_sysctls: cfg.cri.default_sysctls.clone(),
        pod_shm_size: cfg.cri.pod_shm_size_mib << 20,
        manager: manager.clone(),
        images: cri_images.clone(),
        streams: Some(stream_server.urls()),
    })
    .context("recover pod sandboxes")?;
    tracing::info!(url = %stream_server.base_url(), "CRI streaming server listening");
    let mut streams_stopping = stopping_rx.clone();
    let backend = Arc::new(skiff_cri::streaming::StreamingBackend(cri_runtime.clone()));
    tokio::spawn(async move {
        let stopped = streams_stopping.wait_for(|stopping| *stopping);
        if let Err(e) = stream_server.serve(backend, async move { let _ = stopped.await; }).await {
            tracing::error!(error = %e, "the CRI streaming server stopped");
        }
    });
    // Bound last: a client that can connect finds the containers of a previous run recovered.
    let (listener, api_socket) = socket::ApiSocket::bind(&cfg.socket, cfg.socket_mode_bits()?)?;
    tracing::info!(socket = %cfg.socket.display(), "skiffd ready");
    let mut server_stopping = stopping_rx;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ImagesServer::new(images).max_decoding_message_size(16 << 20))
            .add_service(ContentServer::new(content).max_decoding_message_size(16 << 20))
            .add_service(SnapshotsServer::new(snapshots))
            .add_service(ContainersServer::new(containers))
            .add_service(EventsServer::new(events))
            .add_service(LeasesServer::new(leases::LeasesService { store: store.clone() }))
            // The kubelet's CRI, on the same socket.
            .add_service(
                RuntimeServiceServer::new(cri_runtime)
                    .max_decoding_message_size(skiff_cri::MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(skiff_cri::MAX_MESSAGE_SIZE),
            )
            .add_service(
                ImageServiceServer::new(cri_images)
                    .max_decoding_message_size(skiff_cri::MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(skiff_cri::MAX_MESSAGE_SIZE),
            )
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
                let _ = server_stopping.wait_for(|stopping| *stopping).await;
            }),
    );
    tokio::pin!(server);
    tokio::select! {
        done = &mut server => done.context("the server task")?.context("serve")?,
        () = shutdown_signal() => {
            let _ = stopping_tx.send(true);
            let deadline = std::time::Duration::from_secs(cfg.shutdown_timeout_secs);
            match tokio::time::timeout(deadline, &mut server).await {
                Ok(done) => done.context("the server task")?.context("serve")?,
                Err(_) => tracing::warn!(?deadline, "requests still under way at the shutdown deadline; exiting without them"),
            }
        }
    }
    // Removed containers' mounts, snapshots and state dirs are swept after their removal
    // answered; what is not done by the deadline is found again at the next start.
    let sweeper = manager.clone();
    let deadline = std::time::Duration::from_secs(cfg.shutdown_timeout_secs);
    if !tokio::task::spawn_blocking(move || sweeper.sweep_removed(deadline)).await.unwrap_or(false) {
        tracing::warn!(?deadline, "removed containers' leftovers not all swept; the next start sweeps them");
    }
    store.db().flush().context("flush store")?;
    api_socket.remove();
    tracing::info!("stopped");
    // Containers keep running under their shims; the tasks following them (and any blocking
    // work still under way) must not hold up the exit.
    std::process::exit(0)
}
