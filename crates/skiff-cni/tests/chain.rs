//! The chain's protocol, driven through `Cni` with shell-script plugins that record what they
//! were given (order, variables, stdin) and answer what the test put in their files. Real plugins
//! are in real.rs; these cover what real plugins cannot be made to do on demand.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use skiff_cni::{Cni, CniError, CniOptions, NetworkPlugin, PodNetwork, PortMapping, Protocol};

/// Records `<COMMAND> <name> netns=<CNI_NETNS>` to `log`, its stdin to `<name>.<COMMAND>.stdin`;
/// fails with `<name>.<COMMAND>.fail` when that exists, sleeps `sleep` seconds when that exists,
/// prints `<name>.result` on ADD.
const PLUGIN: &str = r#"#!/bin/sh
d=__DIR__
n=$(basename "$0")
cat > "$d/$n.$CNI_COMMAND.stdin"
echo "begin $CNI_COMMAND $n $CNI_CONTAINERID netns=$CNI_NETNS args=$CNI_ARGS" >> "$d/log"
if [ -f "$d/sleep" ]; then sleep "$(cat "$d/sleep")"; fi
echo "end $CNI_COMMAND $n $CNI_CONTAINERID" >> "$d/log"
if [ -f "$d/$n.$CNI_COMMAND.fail" ]; then cat "$d/$n.$CNI_COMMAND.fail"; exit 1; fi
if [ "$CNI_COMMAND" = ADD ]; then cat "$d/$n.result"; fi
"#;

struct Rig {
    root: tempfile::TempDir,
    cni: Cni,
}

impl Rig {
    fn new() -> Rig {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["conf", "bin", "cache", "rec"] {
            std::fs::create_dir(root.path().join(d)).expect("mkdir");
        }
        let rig = Rig { cni: Cni::new(Rig::options(root.path())), root };
        for (name, ip) in [("first", "10.50.0.5"), ("second", "10.50.0.5"), ("third", "10.50.0.5")] {
            rig.plugin(name);
            let result = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/proc/self/ns/net"}],
                "ips": [{"address": format!("{ip}/24"), "gateway": "10.50.0.1", "interface": 0}], "by": name});
            std::fs::write(rig.rec(&format!("{name}.result")), result.to_string()).expect("write result");
        }
        rig.config(&json!({"cniVersion": "1.0.0", "name": "chain", "plugins": [
            {"type": "first", "capabilities": {"ipRanges": true}},
            {"type": "second", "capabilities": {"portMappings": true, "dns": false}},
            {"type": "third"}]}));
        rig
    }

    fn options(root: &Path) -> CniOptions {
        CniOptions { conf_dir: root.join("conf"), plugin_dirs: vec![root.join("bin")], cache_dir: root.join("cache"), plugin_timeout: Duration::from_secs(20) }
    }

    /// A fresh `Cni` on the same dirs, as after a daemon restart.
    fn restarted(&self) -> Cni {
        Cni::new(Rig::options(self.root.path()))
    }

    fn rec(&self, name: &str) -> PathBuf {
        self.root.path().join("rec").join(name)
    }

    fn plugin(&self, name: &str) {
        let path = self.root.path().join("bin").join(name);
        std::fs::write(&path, PLUGIN.replace("__DIR__", &self.rec("").display().to_string())).expect("write plugin");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn config(&self, list: &Value) {
        std::fs::write(self.root.path().join("conf/10-chain.conflist"), list.to_string()).expect("write config");
    }

    /// The log's `begin` lines, without the prefix.
    fn calls(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.rec("log")).unwrap_or_default();
        log.lines().filter_map(|l| l.strip_prefix("begin ")).map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect()
    }

    fn clear_log(&self) {
        let _ = std::fs::remove_file(self.rec("log"));
    }

    fn stdin(&self, plugin: &str, command: &str) -> Value {
        let text = std::fs::read_to_string(self.rec(&format!("{plugin}.{command}.stdin"))).expect("stdin recorded");
        serde_json::from_str(&text).expect("stdin is JSON")
    }

    fn result_of(&self, plugin: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.rec(&format!("{plugin}.result"))).expect("read")).expect("json")
    }

    fn fail(&self, plugin: &str, command: &str, code: u32, msg: &str) {
        let e = json!({"cniVersion": "1.0.0", "code": code, "msg": msg, "details": "scripted"});
        std::fs::write(self.rec(&format!("{plugin}.{command}.fail")), e.to_string()).expect("write fail");
    }

    fn cache_entry(&self, network: &str, id: &str) -> PathBuf {
        self.root.path().join("cache/results").join(format!("{network}-{id}-eth0"))
    }
}

