//! `configs_beside_layers` (what a pull does): the config is read by the layer workers, stored
//! before its manifest, and a bad one still fails the import with nothing stored.

mod common;

use std::fs;

use common::*;
use skiff_image::import::{import, ImportOptions};
use skiff_image::{ImageError, NoProgress};
use skiff_store::{ContentStore, Digest};
use skiff_testimage::{sha256, write_layout};

fn beside() -> ImportOptions {
    ImportOptions { configs_beside_layers: true, parallelism: 2, ..Default::default() }
}

#[test]
fn the_config_read_with_the_layers_is_stored_with_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("layout");
    let built = write_layout(&spec("example.com/beside:1", &[]), &layout).expect("layout");
    let report = import(&store, &layout, &beside(), &NoProgress).expect("import");
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.blobs_written, built.blobs.len(), "every blob, the config among them");
    for d in built.blobs.keys() {
        store.content().verify(&d.parse::<Digest>().expect("digest")).expect("blob stored and intact");
    }
    let config: Digest = sha256(&built.config).parse().expect("config digest");
    assert_eq!(store.content().read_verified(&config, 1 << 20).expect("config"), built.config);
    assert!(store.leases().list().expect("leases").is_empty(), "import lease released");
}

#[test]
fn a_corrupt_config_read_with_the_layers_fails_the_import_with_nothing_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("layout");
    let built = write_layout(&spec("example.com/badconfig:1", &[]), &layout).expect("layout");
    let config = sha256(&built.config);
    let path = layout.join("blobs/sha256").join(config.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).expect("read");
    bytes[0] ^= 0x01;
    fs::write(&path, bytes).expect("write");
    let err = import(&store, &layout, &beside(), &NoProgress).expect_err("mismatch");
    assert!(matches!(err, ImageError::Store(skiff_store::StoreError::DigestMismatch { .. })), "{err}");
    assert!(err.to_string().contains(&config), "names the config's digest: {err}");
    assert_empty(&store);
}
