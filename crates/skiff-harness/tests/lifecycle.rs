//! A harness's life: it starts a skiffd that answers the CRI and the CLI, on a config and a CNI
//! network of its own, keeps its root across restarts, and leaves nothing behind when dropped.

mod common;

use std::net::Ipv4Addr;

use skiff_harness::k8s_cri::v1::{ListImagesRequest, VersionRequest};
use skiff_harness::{Error, Harness};

use common::{import_busybox, processes_under, IMAGE};

#[tokio::test]
async fn skiffd_answers_the_cri_and_the_cli() {
    let h = Harness::start().expect("harness");
    let mut cri = h.cri().await.expect("cri clients");
    let version = cri.runtime.version(VersionRequest { version: "0.1.0".into() }).await.expect("Version").into_inner();
    assert_eq!((version.runtime_name.as_str(), version.runtime_api_version.as_str()), ("skiff", "v1"));
    let images = cri.images.list_images(ListImagesRequest::default()).await.expect("ListImages").into_inner();
    assert!(images.images.is_empty(), "{images:?}");

    let out = h.cli(["images", "ls"]).expect("skiff images ls");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(h.cli_ok(["images", "ls", "-q"]).expect("skiff images ls -q").is_empty());
    // The CLI really talks to this skiffd: a failure names what failed.
    let err = h.cli_ok(["images", "inspect", "example.com/none:1"]).expect_err("no such image");
    assert!(matches!(&err, Error::CliFailed { args, .. } if args == "images inspect example.com/none:1"), "{err}");

    // skiffd runs on the harness's own root, socket and registry config, and logs to its file.
    let config = std::fs::read_to_string(h.config_path()).expect("config");
    for (key, path) in [("root", h.root()), ("socket", h.socket()), ("config_path", h.certs_dir())] {
        assert!(config.contains(&format!("\n{key} = \"{}\"\n", path.display())), "{key} not set in\n{config}");
    }
    assert!(h.root().join("content").is_dir() && h.socket().exists() && h.certs_dir().is_dir());
    assert!(h.log().contains("store open"), "{}", h.log());
    drop(cri);
    let report = h.shutdown().expect("shutdown");
    assert!(report.is_clean(), "{report}");
}

#[test]
fn each_harness_has_a_cni_network_of_its_own() {
    let (a, b) = (Harness::start().expect("harness a"), Harness::start().expect("harness b"));
    let mut subnets = Vec::new();
    for h in [&a, &b] {
        let net = h.cni();
        let files: Vec<_> = std::fs::read_dir(net.conf_dir()).expect("conf dir").flatten().map(|e| e.path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let conflist: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).expect("conflist")).expect("conflist json");
        assert_eq!(conflist["cniVersion"], "1.0.0");
        assert_eq!(conflist["name"], net.name());
        let types: Vec<&str> = conflist["plugins"].as_array().expect("plugins").iter().filter_map(|p| p["type"].as_str()).collect();
        assert_eq!(types, ["bridge", "portmap"]);
        let bridge = &conflist["plugins"][0];
        assert_eq!((bridge["bridge"].as_str(), bridge["ipam"]["type"].as_str()), (Some(net.bridge()), Some("host-local")));
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], net.subnet());
        assert!(net.bridge().len() <= 15, "{}", net.bridge());
        let addr: Ipv4Addr = net.subnet().strip_suffix("/24").expect("a /24").parse().expect("address");
        let [ten, x, _, zero] = addr.octets();
        assert!(ten == 10 && (200..=250).contains(&x) && zero == 0, "{addr}");
        assert!(net.cache_dir().is_dir() && net.cache_dir().starts_with(h.dir()));
        subnets.push((net.subnet(), net.bridge().to_string(), net.name().to_string()));
    }
    assert!(subnets[0].0 != subnets[1].0 && subnets[0].1 != subnets[1].1 && subnets[0].2 != subnets[1].2, "{subnets:?}");
}

