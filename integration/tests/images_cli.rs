//! The image workflow through skiffd and the skiff CLI: import, annotate, inspect, export, tag, rm.

use std::collections::BTreeMap;
use std::path::Path;

use skiff_integration::Skiff;
use skiff_testimage::{write_docker_archive, write_layout, write_oci_archive, ImageSpec};

fn busybox(name: &str, platforms: &[&str]) -> ImageSpec {
    let mut s = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)");
    if !platforms.is_empty() {
        s.platforms = platforms.iter().map(|p| p.to_string()).collect();
    }
    s.index_descriptor_annotations = BTreeMap::from([("org.opencontainers.image.source".into(), "https://example.com/src".into())]);
    s.index_annotations = BTreeMap::from([("org.opencontainers.image.title".into(), "Skiff demo".into())]);
    s.manifest_descriptor_annotations = BTreeMap::from([("com.example.descriptor".into(), "md".into())]);
    s.manifest_annotations = BTreeMap::from([("com.urunc.unikernel.binary".into(), "/bin/busybox".into())]);
    s
}

fn inspect(s: &Skiff, name: &str) -> serde_json::Value {
    serde_json::from_str(&s.cli(&["images", "inspect", name]).ok()).expect("inspect json")
}

#[test]
fn import_annotate_inspect_keeps_source_and_layers() {
    let s = Skiff::start().expect("skiffd");
    let layout = s.path("layout");
    write_layout(&busybox("localhost/demo/busybox:1", &["linux/amd64", "linux/arm64"]), &layout).expect("layout");
    let out = s.cli(&["images", "import", layout.to_str().expect("utf8"), "--platform", "linux/amd64"]).ok();
    assert!(out.starts_with("localhost/demo/busybox:1 sha256:"), "{out}");

    let src = inspect(&s, "localhost/demo/busybox:1");
    let src_manifest = src["Manifest"]["Digest"].as_str().expect("digest").to_string();
    let src_bytes = s.cli(&["content", "get", &src_manifest]).ok();

    let out = s
        .cli(&["images", "annotate", "localhost/demo/busybox:1", "localhost/demo/busybox:signed", "--annotation", "build.example.com/git-sha=abcdef123456"])
        .ok();
    assert!(out.starts_with("localhost/demo/busybox:signed sha256:"), "{out}");
    let dst = inspect(&s, "localhost/demo/busybox:signed");
    assert_ne!(dst["Manifest"]["Digest"], src["Manifest"]["Digest"], "a new manifest");
    assert_ne!(dst["Target"]["Digest"], src["Target"]["Digest"], "a new index over it");
    assert_eq!(dst["Layers"], src["Layers"], "the same layers");
    assert_eq!(dst["Config"], src["Config"], "the same config");
    assert_eq!(dst["Annotations"]["build.example.com/git-sha"], "abcdef123456");
    // Every level's annotations, with the level each came from.
    let levels: Vec<(String, String)> = dst["AnnotationSources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|a| (a["Level"].as_str().unwrap_or("").to_string(), a["Key"].as_str().unwrap_or("").to_string()))
        .collect();
    for want in [
        ("index", "org.opencontainers.image.title"),
        ("manifest-descriptor", "com.example.descriptor"),
        ("manifest", "com.urunc.unikernel.binary"),
        ("manifest", "build.example.com/git-sha"),
        ("index-descriptor", "org.opencontainers.image.source"),
    ] {
        assert!(levels.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} missing from {levels:?}");
    }
    assert!(!levels.iter().any(|(_, k)| k == "io.containerd.image.name"), "naming keys are not image annotations");
    // SRC is unchanged, byte for byte.
    assert_eq!(inspect(&s, "localhost/demo/busybox:1")["Target"], src["Target"]);
    assert_eq!(s.cli(&["content", "get", &src_manifest]).ok(), src_bytes);

    // Go-template access, as with ctr/docker.
    let one = s.cli(&["images", "inspect", "localhost/demo/busybox:signed", "--format", r#"{{index .Annotations "build.example.com/git-sha"}}"#]).ok();
    assert_eq!(one.trim(), "abcdef123456");
    let all = s.cli(&["images", "inspect", "localhost/demo/busybox:signed", "--format", "{{json .Annotations}}"]).ok();
    let all: serde_json::Value = serde_json::from_str(all.trim()).expect("json");
    assert_eq!(all["com.urunc.unikernel.binary"], "/bin/busybox");

    // What a container's config.json gets from this image, and what the policy drops.
    s.cli(&["images", "annotate", "localhost/demo/busybox:signed", "localhost/demo/busybox:spoofed",
        "-a", "io.kubernetes.cri.container-type=sandbox", "-a", "org.systemd.property.CPUWeight=1"]).ok();
    let view = inspect(&s, "localhost/demo/busybox:spoofed");
    let runtime: Vec<(String, String)> = view["RuntimeAnnotations"].as_array().expect("runtime").iter()
        .map(|a| (a["Key"].as_str().unwrap_or("").to_string(), a["Source"].as_str().unwrap_or("").to_string())).collect();
    assert!(runtime.contains(&("com.urunc.unikernel.binary".into(), "manifest".into())), "{runtime:?}");
    assert!(runtime.contains(&("org.opencontainers.image.title".into(), "index".into())), "{runtime:?}");
    assert!(runtime.contains(&("com.example.descriptor".into(), "manifest-descriptor".into())), "{runtime:?}");
    let dropped: Vec<&str> = view["DroppedAnnotations"].as_array().expect("dropped").iter().filter_map(|a| a["Key"].as_str()).collect();
    assert_eq!(dropped, ["io.kubernetes.cri.container-type", "org.systemd.property.CPUWeight"]);

    // Per-platform and index targets.
    s.cli(&["images", "annotate", "localhost/demo/busybox:1", "localhost/demo/busybox:idx", "--target", "index", "-a", "com.example.index=1"]).ok();
    assert_eq!(inspect(&s, "localhost/demo/busybox:idx")["Index"]["Annotations"]["com.example.index"], "1");
    s.cli(&["images", "annotate", "localhost/demo/busybox:1", "localhost/demo/busybox:arm", "-a", "annotation[linux/arm64].only.arm=1"])
        .fails_with(&["manifest", "--all-platforms"]);
}

#[test]
fn export_round_trips_and_verify_catches_corruption() {
    let s = Skiff::start().expect("skiffd");
    let archive = s.path("in.tar");
    let built = write_oci_archive(&busybox("localhost/rt/busybox:1", &[]), &archive).expect("archive");
    s.cli(&["images", "import", archive.to_str().expect("utf8")]).ok();
    let out = s.path("out");
    s.cli(&["images", "export", "--format", "layout", "-O", out.to_str().expect("utf8"), "localhost/rt/busybox:1"]).ok();
    for (digest, bytes) in &built.blobs {
        let exported = std::fs::read(out.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).expect("exported blob");
        assert_eq!(&exported, bytes, "{digest} byte-identical");
    }
    let tar = s.path("out.tar");
    s.cli(&["images", "export", "-O", tar.to_str().expect("utf8"), "localhost/rt/busybox:1"]).ok();
    assert!(s.cli(&["images", "export", "-O", tar.to_str().expect("utf8"), "localhost/rt/busybox:1"]).code != 0, "no overwrite");

    assert!(s.cli(&["content", "verify"]).ok().contains("verified"));
    let victim = built.blobs.iter().max_by_key(|(_, b)| b.len()).map(|(d, _)| d.clone()).expect("layer");
    let path = s.blob_path(&victim);
    let mut bytes = std::fs::read(&path).expect("blob");
    bytes[100] ^= 0x55;
    std::fs::write(&path, bytes).expect("corrupt");
    s.cli(&["content", "verify"]).fails_with(&[&victim, "digest mismatch"]);

    // The exported archive imports into a fresh daemon with the same digests.
    let other = Skiff::start().expect("second skiffd");
    let out = other.cli(&["images", "import", tar.to_str().expect("utf8")]).ok();
    assert!(out.contains(&built.top["digest"].as_str().expect("digest").to_string()), "{out}");
}

#[test]
fn archives_listing_tag_rm_and_content_commands() {
    let s = Skiff::start().expect("skiffd");
    let docker = s.path("docker.tar");
    write_docker_archive(&busybox("busybox:docker", &[]), &docker).expect("docker archive");
    let out = s.cli(&["images", "import", docker.to_str().expect("utf8")]).ok();
    assert!(out.starts_with("docker.io/library/busybox:docker "), "{out}");

    // The same archive on standard input (`docker save ... | skiff images import -`).
    let piped = std::process::Command::new(skiff_integration::bin("skiff"))
        .args(["--address", s.socket.to_str().expect("utf8"), "images", "import", "--name", "example.com/piped:1", "-"])
        .stdin(std::fs::File::open(&docker).expect("archive"))
        .output()
        .expect("skiff import -");
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    assert!(String::from_utf8_lossy(&piped.stdout).starts_with("example.com/piped:1 "));
    assert_eq!(skiff_integration::count_files(&s.root.join("import-spool")), 0, "spool removed");
    s.cli(&["images", "rm", "example.com/piped:1"]).ok();

    let listed: serde_json::Value = serde_json::from_str(&s.cli(&["images", "ls", "--output", "json"]).ok()).expect("json");
    assert_eq!(listed[0]["name"], "docker.io/library/busybox:docker");
    assert_eq!(listed[0]["media_type"], "application/vnd.docker.distribution.manifest.v2+json");
    s.cli(&["images", "tag", "busybox:docker", "example.com/copy:1"]).ok();
    assert_eq!(s.images(), vec!["docker.io/library/busybox:docker", "example.com/copy:1"]);
    let table = s.cli(&["images", "ls"]).ok();
    assert!(table.starts_with("NAME"), "{table}");

    let content: serde_json::Value = serde_json::from_str(&s.cli(&["content", "ls", "-o", "json"]).ok()).expect("json");
    assert_eq!(content.as_array().expect("array").len(), 4, "config, manifest and two layers");

    // A hand-imported blob is a GC root until its label is removed.
    let blob = s.path("blob");
    std::fs::write(&blob, b"some bytes of my own").expect("write");
    let digest = s.cli(&["content", "import", blob.to_str().expect("utf8"), "--label", "purpose=test"]).ok().trim().to_string();
    assert_eq!(s.cli(&["content", "get", &digest]).ok(), "some bytes of my own");
    assert!(s.cli(&["content", "ls", "--filter", "purpose=test", "-q"]).ok().contains(&digest));
    s.cli(&["content", "import", blob.to_str().expect("utf8"), "--digest", "sha256:0000000000000000000000000000000000000000000000000000000000000000"])
        .fails_with(&["digest mismatch"]);
    let exported = s.path("exported");
    s.cli(&["content", "export", &digest, "-O", exported.to_str().expect("utf8")]).ok();
    assert_eq!(std::fs::read(&exported).expect("read"), b"some bytes of my own");
    assert_eq!(s.cli(&["content", "prune"]).ok(), "", "nothing unreferenced yet");
    s.cli(&["content", "label", &digest, "io.skiff.gc.root="]).ok();
    assert_eq!(s.cli(&["content", "prune"]).ok().trim(), digest);

    s.cli(&["images", "rm", "busybox:docker"]).ok();
    assert_eq!(s.content().len(), 4, "still used by the tag");
    s.cli(&["images", "rm", "example.com/copy:1"]).ok();
    assert!(s.content().is_empty(), "content freed with the last image");
    s.cli(&["images", "rm", "example.com/copy:1"]).fails_with(&["not found"]);
}
