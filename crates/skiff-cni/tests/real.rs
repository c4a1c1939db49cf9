//! `Cni` with the real plugins (bridge, host-local, portmap from containernetworking-plugins in
//! /usr/lib/cni) on real namespaces, one `World` (tests/support) per test. Needs root.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use serde_json::json;
use skiff_cni::{CniError, NetworkPlugin, PortMapping, Protocol};
use support::{nat_rules_for, portmap, run, World, PLUGINS};

#[test]
fn add_then_del_with_bridge_host_local_portmap() {
    let w = World::with_plugins(&[portmap()], &[]);
    let (ns, file) = w.netns("a");
    let mut pod = w.pod("a", &file);
    pod.port_mappings = vec![PortMapping { host_port: 30000 + u16::from(w.x), container_port: 80, protocol: Protocol::Tcp, host_ip: String::new() }];

    let status = w.cni.setup(&pod).expect("setup");
    let ip = status.ips.first().copied().expect("an address");
    assert!(w.in_subnet(&ip), "{ip} outside 10.240.{}.0/24", w.x);
    assert_eq!(status.gateway, Some(format!("10.240.{}.1", w.x).parse().expect("gw")));
    assert!(run(&["ip", "-n", &ns, "-4", "addr", "show", "eth0"]).contains(&format!("inet {ip}/24")));
    assert!(w.cache_entry(&pod).exists(), "cache entry written");
    assert_eq!(w.reserved(), [ip.to_string()]);
    assert_eq!(w.ports().lines().count(), 1, "one veth on the bridge");
    assert!(nat_rules_for(&pod.sandbox_id) > 0, "portmap's DNAT rules are there");
    let plugins: Vec<_> = status.timings.iter().map(|t| t.plugin.as_str()).collect();
    assert_eq!(plugins, ["bridge", "portmap"]);

    w.cni.teardown(&pod).expect("teardown");
    assert_eq!(w.ports(), "", "veth removed");
    assert!(!run(&["ip", "-n", &ns, "link"]).contains("eth0"), "no eth0 left in the namespace");
    assert!(w.reserved().is_empty(), "address released");
    assert!(!w.cache_entry(&pod).exists(), "cache entry removed");
    assert_eq!(nat_rules_for(&pod.sandbox_id), 0, "portmap's rules removed");

    w.cni.teardown(&pod).expect("a second teardown is fine");
}

#[test]
fn del_after_the_namespace_is_gone() {
    let w = World::with_plugins(&[portmap()], &[]);
    let (ns, file) = w.netns("a");
    let pod = w.pod("a", &file);
    w.cni.setup(&pod).expect("setup");
    // The namespace goes first (its veth with it); the file it was mounted on stays.
    w.release(&ns, &file);
    assert!(file.exists());
    w.cni.teardown(&pod).expect("teardown without the namespace");
    assert!(w.reserved().is_empty(), "address released");
    assert!(!w.cache_entry(&pod).exists());
    // The kernel takes the namespace's veth pair down after `ip netns del` returns, on a work
    // queue of its own (CI saw the host end still there once): wait for it, at most 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !w.ports().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(w.ports(), "", "the veth went with its namespace");
    w.cni.teardown(&pod).expect("and again");
    // The file gone too.
    std::fs::remove_file(&file).expect("rm");
    w.cni.teardown(&pod).expect("without even the file");
}

#[test]
fn a_failing_plugin_is_typed_and_the_plugins_before_it_are_undone() {
    let failing = r#"#!/bin/sh
cat > /dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":7,"msg":"boom","details":"scripted failure after the bridge"}'
  exit 1
fi
"#;
    let w = World::with_plugins(&[json!({"type": "boom"})], &[("boom", failing)]);
    let (ns, file) = w.netns("a");
    let pod = w.pod("a", &file);
    let err = w.cni.setup(&pod).expect_err("boom fails");
    match &err {
        CniError::Plugin { plugin, code, msg, details, .. } => {
            assert_eq!((plugin.as_str(), *code, msg.as_str()), ("boom", 7, "boom"));
            assert!(details.contains("scripted"));
        }
        other => panic!("want the plugin's error, got {other:?}"),
    }
    assert!(err.to_string().contains("code 7: boom"), "{err}");
    assert_eq!(w.ports(), "", "the bridge's veth was deleted");
    let veths = run(&["ip", "-o", "link", "show", "type", "veth"]);
    assert!(!veths.contains(&format!("master {}", w.bridge)), "{veths}");
    assert!(!run(&["ip", "-n", &ns, "link"]).contains("eth0"));
    assert!(w.reserved().is_empty(), "host-local's address released");
    assert!(!w.cache_entry(&pod).exists());
}

