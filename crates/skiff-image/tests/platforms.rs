//! An image record keeps the set of platforms stored; export writes only what is stored, under
//! names that tell several images apart.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use skiff_image::export::{export, ExportFormat, ExportOptions};
use skiff_image::import::{import, ImportOptions};
use skiff_image::select::platform_for;
use skiff_image::stored::stored;
use skiff_image::model::Desc;
use skiff_image::{ImageError, NoProgress, Platform};
use skiff_store::{ImageRecord, Store};
use skiff_testimage::write_layout;

fn p(s: &str) -> Platform {
    s.parse().expect("platform")
}

fn import_as(store: &Store, path: &Path, platform: Option<&str>) -> Result<Vec<ImageRecord>, ImageError> {
    let opts = match platform {
        Some(pl) => ImportOptions { platform: p(pl), ..Default::default() },
        None => ImportOptions { all_platforms: true, ..Default::default() },
    };
    Ok(import(store, path, &opts, &NoProgress)?.images)
}

fn index_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("json")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_second_platform_adds_to_the_record_instead_of_replacing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("l");
    write_layout(&spec("example.com/multi:1", &["linux/amd64", "linux/arm64"]), &layout).expect("layout");
    let first = import_as(&store, &layout, Some("linux/amd64")).expect("amd64").remove(0);
    assert_eq!(first.platforms, set(&["linux/amd64"]));
    let second = import_as(&store, &layout, Some("linux/arm64")).expect("arm64").remove(0);
    assert_eq!(second.platforms, set(&["linux/amd64", "linux/arm64"]));
    assert_eq!(second.platform, "linux/amd64", "the record still says the platform it said");
    let rec = store.images().get("example.com/multi:1").expect("record");
    assert_eq!(platform_for(&rec, &p("linux/amd64")), Ok(p("linux/amd64")));
    assert_eq!(platform_for(&rec, &p("linux/arm64")), Ok(p("linux/arm64")));
    let e = platform_for(&rec, &p("linux/s390x")).expect_err("not stored");
    assert!(e.to_string().contains("(stored: linux/amd64, linux/arm64)"), "{e}");
}

#[test]
fn export_of_a_partly_stored_index_lists_only_what_it_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("l");
    let built = write_layout(&spec("example.com/partial:1", &["linux/amd64", "linux/arm64"]), &layout).expect("layout");
    let rec = import_as(&store, &layout, Some("linux/amd64")).expect("import").remove(0);

    let out = dir.path().join("out");
    export(&store, std::slice::from_ref(&rec), &out, ExportFormat::Layout, &ExportOptions::default(), &NoProgress).expect("export");
    let entry = &index_json(&out)["manifests"][0];
    assert_ne!(entry["digest"], built.top["digest"], "a new index, since the stored one names arm64 too");
    assert_eq!(entry["annotations"]["only.outer"], "1", "the index-descriptor annotations stay");
    let hex = entry["digest"].as_str().expect("digest").trim_start_matches("sha256:").to_string();
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(hex)).expect("new index")).expect("json");
    let listed: Vec<&str> = index["manifests"].as_array().expect("manifests").iter().filter_map(|m| m["platform"]["architecture"].as_str()).collect();
    assert_eq!(listed, ["amd64"]);
    assert_eq!(index["annotations"]["only.index"], "1", "the index's own annotations stay");
    assert_eq!(index["manifests"][0]["annotations"]["only.md"], "1");

    // The archive is whole: a strict import of every platform takes it.
    let other = store_at(dir.path(), "other");
    let back = import_as(&other, &out, None).expect("import --all-platforms of the export").remove(0);
    assert_eq!(back.platforms, set(&["linux/amd64"]));
    assert_eq!(back.annotations.index.get("only.index").map(String::as_str), Some("1"));

    // With every platform stored, the index is exported as it is.
    let full = import_as(&store, &layout, None).expect("all").remove(0);
    let out = dir.path().join("full");
    export(&store, &[full], &out, ExportFormat::Layout, &ExportOptions::default(), &NoProgress).expect("export");
    assert_eq!(index_json(&out)["manifests"][0]["digest"], built.top["digest"]);
}

#[test]
fn export_of_one_platform_names_its_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("l");
    let built = write_layout(&spec("example.com/one:1", &["linux/amd64", "linux/arm64"]), &layout).expect("layout");
    let rec = import_as(&store, &layout, None).expect("import").remove(0);
    let out = dir.path().join("arm.tar");
    let opts = ExportOptions { platform: Some(p("linux/arm64")) };
    export(&store, std::slice::from_ref(&rec), &out, ExportFormat::Archive, &opts, &NoProgress).expect("export");
    let other = store_at(dir.path(), "other");
    let back = import_as(&other, &out, None).expect("import").remove(0);
    assert_eq!(back.target.digest.to_string(), built.manifest_digests[1], "the arm64 manifest itself");
    assert_eq!(back.platforms, set(&["linux/arm64"]));
    assert_eq!(back.annotations.index_descriptor.get("only.md").map(String::as_str), Some("1"), "its descriptor's annotations");
    assert!(stored(other.content(), &Desc::from_store(&back.target)).expect("stored").missing.is_empty());
    // A platform the image lacks is refused, and nothing is left behind.
    let none = dir.path().join("none.tar");
    let e = export(&store, &[rec], &none, ExportFormat::Archive, &ExportOptions { platform: Some(p("linux/s390x")) }, &NoProgress)
        .expect_err("no such platform");
    assert!(matches!(e, ImageError::NoMatchingPlatform { .. }), "{e}");
    assert!(!none.exists());
}

