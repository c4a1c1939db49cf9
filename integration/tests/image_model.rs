//! The image model as other OCI tools see it: which platforms an image record holds, what a push
//! sends, what an export writes and names, which annotation levels reach `config.json`, and what a
//! plain-HTTP registry is told. Against real skiffd daemons and Debian's docker-registry.

use std::collections::BTreeMap;
use std::path::Path;

use skiff_integration::layout::{dangling, index_json, unpack_archive};
use skiff_integration::registry::Registry;
use skiff_integration::Skiff;
use skiff_testimage::{host_platform, write_layout, ImageSpec};

/// The host's platform and another one, for two-platform images.
fn platforms() -> (String, String) {
    let host = host_platform();
    let other = if host == "linux/arm64" { "linux/amd64" } else { "linux/arm64" };
    (host, other.to_string())
}

fn spec(name: &str, platforms: &[&str]) -> ImageSpec {
    let mut s = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox (apt-get install busybox-static)");
    s.platforms = platforms.iter().map(|p| p.to_string()).collect();
    s.index_descriptor_annotations = BTreeMap::from([("org.opencontainers.image.source".into(), "https://example.com/src".into())]);
    s.index_annotations = BTreeMap::from([("org.opencontainers.image.title".into(), "model".into())]);
    s.manifest_annotations = BTreeMap::from([("com.example.level".into(), "manifest".into())]);
    s
}

/// Imports `spec` into `s` with `args` (e.g. `--all-platforms`).
fn import(s: &Skiff, spec: &ImageSpec, args: &[&str]) {
    let layout = s.path(&format!("layout-{}", spec.name.replace(['/', ':'], "_")));
    write_layout(spec, &layout).expect("layout");
    let mut cmd = vec!["images", "import", layout.to_str().expect("utf8")];
    cmd.extend_from_slice(args);
    s.cli(&cmd).ok();
}

fn inspect(s: &Skiff, name: &str, platform: Option<&str>) -> serde_json::Value {
    let mut args = vec!["images", "inspect", name];
    if let Some(p) = platform {
        args.extend(["--platform", p]);
    }
    serde_json::from_str(&s.cli(&args).ok()).expect("inspect json")
}

/// The image of `name` as `images ls --output json` shows it.
fn listed(s: &Skiff, name: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(&s.cli(&["images", "ls", "--output", "json"]).ok()).expect("ls json");
    all.as_array().expect("rows").iter().find(|r| r["name"] == name).cloned().expect("listed")
}

/// A registry holding `name` with both platforms, pushed from a daemon that stays up.
fn registry_with(name_in: impl Fn(&str) -> String) -> (Registry, Skiff, String) {
    let (host, other) = platforms();
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let name = name_in(&reg.host);
    import(&a, &spec(&name, &[&host, &other]), &["--all-platforms"]);
    a.cli(&["images", "push", "--plain-http", &name]).ok();
    (reg, a, name)
}

fn registry_blobs(reg: &Registry) -> usize {
    let dir = reg.dir.path().join("data/docker/registry/v2/blobs/sha256");
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn pulling_another_platform_adds_it_without_changing_the_image() {
    let (host, other) = platforms();
    let (_reg, _a, name) = registry_with(|h| format!("{h}/model/multi:1"));
    let b = Skiff::start().expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &name]).ok();
    assert_eq!(inspect(&b, &name, None)["Platform"], host.as_str());
    b.cli(&["images", "pull", "--plain-http", "--platform", &other, &name]).ok();
    // The image still means the host's platform; the other one is there when asked for.
    let view = inspect(&b, &name, None);
    assert_eq!(view["Platform"], host.as_str(), "the last pull's platform does not take over");
    assert_eq!(format!("linux/{}", view["Image"]["architecture"].as_str().unwrap_or("")), host);
    assert_eq!(listed(&b, &name)["platform"], host.as_str());
    // images ls shows every stored platform, and the size of what the default one uses.
    let mut both = vec![host.clone(), other.clone()];
    both.sort();
    assert_eq!(listed(&b, &name)["platforms"], serde_json::json!(both));
    assert!(listed(&b, &name)["content_size"].as_u64().is_some_and(|n| n > 1000), "{}", listed(&b, &name));
    let table = b.cli(&["images", "ls"]).ok();
    assert!(table.lines().next().is_some_and(|h| h.contains("PLATFORMS") && h.contains("SIZE")), "{table}");
    assert!(table.contains(&both.join(",")), "{table}");
    let arm = inspect(&b, &name, Some(&other));
    assert_eq!(format!("linux/{}", arm["Image"]["architecture"].as_str().unwrap_or("")), other);
    // A container of it runs the host's manifest.
    assert_eq!(b.cli(&["run", "--rm", &name, "echo", "ran"]).ok(), "ran\n");
}

