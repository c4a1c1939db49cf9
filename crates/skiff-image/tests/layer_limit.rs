//! The layer limit: a manifest with more layers than `max_layers` is refused as soon as it is read,
//! from every kind of source, before a layer (or the config) is read, and nothing is stored.

mod common;

use common::*;
use skiff_image::import::{import, ImportOptions, DEFAULT_MAX_LAYERS};
use skiff_image::{ImageError, NoProgress};
use skiff_testimage::{files_layer, sha256, write_docker_archive, write_layout, write_oci_archive, ImageSpec, Layer};
use skiff_types::{ErrorKind, HasKind};

fn layered(name: &str, count: usize) -> ImageSpec {
    let layers: Vec<Layer> = (0..count).map(|i| files_layer(&[(&format!("f{i}"), format!("layer {i}").as_bytes())], false).expect("layer")).collect();
    ImageSpec { layers, ..spec(name, &[]) }
}

fn limited(max_layers: usize) -> ImportOptions {
    ImportOptions { max_layers, ..Default::default() }
}

fn assert_too_many(err: ImageError, image: &str, count: usize, limit: usize) {
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{text}");
    match &err {
        ImageError::TooManyLayers { image: named, count: c, limit: l } => {
            assert!(named.starts_with(image), "names the image: {text}");
            assert_eq!((*c, *l), (count, limit), "{text}");
        }
        other => panic!("expected TooManyLayers, got {other:?}"),
    }
    assert!(text.contains(&format!("{count} layers")) && text.contains(&format!("limit of {limit}")), "{text}");
    assert!(text.contains("images.max_layers"), "names the config key: {text}");
}

#[test]
fn an_image_over_the_limit_is_refused_from_every_source_with_nothing_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let image = layered("example.com/deep:v1", 4);
    let layout = dir.path().join("layout");
    let built = write_layout(&image, &layout).expect("layout");
    write_oci_archive(&image, &dir.path().join("oci.tar")).expect("oci archive");
    write_docker_archive(&image, &dir.path().join("docker.tar")).expect("docker archive");
    for source in ["layout", "oci.tar", "docker.tar"] {
        let err = import(&store, &dir.path().join(source), &limited(3), &NoProgress).expect_err(source);
        assert_too_many(err, "example.com/deep:v1", 4, 3);
        assert_empty(&store);
    }
    // Nothing past the manifest is read: with the config and layers gone from the layout, the
    // refusal is the same.
    let config = sha256(&built.config);
    for blob in image.layers.iter().map(|l| sha256(&l.bytes)).chain([config]) {
        std::fs::remove_file(layout.join("blobs/sha256").join(blob.trim_start_matches("sha256:"))).expect("remove blob");
    }
    let err = import(&store, &layout, &limited(3), &NoProgress).expect_err("layout without layers");
    assert_too_many(err, "example.com/deep:v1", 4, 3);
    assert_empty(&store);
}

#[test]
fn an_image_at_the_limit_imports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let image = layered("example.com/deep:v1", 4);
    write_docker_archive(&image, &dir.path().join("docker.tar")).expect("docker archive");
    write_layout(&image, &dir.path().join("layout")).expect("layout");
    for source in ["layout", "docker.tar"] {
        let report = import(&store, &dir.path().join(source), &limited(4), &NoProgress).expect(source);
        assert_eq!(report.images.len(), 1, "{source}");
    }
}

#[test]
fn the_default_limit_is_500_layers() {
    assert_eq!(ImportOptions::default().max_layers, DEFAULT_MAX_LAYERS);
    assert_eq!(DEFAULT_MAX_LAYERS, 500);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    write_layout(&layered("example.com/deeper:v1", DEFAULT_MAX_LAYERS + 1), &dir.path().join("layout")).expect("layout");
    let err = import(&store, &dir.path().join("layout"), &ImportOptions::default(), &NoProgress).expect_err("501 layers");
    assert_too_many(err, "example.com/deeper:v1", DEFAULT_MAX_LAYERS + 1, DEFAULT_MAX_LAYERS);
    assert_empty(&store);
}
