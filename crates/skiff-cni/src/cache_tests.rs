use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::*;

fn entry(network: &str, container: &str) -> CacheEntry {
    CacheEntry {
        kind: CACHE_KIND.into(),
        container_id: container.into(),
        config: br#"{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"}]}"#.to_vec(),
        if_name: "eth0".into(),
        network_name: network.into(),
        netns: "/var/lib/skiff/pods/sb1/ns/net".into(),
        cni_args: vec![["IgnoreUnknown".into(), "1".into()], ["K8S_POD_NAME".into(), "web".into()]],
        capability_args: json!({"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}]}).as_object().cloned().unwrap_or_default(),
        result: Some(json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]})),
    }
}

#[test]
fn round_trips_through_the_results_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let e = entry("pods", "sb1");
    let path = cache.write(&e).expect("write");
    assert_eq!(path, dir.path().join("results/pods-sb1-eth0"));
    assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path().join("results")).expect("stat").permissions().mode() & 0o777, 0o700);
    assert_eq!(cache.read("pods", "sb1", "eth0").expect("read"), Some(e.clone()));
    assert_eq!(cache.read("pods", "sb2", "eth0").expect("read"), None);
    // Rewriting replaces; no temp file is left behind.
    let mut changed = e.clone();
    changed.netns = String::new();
    cache.write(&changed).expect("rewrite");
    assert_eq!(cache.read("pods", "sb1", "eth0").expect("read"), Some(changed));
    assert_eq!(std::fs::read_dir(dir.path().join("results")).expect("ls").count(), 1);
    cache.remove(&path).expect("remove");
    cache.remove(&path).expect("removing twice is fine");
    assert_eq!(cache.read("pods", "sb1", "eth0").expect("read"), None);
}

#[test]
fn writes_libcni_field_names_and_go_base64() {
    let e = entry("pods", "sb1");
    let v = serde_json::to_value(&e).expect("encode");
    let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, ["kind", "containerId", "config", "ifName", "networkName", "netns", "cniArgs", "capabilityArgs", "result"]);
    assert_eq!(v["kind"], "cniCacheV1");
    assert_eq!(v["config"], "eyJjbmlWZXJzaW9uIjoiMS4wLjAiLCJuYW1lIjoicG9kcyIsInBsdWdpbnMiOlt7InR5cGUiOiJicmlkZ2UifV19");
    assert_eq!(v["cniArgs"][1], json!(["K8S_POD_NAME", "web"]));
    // libcni's omitempty fields go when empty.
    let bare = CacheEntry { netns: String::new(), cni_args: vec![], capability_args: Map::new(), result: None, ..e };
    let keys: Vec<_> = serde_json::to_value(&bare).expect("encode").as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, ["kind", "containerId", "config", "ifName", "networkName"]);
}

#[test]
fn reads_an_entry_libcni_wrote() {
    // As libcni 1.x writes it for `cnitool add` (Go's encoder: sorted map keys, nil slices as null).
    let text = r#"{"kind":"cniCacheV1","containerId":"cnitool-77383ca0a0715733ca6f","config":"eyJuYW1lIjoibmV0In0=","ifName":"eth0","networkName":"net","netns":"/run/netns/t","cniArgs":null,"capabilityArgs":null,"result":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/t"}],"ips":[{"address":"10.1.0.5/16","interface":0}],"dns":{}}}"#;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("results")).expect("mkdir");
    std::fs::write(dir.path().join("results/net-cnitool-77383ca0a0715733ca6f-eth0"), text).expect("write");
    let cache = Cache::new(dir.path());
    let e = cache.read("net", "cnitool-77383ca0a0715733ca6f", "eth0").expect("read").expect("present");
    assert_eq!(e.config, br#"{"name":"net"}"#);
    assert!(e.cni_args.is_empty() && e.capability_args.is_empty());
    assert_eq!(e.result.expect("result")["ips"][0]["address"], "10.1.0.5/16");
}

#[test]
fn a_wrong_kind_or_garbage_is_a_cache_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    std::fs::create_dir(dir.path().join("results")).expect("mkdir");
    std::fs::write(cache.path("n", "c", "eth0"), r#"{"kind":"cniCacheV2","containerId":"c","config":null,"ifName":"eth0","networkName":"n"}"#).expect("write");
    let err = cache.read("n", "c", "eth0").expect_err("kind");
    assert!(matches!(err, CniError::Cache { .. }) && err.to_string().contains("cniCacheV2"), "{err}");
    std::fs::write(cache.path("n", "c", "eth0"), "{").expect("write");
    assert!(matches!(cache.read("n", "c", "eth0"), Err(CniError::Cache { .. })));
}

#[test]
fn find_gets_this_attachments_entries_of_any_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    assert!(cache.find("sb1", "eth0").expect("no dir yet").is_empty());
    cache.write(&entry("old-net", "sb1")).expect("write");
    cache.write(&entry("pods", "sb1")).expect("write");
    cache.write(&entry("pods", "sb10")).expect("write");
    // "net" + container "x-sb1": its name ends as sb1's would, its fields say otherwise.
    cache.write(&entry("net", "x-sb1")).expect("write");
    std::fs::write(dir.path().join("results/broken-sb1-eth0"), "garbage").expect("write");
    std::fs::write(dir.path().join("results/.pods-1-2.tmp"), "half").expect("write");
    let found = cache.find("sb1", "eth0").expect("find");
    let names: Vec<_> = found.iter().map(|f| f.path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string()).collect();
    assert_eq!(names, ["broken-sb1-eth0", "old-net-sb1-eth0", "pods-sb1-eth0"]);
    assert!(found[0].entry.is_err());
    assert!(found[1].entry.is_ok() && found[2].entry.is_ok());
    assert!(cache.find("sb1", "net1").expect("find").is_empty());
}
