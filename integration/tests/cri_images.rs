//! The CRI as the kubelet meets it first: Version, Status and RuntimeConfig, then the image
//! service (PullImage from a real registry, ListImages, ImageStatus by every kind of name,
//! RemoveImage, ImageFsInfo), through the tonic client `k8s-cri` generates, on skiffd's socket.

use std::collections::BTreeMap;
use std::path::Path;

use skiff_harness::Builder;
use skiff_integration::cri::{cri, image_spec, import_image, runtime, shutdown_clean, Harness, SkiffCli};
use skiff_integration::registry::Registry;
use skiff_testimage::ImageSpec;
use tonic::Code;

/// A harness whose registry client retries 3 times (not skiffd's default 4): a failing pull
/// answers sooner, as in the rest of the integration tests.
fn builder() -> Builder {
    Harness::builder().config(|c| {
        c.set("registry", "retries", 3u32);
    })
}

fn start() -> Harness {
    builder().start().expect("skiffd")
}

/// Writes `<certs.d>/<host>/hosts.toml`.
fn hosts_toml(h: &Harness, host: &str, text: &str) {
    let dir = h.certs_dir().join(host);
    std::fs::create_dir_all(&dir).expect("certs.d dir");
    std::fs::write(dir.join("hosts.toml"), text).expect("hosts.toml");
}

/// What `skiff <what> ls -q` lists, sorted.
fn listed(h: &Harness, what: &str) -> Vec<String> {
    let mut v: Vec<String> = h.skiff(&[what, "ls", "-q"]).ok().lines().map(str::to_string).collect();
    v.sort();
    v
}

fn annotated(name: &str) -> ImageSpec {
    let mut s = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox (apt-get install busybox-static)");
    s.force_index = true;
    s.index_annotations = BTreeMap::from([("org.opencontainers.image.title".into(), "cri".into())]);
    s.manifest_annotations = BTreeMap::from([("com.urunc.unikernel.binary".into(), "/bin/busybox".into())]);
    s
}

/// Pushes an annotated busybox image to `reg` from a skiffd of its own; returns its name.
fn pushed(reg: &Registry, path: &str) -> String {
    let a = start();
    let spec = annotated(&format!("{}/{path}", reg.host));
    import_image(&a, &spec).expect("import");
    a.skiff(&["images", "push", "--plain-http", &spec.name]).ok();
    shutdown_clean(a);
    spec.name
}

fn plain_http(h: &Harness, reg: &Registry) {
    hosts_toml(h, &reg.host, &format!("server = \"http://{0}\"\n[host.\"http://{0}\"]\n  capabilities = [\"pull\", \"resolve\"]\n", reg.host));
}

fn pull_request(image: &str) -> cri::PullImageRequest {
    cri::PullImageRequest { image: image_spec(image), ..Default::default() }
}

#[test]
fn the_kubelet_finds_a_runtime_it_accepts() {
    // No CNI config where this skiffd looks: NetworkReady must say so.
    let h = builder()
        .config(|c| {
            let none = c.dir().join("no-cni");
            c.set("cri", "cni_conf_dir", none);
        })
        .start()
        .expect("skiffd");
    runtime().block_on(async {
        let mut c = h.cri().await.expect("connect");
        let v = c.runtime.version(cri::VersionRequest { version: "0.1.0".into() }).await.expect("version").into_inner();
        assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("skiff", "v1"));
        assert!(!v.version.is_empty() && !v.runtime_version.is_empty(), "{v:?}");

        let status = c.runtime.status(cri::StatusRequest { verbose: true }).await.expect("status").into_inner();
        let conditions = status.status.expect("status").conditions;
        let ready = conditions.iter().find(|c| c.r#type == "RuntimeReady").expect("RuntimeReady");
        assert!(ready.status);
        let network = conditions.iter().find(|c| c.r#type == "NetworkReady").expect("NetworkReady");
        assert!(!network.status && network.reason == "NoNetworkConfig" && network.message.contains("no-cni"), "{network:?}");
        let handlers: Vec<&str> = status.runtime_handlers.iter().map(|h| h.name.as_str()).collect();
        assert!(handlers.contains(&"") && handlers.contains(&"builtin") && handlers.contains(&"runc"), "{handlers:?}");
        let info: serde_json::Value = serde_json::from_str(&status.info["info"]).expect("verbose info is JSON");
        assert_eq!(info["cgroupDriver"], "cgroupfs");

        let config = c.runtime.runtime_config(cri::RuntimeConfigRequest {}).await.expect("runtime config").into_inner();
        assert_eq!(config.linux.expect("linux").cgroup_driver, cri::CgroupDriver::Cgroupfs as i32);
        let cidr = cri::UpdateRuntimeConfigRequest {
            runtime_config: Some(cri::RuntimeConfig { network_config: Some(cri::NetworkConfig { pod_cidr: "10.244.0.0/24".into() }) }),
        };
        c.runtime.update_runtime_config(cidr).await.expect("pod cidr");
        let bad = cri::UpdateRuntimeConfigRequest {
            runtime_config: Some(cri::RuntimeConfig { network_config: Some(cri::NetworkConfig { pod_cidr: "10.244.0.0/99".into() }) }),
        };
        assert_eq!(c.runtime.update_runtime_config(bad).await.expect_err("bad cidr").code(), Code::InvalidArgument);
        let status = c.runtime.status(cri::StatusRequest { verbose: true }).await.expect("status").into_inner();
        assert!(status.info["info"].contains("10.244.0.0/24"), "{}", status.info["info"]);

        // What is not served answers Unimplemented, naming the call, never a hang or a panic.
        let err = c.runtime.checkpoint_container(cri::CheckpointContainerRequest::default()).await.expect_err("checkpoint");
        assert_eq!(err.code(), Code::Unimplemented);
        assert!(err.message().contains("CheckpointContainer"), "{}", err.message());
        // An empty streaming request is a clear InvalidArgument, not a URL.
        let err = c.runtime.exec(cri::ExecRequest::default()).await.expect_err("exec");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("cmd is empty"), "{}", err.message());
    });
    // Skiff's own API still answers on the same socket.
    h.skiff(&["images", "ls"]).ok();
    shutdown_clean(h);
}

