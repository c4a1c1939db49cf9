//! A runtime service for unit tests: a temp store root, the engine's manager on the skiff-shim
//! built beside the test executable (the tests pin namespaces for real, as root), an image service
//! on the same store, and the fake network.

use std::path::PathBuf;
use std::sync::Arc;

use skiff_cni::fake::FakeNetwork;
use skiff_snapshot::{Backend, FsSnapshotter, Unpacker};
use skiff_store::{Store, StoreOptions};

use super::{CriRuntime, RuntimeParts};
use crate::images::{CriImages, ImageParts};

/// `target/<profile>/skiff-shim` (the test runs from `target/<profile>/deps/`).
pub fn shim_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join("skiff-shim")).expect("target dir")
}

pub fn fixture() -> (CriRuntime, Arc<FakeNetwork>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (store, _) = Store::open(&root, &StoreOptions::default()).expect("store");
    let store = Arc::new(store);
    let snapshotter = FsSnapshotter::open(&root, store.db().clone(), Backend::Native).expect("snapshotter");
    let unpacker = Arc::new(Unpacker::new(Arc::new(snapshotter), Default::default()));
    let shim = Arc::new(skiff_engine::SealedShim::new(&shim_binary()).expect("skiff-shim (cargo build -p skiff-shim)"));
    let platform = skiff_image::Platform::host();
    let manager = skiff_engine::Manager::new(skiff_engine::ManagerParts {
        store: store.clone(),
        unpacker: unpacker.clone(),
        platform: platform.clone(),
        config: Default::default(),
        root: root.clone(),
        launcher: shim.clone(),
        events: Default::default(),
    })
    .expect("manager");
    let images = CriImages::new(ImageParts {
        store: store.clone(),
        unpacker,
        platform,
        registry: skiff_registry::ClientOptions::new(Default::default(), Default::default()),
        pull: Default::default(),
        handlers: vec!["builtin".into()],
        root: root.clone(),
        removals: manager.sweeper(),
    });
    let fake = Arc::new(FakeNetwork::new());
    let parts = RuntimeParts {
        handlers: vec!["builtin".into(), "runc".into()],
        network: fake.clone(),
        sandboxes: store.db().sandboxes.clone(),
        root,
        shim: shim.path(),
        default_sysctls: Default::default(),
        pod_shm_size: 16 << 20,
        manager,
        images,
        streams: None,
    };
    (CriRuntime::new(parts).expect("runtime"), fake, dir)
}