#[test]
fn several_images_get_names_that_tell_them_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let mut records = Vec::new();
    for (name, files) in [("example.com/a:v1", "a"), ("example.com/b:v1", "b"), ("example.com/a:v2", "c")] {
        let mut s = spec(name, &[]);
        s.layers = vec![skiff_testimage::files_layer(&[(files, files.as_bytes())], true).expect("layer")];
        let layout = dir.path().join(files);
        write_layout(&s, &layout).expect("layout");
        records.extend(import_as(&store, &layout, Some(&skiff_testimage::host_platform())).expect("import"));
    }
    let out = dir.path().join("all");
    export(&store, &records, &out, ExportFormat::Layout, &ExportOptions::default(), &NoProgress).expect("export");
    let names: Vec<(String, String)> = index_json(&out)["manifests"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let a = &e["annotations"];
            (a["io.containerd.image.name"].as_str().unwrap_or("").into(), a["org.opencontainers.image.ref.name"].as_str().unwrap_or("").into())
        })
        .collect();
    assert_eq!(
        names,
        [
            ("example.com/a:v1".to_string(), "example.com/a:v1".to_string()),
            ("example.com/b:v1".to_string(), "example.com/b:v1".to_string()),
            ("example.com/a:v2".to_string(), "v2".to_string()),
        ],
        "a tag two images share is replaced by the full reference; a tag of its own stays a tag"
    );
    let other = store_at(dir.path(), "other");
    let back: BTreeSet<String> = import_as(&other, &out, None).expect("import").into_iter().map(|r| r.name).collect();
    assert_eq!(back, set(&["example.com/a:v1", "example.com/b:v1", "example.com/a:v2"]));

    // Only ref.name to go by (as other tools write layouts): still three images, named back the same.
    let mut index = index_json(&out);
    for e in index["manifests"].as_array_mut().expect("entries") {
        e["annotations"].as_object_mut().expect("annotations").remove("io.containerd.image.name");
    }
    std::fs::write(out.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("write");
    let third = store_at(dir.path(), "third");
    let opts = ImportOptions { base_name: Some("example.com/a".into()), all_platforms: true, ..Default::default() };
    let back: BTreeSet<String> = import(&third, &out, &opts, &NoProgress).expect("import").images.into_iter().map(|r| r.name).collect();
    assert_eq!(back, set(&["example.com/a:v1", "example.com/b:v1", "example.com/a:v2"]));
}

#[test]
fn an_archive_naming_two_images_alike_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let a = write_layout(&spec("example.com/a:v1", &[]), &dir.path().join("a")).expect("a");
    let mut s = spec("example.com/b:v1", &[]);
    s.cmd = vec!["/bin/true".into()];
    let b = write_layout(&s, &dir.path().join("b")).expect("b");
    // One layout holding both, named only by the tag they share.
    let layout = dir.path().join("both");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    for (d, bytes) in a.blobs.iter().chain(&b.blobs) {
        std::fs::write(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:")), bytes).expect("blob");
    }
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let mut entries = vec![a.top, b.top];
    for e in &mut entries {
        e["annotations"].as_object_mut().expect("annotations").remove("io.containerd.image.name");
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("index.json");
    let opts = ImportOptions { base_name: Some("example.com/x".into()), ..Default::default() };
    let e = import(&store, &layout, &opts, &NoProgress).expect_err("ambiguous");
    assert!(e.to_string().contains("two images are both named example.com/x:v1"), "{e}");
    assert_empty(&store);
}

#[test]
fn an_index_entry_skiff_cannot_take_is_left_out_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("l");
    let built = write_layout(&spec("example.com/art:1", &["linux/amd64", "linux/arm64"]), &layout).expect("layout");
    // Add an artifact entry (as signing tools attach) to the index, and rename everything to match.
    let old = built.top["digest"].as_str().expect("digest").to_string();
    let blobs = layout.join("blobs/sha256");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(blobs.join(old.trim_start_matches("sha256:"))).expect("index")).expect("json");
    index["manifests"].as_array_mut().expect("manifests").push(serde_json::json!({
        "mediaType": "application/vnd.example.signature.v1+json",
        "digest": format!("sha256:{}", "e".repeat(64)),
        "size": 10,
    }));
    let bytes = serde_json::to_vec(&index).expect("json");
    let digest = skiff_testimage::sha256(&bytes);
    std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), &bytes).expect("write index");
    let mut top = built.top.clone();
    top["digest"] = serde_json::Value::String(digest.clone());
    top["size"] = serde_json::Value::from(bytes.len());
    let layout_index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&layout_index).expect("json")).expect("index.json");

    let rec = import_as(&store, &layout, Some("linux/amd64")).expect("import one platform").remove(0);
    assert_eq!(rec.platforms, set(&["linux/amd64"]));
    let part = stored(store.content(), &Desc::from_store(&rec.target)).expect("stored");
    assert_eq!(part.missing.len(), 2, "arm64 and the artifact");
    let out = dir.path().join("out");
    export(&store, &[rec], &out, ExportFormat::Layout, &ExportOptions::default(), &NoProgress).expect("export");
    let other = store_at(dir.path(), "other");
    import_as(&other, &out, None).expect("the export holds what it names");
}

fn store_at(dir: &Path, name: &str) -> Store {
    store(&dir.join(name))
}