#[test]
fn images_are_pulled_listed_found_and_removed_through_the_cri() {
    let reg = Registry::plain().expect("registry");
    let name = pushed(&reg, "cri/busybox:1");
    let h = start();
    plain_http(&h, &reg);
    runtime().block_on(async {
        let c = h.cri().await.expect("connect");
        // Two pulls of one image at once (two pods starting): both answer the same image.
        let (mut i1, mut i2) = (c.images.clone(), c.images.clone());
        let (a, b) = tokio::join!(i1.pull_image(pull_request(&name)), i2.pull_image(pull_request(&name)));
        let image_ref = a.expect("pull").into_inner().image_ref;
        assert_eq!(b.expect("second pull").into_inner().image_ref, image_ref);
        // The CRI image id is the platform manifest's config digest (as containerd's).
        let inspect: serde_json::Value = serde_json::from_str(&h.skiff(&["images", "inspect", &name]).ok()).expect("inspect");
        assert_eq!(image_ref, inspect["Config"]["Digest"].as_str().expect("config digest"), "{inspect}");
        let target = inspect["Target"]["Digest"].as_str().expect("target").to_string();

        // A second name of the same image: one CRI image with both tags.
        h.skiff(&["tag", &name, "localhost/other/busybox:2"]).ok();
        let mut images = c.images.clone();
        let listed = images.list_images(cri::ListImagesRequest::default()).await.expect("list").into_inner().images;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let image = &listed[0];
        assert_eq!(image.id, image_ref);
        assert_eq!(image.repo_tags, vec![name.clone(), "localhost/other/busybox:2".to_string()], "sorted");
        let repo = name.rsplit_once(':').expect("tag").0;
        assert!(image.repo_digests.contains(&format!("{repo}@{target}")), "{:?}", image.repo_digests);
        assert!(image.size > 0 && !image.pinned, "{image:?}");

        // ImageStatus finds it by each name the kubelet may hold: tag, id, id prefix, repo@digest.
        let short_id = image_ref.trim_start_matches("sha256:")[..12].to_string();
        for reference in [name.clone(), image_ref.clone(), short_id, format!("{repo}@{target}"), "localhost/other/busybox:2".into()] {
            let status = images.image_status(cri::ImageStatusRequest { image: image_spec(&reference), verbose: false }).await.expect("status").into_inner();
            assert_eq!(status.image.as_ref().map(|i| i.id.as_str()), Some(image_ref.as_str()), "{reference}");
        }
        let filtered = cri::ListImagesRequest { filter: Some(cri::ImageFilter { image: image_spec(&name) }) };
        assert_eq!(images.list_images(filtered).await.expect("filtered").into_inner().images.len(), 1);
        let verbose = images.image_status(cri::ImageStatusRequest { image: image_spec(&name), verbose: true }).await.expect("verbose").into_inner();
        let info: serde_json::Value = serde_json::from_str(&verbose.info["info"]).expect("info JSON");
        let sources = info["AnnotationSources"].to_string();
        assert!(sources.contains("com.urunc.unikernel.binary") && sources.contains("org.opencontainers.image.title"), "{sources}");
        // Missing is an empty answer, not an error: the kubelet asks to learn whether to pull.
        let missing = images.image_status(cri::ImageStatusRequest { image: image_spec("localhost/none:1"), verbose: false }).await.expect("missing");
        assert!(missing.into_inner().image.is_none());

        let fs = images.image_fs_info(cri::ImageFsInfoRequest {}).await.expect("fs info").into_inner();
        let usage = &fs.image_filesystems[0];
        let mountpoint = &usage.fs_id.as_ref().expect("fs id").mountpoint;
        assert!(Path::new(mountpoint).is_dir(), "{mountpoint}");
        assert!(usage.used_bytes.as_ref().expect("bytes").value > 0 && usage.inodes_used.as_ref().expect("inodes").value > 0, "{usage:?}");

        // RemoveImage by id removes every name; a second one is not an error.
        images.remove_image(cri::RemoveImageRequest { image: image_spec(&image_ref) }).await.expect("remove");
        assert!(images.list_images(cri::ListImagesRequest::default()).await.expect("list").into_inner().images.is_empty());
        images.remove_image(cri::RemoveImageRequest { image: image_spec(&image_ref) }).await.expect("remove again");
    });
    assert!(listed(&h, "images").is_empty(), "no record left");
    h.skiff(&["content", "prune"]).ok();
    assert!(listed(&h, "content").is_empty(), "what only the image used is collected");
    shutdown_clean(h);
}