#[test]
fn run_takes_a_stored_platform_and_pulls_one_that_is_not() {
    let (host, other) = platforms();
    // Only the host's platform of a two-platform image is stored, and no registry has it.
    let s = Skiff::start().expect("skiffd");
    import(&s, &spec("localhost/model/local:1", &[&host, &other]), &["--platform", &host]);
    assert_eq!(s.cli(&["run", "--rm", "localhost/model/local:1", "echo", "host"]).ok(), "host\n");
    s.cli(&["run", "--rm", "--platform", &other, "localhost/model/local:1", "true"]).fails_with(&[
        &format!("has no {other} content stored (stored: {host})"),
        &format!("skiff images pull --platform {other} localhost/model/local:1"),
        "pulling it failed",
    ]);
    // From a registry, run --platform pulls the platform it lacks, as docker run does.
    let (_reg, _a, name) = registry_with(|h| format!("{h}/model/runplat:1"));
    let b = Skiff::start().expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &name]).ok();
    assert_eq!(b.cli(&["run", "--rm", "--plain-http", "--platform", &other, &name, "echo", "other"]).ok(), "other\n");
    assert!(inspect(&b, &name, Some(&other))["Image"]["architecture"].is_string(), "the other platform is stored now");
    assert_eq!(inspect(&b, &name, None)["Platform"], host.as_str(), "and the image still means the host's");
}

#[test]
fn push_sends_only_what_is_stored_and_takes_a_digest_as_source() {
    let (host, other) = platforms();
    let (reg, a, name) = registry_with(|h| format!("{h}/model/push:1"));
    let b = Skiff::start().expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &name]).ok();

    // The other platform is not stored here: refused before anything is uploaded.
    let dest = Registry::plain().expect("second registry");
    let whole = format!("{}/model/whole:1", dest.host);
    b.cli(&["images", "push", "--plain-http", &name, &whole]).fails_with(&[&other, "--all-platforms", "--platform"]);
    assert_eq!(registry_blobs(&dest), 0, "no blob uploaded for a push that cannot end in a tag");

    // One platform: its manifest alone, under the tag.
    let one = format!("{}/model/one:1", dest.host);
    b.cli(&["images", "push", "--plain-http", "--platform", &host, &name, &one]).ok();
    let host_manifest = inspect(&b, &name, None)["Manifest"]["Digest"].as_str().expect("digest").to_string();
    let c = Skiff::start().expect("skiffd c");
    let out = c.cli(&["images", "pull", "--plain-http", &one]).ok();
    assert!(out.contains(&host_manifest), "{out}");
    assert_eq!(listed(&c, &one)["media_type"], "application/vnd.oci.image.manifest.v1+json");

    // REPO@sha256:… as the source: the index by its digest, and one platform's manifest by its own.
    let index = inspect(&a, &name, None)["Target"]["Digest"].as_str().expect("digest").to_string();
    let by_digest = format!("{}/model/push@{index}", reg.host);
    let copy = format!("{}/model/copy:1", dest.host);
    a.cli(&["images", "push", "--plain-http", &by_digest, &copy]).ok();
    c.cli(&["images", "pull", "--plain-http", "--all-platforms", &copy]).ok();
    assert_eq!(inspect(&c, &copy, None)["Target"]["Digest"], index.as_str());
    let other_manifest = inspect(&a, &name, Some(&other))["Manifest"]["Digest"].as_str().expect("digest").to_string();
    let untagged = format!("{}/model/bare@{other_manifest}", dest.host);
    a.cli(&["images", "push", "--plain-http", &untagged]).ok();
    let head = std::process::Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-I", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
        .arg(format!("http://{}/v2/model/bare/manifests/{other_manifest}", dest.host))
        .status()
        .expect("curl");
    assert!(head.success(), "the manifest is in the registry by its digest");
    a.cli(&["images", "push", "--plain-http", &format!("{}/model/push@sha256:{}", reg.host, "0".repeat(64))])
        .fails_with(&["not found"]);
}