#[test]
fn a_subnet_is_held_while_its_harness_lives_and_given_back_after() {
    // 10.199/16 is outside the random range: no parallel test's harness picks it.
    let a = Harness::builder().cni("skh-test-held", "10.199.7.0/24").start().expect("harness with an explicit network");
    assert_eq!((a.cni().bridge(), a.cni().subnet().as_str()), ("skh-test-held", "10.199.7.0/24"));
    let err = Harness::builder().cni("skh-test-held2", "10.199.7.0/24").start().err().expect("the subnet is taken");
    assert!(matches!(err, Error::SubnetInUse(_)), "{err}");
    for (bridge, subnet) in [("a-name-longer-than-15", "10.199.8.0/24"), ("skh-test-ok", "10.199.8.1/24"), ("skh-test-ok", "10.199.8.0/16")] {
        let err = Harness::builder().cni(bridge, subnet).start().err().expect("bad network");
        assert!(matches!(err, Error::BadBridgeName(_) | Error::BadSubnet(_)), "{bridge} {subnet}: {err}");
    }
    drop(a);
    let b = Harness::builder().cni("skh-test-held", "10.199.7.0/24").start().expect("the subnet is free again");
    b.shutdown().expect("shutdown");
}

#[test]
fn restart_keeps_the_root() {
    let mut h = Harness::start().expect("harness");
    import_busybox(&h);
    let first = h.pid().expect("pid");
    h.restart().expect("restart");
    assert_ne!(h.pid(), Some(first));
    assert_eq!(h.cli_ok(["images", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).expect("images").trim(), IMAGE);
    // A killed skiffd comes back on the same root too: the store lock died with it.
    h.kill9();
    assert!(!h.is_running() && h.pid().is_none());
    h.restart().expect("restart after kill -9");
    assert_eq!(h.cli_ok(["images", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).expect("images").trim(), IMAGE);
    h.stop().expect("stop");
    assert!(matches!(h.stop(), Err(Error::NotRunning)));
    h.restart().expect("restart after stop");
    let report = h.shutdown().expect("shutdown");
    assert!(report.is_clean(), "{report}");
}

#[test]
fn drop_leaves_nothing() {
    let h = Harness::start().expect("harness");
    import_busybox(&h);
    let (dir, pid, bridge) = (h.dir().to_path_buf(), h.pid().expect("pid"), h.cni().bridge().to_string());
    assert!(dir.is_dir() && std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(h);
    assert!(!dir.exists(), "{} still there", dir.display());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "skiffd {pid} still there");
    assert_eq!(processes_under(&dir), Vec::<u32>::new());
    assert!(!std::path::Path::new("/sys/class/net").join(bridge).exists());
}

#[test]
fn a_missing_binary_is_an_error_that_says_how_to_build_it() {
    let err = Harness::builder().skiffd("/nonexistent/skiffd").start().err().expect("no skiffd");
    assert!(matches!(err, Error::BinaryNotFound { .. }), "{err}");
    assert!(err.to_string().contains("cargo build -p skiffd -p skiff -p skiff-shim") && err.to_string().contains("/nonexistent/skiffd"), "{err}");
}

#[test]
fn a_skiffd_that_cannot_start_is_an_error_with_its_log_and_leaves_nothing() {
    let err = Harness::builder().config(|c| {
        c.set("", "no_such_key", true);
    });
    let err = err.start().err().expect("skiffd refuses unknown keys");
    let Error::Exited { log, .. } = &err else { panic!("{err}") };
    assert!(log.contains("no_such_key"), "{log}");
    let config = log.lines().find_map(|l| l.strip_prefix("Error: parse config ")).expect("the log names the config");
    let dir = std::path::Path::new(config).parent().expect("the harness dir");
    assert!(dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("skiff-harness-")), "{}", dir.display());
    assert!(!dir.exists(), "{} still there", dir.display());
}

#[test]
fn a_skiffd_that_died_under_the_test_fails_the_teardown() {
    let mut h = Harness::start().expect("harness");
    let pid = h.pid().expect("pid");
    common::run("kill", &["-KILL", &pid.to_string()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.is_running() {
        assert!(std::time::Instant::now() < deadline, "skiffd {pid} survived SIGKILL");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let report = h.shutdown().expect("shutdown");
    assert!(report.leaks.is_empty(), "{report}");
    assert!(report.errors.len() == 1 && report.errors[0].starts_with("skiffd exited by itself (signal: 9"), "{report}");
}
