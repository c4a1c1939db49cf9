//! Snapshots through skiffd: unpack on import, listing, usage, GC, a hostile layer, kill -9 mid-unpack.

use std::path::Path;
use std::time::{Duration, Instant};

use skiff_integration::{bin, count_files, Skiff};
use skiff_testimage::{files_layer, random_layer, write_layout, write_oci_archive, ImageSpec, Layer};

fn spec(name: &str, layers: Vec<Layer>) -> ImageSpec {
    let mut s = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox");
    s.layers = layers;
    s
}

fn snapshots(s: &Skiff) -> Vec<serde_json::Value> {
    let out = s.cli(&["snapshots", "ls", "-o", "json"]).ok();
    serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("json")
}

fn import(s: &Skiff, spec: &ImageSpec, extra: &[&str]) -> skiff_integration::Run {
    let layout = s.path(&spec.name.replace(['/', ':'], "_"));
    write_layout(spec, &layout).expect("layout");
    let mut args = vec!["images", "import", layout.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    s.cli(&args)
}

#[test]
fn import_unpacks_shares_layers_and_gc_frees_them() {
    let s = Skiff::start().expect("skiffd");
    let base = files_layer(&[("base.txt", b"shared base")], true).expect("layer");
    let a = spec("example.com/a:1", vec![base.clone(), files_layer(&[("a.txt", b"a")], true).expect("layer")]);
    let b = spec("example.com/b:1", vec![base, files_layer(&[("b.txt", b"b")], true).expect("layer")]);
    let out = import(&s, &a, &[]);
    assert!(out.stderr.contains("2 layer(s) unpacked"), "{}", out.stderr);
    out.ok();
    let out = import(&s, &b, &[]);
    assert!(out.stderr.contains("1 layer(s) unpacked, 1 already unpacked"), "{}", out.stderr);
    out.ok();
    let snaps = snapshots(&s);
    assert_eq!(snaps.len(), 3, "the shared base is unpacked once: {snaps:?}");
    assert!(snaps.iter().all(|x| x["kind"] == "committed"));
    let usage = s.cli(&["snapshots", "usage", "-o", "json"]).ok();
    let usage: Vec<serde_json::Value> = serde_json::from_str(&usage).expect("json");
    assert!(usage.iter().all(|u| u["inodes"].as_u64().unwrap_or(0) >= 1), "{usage:?}");
    let key = snaps[0]["key"].as_str().expect("key").to_string();
    s.cli(&["snapshots", "mounts", &key]).fails_with(&["committed snapshot has no mounts"]);
    let all = snapshots(&s);
    let base = all.iter().find(|x| x["parent"] == "").expect("base")["key"].as_str().expect("key");
    s.cli(&["snapshots", "rm", base]).fails_with(&["is built on it"]);

    s.cli(&["images", "rm", "example.com/b:1"]).ok();
    assert_eq!(snapshots(&s).len(), 2, "b's top layer collected, the shared base kept");
    s.cli(&["images", "rm", "example.com/a:1"]).ok();
    assert!(snapshots(&s).is_empty());
    assert_eq!(count_files(&s.root.join("snapshots")), 0, "no snapshot directories left");

    let out = import(&s, &a, &["--no-unpack"]);
    out.ok();
    assert!(snapshots(&s).is_empty(), "--no-unpack stores content only");
}

#[test]
fn a_hostile_layer_fails_the_unpack_and_leaves_other_snapshots() {
    let s = Skiff::start().expect("skiffd");
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"../../escaped");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    evil.append(&h, &b"x"[..]).expect("append");
    let evil = Layer::from_tar(evil.into_inner().expect("tar"), true).expect("layer");
    let evil_digest = skiff_testimage::sha256(&evil.bytes);
    let good = files_layer(&[("ok.txt", b"fine")], true).expect("layer");
    // Another image shares the good base layer.
    import(&s, &spec("example.com/fine:1", vec![good.clone()]), &[]).ok();
    let shared = s.content();
    import(&s, &spec("example.com/evil:1", vec![good, evil]), &[])
        .fails_with(&["image example.com/evil:1 was not kept", &evil_digest, "../../escaped", "'..'"]);
    let snaps = snapshots(&s);
    assert_eq!(snaps.len(), 1, "the good base layer's snapshot stays for the other image: {snaps:?}");
    assert!(!s.root.join("escaped").exists() && !s.dir.path().join("escaped").exists());
    // Not left looking runnable: gone from the list, and only what the other image shares is kept.
    assert_eq!(s.images(), ["example.com/fine:1"]);
    assert_eq!(s.content(), shared, "the refused image's own blobs are collected");
    s.cli(&["run", "--rm", "example.com/evil:1", "true"]).fails_with(&["not found"]);
}

#[test]
fn kill9_during_unpack_leaves_no_half_made_snapshot() {
    let mut s = Skiff::start().expect("skiffd");
    let layers = (0..3).map(|i| random_layer(i + 200, 48 << 20)).collect::<anyhow::Result<Vec<_>>>().expect("layers");
    let archive = s.path("big.tar");
    write_oci_archive(&spec("example.com/unpack:1", layers), &archive).expect("archive");
    let mut child = std::process::Command::new(bin("skiff"))
        .args(["--address", s.socket.to_str().expect("utf8"), "images", "import", "-q", archive.to_str().expect("utf8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("import");
    // Wait for the first unpack directory to appear, then kill the daemon.
    let snaps = s.root.join("snapshots");
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_files(&snaps) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    s.kill9();
    let _ = child.wait();
    s.spawn().expect("restart");
    let left = snapshots(&s);
    assert!(left.iter().all(|x| x["kind"] == "committed"), "no active unpack snapshot survives a restart: {left:?}");
    assert_eq!(count_files(&snaps), left.len(), "no stray snapshot directories");
    // Importing again completes the unpack.
    s.cli(&["images", "import", "-q", archive.to_str().expect("utf8")]).ok();
    assert_eq!(snapshots(&s).len(), 3);
}

#[test]
fn device_nodes_need_cap_mknod() {
    let s = Skiff::start_under(&["setpriv", "--bounding-set", "-mknod"]).expect("skiffd without CAP_MKNOD");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("dev/null").expect("path");
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(1).expect("major");
    h.set_device_minor(3).expect("minor");
    h.set_mode(0o666);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).expect("append");
    let dev = Layer::from_tar(b.into_inner().expect("tar"), true).expect("layer");
    let dev_digest = skiff_testimage::sha256(&dev.bytes);
    let base = files_layer(&[("whiteouts-still-work", b"x")], true).expect("layer");
    import(&s, &spec("example.com/dev:1", vec![base, dev]), &[])
        .fails_with(&["device node in an unprivileged context", &dev_digest, "dev/null"]);
    // An image that cannot be unpacked here is not kept looking runnable; nothing else needed its base.
    assert!(s.images().is_empty(), "the refused image is removed");
    assert_eq!(snapshots(&s).len(), 0, "the device layer's snapshot is removed, and the base no image needs");
}