/// A pod whose "namespace" is this process's: live, and the scripts never enter it.
fn pod(id: &str) -> PodNetwork {
    let mut pod = PodNetwork::new(id, "/proc/self/ns/net");
    pod.pod_name = format!("{id}-pod");
    pod.pod_namespace = "default".into();
    pod.pod_uid = "uid-1".into();
    pod.port_mappings = vec![PortMapping { host_port: 8080, container_port: 80, protocol: Protocol::Tcp, host_ip: String::new() }];
    pod
}

#[test]
fn add_runs_in_order_chaining_results_and_caches_the_last() {
    let rig = Rig::new();
    rig.cni.set_pod_cidr("10.50.0.0/24").expect("cidr");
    let status = rig.cni.setup(&pod("p1")).expect("setup");
    assert_eq!(rig.calls(), ["ADD first", "ADD second", "ADD third"]);
    assert_eq!(status.ips, ["10.50.0.5".parse::<std::net::IpAddr>().expect("ip")]);
    assert_eq!(status.gateway, Some("10.50.0.1".parse().expect("gw")));
    assert_eq!(status.result["by"], "third");
    let timed: Vec<_> = status.timings.iter().map(|t| t.plugin.as_str()).collect();
    assert_eq!(timed, ["first", "second", "third"]);

    let first = rig.stdin("first", "ADD");
    assert_eq!((first["name"].as_str(), first["cniVersion"].as_str()), (Some("chain"), Some("1.0.0")));
    assert!(first.get("prevResult").is_none());
    assert_eq!(first["runtimeConfig"], json!({"ipRanges": [[{"subnet": "10.50.0.0/24"}]]}));
    let second = rig.stdin("second", "ADD");
    assert_eq!(second["prevResult"], rig.result_of("first"));
    assert_eq!(second["runtimeConfig"], json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}));
    let third = rig.stdin("third", "ADD");
    assert_eq!(third["prevResult"], rig.result_of("second"));
    assert!(third.get("runtimeConfig").is_none(), "third declares no capability");

    let log = std::fs::read_to_string(rig.rec("log")).expect("log");
    assert!(log.contains("args=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p1-pod;K8S_POD_INFRA_CONTAINER_ID=p1;K8S_POD_UID=uid-1"), "{log}");
    assert!(log.contains("netns=/proc/self/ns/net"), "{log}");

    let entry: Value = serde_json::from_slice(&std::fs::read(rig.cache_entry("chain", "p1")).expect("cache entry")).expect("json");
    assert_eq!(entry["kind"], "cniCacheV1");
    assert_eq!(entry["result"], rig.result_of("third"));
    assert_eq!(entry["netns"], "/proc/self/ns/net");
    assert_eq!(entry["capabilityArgs"]["ipRanges"], json!([[{"subnet": "10.50.0.0/24"}]]));

    let again = rig.cni.setup(&pod("p1")).expect_err("second setup");
    assert!(matches!(again, CniError::AlreadySetUp { .. }), "{again:?}");
}