#[test]
fn exports_hold_every_blob_they_name() {
    let (host, other) = platforms();
    let s = Skiff::start().expect("skiffd");
    let name = "localhost/model/export:1";
    import(&s, &spec(name, &[&host, &other]), &["--platform", &host]);

    // Only the host's platform is stored: the archive's index lists only it.
    let tar = s.path("partial.tar");
    s.cli(&["images", "export", "-O", tar.to_str().expect("utf8"), name]).ok();
    let dir = unpack_archive(&tar, &s.path("partial")).expect("unpack");
    assert_eq!(dangling(&dir).expect("walk"), Vec::<String>::new(), "every descriptor has its blob");
    let entry = index_json(&dir).expect("index.json")["manifests"][0].clone();
    assert_eq!(entry["annotations"]["org.opencontainers.image.source"], "https://example.com/src");
    let fresh = Skiff::start().expect("fresh skiffd");
    fresh.cli(&["images", "import", "--all-platforms", tar.to_str().expect("utf8")]).ok();
    let back = inspect(&fresh, name, None);
    assert_eq!(back["Index"]["Annotations"]["org.opencontainers.image.title"], "model", "the index's annotations survive the rewrite");
    assert_eq!(back["Index"]["Manifests"].as_array().map(Vec::len), Some(1));

    // --platform: the platform's manifest itself is the entry.
    s.cli(&["images", "import", "--all-platforms", s.path(&format!("layout-{}", name.replace(['/', ':'], "_"))).to_str().expect("utf8")]).ok();
    let one = s.path("one");
    s.cli(&["images", "export", "--format", "layout", "--platform", &other, "-O", one.to_str().expect("utf8"), name]).ok();
    assert_eq!(dangling(&one).expect("walk"), Vec::<String>::new());
    let entry = index_json(&one).expect("index.json")["manifests"][0].clone();
    assert_eq!(entry["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(entry["digest"], inspect(&s, name, Some(&other))["Manifest"]["Digest"]);
    let fresh = Skiff::start().expect("fresh skiffd");
    fresh.cli(&["images", "import", "--all-platforms", one.to_str().expect("utf8")]).ok();
}

#[test]
fn several_images_in_one_archive_keep_their_names() {
    let s = Skiff::start().expect("skiffd");
    let host = host_platform();
    let names = ["localhost/model/a:v1", "localhost/model/b:v1"];
    for (i, n) in names.iter().enumerate() {
        let mut sp = spec(n, &[&host]);
        sp.env = vec![format!("WHICH={i}")];
        import(&s, &sp, &[]);
    }
    let tar = s.path("two.tar");
    s.cli(&["images", "export", "-O", tar.to_str().expect("utf8"), names[0], names[1]]).ok();
    let dir = unpack_archive(&tar, &s.path("two")).expect("unpack");
    let refs: Vec<String> = index_json(&dir).expect("index.json")["manifests"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(refs, names, "a shared tag is no name: each entry has its full reference");
    let fresh = Skiff::start().expect("fresh skiffd");
    fresh.cli(&["images", "import", tar.to_str().expect("utf8")]).ok();
    let mut got = fresh.images();
    got.sort();
    assert_eq!(got, names);
    for (i, n) in names.iter().enumerate() {
        let env = inspect(&fresh, n, None)["Image"]["config"]["Env"].clone();
        assert!(env.to_string().contains(&format!("WHICH={i}")), "{n} is its own image: {env}");
    }
}

#[test]
fn index_descriptor_annotations_reach_config_json() {
    let s = Skiff::start().expect("skiffd");
    let name = "localhost/model/ann:1";
    let mut sp = spec(name, &[&host_platform()]);
    sp.index_descriptor_annotations.insert("com.example.level".into(), "index-descriptor".into());
    sp.index_descriptor_annotations.insert("run.oci.keep_original_groups".into(), "1".into());
    import(&s, &sp, &[]);
    let view = inspect(&s, name, None);
    let runtime: Vec<(String, String)> = view["RuntimeAnnotations"]
        .as_array()
        .expect("runtime")
        .iter()
        .map(|a| (a["Key"].as_str().unwrap_or("").to_string(), a["Source"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(runtime.contains(&("org.opencontainers.image.source".into(), "index-descriptor".into())), "{runtime:?}");
    assert!(runtime.contains(&("com.example.level".into(), "manifest".into())), "the manifest wins: {runtime:?}");
    let dropped: Vec<&str> = view["DroppedAnnotations"].as_array().expect("dropped").iter().filter_map(|d| d["Key"].as_str()).collect();
    assert_eq!(dropped, ["run.oci.keep_original_groups"], "the deny list applies to this level too");

    let id = s.cli(&["run", "-d", name, "sleep", "30"]).ok().trim().to_string();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.root.join("containers").join(&id).join("bundle/config.json")).expect("config.json")).expect("json");
    let got = &config["annotations"];
    assert_eq!(got["org.opencontainers.image.source"], "https://example.com/src");
    assert_eq!(got["com.example.level"], "manifest");
    assert!(got.get("run.oci.keep_original_groups").is_none(), "{got}");
    assert!(got.get("io.containerd.image.name").is_none() && got.get("org.opencontainers.image.ref.name").is_none(), "{got}");
    s.cli(&["rm", "-f", &id]).ok();
}

#[test]
fn a_plain_http_registry_is_named_at_once() {
    let (_reg, a, name) = registry_with(|h| format!("{h}/model/plain:1"));
    let b = Skiff::start().expect("skiffd b");
    let started = std::time::Instant::now();
    b.cli(&["images", "pull", &name]).fails_with(&["the registry answered HTTP to an HTTPS request: use --plain-http or a hosts.toml entry"]);
    assert!(!b.log().contains("retrying"), "not retried: {}", b.log());
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "at once, not after retries");
    assert!(b.images().is_empty());
    a.cli(&["images", "push", &name]).fails_with(&["the registry answered HTTP to an HTTPS request"]);
}
