//! Unpacking real layers into real snapshots (run as root: overlay mounts, ownership, device nodes).

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use skiff_image::import::{import, ImportOptions};
use skiff_image::model::Desc;
use skiff_image::resolve::{resolve, Resolved};
use skiff_image::{NoProgress, Platform};
use skiff_snapshot::apply::Limits;
use skiff_snapshot::{Backend, FsSnapshotter, Kind, SnapshotError, Snapshotter, Unpacker};
use skiff_store::{Store, StoreOptions};
use skiff_testimage::{write_layout, ImageSpec, Layer};

/// Tar entries for building layers by hand.
enum E<'a> {
    /// PAX records for the next entry.
    Pax(&'a [(&'a str, &'a str)]),
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32, u64, u64),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        if let E::Pax(records) = e {
            let mut body = Vec::new();
            for (k, v) in *records {
                let rest = format!(" {k}={v}\n");
                let mut len = rest.len() + 1;
                while format!("{len}{rest}").len() != len {
                    len += 1;
                }
                body.extend_from_slice(format!("{len}{rest}").as_bytes());
            }
            h.as_gnu_mut().expect("gnu").name[..9].copy_from_slice(b"PaxHeader");
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(body.len() as u64);
            h.set_cksum();
            b.append(&h, &body[..]).expect("pax");
            continue;
        }
        let (path, kind, data): (&str, tar::EntryType, &[u8]) = match e {
            E::Dir(p, m) => {
                h.set_mode(*m);
                (p, tar::EntryType::Directory, b"")
            }
            E::File(p, d, m, uid, gid) => {
                h.set_mode(*m);
                h.set_uid(*uid);
                h.set_gid(*gid);
                (p, tar::EntryType::Regular, d)
            }
            E::Link(p, t) => {
                h.set_mode(0o777);
                h.set_link_name(t).expect("link name");
                (p, tar::EntryType::Symlink, b"")
            }
            E::Hard(p, t) => {
                h.set_mode(0o644);
                h.as_gnu_mut().expect("gnu").linkname[..t.len()].copy_from_slice(t.as_bytes());
                (p, tar::EntryType::Link, b"")
            }
            E::Char(p, maj, min) => {
                h.set_mode(0o666);
                h.set_device_major(*maj).expect("major");
                h.set_device_minor(*min).expect("minor");
                (p, tar::EntryType::Char, b"")
            }
            E::Fifo(p) => {
                h.set_mode(0o600);
                (p, tar::EntryType::Fifo, b"")
            }
            E::Pax(_) => unreachable!("handled above"),
        };
        // Raw name bytes, so that hostile paths (`..`, absolute) reach the tar as they are.
        h.as_gnu_mut().expect("gnu").name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    b.into_inner().expect("tar")
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: Store,
    unpacker: Unpacker,
}

fn fixture(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let store = Store::open(&root, &StoreOptions::default()).expect("store").0;
    let snapshotter = FsSnapshotter::open(&root, store.db().clone(), backend).expect("snapshotter");
    let unpacker = Unpacker::new(Arc::new(snapshotter), Limits { floor: 64 << 20, ratio: 100 });
    Fixture { _dir: dir, root, store, unpacker }
}

fn image(f: &Fixture, name: &str, layers: Vec<Layer>) -> Resolved {
    let mut spec = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox");
    spec.layers = layers;
    let layout = f.root.parent().expect("parent").join(name.replace(['/', ':'], "_"));
    write_layout(&spec, &layout).expect("layout");
    let rec = import(&f.store, &layout, &ImportOptions::default(), &NoProgress).expect("import").images.remove(0);
    resolve(f.store.content(), &Desc::from_store(&rec.target), &Platform::host()).expect("resolve")
}

/// `path mode uid:gid kind [size|target]`, sorted, for every entry under `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(dir).expect("rel").display().to_string();
            let kind = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link->{}", std::fs::read_link(&p).expect("readlink").display())
            } else {
                format!("file:{}", String::from_utf8_lossy(&std::fs::read(&p).expect("read")))
            };
            out.push(format!("{rel} {:o} {}:{} {kind}", m.mode() & 0o7777, m.uid(), m.gid()));
        }
    }
    out.sort();
    out
}