#[test]
fn del_after_a_restart_runs_the_cached_config_in_reverse_with_the_cached_result() {
    let rig = Rig::new();
    rig.cni.setup(&pod("p1")).expect("setup");
    // The node's config changes while the pod runs; the DEL must undo what the ADD did.
    rig.config(&json!({"cniVersion": "1.0.0", "name": "renamed", "plugins": [{"type": "first"}]}));
    rig.clear_log();
    let cni = rig.restarted();
    let mut bare = PodNetwork::new("p1", "/proc/self/ns/net");
    bare.pod_name = "p1-pod".into();
    cni.teardown(&bare).expect("teardown");
    assert_eq!(rig.calls(), ["DEL third", "DEL second", "DEL first"]);
    for plugin in ["first", "second", "third"] {
        let stdin = rig.stdin(plugin, "DEL");
        assert_eq!(stdin["prevResult"], rig.result_of("third"), "{plugin}");
        assert_eq!(stdin["name"], "chain");
    }
    // The ADD's capability args, not the bare request's.
    assert_eq!(rig.stdin("second", "DEL")["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
    assert!(!rig.cache_entry("chain", "p1").exists(), "entry removed after a successful DEL");

    // Nothing cached now: the current config, without a result; a second DEL is fine.
    rig.clear_log();
    cni.teardown(&bare).expect("second teardown");
    assert_eq!(rig.calls(), ["DEL first"]);
    assert!(rig.stdin("first", "DEL").get("prevResult").is_none());
}

#[test]
fn an_add_failing_midway_deletes_what_ran_and_caches_nothing() {
    let rig = Rig::new();
    rig.fail("third", "ADD", 7, "boom");
    let err = rig.cni.setup(&pod("p1")).expect_err("third fails");
    match &err {
        CniError::Plugin { plugin, code, msg, .. } => assert_eq!((plugin.as_str(), *code, msg.as_str()), ("third", 7, "boom")),
        other => panic!("want the plugin's error, got {other:?}"),
    }
    assert_eq!(rig.calls(), ["ADD first", "ADD second", "ADD third", "DEL third", "DEL second", "DEL first"]);
    // The undo gets the last result there was.
    assert_eq!(rig.stdin("first", "DEL")["prevResult"], rig.result_of("second"));
    assert!(!rig.cache_entry("chain", "p1").exists());
    // Nothing is left to block a retry.
    std::fs::remove_file(rig.rec("third.ADD.fail")).expect("rm");
    rig.cni.setup(&pod("p1")).expect("retry");
}

#[test]
fn a_bad_result_fails_the_add_and_is_undone() {
    let rig = Rig::new();
    std::fs::write(rig.rec("second.result"), "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"nonsense\"}]}").expect("write");
    let err = rig.cni.setup(&pod("p1")).expect_err("bad result");
    assert!(matches!(err, CniError::BadResult { .. }) && err.to_string().contains("\"second\""), "{err}");
    assert_eq!(rig.calls(), ["ADD first", "ADD second", "DEL second", "DEL first"]);
}

#[test]
fn del_tries_every_plugin_reports_the_first_error_and_keeps_the_entry() {
    let rig = Rig::new();
    rig.cni.setup(&pod("p1")).expect("setup");
    rig.fail("third", "DEL", 11, "try later");
    rig.fail("second", "DEL", 5, "io");
    rig.clear_log();
    let err = rig.cni.teardown(&pod("p1")).expect_err("del fails");
    assert!(matches!(err, CniError::Plugin { code: 11, .. }), "first error kept: {err:?}");
    assert_eq!(rig.calls(), ["DEL third", "DEL second", "DEL first"]);
    assert!(rig.cache_entry("chain", "p1").exists(), "kept for the retry");
    std::fs::remove_file(rig.rec("third.DEL.fail")).expect("rm");
    std::fs::remove_file(rig.rec("second.DEL.fail")).expect("rm");
    rig.clear_log();
    rig.cni.teardown(&pod("p1")).expect("retry");
    assert_eq!(rig.calls(), ["DEL third", "DEL second", "DEL first"]);
    assert_eq!(rig.stdin("first", "DEL")["prevResult"], rig.result_of("third"), "the retry still had the result");
    assert!(!rig.cache_entry("chain", "p1").exists());
}

#[test]
fn a_gone_namespace_is_passed_as_an_empty_netns_on_del() {
    let rig = Rig::new();
    rig.cni.setup(&pod("p1")).expect("setup");
    rig.clear_log();
    // What is left after the namespace is released: the plain file it was mounted on.
    let stale = rig.root.path().join("net");
    std::fs::write(&stale, "").expect("write");
    let mut gone = pod("p1");
    gone.netns = stale.clone();
    rig.cni.teardown(&gone).expect("teardown");
    let log = std::fs::read_to_string(rig.rec("log")).expect("log");
    assert_eq!(log.matches("netns= ").count(), 3, "{log}");
    // Refused on ADD: there is nothing to attach.
    let err = rig.cni.setup(&gone).expect_err("not a netns");
    assert!(matches!(err, CniError::Netns { .. }), "{err:?}");
    gone.netns = rig.root.path().join("absent");
    assert!(rig.cni.setup(&gone).expect_err("missing").to_string().contains("does not exist"));
}

#[test]
fn a_missing_plugin_fails_the_add_before_anything_runs() {
    let rig = Rig::new();
    rig.config(&json!({"cniVersion": "1.0.0", "name": "chain", "plugins": [{"type": "first"}, {"type": "flannel-ng"}]}));
    let err = rig.cni.setup(&pod("p1")).expect_err("missing");
    assert!(matches!(err, CniError::PluginNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("\"flannel-ng\"") && err.to_string().contains("bin"), "{err}");
    assert!(rig.calls().is_empty());
    let not_ready = rig.cni.status().expect_err("not ready");
    assert_eq!(not_ready.reason, "PluginNotFound");
    assert!(not_ready.message.contains("flannel-ng"), "{not_ready}");
    // A DEL still runs the plugins there are.
    rig.cni.teardown(&pod("p1")).expect_err("the missing one is reported");
    assert_eq!(rig.calls(), ["DEL first"]);
}

#[test]
fn status_says_why_the_network_is_not_ready() {
    let rig = Rig::new();
    assert_eq!(rig.cni.status(), Ok(()));
    std::fs::write(rig.root.path().join("conf/05-bad.conf"), "{\"name\": ").expect("write");
    let bad = rig.cni.status().expect_err("bad config");
    assert_eq!(bad.reason, "InvalidNetworkConfig");
    assert!(bad.message.contains("05-bad.conf"), "{bad}");
    for f in ["05-bad.conf", "10-chain.conflist"] {
        std::fs::remove_file(rig.root.path().join("conf").join(f)).expect("rm");
    }
    let none = rig.cni.status().expect_err("no config");
    assert_eq!(none.reason, "NoNetworkConfig");
    assert!(matches!(rig.cni.setup(&pod("p1")), Err(CniError::NoConfig { .. })));
}

#[test]
fn one_operation_per_sandbox_at_a_time_different_sandboxes_at_once() {
    let rig = Arc::new(Rig::new());
    rig.config(&json!({"cniVersion": "1.0.0", "name": "chain", "plugins": [{"type": "first"}]}));
    std::fs::write(rig.rec("sleep"), "0.3").expect("write");
    let run = |id: &'static str, teardown: bool| {
        let rig = rig.clone();
        std::thread::spawn(move || if teardown { rig.cni.teardown(&pod(id)).map(drop) } else { rig.cni.setup(&pod(id)).map(drop) })
    };
    let threads = [run("a", false), run("a", true), run("b", false)];
    for t in threads {
        t.join().expect("thread").expect("operation");
    }
    let log = std::fs::read_to_string(rig.rec("log")).expect("log");
    let events: Vec<(&str, &str)> = log.lines().map(|l| {
        let mut w = l.split(' ');
        (w.next().unwrap_or(""), w.nth(2).unwrap_or(""))
    }).collect();
    // Sandbox a: begin, end, begin, end — never two begins in a row.
    let a: Vec<_> = events.iter().filter(|(_, id)| *id == "a").map(|(e, _)| *e).collect();
    assert_eq!(a, ["begin", "end", "begin", "end"], "{log}");
    // Sandbox b ran while a's first operation did: some begin of b comes before a's first end.
    let b_begin = events.iter().position(|e| *e == ("begin", "b")).expect("b ran");
    let a_end = events.iter().position(|e| *e == ("end", "a")).expect("a ran");
    assert!(b_begin < a_end, "b waited for a: {log}");
}

#[test]
fn configs_before_0_4_0_get_no_prev_result_on_del() {
    let rig = Rig::new();
    rig.config(&json!({"cniVersion": "0.3.1", "name": "old", "plugins": [{"type": "first"}, {"type": "second"}]}));
    let v031 = json!({"cniVersion": "0.3.1", "interfaces": [{"name": "eth0", "sandbox": "/proc/self/ns/net"}],
        "ips": [{"version": "4", "address": "10.50.0.5/24", "interface": 0}]});
    for p in ["first", "second"] {
        std::fs::write(rig.rec(&format!("{p}.result")), v031.to_string()).expect("write");
    }
    let status = rig.cni.setup(&pod("p1")).expect("setup");
    assert_eq!(status.ips, ["10.50.0.5".parse::<std::net::IpAddr>().expect("ip")]);
    // ADD chains results whatever the version, in the config's shape.
    assert_eq!(rig.stdin("second", "ADD")["prevResult"]["ips"][0]["version"], "4");
    rig.cni.teardown(&pod("p1")).expect("teardown");
    assert_eq!(rig.calls(), ["ADD first", "ADD second", "DEL second", "DEL first"]);
    assert!(rig.stdin("second", "DEL").get("prevResult").is_none());
    assert!(rig.stdin("first", "DEL").get("prevResult").is_none());
}
