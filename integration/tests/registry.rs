//! Pull and push against a real registry (Debian's docker-registry on loopback): round trips with
//! annotations, concurrency, TLS with basic auth, mirrors, and the faults a network brings.

use std::collections::BTreeMap;
use std::path::Path;

use skiff_integration::faults::{Fault, FaultProxy};
use skiff_integration::registry::{free_port, Registry};
use skiff_integration::{count_files, Skiff};
use skiff_testimage::{files_layer, random_layer, write_layout, ImageSpec};

fn annotated_image(name: &str, platforms: &[&str]) -> ImageSpec {
    let mut s = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox (apt-get install busybox-static)");
    s.platforms = platforms.iter().map(|p| p.to_string()).collect();
    s.index_annotations = BTreeMap::from([("org.opencontainers.image.title".into(), "pushed".into())]);
    s.manifest_descriptor_annotations = BTreeMap::from([("com.example.descriptor".into(), "md".into())]);
    s.manifest_annotations = BTreeMap::from([("com.urunc.unikernel.binary".into(), "/bin/busybox".into())]);
    s
}

/// Imports `spec` into `s` (every platform) and returns its name.
fn import(s: &Skiff, spec: &ImageSpec) -> String {
    let layout = s.path(&format!("layout-{}", spec.name.replace(['/', ':'], "_")));
    write_layout(spec, &layout).expect("layout");
    s.cli(&["images", "import", "--all-platforms", layout.to_str().expect("utf8")]).ok();
    spec.name.clone()
}

fn inspect(s: &Skiff, name: &str) -> serde_json::Value {
    serde_json::from_str(&s.cli(&["images", "inspect", name]).ok()).expect("json")
}

fn levels(view: &serde_json::Value) -> Vec<(String, String, String)> {
    view["AnnotationSources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|a| {
            let f = |k: &str| a[k].as_str().unwrap_or("").to_string();
            (f("Level"), f("Key"), f("Value"))
        })
        .collect()
}

#[test]
fn push_then_pull_keeps_every_annotation_and_mounts_across_repositories() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let name = import(&a, &annotated_image(&format!("{}/demo/busybox:1", reg.host), &["linux/amd64", "linux/arm64"]));
    let annotated = format!("{}/demo/busybox:annotated", reg.host);
    a.cli(&["images", "annotate", &name, &annotated, "-a", "build.example.com/git-sha=abcdef123456"]).ok();
    let out = a.cli(&["images", "push", "--plain-http", &annotated]);
    assert!(out.stderr.contains("3 manifest(s)"), "{}", out.stderr);
    out.ok();

    let b = Skiff::start().expect("skiffd b");
    let pulled = b.cli(&["images", "pull", "--plain-http", &annotated]).ok();
    let (src, dst) = (inspect(&a, &annotated), inspect(&b, &annotated));
    assert!(pulled.contains(dst["Target"]["Digest"].as_str().expect("digest")));
    assert_eq!(src["Target"]["Digest"], dst["Target"]["Digest"], "same index digest");
    assert_eq!(src["Layers"], dst["Layers"]);
    let got = levels(&dst);
    for want in [
        ("index", "org.opencontainers.image.title", "pushed"),
        ("manifest-descriptor", "com.example.descriptor", "md"),
        ("manifest", "com.urunc.unikernel.binary", "/bin/busybox"),
        ("manifest", "build.example.com/git-sha", "abcdef123456"),
    ] {
        assert!(got.contains(&(want.0.into(), want.1.into(), want.2.into())), "{want:?} not in {got:?}");
    }
    assert!(b.cli(&["content", "verify"]).ok().contains("verified"));
    let counting = FaultProxy::start(&reg.host, vec![]).expect("proxy");
    let again = b.cli(&["images", "pull", "--plain-http", &annotated.replace(&reg.host, &counting.host)]);
    assert!(again.stderr.contains("0 blob(s) fetched"), "{}", again.stderr);
    // A name new to b (the proxy's host) whose content b has: its tag is fetched, nothing else.
    assert_eq!(counting.count("GET", "/manifests/annotated"), 1, "the new name's tag is fetched");
    assert_eq!(counting.count("GET", "/"), 1, "and every other manifest and blob comes from the store");

    // A second repository on the same host gets the blobs by cross-repository mount.
    let copy = format!("{}/other/copy:1", reg.host);
    let out = a.cli(&["images", "push", "--plain-http", &annotated, &copy]);
    assert!(out.stderr.contains("0 blob(s) uploaded") && out.stderr.contains("4 mounted"), "{}", out.stderr);
    out.ok();
    b.cli(&["images", "pull", "--plain-http", &copy]).ok();

    b.cli(&["images", "pull", "--plain-http", &format!("{}/demo/nope:1", reg.host)])
        .fails_with(&["not found", &reg.host, "demo/nope", "tag 1"]);
}