fn three_layers() -> Vec<Layer> {
    let l1 = tar_of(&[
        E::Dir("etc/", 0o755),
        E::File("etc/config", b"v1", 0o644, 0, 0),
        E::File("etc/removed", b"gone soon", 0o600, 0, 0),
        E::Dir("data/", 0o755),
        E::File("data/old", b"old", 0o644, 1000, 1000),
        E::Dir("opaque/", 0o755),
        E::File("opaque/hidden", b"hidden", 0o644, 0, 0),
        E::File("bin/suid", b"#!", 0o4755, 0, 0),
    ]);
    let l2 = tar_of(&[
        E::Pax(&[("SCHILY.xattr.user.skiff", "annotated"), ("SCHILY.xattr.trusted.overlay.opaque", "y")]),
        E::File("etc/config", b"v2", 0o640, 0, 42),
        E::File("etc/.wh.removed", b"", 0o644, 0, 0),
        E::Link("etc/alias", "config"),
        E::File("data/new", b"new", 0o600, 1000, 1000),
    ]);
    let l3 = tar_of(&[
        E::Dir("opaque/", 0o700),
        E::File("opaque/.wh..wh..opq", b"", 0o644, 0, 0),
        E::File("opaque/fresh", b"fresh", 0o644, 0, 0),
        E::Hard("data/hardlink", "data/old"),
    ]);
    vec![
        Layer::from_tar(l1, true).expect("l1"),
        Layer::from_tar(l2, true).expect("l2"),
        Layer::from_tar(l3, false).expect("l3"),
    ]
}

