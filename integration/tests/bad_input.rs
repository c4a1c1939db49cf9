//! Bad input through the CLI: a clear error naming what is wrong, a non-zero exit, the store unchanged.

use std::fs;
use std::path::Path;

use skiff_integration::{count_files, Skiff};
use skiff_testimage::{files_layer, write_layout, write_oci_archive, ImageSpec};

fn small(name: &str) -> ImageSpec {
    let mut s = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox (apt-get install busybox-static)");
    // Unique bytes per image, so no layer is already stored from another test image.
    s.layers = vec![
        files_layer(&[("x", name.as_bytes())], true).expect("layer"),
        files_layer(&[("y", name.as_bytes())], false).expect("layer"),
    ];
    s
}

/// Asserts the store holds exactly `before` and no leftovers.
fn unchanged(s: &Skiff, before: &[String]) {
    assert_eq!(s.content(), before, "content unchanged");
    assert_eq!(count_files(&s.root.join("content/ingest")), 0, "no temp files");
    assert_eq!(count_files(&s.root.join("content/blobs/sha256")), before.len(), "no stray blob files");
}

fn import(s: &Skiff, path: &Path) -> skiff_integration::Run {
    s.cli(&["images", "import", path.to_str().expect("utf8")])
}

#[test]
fn every_bad_input_is_refused_cleanly() {
    let s = Skiff::start().expect("skiffd");
    // Something already stored, to show that failures leave it alone.
    let good = s.path("good");
    write_layout(&small("example.com/good:1"), &good).expect("layout");
    import(&s, &good).ok();
    let before = s.content();
    let images = s.images();

    // A blob whose bytes do not match its digest.
    let layout = s.path("corrupt");
    let built = write_layout(&small("example.com/corrupt:1"), &layout).expect("layout");
    let layer = built.blobs.iter().find(|(_, b)| b.len() > 100 && b[0] == 0x1f).map(|(d, _)| d.clone()).expect("gzip layer");
    let p = layout.join("blobs/sha256").join(layer.trim_start_matches("sha256:"));
    let mut b = fs::read(&p).expect("read");
    b[20] ^= 1;
    fs::write(&p, b).expect("write");
    import(&s, &layout).fails_with(&["digest mismatch", &layer]);
    unchanged(&s, &before);

    // An index pointing at a missing blob.
    let layout = s.path("missing");
    let built = write_layout(&small("example.com/missing:1"), &layout).expect("layout");
    let config = skiff_testimage::sha256(&built.config);
    fs::remove_file(layout.join("blobs/sha256").join(config.trim_start_matches("sha256:"))).expect("rm");
    import(&s, &layout).fails_with(&["missing", &config]);
    unchanged(&s, &before);

    // A manifest with an unknown media type.
    let layout = s.path("unknown");
    let mut spec = small("example.com/unknown:1");
    spec.layers[0].media_type = "application/vnd.example.not-a-layer";
    write_layout(&spec, &layout).expect("layout");
    import(&s, &layout).fails_with(&["unsupported media type", "application/vnd.example.not-a-layer"]);
    unchanged(&s, &before);

    // A truncated archive.
    let archive = s.path("trunc.tar");
    write_oci_archive(&small("example.com/trunc:1"), &archive).expect("archive");
    let bytes = fs::read(&archive).expect("read");
    fs::write(&archive, &bytes[..bytes.len() * 2 / 3]).expect("truncate");
    let err = import(&s, &archive).fails_with(&["trunc.tar"]);
    assert!(err.contains("truncated") || err.contains("missing"), "{err}");
    unchanged(&s, &before);

    // Archive entries with `..` or an absolute path.
    for (i, evil) in ["../escape", "/abs/path"].iter().enumerate() {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..evil.len()].copy_from_slice(evil.as_bytes());
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut tarball = h.as_bytes().to_vec();
        tarball.extend([b'x'; 512]);
        tarball.extend([0u8; 1024]);
        let path = s.path(&format!("evil{i}.tar"));
        fs::write(&path, tarball).expect("write");
        import(&s, &path).fails_with(&["unsafe archive entry", evil]);
        unchanged(&s, &before);
    }
    assert!(!s.dir.path().join("escape").exists() && !Path::new("/abs/path").exists());

    // References that do not parse, and names that do not exist.
    s.cli(&["images", "tag", "example.com/good:1", "Bad//Ref"]).fails_with(&["invalid reference", "Bad//Ref"]);
    s.cli(&["images", "inspect", "example.com/nope:1"]).fails_with(&["not found", "nope"]);
    s.cli(&["images", "annotate", "example.com/nope:1", "example.com/x:1", "-a", "k=v"]).fails_with(&["not found", "nope"]);
    s.cli(&["images", "annotate", "example.com/good:1", "example.com/x:1", "-a", "novalue"]).fails_with(&["KEY=VALUE"]);
    s.cli(&["images", "annotate", "example.com/good:1", "example.com/x:1", "--target", "index", "-a", "k=v"]).fails_with(&["needs an index"]);
    s.cli(&["images", "inspect", "example.com/good:1", "--platform", "linux"]).fails_with(&["invalid platform"]);
    s.cli(&["content", "info", "sha256:abc"]).fails_with(&["invalid digest"]);
    s.cli(&["images", "import", "/nonexistent/path"]).fails_with(&["/nonexistent/path"]);
    unchanged(&s, &before);
    assert_eq!(s.images(), images);
}