#[test]
fn two_pulls_at_once_fetch_each_layer_once() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let mut spec = annotated_image(&format!("{}/demo/big:1", reg.host), &["linux/amd64"]);
    spec.layers = (0..3).map(|i| random_layer(i + 40, 8 << 20)).collect::<anyhow::Result<_>>().expect("layers");
    let name = import(&a, &spec);
    a.cli(&["images", "push", "--plain-http", &name]).ok();

    let proxy = FaultProxy::start(&reg.host, vec![]).expect("proxy");
    let b = Skiff::start().expect("skiffd b");
    let reference = format!("{}/demo/big:1", proxy.host);
    let spawn = || {
        std::process::Command::new(skiff_integration::bin("skiff"))
            .args(["--address", b.socket.to_str().expect("utf8"), "images", "pull", "-q", "--plain-http", &reference])
            .output()
            .expect("pull")
    };
    let (one, two) = std::thread::scope(|s| {
        let x = s.spawn(spawn);
        let y = s.spawn(spawn);
        (x.join().expect("thread"), y.join().expect("thread"))
    });
    assert!(one.status.success() && two.status.success(), "{one:?} {two:?}");
    for layer in &spec.layers {
        let digest = skiff_testimage::sha256(&layer.bytes);
        assert_eq!(proxy.count("GET", &format!("/blobs/{digest}")), 1, "layer {digest} fetched once");
    }
    assert!(b.cli(&["content", "verify"]).ok().contains("verified"));
}

/// A name not in the store yet is resolved and fetched by one GET of its tag; a re-pull of the
/// stored image asks with HEAD and fetches no manifest. A registry whose `Docker-Content-Digest`
/// is not the digest of the bytes it serves is refused, and nothing is stored.
#[test]
fn a_new_name_costs_one_manifest_request_and_a_repull_one_head() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let name = import(&a, &annotated_image(&format!("{}/demo/once:1", reg.host), &["linux/amd64"]));
    a.cli(&["images", "push", "--plain-http", &name]).ok();

    let counting = FaultProxy::start(&reg.host, vec![]).expect("proxy");
    let reference = format!("{}/demo/once:1", counting.host);
    let b = Skiff::start().expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &reference]).ok();
    assert_eq!(counting.count("HEAD", "/manifests/"), 0, "no HEAD for a name not stored");
    assert_eq!(counting.count("GET", "/manifests/1"), 1, "the tag fetched once");
    let manifests = counting.count("GET", "/manifests/");
    b.cli(&["images", "pull", "--plain-http", &reference]).ok();
    assert_eq!(counting.count("HEAD", "/manifests/1"), 1, "a re-pull asks with HEAD");
    assert_eq!(counting.count("GET", "/manifests/"), manifests, "and fetches no manifest");

    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#.to_vec();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let lying = FaultProxy::start(
        &reg.host,
        vec![Fault::Respond {
            path: "/manifests/lie".into(),
            status: "200 OK".into(),
            headers: vec![
                ("Content-Type".into(), "application/vnd.oci.image.manifest.v1+json".into()),
                ("Docker-Content-Digest".into(), wrong.clone()),
                ("Content-Length".into(), body.len().to_string()),
            ],
            body,
        }],
    )
    .expect("proxy");
    let c = Skiff::start().expect("skiffd c");
    c.cli(&["images", "pull", "--plain-http", &format!("{}/demo/once:lie", lying.host)])
        .fails_with(&[&format!("registry says the manifest is {wrong}, but its bytes are sha256:"), &lying.host]);
    assert!(c.content().is_empty() && c.images().is_empty(), "nothing stored");
}