fn expected() -> Vec<String> {
    let mut v: Vec<String> = [
        "bin 755 0:0 dir",
        "bin/suid 4755 0:0 file:#!",
        "data 755 0:0 dir",
        "data/hardlink 644 1000:1000 file:old",
        "data/new 600 1000:1000 file:new",
        "data/old 644 1000:1000 file:old",
        "etc 755 0:0 dir",
        "etc/alias 777 0:0 link->config",
        "etc/config 640 0:42 file:v2",
        "opaque 700 0:0 dir",
        "opaque/fresh 644 0:0 file:fresh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.sort();
    v
}

fn mount_view(f: &Fixture, key: &str, top: &str, at: &Path) -> Vec<skiff_snapshot::Mount> {
    let mounts = f.unpacker.snapshotter().view(key, top).expect("view");
    std::fs::create_dir_all(at).expect("mountpoint");
    skiff_snapshot::mount::mount_all(&mounts, at).expect("mount");
    mounts
}

#[test]
fn overlay_unpack_gives_exactly_the_expected_tree() {
    let f = fixture(Backend::Overlay);
    let img = image(&f, "example.com/three:1", three_layers());
    let report = f.unpacker.unpack(&f.store, &img).expect("unpack");
    assert_eq!((report.unpacked, report.present), (3, 0));
    let at = f.root.parent().expect("parent").join("merged");
    mount_view(&f, "check-view", &report.chain_id, &at);
    let got = listing(&at);
    let config = at.join("etc/config");
    let xattr = xattr::get(&config, "user.skiff").expect("getxattr");
    let forged = xattr::get(&config, "trusted.overlay.opaque").expect("getxattr");
    let mtime = std::fs::metadata(&config).expect("stat").mtime();
    skiff_snapshot::mount::unmount(&at).expect("umount");
    assert_eq!(got, expected());
    assert_eq!(xattr.as_deref(), Some(&b"annotated"[..]), "xattrs from PAX records are applied");
    assert_eq!(forged, None, "overlay's own xattrs are never taken from a layer");
    assert_eq!(mtime, 1_700_000_000, "mtimes are applied");
    let again = f.unpacker.unpack(&f.store, &img).expect("again");
    assert_eq!((again.unpacked, again.present), (0, 3));
}

#[test]
fn native_unpack_gives_the_same_tree() {
    let f = fixture(Backend::Native);
    let img = image(&f, "example.com/three:1", three_layers());
    let report = f.unpacker.unpack(&f.store, &img).expect("unpack");
    let mounts = f.unpacker.snapshotter().view("v", &report.chain_id).expect("view");
    assert_eq!(mounts[0].kind, "bind");
    assert_eq!(listing(Path::new(&mounts[0].source)), expected());
}

#[test]
fn a_shared_base_layer_is_unpacked_once() {
    let f = fixture(Backend::Overlay);
    let base = Layer::from_tar(tar_of(&[E::File("base", b"shared", 0o644, 0, 0)]), true).expect("base");
    let a = Layer::from_tar(tar_of(&[E::File("a", b"a", 0o644, 0, 0)]), true).expect("a");
    let b = Layer::from_tar(tar_of(&[E::File("b", b"b", 0o644, 0, 0)]), true).expect("b");
    let one = image(&f, "example.com/one:1", vec![base.clone(), a]);
    let two = image(&f, "example.com/two:1", vec![base, b]);
    std::thread::scope(|s| {
        let x = s.spawn(|| f.unpacker.unpack(&f.store, &one).expect("one"));
        let y = s.spawn(|| f.unpacker.unpack(&f.store, &two).expect("two"));
        let (x, y) = (x.join().expect("x"), y.join().expect("y"));
        assert_eq!(x.unpacked + y.unpacked, 3, "base once, then a and b");
    });
    let snaps = f.unpacker.snapshotter().list().expect("list");
    assert_eq!(snaps.len(), 3);
    assert!(snaps.iter().all(|s| s.kind == Kind::Committed));
    // GC keeps what an image needs; with only `one` needed, `two`'s top goes.
    let needed: HashSet<String> = skiff_snapshot::needed_by(&one).into_iter().collect();
    let removed = f.unpacker.collect(&needed).expect("collect");
    assert_eq!(removed, vec![skiff_snapshot::needed_by(&two)[1].clone()]);
}

/// Unpacks a base layer then `bad`; asserts a clean refusal naming the layer.
fn refuse(f: &Fixture, name: &str, bad: Layer, needle: &str) {
    let base = Layer::from_tar(tar_of(&[E::Dir("etc/", 0o755), E::File("etc/ok", b"ok", 0o644, 0, 0)]), true).expect("base");
    let bad_digest = skiff_testimage::sha256(&bad.bytes);
    let img = image(f, name, vec![base, bad]);
    let before: Vec<String> = f.unpacker.snapshotter().list().expect("list").into_iter().map(|i| i.key).collect();
    let err = f.unpacker.unpack(&f.store, &img).expect_err(name);
    let msg = err.to_string();
    assert!(msg.contains(&bad_digest), "{name}: {msg} should name the layer");
    assert!(msg.contains(needle), "{name}: {msg} should mention {needle:?}");
    let after: Vec<String> = f.unpacker.snapshotter().list().expect("list").into_iter().map(|i| i.key).collect();
    let mut expect = before.clone();
    if expect.is_empty() {
        expect.push(skiff_snapshot::needed_by(&img)[0].clone());
    }
    assert_eq!(after, expect, "{name}: only the base layer's snapshot remains");
    assert!(matches!(err, SnapshotError::Layer { .. } | SnapshotError::DiffIdMismatch { .. } | SnapshotError::BadLayer { .. }), "{err:?}");
}

/// The hostile corpus gives the same refusal on both backends.
#[test]
fn hostile_layers_are_refused_and_write_nothing_outside() {
    for backend in [Backend::Overlay, Backend::Native] {
        hostile_layers_on(backend);
    }
}

fn hostile_layers_on(backend: Backend) {
    let f = fixture(backend);
    let outside = f.root.parent().expect("parent").join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    let out = outside.display().to_string();
    refuse(&f, "x/dotdot:1", Layer::from_tar(tar_of(&[E::File("../../escape", b"x", 0o644, 0, 0)]), true).expect("l"), "'..'");
    refuse(&f, "x/abs:1", Layer::from_tar(tar_of(&[E::File("/abs-escape", b"x", 0o644, 0, 0)]), true).expect("l"), "absolute");
    refuse(
        &f,
        "x/symlink:1",
        Layer::from_tar(tar_of(&[E::Link("evil", &out), E::File("evil/pwned", b"x", 0o644, 0, 0)]), true).expect("l"),
        "symlink",
    );
    refuse(&f, "x/hardlink:1", Layer::from_tar(tar_of(&[E::Hard("stolen", "../../../etc/passwd")]), true).expect("l"), "hard link");
    assert_eq!(std::fs::read_dir(&outside).expect("outside").count(), 0, "nothing written outside");
    assert!(!Path::new("/abs-escape").exists());

    // A layer whose diffID does not match the config.
    let mut spec_layer = Layer::from_tar(tar_of(&[E::File("f", b"x", 0o644, 0, 0)]), true).expect("l");
    spec_layer.diff_id = skiff_testimage::sha256(b"something else");
    refuse(&f, "x/diffid:1", spec_layer, "diffID mismatch");

    // A truncated gzip stream (the blob itself is intact, its content is cut).
    let whole = Layer::from_tar(tar_of(&[E::File("big", &vec![7u8; 200_000], 0o644, 0, 0)]), true).expect("l");
    let mut cut = whole.clone();
    cut.bytes.truncate(whole.bytes.len() / 2);
    refuse(&f, "x/truncated:1", cut, "truncated");

    // A decompression bomb: 100 MiB of zeros in a layer of ~100 KiB; this fixture allows 64 MiB.
    let bomb = Layer::from_tar(tar_of(&[E::File("zeros", &vec![0u8; 100 << 20], 0o644, 0, 0)]), true).expect("l");
    refuse(&f, "x/bomb:1", bomb, "decompression bomb");
}

#[test]
fn devices_fifos_and_crash_leftovers() {
    let f = fixture(Backend::Overlay);
    let img = image(
        &f,
        "example.com/dev:1",
        vec![Layer::from_tar(tar_of(&[E::Dir("dev/", 0o755), E::Char("dev/null", 1, 3), E::Fifo("dev/pipe")]), true).expect("l")],
    );
    let r = f.unpacker.unpack(&f.store, &img).expect("unpack");
    let dir = f.root.join("snapshots").join(f.unpacker.snapshotter().stat(&r.chain_id).expect("stat").id.to_string()).join("fs");
    let null = std::fs::symlink_metadata(dir.join("dev/null")).expect("null");
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(dir.join("dev/pipe")).expect("pipe").file_type().is_fifo());

    // An unpack interrupted by a crash leaves an active snapshot and maybe a stray directory.
    let labels = BTreeMap::from([(skiff_snapshot::unpack::LABEL_UNPACKING.to_string(), "x".to_string())]);
    f.unpacker.snapshotter().prepare("unpack-crashed", Some(&r.chain_id), labels).expect("prepare");
    std::fs::create_dir_all(f.root.join("snapshots/new-999/fs")).expect("stray");
    assert_eq!(f.unpacker.clean_interrupted().expect("clean"), 1);
    let reopened = FsSnapshotter::open(&f.root, f.store.db().clone(), Backend::Overlay).expect("reopen");
    assert!(!f.root.join("snapshots/new-999").exists());
    assert_eq!(reopened.list().expect("list").len(), 1);
}

