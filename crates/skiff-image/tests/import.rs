mod common;

use std::fs;

use common::*;
use skiff_image::import::{import, ImportOptions};
use skiff_image::{ImageError, NoProgress, Platform};
use skiff_store::{ContentStore, Digest};
use skiff_testimage::{write_docker_archive, write_layout, write_oci_archive, OCI_LAYER};

#[test]
fn imports_single_manifest_layout_with_annotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let built = write_layout(&spec("example.com/app:v1", &[]), &dir.path().join("layout")).expect("layout");
    let report = import_path(&store, &dir.path().join("layout")).expect("import");
    assert_eq!(report.images.len(), 1);
    let rec = &report.images[0];
    assert_eq!(rec.name, "example.com/app:v1");
    assert_eq!(rec.target.digest.as_str(), built.manifest_digests[0]);
    // The index.json entry's own annotations are the image's index-descriptor level; a single
    // manifest has no index or manifest-descriptor level beyond it.
    assert_eq!(rec.annotations.manifest.get("level").map(String::as_str), Some("manifest"));
    assert_eq!(rec.annotations.index_descriptor.get("only.md").map(String::as_str), Some("1"));
    assert!(rec.annotations.index.is_empty());
    for d in built.blobs.keys() {
        let d: Digest = d.parse().expect("digest");
        store.content().verify(&d).expect("blob stored and intact");
    }
    assert!(store.leases().list().expect("leases").is_empty(), "import lease released");
    // Importing again writes nothing new.
    let again = import_path(&store, &dir.path().join("layout")).expect("reimport");
    assert_eq!(again.blobs_written, 0);
}

#[test]
fn multi_platform_index_selects_platform_and_collects_every_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("layout");
    let built = write_layout(&spec("example.com/multi:1", &["linux/amd64", "linux/arm64"]), &layout).expect("layout");
    let opts = ImportOptions { platform: "linux/arm64".parse().expect("platform"), ..Default::default() };
    let rec = import(&store, &layout, &opts, &NoProgress).expect("import").images.remove(0);
    assert_eq!(rec.platform, "linux/arm64");
    let a = &rec.annotations;
    assert_eq!(a.index_descriptor.get("level").map(String::as_str), Some("index-descriptor"));
    assert_eq!(a.index.get("level").map(String::as_str), Some("index"));
    assert_eq!(a.manifest_descriptor.get("level").map(String::as_str), Some("manifest-descriptor"));
    assert_eq!(a.manifest.get("level").map(String::as_str), Some("manifest"));
    // Only the arm64 manifest (and its config) came in; the layers are shared by both platforms.
    let amd64: Digest = built.manifest_digests[0].parse().expect("digest");
    let arm64: Digest = built.manifest_digests[1].parse().expect("digest");
    assert!(store.content().info(&arm64).is_ok());
    assert!(store.content().info(&amd64).is_err());

    let none = ImportOptions { platform: "linux/s390x".parse().expect("platform"), ..Default::default() };
    let err = import(&store, &layout, &none, &NoProgress).expect_err("no such platform");
    assert!(matches!(err, ImageError::NoMatchingPlatform { .. }), "{err}");
    assert!(err.to_string().contains("linux/amd64, linux/arm64"), "{err}");

    let all = ImportOptions { all_platforms: true, ..Default::default() };
    import(&store, &layout, &all, &NoProgress).expect("all platforms");
    assert!(store.content().info(&amd64).is_ok());
}

#[test]
fn imports_oci_and_docker_archives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let oci = dir.path().join("img.tar");
    write_oci_archive(&spec("example.com/oci:1", &["linux/amd64", "linux/arm64"]), &oci).expect("archive");
    let opts = ImportOptions { platform: Platform::new("linux", "amd64", None), ..Default::default() };
    let rec = import(&store, &oci, &opts, &NoProgress).expect("oci-archive").images.remove(0);
    assert_eq!(rec.name, "example.com/oci:1");

    let docker = dir.path().join("docker.tar");
    write_docker_archive(&spec("busybox:dock", &[]), &docker).expect("docker archive");
    let rec = import_path(&store, &docker).expect("docker-archive").images.remove(0);
    assert_eq!(rec.name, "docker.io/library/busybox:dock");
    assert_eq!(rec.target.media_type, "application/vnd.docker.distribution.manifest.v2+json");
    let r = skiff_image::resolve::resolve(store.content(), &skiff_image::model::Desc::from_store(&rec.target), &opts.platform)
        .expect("resolve");
    assert_eq!(r.manifest.layers.len(), 2);
    assert!(r.manifest.layers.iter().all(|l| l.media_type == "application/vnd.docker.image.rootfs.diff.tar"));
}