#[test]
fn missing_config_or_plugin() {
    let w = World::new();
    std::fs::remove_file(w.dir.path().join("conf/10-test.conflist")).expect("rm");
    let not_ready = w.cni.status().expect_err("no config");
    assert_eq!(not_ready.reason, "NoNetworkConfig");
    assert!(not_ready.message.contains("conf"), "{not_ready}");

    let list = json!({"cniVersion": "1.0.0", "name": w.network(), "plugins": [{"type": "bridge", "bridge": w.bridge}, {"type": "skiff-no-such-plugin"}]});
    std::fs::write(w.dir.path().join("conf/10-test.conflist"), list.to_string()).expect("write");
    assert_eq!(w.cni.status().expect_err("plugin missing").reason, "PluginNotFound");
    let (_, file) = w.netns("a");
    let err = w.cni.setup(&w.pod("a", &file)).expect_err("plugin missing");
    assert!(matches!(err, CniError::PluginNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("\"skiff-no-such-plugin\"") && err.to_string().contains(PLUGINS), "{err}");
    assert_eq!(w.ports(), "", "nothing ran");
}

#[test]
fn two_pods_in_parallel_get_different_addresses() {
    let w = World::with_plugins(&[portmap()], &[]);
    let (_, fa) = w.netns("a");
    let (_, fb) = w.netns("b");
    let (pa, pb) = (w.pod("a", &fa), w.pod("b", &fb));
    let (sa, sb) = std::thread::scope(|s| {
        let a = s.spawn(|| w.cni.setup(&pa));
        let b = s.spawn(|| w.cni.setup(&pb));
        (a.join().expect("thread a").expect("setup a"), b.join().expect("thread b").expect("setup b"))
    });
    assert!(w.in_subnet(&sa.ips[0]) && w.in_subnet(&sb.ips[0]));
    assert_ne!(sa.ips[0], sb.ips[0]);
    assert_eq!(w.ports().lines().count(), 2);
    std::thread::scope(|s| {
        let a = s.spawn(|| w.cni.teardown(&pa));
        let b = s.spawn(|| w.cni.teardown(&pb));
        a.join().expect("thread a").expect("teardown a");
        b.join().expect("thread b").expect("teardown b");
    });
    assert_eq!(w.ports(), "");
    assert!(w.reserved().is_empty());
}

#[test]
fn the_node_pod_cidr_reaches_host_local_as_ip_ranges() {
    let w = World::build(&[], &[], true);
    let (ns, file) = w.netns("a");
    let pod = w.pod("a", &file);
    w.cni.set_pod_cidr(&format!("10.240.{}.0/24", w.x)).expect("pod cidr");
    let status = w.cni.setup(&pod).expect("setup");
    assert!(w.in_subnet(&status.ips[0]), "{:?}", status.ips);
    assert!(run(&["ip", "-n", &ns, "-4", "addr", "show", "eth0"]).contains(&format!("inet {}/24", status.ips[0])));
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(w.cache_entry(&pod)).expect("entry")).expect("json");
    assert_eq!(entry["capabilityArgs"]["ipRanges"], json!([[{"subnet": format!("10.240.{}.0/24", w.x)}]]));
    w.cni.teardown(&pod).expect("teardown");
    assert!(w.reserved().is_empty());
}

/// Per-plugin ADD and DEL times of bridge + host-local + portmap (host-local runs inside the
/// bridge's time). `cargo test -p skiff-cni --test real timings -- --nocapture` prints them.
#[test]
fn timings() {
    let w = World::with_plugins(&[portmap()], &[]);
    let (_, file) = w.netns("p");
    let mut pod = w.pod("p", &file);
    pod.port_mappings = vec![PortMapping { host_port: 31000 + u16::from(w.x), container_port: 80, protocol: Protocol::Tcp, host_ip: String::new() }];
    let mut samples: std::collections::BTreeMap<(String, &str), Vec<Duration>> = Default::default();
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        // "(all)" is the whole call: the plugins plus reading the config, the lock and the cache.
        let started = std::time::Instant::now();
        for t in w.cni.add(&pod).expect("setup").timings {
            samples.entry((t.plugin, "ADD")).or_default().push(t.duration);
        }
        samples.entry(("(all)".into(), "ADD")).or_default().push(started.elapsed());
        let started = std::time::Instant::now();
        for t in w.cni.del(&pod).expect("teardown") {
            samples.entry((t.plugin, "DEL")).or_default().push(t.duration);
        }
        samples.entry(("(all)".into(), "DEL")).or_default().push(started.elapsed());
    }
    eprintln!("per-plugin times over {ROUNDS} rounds (min / median / max):");
    for ((plugin, command), mut d) in samples {
        assert_eq!(d.len(), ROUNDS);
        d.sort();
        eprintln!("  {command} {plugin:<8} {:>8.2?} {:>8.2?} {:>8.2?}", d[0], d[ROUNDS / 2], d[ROUNDS - 1]);
    }
}