#[test]
fn tls_registry_with_basic_auth_ca_and_credentials() {
    let reg = Registry::tls_with_auth("alice", "s3cret").expect("registry");
    let ca = reg.ca.clone().expect("ca");
    let hosts = format!("ca = \"{}\"\n", ca.display());
    let host = reg.host.clone();
    let a = Skiff::start_with(|_, cfg| Ok(format!("{cfg}\n[registry.auths.\"{host}\"]\nusername = \"alice\"\npassword = \"s3cret\"\n"))).expect("skiffd");
    a.hosts_toml(&reg.host, &hosts).expect("hosts.toml");
    let name = import(&a, &annotated_image(&format!("{}/secure/busybox:1", reg.host), &["linux/amd64"]));
    a.cli(&["images", "push", &name]).ok();

    // Credentials from a Docker config.json.
    let docker = skiff_integration::registry::free_port(); // only to vary the temp file name
    let b = Skiff::start_with(|dir, cfg| {
        let path = dir.join(format!("docker-{docker}.json"));
        std::fs::write(&path, format!(r#"{{"auths":{{"{host}":{{"username":"alice","password":"s3cret"}}}}}}"#))?;
        Ok(cfg.replace("docker_config = \"\"", &format!("docker_config = \"{}\"", path.display())))
    })
    .expect("skiffd b");
    b.hosts_toml(&reg.host, &hosts).expect("hosts.toml");
    b.cli(&["images", "pull", &name]).ok();

    // No credentials, then wrong ones, then right ones on the command line.
    let c = Skiff::start().expect("skiffd c");
    c.hosts_toml(&reg.host, &hosts).expect("hosts.toml");
    c.cli(&["images", "pull", &name]).fails_with(&["unauthorized", &reg.host, "secure/busybox"]);
    c.cli(&["images", "pull", "--user", "alice:wrong", &name]).fails_with(&["unauthorized"]);
    assert!(c.images().is_empty() && c.content().is_empty());
    c.cli(&["images", "pull", "--user", "alice:s3cret", &name]).ok();

    // Without the CA the certificate is refused; skip_verify accepts it.
    let d = Skiff::start().expect("skiffd d");
    let err = d.cli(&["images", "pull", "--user", "alice:s3cret", &name]).fails_with(&[&reg.host]);
    assert!(err.to_lowercase().contains("certificate") || err.contains("request to https://"), "{err}");
    d.hosts_toml(&reg.host, "skip_verify = true\n").expect("hosts.toml");
    d.cli(&["images", "pull", "--user", "alice:s3cret", &name]).ok();
}

#[test]
fn mirror_answers_when_the_upstream_does_not() {
    let mirror = Registry::plain().expect("mirror");
    let a = Skiff::start().expect("skiffd a");
    let name = import(&a, &annotated_image(&format!("{}/demo/busybox:1", mirror.host), &["linux/amd64"]));
    a.cli(&["images", "push", "--plain-http", &name]).ok();

    let dead = format!("127.0.0.1:{}", free_port());
    let b = Skiff::start().expect("skiffd b");
    b.hosts_toml(
        &dead,
        &format!("server = \"http://{dead}\"\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n", mirror.host),
    )
    .expect("hosts.toml");
    let out = b.cli(&["images", "pull", &format!("{dead}/demo/busybox:1")]).ok();
    assert!(out.starts_with(&format!("{dead}/demo/busybox:1 ")), "{out}");
    // Push needs the push capability, which only the dead upstream has.
    b.cli(&["images", "push", &format!("{dead}/demo/busybox:1")]).fails_with(&[&dead]);
}

/// Registry errors: retried when transient, not when final; nothing half-written either way.
#[test]
fn faults_are_retried_resumed_or_reported() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let mut spec = annotated_image(&format!("{}/demo/faults:1", reg.host), &["linux/amd64"]);
    spec.layers = vec![random_layer(77, 4 << 20).expect("layer"), spec.layers[1].clone()];
    let big_layer = skiff_testimage::sha256(&spec.layers[0].bytes);
    let name = import(&a, &spec);
    a.cli(&["images", "push", "--plain-http", &name]).ok();

    let clean = |s: &Skiff| {
        assert!(s.images().is_empty(), "no image");
        assert_eq!(count_files(&s.root.join("content/ingest")), 0, "no partial blobs");
    };

    // Two 500s on the manifest, and the layer's connection dropped once after 1 MiB: retried, resumed.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![
            Fault::ServerError { path: "/manifests/".into(), times: 2 },
            Fault::DropMidBody { path: format!("/blobs/{big_layer}"), after: 1 << 20, times: 1 },
        ],
    )
    .expect("proxy");
    let b = Skiff::start().expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &format!("{}/demo/faults:1", proxy.host)]).ok();
    assert!(b.cli(&["content", "verify"]).ok().contains("verified"));
    assert!(proxy.count("GET", &format!("/blobs/{big_layer}")) >= 2, "resumed with a second request");
    assert!(b.log().contains("resuming"), "the resume is logged");

    // A server that keeps failing: retries (3 here) then a clear error.
    let failing = FaultProxy::start(&reg.host, vec![Fault::ServerError { path: "/manifests/".into(), times: 100 }]).expect("proxy");
    let c = Skiff::start().expect("skiffd c");
    c.cli(&["images", "pull", "--plain-http", &format!("{}/demo/faults:1", failing.host)])
        .fails_with(&["HTTP 500", &failing.host, "demo/faults"]);
    assert_eq!(failing.count("GET", "/manifests/1"), 4, "one try and three retries");
    clean(&c);

    // A redirect loop.
    let looping = FaultProxy::start(&reg.host, vec![Fault::RedirectLoop { path: "/blobs/".into() }]).expect("proxy");
    c.cli(&["images", "pull", "--plain-http", &format!("{}/demo/faults:1", looping.host)])
        .fails_with(&["redirect", &looping.host, "demo/faults"]);
    clean(&c);

    // A blob whose bytes do not match its digest: reported, not retried, not stored.
    let data = reg.blob_data(&big_layer);
    let mut bytes = std::fs::read(&data).expect("registry blob");
    bytes[1000] ^= 0xff;
    std::fs::write(&data, bytes).expect("corrupt");
    let counting = FaultProxy::start(&reg.host, vec![]).expect("proxy");
    c.cli(&["images", "pull", "--plain-http", &format!("{}/demo/faults:1", counting.host)])
        .fails_with(&["digest mismatch", &big_layer]);
    assert_eq!(counting.count("GET", &format!("/blobs/{big_layer}")), 1, "no retry for a digest mismatch");
    clean(&c);
    assert!(!c.content().contains(&big_layer));
}

