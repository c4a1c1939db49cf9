mod common;

use std::fs;

use common::*;
use skiff_image::annotate::{annotate, parse_remove, parse_set, Target};
use skiff_image::export::{export, ExportFormat, ExportOptions};
use skiff_image::inspect::inspect;
use skiff_image::model::Desc;
use skiff_image::resolve::resolve;
use skiff_image::{ImageError, NoProgress, Platform};
use skiff_store::ContentStore;
use skiff_testimage::write_layout;

fn host() -> Platform {
    Platform::host()
}

#[test]
fn annotate_single_manifest_writes_new_manifest_over_same_layers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    write_layout(&spec("example.com/src:1", &[]), &dir.path().join("l")).expect("layout");
    let src = import_path(&store, &dir.path().join("l")).expect("import").images.remove(0);
    let src_bytes = store.content().read_verified(&src.target.digest, 1 << 20).expect("src bytes");
    let edits = vec![
        parse_set("build.example.com/git-sha=abcdef123456", Target::Manifest, None).expect("set"),
        parse_remove("only.manifest", Target::Manifest, None).expect("rm"),
    ];
    let dst = annotate(&store, &src, "example.com/dst:1", &edits, &host()).expect("annotate");
    assert_ne!(dst.target.digest, src.target.digest);
    let dst_r = resolve(store.content(), &Desc::from_store(&dst.target), &host()).expect("resolve dst");
    let src_r = resolve(store.content(), &Desc::from_store(&src.target), &host()).expect("resolve src");
    assert_eq!(dst_r.manifest.layers, src_r.manifest.layers);
    assert_eq!(dst_r.manifest.config, src_r.manifest.config);
    assert_eq!(dst.annotations.manifest.get("build.example.com/git-sha").map(String::as_str), Some("abcdef123456"));
    assert!(!dst.annotations.manifest.contains_key("only.manifest"));
    // The source is byte-for-byte what it was, and still named.
    assert_eq!(store.images().get("example.com/src:1").expect("src").target, src.target);
    assert_eq!(store.content().read_verified(&src.target.digest, 1 << 20).expect("src"), src_bytes);
    assert!(store.leases().list().expect("leases").is_empty());
    // An index target on an image without an index is refused, and nothing is written.
    let before = store.content().list(&[]).expect("list").len();
    let bad = vec![parse_set("k=v", Target::Index, None).expect("set")];
    let err = annotate(&store, &src, "example.com/x:1", &bad, &host()).expect_err("no index");
    assert!(matches!(err, ImageError::InvalidArgument(_)), "{err}");
    assert_eq!(store.content().list(&[]).expect("list").len(), before);
}

#[test]
fn annotate_every_target_of_a_multi_platform_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let src = import_two_platforms(&store, &dir.path().join("l"), "example.com/m:1");
    let amd: Platform = "linux/amd64".parse().expect("p");
    let arm: Platform = "linux/arm64".parse().expect("p");
    let edits = vec![
        parse_set("annotation-index.idx=1", Target::Manifest, None).expect("idx"),
        parse_set("annotation-index-descriptor.outer=1", Target::Manifest, None).expect("outer"),
        parse_set("annotation-manifest-descriptor[linux/arm64].md=arm", Target::Manifest, None).expect("md"),
        parse_set("annotation[linux/amd64].url=https://example.com/amd64", Target::Manifest, None).expect("amd"),
        parse_set("annotation[linux/arm64].url=https://example.com/arm64", Target::Manifest, None).expect("arm"),
    ];
    let dst = annotate(&store, &src, "example.com/m:annotated", &edits, &amd).expect("annotate");
    assert_eq!(dst.target.annotations.get("outer").map(String::as_str), Some("1"));
    let a = resolve(store.content(), &Desc::from_store(&dst.target), &amd).expect("amd");
    let b = resolve(store.content(), &Desc::from_store(&dst.target), &arm).expect("arm");
    assert_eq!(a.annotations.index.get("idx").map(String::as_str), Some("1"));
    assert_eq!(a.annotations.manifest.get("url").map(String::as_str), Some("https://example.com/amd64"));
    assert_eq!(b.annotations.manifest.get("url").map(String::as_str), Some("https://example.com/arm64"));
    assert_eq!(b.annotations.manifest_descriptor.get("md").map(String::as_str), Some("arm"));
    assert!(!a.annotations.manifest_descriptor.contains_key("md"));
    assert_eq!(a.manifest.layers, b.manifest.layers);
    let view = inspect(&store, &dst, &arm).expect("inspect");
    assert_eq!(view.annotations.get("level").map(String::as_str), Some("manifest"), "manifest wins precedence");
    assert!(view.annotation_sources.iter().any(|s| s.key == "md" && s.level == "manifest-descriptor"));
    assert!(view.index.is_some());
    // A platform that the index does not have is an error naming it.
    let bad = vec![parse_set("annotation[linux/s390x].k=v", Target::Manifest, None).expect("s390x")];
    let err = annotate(&store, &src, "example.com/m:bad", &bad, &amd).expect_err("no s390x");
    assert!(err.to_string().contains("linux/s390x"), "{err}");
    assert!(store.images().get("example.com/m:bad").is_err());
}

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| {
            let p = e.expect("entry").path();
            (p.file_name().expect("name").to_string_lossy().into_owned(), fs::read(&p).expect("read"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn export_round_trips_byte_identical_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let src_layout = dir.path().join("src");
    write_layout(&spec("example.com/rt:1", &["linux/amd64", "linux/arm64"]), &src_layout).expect("layout");
    let opts = skiff_image::import::ImportOptions { all_platforms: true, ..Default::default() };
    let rec = skiff_image::import::import(&store, &src_layout, &opts, &NoProgress).expect("import").images.remove(0);
    let out = dir.path().join("out");
    export(&store, std::slice::from_ref(&rec), &out, ExportFormat::Layout, &ExportOptions::default(), &NoProgress).expect("export");
    assert_eq!(files(&src_layout), files(&out), "every blob identical");
    let archive = dir.path().join("out.tar");
    export(&store, std::slice::from_ref(&rec), &archive, ExportFormat::Archive, &ExportOptions::default(), &NoProgress).expect("archive");
    // Into a fresh store: same target digest, same annotations.
    let other = tempfile::tempdir().expect("tempdir");
    let store2 = common::store(other.path());
    let rec2 = skiff_image::import::import(&store2, &archive, &opts, &NoProgress).expect("reimport").images.remove(0);
    assert_eq!(rec2.name, rec.name);
    assert_eq!(rec2.target.digest, rec.target.digest);
    assert_eq!(rec2.annotations, rec.annotations);
    assert!(export(&store, &[rec], &out, ExportFormat::Layout, &ExportOptions::default(), &NoProgress).is_err(), "refuses to overwrite");
}

#[test]
fn gc_after_image_removal_frees_its_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    write_layout(&spec("example.com/gc:1", &[]), &dir.path().join("l")).expect("layout");
    let rec = import_path(&store, &dir.path().join("l")).expect("import").images.remove(0);
    let edits = vec![parse_set("k=v", Target::Manifest, None).expect("set")];
    annotate(&store, &rec, "example.com/gc:2", &edits, &host()).expect("annotate");
    store.images().delete("example.com/gc:1").expect("rm");
    let removed = store.collect_garbage().expect("gc");
    assert_eq!(removed.removed.len(), 1, "only the old manifest; layers and config are shared");
    store.images().delete("example.com/gc:2").expect("rm");
    store.collect_garbage().expect("gc");
    assert_empty(&store);
}