#[test]
fn bad_image_requests_get_clear_codes() {
    let reg = Registry::plain().expect("registry");
    let h = start();
    plain_http(&h, &reg);
    runtime().block_on(async {
        let mut images = h.cri().await.expect("connect").images;
        let cases: Vec<(&str, cri::PullImageRequest, Code)> = vec![
            ("no image", cri::PullImageRequest::default(), Code::InvalidArgument),
            ("empty", pull_request(""), Code::InvalidArgument),
            ("nul", pull_request("busy\0box"), Code::InvalidArgument),
            ("not a reference", pull_request("UPPER/Case:x:y"), Code::InvalidArgument),
            (
                "handler",
                cri::PullImageRequest {
                    image: Some(cri::ImageSpec { image: "busybox".into(), runtime_handler: "kata".into(), ..Default::default() }),
                    ..Default::default()
                },
                Code::InvalidArgument,
            ),
            ("absent", pull_request(&format!("{}/none/such:1", reg.host)), Code::NotFound),
        ];
        for (what, req, code) in cases {
            let err = images.pull_image(req).await.expect_err(what);
            assert_eq!(err.code(), code, "{what}: {}", err.message());
            assert!(!err.message().is_empty(), "{what}");
        }
        let err = images.image_status(cri::ImageStatusRequest::default()).await.expect_err("no spec");
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = images.remove_image(cri::RemoveImageRequest { image: image_spec("a\0b") }).await.expect_err("nul");
        assert_eq!(err.code(), Code::InvalidArgument);
    });
    assert!(listed(&h, "images").is_empty() && listed(&h, "content").is_empty(), "nothing stored by failed pulls");
    shutdown_clean(h);
}

#[test]
fn pull_credentials_come_from_the_request() {
    let reg = Registry::tls_with_auth("kube", "l3t-me-in").expect("registry");
    let ca = reg.ca.clone().expect("ca");
    let host = reg.host.clone();
    let auths = format!("\n[registry.auths.\"{host}\"]\nusername = \"kube\"\npassword = \"l3t-me-in\"\n");
    let a = builder()
        .config(move |c| {
            c.append(&auths);
        })
        .start()
        .expect("skiffd a");
    hosts_toml(&a, &host, &format!("ca = \"{}\"\n", ca.display()));
    let spec = annotated(&format!("{host}/private/busybox:1"));
    import_image(&a, &spec).expect("import");
    a.skiff(&["images", "push", &spec.name]).ok();
    shutdown_clean(a);

    let h = start();
    hosts_toml(&h, &host, &format!("ca = \"{}\"\n", ca.display()));
    runtime().block_on(async {
        let mut images = h.cri().await.expect("connect").images;
        let err = images.pull_image(pull_request(&spec.name)).await.expect_err("no credentials");
        assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
        let wrong = cri::AuthConfig { username: "kube".into(), password: "nope".into(), ..Default::default() };
        let err = images.pull_image(cri::PullImageRequest { auth: Some(wrong), ..pull_request(&spec.name) }).await.expect_err("wrong password");
        assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
        use base64::Engine as _;
        let encoded = cri::AuthConfig { auth: base64::engine::general_purpose::STANDARD.encode("kube:l3t-me-in"), ..Default::default() };
        let pulled = images.pull_image(cri::PullImageRequest { auth: Some(encoded), ..pull_request(&spec.name) }).await.expect("auth pull");
        assert!(pulled.into_inner().image_ref.starts_with("sha256:"));
    });
    shutdown_clean(h);
}