#[test]
fn bearer_token_flow_from_the_challenge() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let name = import(&a, &annotated_image(&format!("{}/demo/token:1", reg.host), &["linux/amd64"]));
    a.cli(&["images", "push", "--plain-http", &name]).ok();
    let gate = FaultProxy::start(
        &reg.host,
        vec![Fault::BearerAuth { user: "bob".into(), password: "pw".into(), token: "tok-123".into() }],
    )
    .expect("proxy");
    let reference = format!("{}/demo/token:1", gate.host);
    let b = Skiff::start().expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &reference]).fails_with(&["unauthorized", &gate.host, "token service"]);
    b.cli(&["images", "pull", "--plain-http", "--user", "bob:pw", &reference]).ok();
    assert!(gate.count("GET", "/token?") >= 1, "a token was fetched");
    // Push through the same gate, to a new repository, with the token flow.
    b.cli(&["images", "push", "--plain-http", "--user", "bob:pw", &reference, &format!("{}/demo/token-copy:1", gate.host)]).ok();
}

#[test]
fn bad_manifests_are_refused_before_anything_is_stored() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let name = import(&a, &annotated_image(&format!("{}/demo/base:1", reg.host), &["linux/amd64"]));
    a.cli(&["images", "push", "--plain-http", &name]).ok();
    let view = inspect(&a, &name);
    let config = view["Config"]["Digest"].as_str().expect("config").to_string();
    let size = view["Config"]["Size"].as_u64().expect("size");

    // A manifest whose config descriptor says it is a layer.
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{config}","size":{size}}},"layers":[]}}"#
    );
    let put = std::process::Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", &manifest])
        .arg(format!("http://{}/v2/demo/base/manifests/wrong-config", reg.host))
        .status()
        .expect("curl");
    assert!(put.success());
    let b = Skiff::start().expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &format!("{}/demo/base:wrong-config", reg.host)])
        .fails_with(&["unsupported media type", "application/vnd.oci.image.layer.v1.tar+gzip", "config"]);
    assert!(b.content().is_empty() && b.images().is_empty());

    // A manifest over 4 MiB (registries refuse to store one, so a proxy serves it).
    let huge = FaultProxy::start(
        &reg.host,
        vec![Fault::Respond {
            path: "/manifests/huge".into(),
            status: "200 OK".into(),
            headers: vec![
                ("Content-Type".into(), "application/vnd.oci.image.manifest.v1+json".into()),
                ("Content-Length".into(), (5u64 << 20).to_string()),
            ],
            body: vec![b' '; 5 << 20],
        }],
    )
    .expect("proxy");
    b.cli(&["images", "pull", "--plain-http", &format!("{}/demo/base:huge", huge.host)])
        .fails_with(&["over the 4194304-byte limit", &huge.host, "demo/base"]);
    assert!(b.content().is_empty() && b.images().is_empty());
}

