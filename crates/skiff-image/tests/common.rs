#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use skiff_image::import::{import, ImportOptions, ImportReport};
use skiff_image::{ImageError, NoProgress};
use skiff_store::{ContentStore, Store, StoreOptions};
use skiff_store::ImageRecord;
use skiff_testimage::{files_layer, host_platform, write_layout, ImageSpec};

pub fn store(dir: &Path) -> Store {
    Store::open(&dir.join("root"), &StoreOptions::default()).expect("open store").0
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A small two-layer image with annotations at every level (no busybox needed).
pub fn spec(name: &str, platforms: &[&str]) -> ImageSpec {
    ImageSpec {
        name: name.to_string(),
        layers: vec![
            files_layer(&[("a.txt", b"layer one")], true).expect("layer"),
            files_layer(&[("b.txt", b"layer two")], false).expect("layer"),
        ],
        platforms: if platforms.is_empty() { vec![host_platform()] } else { platforms.iter().map(|s| s.to_string()).collect() },
        force_index: false,
        cmd: vec!["/bin/sh".into()],
        env: vec![],
        volumes: vec![],
        index_descriptor_annotations: map(&[("level", "index-descriptor"), ("only.outer", "1")]),
        index_annotations: map(&[("level", "index"), ("only.index", "1")]),
        manifest_descriptor_annotations: map(&[("level", "manifest-descriptor"), ("only.md", "1")]),
        manifest_annotations: map(&[("level", "manifest"), ("only.manifest", "1")]),
    }
}

pub fn import_path(store: &Store, path: &Path) -> Result<ImportReport, ImageError> {
    import(store, path, &ImportOptions::default(), &NoProgress)
}

/// Writes `spec(name)` for linux/amd64 and linux/arm64 as a layout at `layout` and imports it
/// with every platform; answers its image record.
pub fn import_two_platforms(store: &Store, layout: &Path, name: &str) -> ImageRecord {
    write_layout(&spec(name, &["linux/amd64", "linux/arm64"]), layout).expect("layout");
    let opts = ImportOptions { all_platforms: true, ..Default::default() };
    import(store, layout, &opts, &NoProgress).expect("import").images.remove(0)
}

/// Asserts the store holds no content, images or leases.
pub fn assert_empty(store: &Store) {
    assert!(store.images().list().expect("images").is_empty(), "no image records");
    assert!(store.content().list(&[]).expect("content").is_empty(), "no content records");
    assert!(store.leases().list().expect("leases").is_empty(), "no leases");
    let blobs = store.root().join("content/blobs/sha256");
    assert_eq!(std::fs::read_dir(&blobs).expect("blobs").count(), 0, "no blob files");
    let ingest = store.root().join("content/ingest");
    assert_eq!(std::fs::read_dir(&ingest).expect("ingest").count(), 0, "no temp files");
}
