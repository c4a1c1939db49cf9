//! `Cni` with the real plugins (bridge, host-local, portmap from containernetworking-plugins in
//! /usr/lib/cni) on real namespaces. Needs root. Each test has its own namespace (bind-mounted on
//! a file, as Skiff's sandboxes have it), bridge, 10.240.x.0/24 subnet, conf, cache and IPAM dirs,
//! and a guard that removes them whatever the test did.

use std::collections::HashSet;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use skiff_cni::{Cni, CniError, CniOptions, NetworkPlugin, PodNetwork, PortMapping, Protocol};

const PLUGINS: &str = "/usr/lib/cni";

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).expect("urandom");
    u32::from_ne_bytes(b)
}

/// Runs a command; its stdout, or a panic with its stderr.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_quiet(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

fn preflight() {
    assert!(nix::unistd::geteuid().is_root(), "these tests make namespaces, bridges and iptables rules: run them as root");
    for p in ["bridge", "host-local", "portmap"] {
        assert!(Path::new(PLUGINS).join(p).exists(), "{PLUGINS}/{p} missing: apt-get install -y containernetworking-plugins");
    }
}

/// A subnet x for 10.240.x.0/24 that no other test of this run and no route of the host uses.
fn subnet() -> u8 {
    static TAKEN: Mutex<Option<HashSet<u8>>> = Mutex::new(None);
    let routes = run(&["ip", "-4", "route", "show"]);
    let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    loop {
        let x = (random_u32() % 254 + 1) as u8;
        if !routes.contains(&format!("10.240.{x}.")) && taken.insert(x) {
            return x;
        }
    }
}

/// One test's world. Dropping it removes the namespaces, the bridge and what a DEL can undo.
struct World {
    tag: String,
    bridge: String,
    x: u8,
    dir: tempfile::TempDir,
    namespaces: Mutex<Vec<(String, PathBuf, String)>>,
    cni: Cni,
}

impl World {
    fn new() -> World {
        World::with_plugins(&[], &[])
    }

    /// A world whose chain is bridge + host-local, then `extra` plugins; `own_dir` plugins come
    /// from the test's own dir (searched before /usr/lib/cni).
    fn with_plugins(extra: &[serde_json::Value], own_dir: &[(&str, &str)]) -> World {
        World::build(extra, own_dir, false)
    }

    /// With `pod_cidr`, host-local has no subnet of its own: the bridge declares `ipRanges` and
    /// the range comes from the runtime (`set_pod_cidr`).
    fn build(extra: &[serde_json::Value], own_dir: &[(&str, &str)], pod_cidr: bool) -> World {
        preflight();
        let tag = format!("{:08x}", random_u32());
        let x = subnet();
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["conf", "cache", "ipam", "bin", "ns"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        for (name, body) in own_dir {
            let path = dir.path().join("bin").join(name);
            std::fs::write(&path, body).expect("write plugin");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let bridge = format!("skc{tag}");
        let mut bridge_conf = json!({
            "type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
            "ipam": {"type": "host-local", "subnet": format!("10.240.{x}.0/24"), "dataDir": dir.path().join("ipam"), "routes": [{"dst": "0.0.0.0/0"}]}
        });
        if pod_cidr {
            bridge_conf["capabilities"] = json!({"ipRanges": true});
            if let Some(ipam) = bridge_conf["ipam"].as_object_mut() {
                ipam.remove("subnet");
            }
        }
        let mut plugins = vec![bridge_conf];
        plugins.extend(extra.iter().cloned());
        let list = json!({"cniVersion": "1.0.0", "name": format!("net-{tag}"), "plugins": plugins});
        std::fs::write(dir.path().join("conf/10-test.conflist"), list.to_string()).expect("write config");
        let opts = CniOptions {
            conf_dir: dir.path().join("conf"),
            plugin_dirs: vec![dir.path().join("bin"), PathBuf::from(PLUGINS)],
            cache_dir: dir.path().join("cache"),
            plugin_timeout: Duration::from_secs(30),
        };
        World { tag, bridge, x, cni: Cni::new(opts), dir, namespaces: Mutex::new(Vec::new()) }
    }

    fn network(&self) -> String {
        format!("net-{}", self.tag)
    }

    /// A namespace, bind-mounted on `<dir>/ns/<n>` as a Skiff sandbox's is, loopback up.
    fn netns(&self, n: &str) -> (String, PathBuf) {
        let name = format!("skiffcni-{}-{n}", self.tag);
        run(&["ip", "netns", "add", &name]);
        let file = self.dir.path().join("ns").join(n);
        std::fs::write(&file, "").expect("mount point");
        self.namespaces.lock().unwrap_or_else(|p| p.into_inner()).push((name.clone(), file.clone(), n.to_string()));
        run(&["mount", "--bind", &format!("/run/netns/{name}"), &file.display().to_string()]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        (name, file)
    }

    /// Releases a namespace as Skiff does when a sandbox goes: unmounted, the file left.
    fn release(&self, name: &str, file: &Path) {
        run(&["umount", &file.display().to_string()]);
        run(&["ip", "netns", "del", name]);
    }

    fn pod(&self, id: &str, netns: &Path) -> PodNetwork {
        let mut pod = PodNetwork::new(format!("{id}-{}", self.tag), netns);
        pod.pod_name = id.into();
        pod.pod_namespace = "default".into();
        pod.pod_uid = format!("uid-{id}");
        pod
    }

    /// The bridge's ports (the host ends of pods' veths).
    fn ports(&self) -> String {
        if !Path::new("/sys/class/net").join(&self.bridge).exists() {
            return String::new();
        }
        run(&["ip", "-o", "link", "show", "master", &self.bridge])
    }

    /// host-local's reservations: one file named by each address held.
    fn reserved(&self) -> Vec<String> {
        let dir = self.dir.path().join("ipam").join(self.network());
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("10.240.")).collect()
    }

    fn cache_entry(&self, pod: &PodNetwork) -> PathBuf {
        self.dir.path().join("cache/results").join(format!("{}-{}-eth0", self.network(), pod.sandbox_id))
    }

    fn in_subnet(&self, ip: &IpAddr) -> bool {
        matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == [10, 240, self.x])
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for (name, file, n) in self.namespaces.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            // A DEL undoes portmap's rules and host-local's reservation if the test did not (each
            // test names its pod as its namespace).
            let _ = self.cni.teardown(&self.pod(n, file));
            run_quiet(&["umount", &file.display().to_string()]);
            run_quiet(&["ip", "netns", "del", name]);
        }
        run_quiet(&["ip", "link", "del", &self.bridge]);
    }
}

fn portmap() -> serde_json::Value {
    json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": false})
}

fn nat_rules_for(id: &str) -> usize {
    run(&["iptables-save", "-t", "nat"]).lines().filter(|l| l.contains(id)).count()
}

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
    assert_eq!(w.ports(), "");
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

/// libcni's own code (Debian's golang-github-appc-cni-dev, built into tests/libcni_probe) on the
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