#[test]
fn an_image_of_128_layers_mounts() {
    let f = fixture(Backend::Overlay);
    let layers: Vec<Layer> = (0..128)
        .map(|i| {
            let name = format!("layer-{i:03}");
            Layer::from_tar(tar_of(&[E::File(&name, name.as_bytes(), 0o644, 0, 0)]), false).expect("layer")
        })
        .collect();
    let img = image(&f, "example.com/deep:1", layers);
    let report = f.unpacker.unpack(&f.store, &img).expect("unpack");
    assert_eq!(report.unpacked, 128);
    let at = f.root.parent().expect("parent").join("deep");
    let mounts = mount_view(&f, "deep-view", &report.chain_id, &at);
    assert!(mounts[0].chdir.is_some(), "a 128-layer chain needs relative lowerdirs under a test root");
    let names = (std::fs::read_dir(&at).expect("read").count(), std::fs::read_to_string(at.join("layer-000")), std::fs::read_to_string(at.join("layer-127")));
    skiff_snapshot::mount::unmount(&at).expect("umount");
    assert_eq!(names.0, 128);
    assert_eq!(names.1.expect("first layer"), "layer-000");
    assert_eq!(names.2.expect("top layer"), "layer-127");
    // A writable snapshot on the 128-layer chain mounts too (upper and work dirs relative as well).
    let rw = f.unpacker.snapshotter().prepare("deep-rw", Some(&report.chain_id), BTreeMap::new()).expect("prepare");
    std::fs::create_dir_all(&at).expect("mountpoint");
    skiff_snapshot::mount::mount_all(&rw, &at).expect("mount rw");
    std::fs::write(at.join("new-file"), b"written").expect("write through overlay");
    skiff_snapshot::mount::unmount(&at).expect("umount");
}
