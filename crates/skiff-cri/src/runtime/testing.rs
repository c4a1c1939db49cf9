//! A runtime service for unit tests: a temp root and database, the fake network, and the
//! skiff-shim built beside the test executable (for the tests that pin namespaces, as root).

use std::path::PathBuf;
use std::sync::Arc;

use skiff_cni::fake::FakeNetwork;

use super::{CriRuntime, RuntimeParts};

/// `target/<profile>/skiff-shim` (the test runs from `target/<profile>/deps/`).
pub fn shim_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join("skiff-shim")).expect("target dir")
}

pub fn fixture() -> (CriRuntime, Arc<FakeNetwork>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new().path(dir.path().join("db")).open().expect("db");
    let fake = Arc::new(FakeNetwork::new());
    let parts = RuntimeParts {
        handlers: vec!["builtin".into(), "runc".into()],
        network: fake.clone(),
        sandboxes: db.open_tree("sandboxes").expect("tree"),
        root: dir.path().join("root"),
        shim: shim_binary(),
        default_sysctls: Default::default(),
        pod_shm_size: 16 << 20,
    };
    (CriRuntime::new(parts).expect("runtime"), fake, dir)
}