/// An image over `images.max_layers` is refused once its manifest is read: no config or layer blob
/// is requested from the registry and nothing is stored.
#[test]
fn a_pull_over_the_layer_limit_fetches_no_blob() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let mut spec = annotated_image(&format!("{}/demo/deep:1", reg.host), &["linux/amd64"]);
    spec.layers = (0..4).map(|i| files_layer(&[(&format!("f{i}"), format!("layer {i}").as_bytes())], true).expect("layer")).collect();
    let name = import(&a, &spec);
    a.cli(&["images", "push", "--plain-http", &name]).ok();

    let b = Skiff::start_with(|_, cfg| {
        anyhow::ensure!(cfg.contains("max_layers = 500"), "the default config sets max_layers = 500");
        Ok(cfg.replace("max_layers = 500", "max_layers = 3"))
    })
    .expect("skiffd b");
    let counting = FaultProxy::start(&reg.host, vec![]).expect("proxy");
    let reference = format!("{}/demo/deep:1", counting.host);
    b.cli(&["images", "pull", "--plain-http", &reference]).fails_with(&["demo/deep:1", "has 4 layers", "limit of 3", "images.max_layers"]);
    assert!(counting.count("GET", "/manifests/") >= 1, "the manifest came through the proxy");
    assert_eq!(counting.count("GET", "/blobs/"), 0, "no config or layer blob was requested");
    assert!(b.content().is_empty() && b.images().is_empty(), "nothing stored");
}

#[test]
fn a_failed_pull_resumes_from_the_blobs_it_completed() {
    let reg = Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let mut spec = annotated_image(&format!("{}/demo/resume:1", reg.host), &["linux/amd64"]);
    spec.layers = (0..3).map(|i| random_layer(i + 90, 2 << 20)).collect::<anyhow::Result<_>>().expect("layers");
    let broken = skiff_testimage::sha256(&spec.layers[2].bytes);
    let name = import(&a, &spec);
    a.cli(&["images", "push", "--plain-http", &name]).ok();

    let flaky = FaultProxy::start(&reg.host, vec![Fault::ServerError { path: format!("/blobs/{broken}"), times: 100 }]).expect("proxy");
    let b = Skiff::start().expect("skiffd b");
    let reference = format!("{}/demo/resume:1", flaky.host);
    b.cli(&["images", "pull", "--plain-http", &reference]).fails_with(&["HTTP 500", &broken]);
    assert!(b.images().is_empty(), "no image from a failed pull");
    assert_eq!(count_files(&b.root.join("content/ingest")), 0, "no partial blob kept");
    let kept = b.content();
    assert!(!kept.contains(&broken));

    let healthy = FaultProxy::start(&reg.host, vec![]).expect("proxy");
    let out = b.cli(&["images", "pull", "--plain-http", &format!("{}/demo/resume:1", healthy.host)]);
    // The two completed layers and the config (stored as soon as it was read) are reused; the
    // missing layer and the manifest are fetched.
    assert!(out.stderr.contains("2 blob(s) fetched") && out.stderr.contains("3 already stored"), "{}", out.stderr);
    out.ok();
    for layer in &spec.layers[..2] {
        let d = skiff_testimage::sha256(&layer.bytes);
        assert_eq!(healthy.count("GET", &format!("/blobs/{d}")), 0, "completed layer {d} not fetched again");
    }
    assert!(b.cli(&["content", "verify"]).ok().contains("verified"));
}
