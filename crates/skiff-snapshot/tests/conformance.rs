//! The snapshotter conformance suite on both backends of `FsSnapshotter` (run as root: it mounts).

use std::path::Path;

use skiff_snapshot::{overlay_supported, testsuite, Backend, FsSnapshotter, Snapshotter};

fn open(backend: Backend) -> impl Fn(&Path) -> skiff_snapshot::Result<Box<dyn Snapshotter>> + Sync {
    move |root: &Path| {
        let db = skiff_store::Db::open(&root.join("metadata"), 8 << 20)?;
        Ok(Box::new(FsSnapshotter::open(root, db, backend)?) as Box<dyn Snapshotter>)
    }
}

#[test]
fn overlay_snapshotter_conforms() {
    let probe = tempfile::tempdir().expect("tempdir");
    if !overlay_supported(probe.path()) {
        eprintln!("skipping the overlay snapshotter suite: overlayfs cannot be mounted here (needs root and overlay support)");
        return;
    }
    testsuite::run_all("overlay", &open(Backend::Overlay));
}

#[test]
fn native_snapshotter_conforms() {
    testsuite::run_all("native", &open(Backend::Native));
}