#[test]
fn corrupt_blob_is_rejected_and_store_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("layout");
    let built = write_layout(&spec("example.com/bad:1", &[]), &layout).expect("layout");
    // Flip the bytes of the first layer, keeping its size.
    let layer = built.blobs.iter().find(|(_, b)| b.len() > 200).map(|(d, _)| d.clone()).expect("layer");
    let path = layout.join("blobs/sha256").join(layer.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).expect("write");
    let err = import_path(&store, &layout).expect_err("mismatch");
    assert!(matches!(err, ImageError::Store(skiff_store::StoreError::DigestMismatch { .. })), "{err}");
    assert!(err.to_string().contains(&layer), "names the digest: {err}");
    assert_empty(&store);
}

#[test]
fn missing_blob_is_rejected_and_store_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("layout");
    let built = write_layout(&spec("example.com/missing:1", &["linux/amd64", "linux/arm64"]), &layout).expect("layout");
    let victim = built.manifest_digests[0].trim_start_matches("sha256:").to_string();
    fs::remove_file(layout.join("blobs/sha256").join(&victim)).expect("rm");
    let opts = ImportOptions { platform: Platform::new("linux", "amd64", None), ..Default::default() };
    let err = import(&store, &layout, &opts, &NoProgress).expect_err("missing");
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    assert!(err.to_string().contains(&victim), "{err}");
    assert_empty(&store);
}

#[test]
fn unknown_media_type_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let mut s = spec("example.com/weird:1", &[]);
    s.layers[1].media_type = "application/vnd.example.mystery";
    write_layout(&s, &dir.path().join("layout")).expect("layout");
    let err = import_path(&store, &dir.path().join("layout")).expect_err("unknown");
    assert!(matches!(err, ImageError::UnsupportedMediaType { .. }), "{err}");
    assert!(err.to_string().contains("application/vnd.example.mystery"), "{err}");
    assert_empty(&store);
    let mut ok = spec("example.com/fine:1", &[]);
    ok.layers[1].media_type = OCI_LAYER;
    assert_eq!(ok.layers[1].media_type, OCI_LAYER);
}

#[test]
fn truncated_archive_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let archive = dir.path().join("img.tar");
    write_oci_archive(&spec("example.com/trunc:1", &[]), &archive).expect("archive");
    let bytes = fs::read(&archive).expect("read");
    for cut in [bytes.len() / 2, 700] {
        fs::write(&archive, &bytes[..cut]).expect("truncate");
        let err = import_path(&store, &archive).expect_err("truncated");
        assert!(matches!(err, ImageError::InvalidArchive { .. } | ImageError::MissingBlob { .. }), "{err}");
        assert_empty(&store);
    }
}

fn raw_tar_entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn hostile_archive_entries_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    for name in ["../evil", "blobs/../../evil", "/etc/evil"] {
        let mut bytes = raw_tar_entry("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        bytes.extend(raw_tar_entry(name, b"x"));
        bytes.extend([0u8; 1024]);
        let archive = dir.path().join("evil.tar");
        fs::write(&archive, bytes).expect("write");
        let err = import_path(&store, &archive).expect_err("hostile");
        assert!(matches!(err, ImageError::HostileEntry { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
        assert_empty(&store);
    }
    assert!(!dir.path().join("evil").exists());
}

#[test]
fn concurrent_imports_of_one_image_both_land_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let layout = dir.path().join("layout");
    let built = write_layout(&spec("example.com/race:1", &[]), &layout).expect("layout");
    std::thread::scope(|s| {
        let a = s.spawn(|| import_path(&store, &layout));
        let b = s.spawn(|| import_path(&store, &layout));
        a.join().expect("thread a").expect("import a");
        b.join().expect("thread b").expect("import b");
    });
    assert_eq!(store.content().list(&[]).expect("list").len(), built.blobs.len(), "each blob stored once");
    for info in store.content().list(&[]).expect("list") {
        store.content().verify(&info.digest).expect("intact");
    }
    assert!(store.leases().list().expect("leases").is_empty());
    assert_eq!(store.images().list().expect("images").len(), 1);
}

#[test]
fn symlink_escaping_the_archive_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let target = "../../../../etc/passwd";
    let mut h = tar::Header::new_old();
    let name = "blobs/sha256/link";
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    h.set_size(0);
    h.set_mode(0o777);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_cksum();
    let mut bytes = raw_tar_entry("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend([0u8; 1024]);
    let archive = dir.path().join("link.tar");
    fs::write(&archive, bytes).expect("write");
    let err = import_path(&store, &archive).expect_err("escaping symlink");
    assert!(matches!(err, ImageError::HostileEntry { .. }), "{err}");
    assert!(err.to_string().contains("outside the archive"), "{err}");
    assert_empty(&store);
}
