mod common;

use std::sync::Arc;

use common::*;
use skiff_image::model::Desc;
use skiff_image::resolve::resolve;
use skiff_image::resolve_cache::ResolveCache;
use skiff_image::Platform;
use skiff_store::ContentStore;
use skiff_testimage::write_layout;

#[test]
fn a_kept_resolution_is_the_same_as_a_new_one_and_read_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let image = import_two_platforms(&store, &dir.path().join("l"), "example.com/a:1");
    let target = Desc::from_store(&image.target);
    let amd: Platform = "linux/amd64".parse().expect("p");
    let arm: Platform = "linux/arm64".parse().expect("p");
    let cache = ResolveCache::new();
    let first = cache.resolve(store.content(), &target, &amd).expect("resolve");
    let fresh = resolve(store.content(), &target, &amd).expect("resolve");
    assert_eq!(first.manifest_desc, fresh.manifest_desc);
    assert_eq!(first.config_bytes, fresh.config_bytes);
    assert_eq!(first.annotations.manifest, fresh.annotations.manifest);
    assert_eq!(first.annotations.index_descriptor.get("level").map(String::as_str), Some("index-descriptor"));
    // Kept: answered without the store (its blobs gone), the same resolution.
    for blob in store.content().list(&[]).expect("list") {
        store.content().delete(&blob.digest).expect("delete");
    }
    let again = cache.resolve(store.content(), &target, &amd).expect("kept");
    assert!(Arc::ptr_eq(&first, &again));
    // Another platform, or the same digest under other descriptor annotations, is its own
    // resolution (and here the store has nothing to resolve it from).
    assert!(cache.resolve(store.content(), &target, &arm).is_err(), "not kept for another platform");
    let mut relabelled = target.clone();
    relabelled.annotations.insert("other".into(), "1".into());
    assert!(cache.resolve(store.content(), &relabelled, &amd).is_err(), "a failure is not kept, nor taken from another key");
    assert_eq!(cache.len(), 1);
}

#[test]
fn the_cache_keeps_a_bounded_number_of_resolutions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    write_layout(&spec("example.com/a:1", &[]), &dir.path().join("l")).expect("layout");
    let image = import_path(&store, &dir.path().join("l")).expect("import").images.remove(0);
    let cache = ResolveCache::new();
    let host = Platform::host();
    let first = Desc::from_store(&image.target);
    cache.resolve(store.content(), &first, &host).expect("resolve");
    for i in 0..40 {
        let mut d = first.clone();
        d.annotations.insert("n".into(), i.to_string());
        cache.resolve(store.content(), &d, &host).expect("resolve");
    }
    assert_eq!(cache.len(), 32);
    // The oldest went first: the plain descriptor is resolved again from the store.
    for blob in store.content().list(&[]).expect("list") {
        store.content().delete(&blob.digest).expect("delete");
    }
    assert!(cache.resolve(store.content(), &first, &host).is_err());
}
