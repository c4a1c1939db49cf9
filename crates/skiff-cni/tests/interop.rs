//! libcni and Skiff on one cache: each deletes what the other added.

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;

use skiff_cni::{NetworkPlugin, PodNetwork};
use support::{portmap, run, World, PLUGINS};

/// libcni's own code (Debian's golang-github-appc-cni-dev, built from tests/libcni_probe) on the
/// same cache: it reads and deletes an attachment Skiff added, and Skiff deletes one it added.
#[test]
#[ignore = "needs go and libcni's source: apt-get install golang-go golang-github-appc-cni-dev, then run with --ignored"]
fn libcni_and_skiff_read_each_others_cache() {
    let w = World::with_plugins(&[portmap()], &[]);
    let probe = w.dir.path().join("probe");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libcni_probe/main.go");
    let gocache = w.dir.path().join("gocache");
    let built = Command::new("go")
        .args(["build", "-o", &probe.display().to_string(), &src.display().to_string()])
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &gocache)
        .output()
        .expect("go (apt-get install golang-go golang-github-appc-cni-dev)");
    assert!(built.status.success(), "go build: {}", String::from_utf8_lossy(&built.stderr));
    let conf = w.dir.path().join("conf/10-test.conflist");
    let cache = w.dir.path().join("cache");
    let paths = format!("{}:{PLUGINS}", w.dir.path().join("bin").display());
    let libcni = |cmd: &str, pod: &PodNetwork| -> String {
        let p = |x: &Path| x.display().to_string();
        run(&[&p(&probe), cmd, &p(&conf), &p(&cache), &paths, &pod.sandbox_id, &p(&pod.netns)])
    };

    // Skiff adds; libcni finds the result, the config and the args in the entry, and deletes.
    let (_, fa) = w.netns("a");
    let pa = w.pod("a", &fa);
    let added = w.cni.setup(&pa).expect("skiff setup");
    let cached: serde_json::Value = serde_json::from_str(&libcni("cached", &pa)).expect("probe output");
    assert_eq!(cached["result"]["ips"][0]["address"], format!("{}/24", added.ips[0]));
    assert_eq!(cached["config"], std::fs::read_to_string(&conf).expect("conf"));
    assert!(cached["args"].to_string().contains("K8S_POD_NAME"), "{cached}");
    libcni("del", &pa);
    assert_eq!(w.ports(), "", "libcni's DEL removed the veth");
    assert!(w.reserved().is_empty());
    assert!(!w.cache_entry(&pa).exists(), "libcni removed the entry");

    // libcni adds; Skiff's DEL runs from libcni's entry.
    let (_, fb) = w.netns("b");
    let pb = w.pod("b", &fb);
    let result: serde_json::Value = serde_json::from_str(&libcni("add", &pb)).expect("probe output");
    assert!(w.cache_entry(&pb).exists(), "libcni wrote its entry");
    assert_eq!(w.reserved().len(), 1, "{result}");
    w.cni.teardown(&pb).expect("skiff teardown of libcni's attachment");
    assert_eq!(w.ports(), "");
    assert!(w.reserved().is_empty());
    assert!(!w.cache_entry(&pb).exists());
}

