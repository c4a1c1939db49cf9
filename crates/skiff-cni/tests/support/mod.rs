//! What the real-plugin tests share: a `World` per test with its own namespaces (bind-mounted on
//! files, as Skiff's sandboxes have them), bridge, 10.240.x.0/24 subnet, conf, cache and IPAM
//! dirs, and a guard that removes them whatever the test did. Needs root and the plugins of
//! containernetworking-plugins in /usr/lib/cni.

use std::collections::HashSet;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use skiff_cni::{Cni, CniOptions, NetworkPlugin, PodNetwork};

pub const PLUGINS: &str = "/usr/lib/cni";

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).expect("urandom");
    u32::from_ne_bytes(b)
}

/// Runs a command; its stdout, or a panic with its stderr.
pub fn run(args: &[&str]) -> String {
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
pub struct World {
    pub tag: String,
    pub bridge: String,
    pub x: u8,
    pub dir: tempfile::TempDir,
    namespaces: Mutex<Vec<(String, PathBuf, String)>>,
    pub cni: Cni,
}

impl World {
    pub fn new() -> World {
        World::with_plugins(&[], &[])
    }

    /// A world whose chain is bridge + host-local, then `extra` plugins; `own_dir` plugins come
    /// from the test's own dir (searched before /usr/lib/cni).
    pub fn with_plugins(extra: &[serde_json::Value], own_dir: &[(&str, &str)]) -> World {
        World::build(extra, own_dir, false)
    }

    /// With `pod_cidr`, host-local has no subnet of its own: the bridge declares `ipRanges` and
    /// the range comes from the runtime (`set_pod_cidr`).
    pub fn build(extra: &[serde_json::Value], own_dir: &[(&str, &str)], pod_cidr: bool) -> World {
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

    pub fn network(&self) -> String {
        format!("net-{}", self.tag)
    }

    /// A namespace, bind-mounted on `<dir>/ns/<n>` as a Skiff sandbox's is, loopback up.
    pub fn netns(&self, n: &str) -> (String, PathBuf) {
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
    pub fn release(&self, name: &str, file: &Path) {
        run(&["umount", &file.display().to_string()]);
        run(&["ip", "netns", "del", name]);
    }

    pub fn pod(&self, id: &str, netns: &Path) -> PodNetwork {
        let mut pod = PodNetwork::new(format!("{id}-{}", self.tag), netns);
        pod.pod_name = id.into();
        pod.pod_namespace = "default".into();
        pod.pod_uid = format!("uid-{id}");
        pod
    }

    /// The bridge's ports (the host ends of pods' veths).
    pub fn ports(&self) -> String {
        if !Path::new("/sys/class/net").join(&self.bridge).exists() {
            return String::new();
        }
        run(&["ip", "-o", "link", "show", "master", &self.bridge])
    }

    /// host-local's reservations: one file named by each address held.
    pub fn reserved(&self) -> Vec<String> {
        let dir = self.dir.path().join("ipam").join(self.network());
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("10.240.")).collect()
    }

    pub fn cache_entry(&self, pod: &PodNetwork) -> PathBuf {
        self.dir.path().join("cache/results").join(format!("{}-{}-eth0", self.network(), pod.sandbox_id))
    }

    pub fn in_subnet(&self, ip: &IpAddr) -> bool {
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

pub fn portmap() -> serde_json::Value {
    json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": false})
}

pub fn nat_rules_for(id: &str) -> usize {
    run(&["iptables-save", "-t", "nat"]).lines().filter(|l| l.contains(id)).count()
}

