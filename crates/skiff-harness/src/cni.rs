//! The harness's own CNI network: a conflist (bridge + host-local + portmap) in a conf dir of its
//! own, a bridge name and a /24 no other harness on this host uses at the same time, and a network
//! name no other harness ever used (host-local keeps its reservations per network name).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where CNI plugins are looked for, in order.
pub const BIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];

/// The conflist's file name in the network's conf dir.
const CONFLIST: &str = "10-skiff-harness.conflist";

/// host-local's default data dir: `<this>/<network name>/<ip>` per reservation.
pub const HOST_LOCAL_DIR: &str = "/var/lib/cni/networks";

/// The second octets random subnets come from: 10.200.0.0/24 to 10.250.255.0/24.
const SECOND_OCTETS: std::ops::RangeInclusive<u8> = 200..=250;

/// A harness's CNI network.
#[derive(Debug)]
pub struct CniNetwork {
    name: String,
    bridge: String,
    subnet: Ipv4Addr,
    conf_dir: PathBuf,
    cache_dir: PathBuf,
    bin_dir: PathBuf,
    /// The file that holds the subnet for this harness while it lives.
    claim: Option<PathBuf>,
}

impl CniNetwork {
    /// The network's name (the conflist's `name`, host-local's data dir name).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The subnet, `10.X.Y.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}/24", self.subnet)
    }

    /// The bridge's address (`.1`: the bridge plugin makes it the gateway).
    pub fn gateway(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.subnet.octets();
        Ipv4Addr::new(a, b, c, 1)
    }

    /// The dir holding the harness's conflist (skiffd's `cri.cni_conf_dir`).
    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    /// The harness's conflist: a test may edit it (add a plugin, say) or remove it.
    pub fn conflist_path(&self) -> PathBuf {
        self.conf_dir.join(CONFLIST)
    }

    /// A plugin dir of the harness's own, empty at start and searched before [`BIN_DIRS`]: a
    /// test's own plugins go here (a failing one, or one that shadows a system plugin).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The CNI result cache dir (skiffd's `cri.cni_cache_dir`).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// host-local's reservations for this network.
    pub fn reservations_dir(&self) -> PathBuf {
        Path::new(HOST_LOCAL_DIR).join(&self.name)
    }

    /// Gives the subnet back to other harnesses.
    pub(crate) fn release(&mut self) {
        if let Some(claim) = self.claim.take() {
            let _ = std::fs::remove_file(claim);
        }
    }

    /// A network that holds no claim, for tests of what is written from it.
    #[cfg(test)]
    pub(crate) fn for_test(dir: &Path) -> CniNetwork {
        CniNetwork {
            name: "skiff-harness-test".into(),
            bridge: "skh-test".into(),
            subnet: Ipv4Addr::new(10, 199, 0, 0),
            conf_dir: dir.join("cni/net.d"),
            cache_dir: dir.join("cni/cache"),
            bin_dir: dir.join("cni/bin"),
            claim: None,
        }
    }

    fn conflist(&self) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    // No masquerading: it would leave iptables rules of the host's behind on a crash,
                    // and a harness's pods need no way out.
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{ "subnet": self.subnet(), "gateway": self.gateway().to_string() }]],
                        "routes": [{ "dst": "0.0.0.0/0" }]
                    }
                },
                { "type": "portmap", "capabilities": { "portMappings": true } }
            ]
        })
    }
}

/// Makes the network under `dir` (`cni/net.d`, `cni/cache`, `cni/bin`): the given bridge and subnet, or a
/// free random pair.
pub(crate) fn setup(dir: &Path, explicit: Option<(&str, &str)>) -> Result<CniNetwork> {
    let (bridge, subnet, claim) = match explicit {
        Some((bridge, subnet)) => {
            check_bridge_name(bridge)?;
            let subnet = parse_subnet(subnet)?;
            if Path::new("/sys/class/net").join(bridge).exists() {
                return Err(Error::BridgeExists(bridge.into()));
            }
            if routed(subnet) {
                return Err(Error::SubnetInUse(format!("{subnet}/24")));
            }
            let claim = claim(subnet)?.ok_or_else(|| Error::SubnetInUse(format!("{subnet}/24")))?;
            (bridge.to_string(), subnet, claim)
        }
        None => pick()?,
    };
    let mut net = CniNetwork {
        name: format!("skiff-harness-{:016x}", random()),
        bridge,
        subnet,
        conf_dir: dir.join("cni/net.d"),
        cache_dir: dir.join("cni/cache"),
        bin_dir: dir.join("cni/bin"),
        claim: Some(claim),
    };
    let written = std::fs::create_dir_all(&net.conf_dir)
        .and_then(|()| std::fs::create_dir_all(&net.cache_dir))
        .and_then(|()| std::fs::create_dir_all(&net.bin_dir))
        .map_err(Error::io(format!("create the cni dirs under {}", dir.display())))
        .and_then(|()| {
            let path = net.conflist_path();
            let text = serde_json::to_string_pretty(&net.conflist()).unwrap_or_default();
            std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))
        });
    if let Err(e) = written {
        net.release();
        return Err(e);
    }
    Ok(net)
}

fn check_bridge_name(name: &str) -> Result<()> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadBridgeName(name.into()))
    }
}

/// `a.b.c.0/24`.
fn parse_subnet(text: &str) -> Result<Ipv4Addr> {
    let bad = || Error::BadSubnet(text.into());
    let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    if prefix != "24" || addr.octets()[3] != 0 {
        return Err(bad());
    }
    Ok(addr)
}

/// A random free subnet and its bridge name, `skh-X-Y` for 10.X.Y.0/24: unique while the claim
/// is held, so two live harnesses never share a bridge either.
fn pick() -> Result<(String, Ipv4Addr, PathBuf)> {
    let total = SECOND_OCTETS.len() * 256;
    let first = (random() % total as u64) as usize;
    for n in 0..total {
        let i = (first + n) % total;
        let (x, y) = (*SECOND_OCTETS.start() as usize + i / 256, i % 256);
        let (Ok(x), Ok(y)) = (u8::try_from(x), u8::try_from(y)) else { continue };
        let subnet = Ipv4Addr::new(10, x, y, 0);
        let bridge = format!("skh-{x}-{y}");
        if Path::new("/sys/class/net").join(&bridge).exists() || routed(subnet) {
            continue;
        }
        if let Some(claim) = claim(subnet)? {
            return Ok((bridge, subnet, claim));
        }
    }
    Err(Error::NoFreeSubnet)
}

/// Where claims live: one file per subnet, holding the claiming process's pid. Under /run when
/// there is one, so that test processes with different TMPDIRs still see each other's claims.
fn claims_dir() -> PathBuf {
    if Path::new("/run").is_dir() {
        PathBuf::from("/run/skiff-harness/subnets")
    } else {
        std::env::temp_dir().join("skiff-harness-subnets")
    }
}

/// Claims `subnet` for this process: `None` when a live process holds it. A claim whose process
/// is gone (a test killed before teardown) is taken over.
fn claim(subnet: Ipv4Addr) -> Result<Option<PathBuf>> {
    let dir = claims_dir();
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
    let path = dir.join(subnet.to_string());
    for _ in 0..2 {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(std::process::id().to_string().as_bytes()).map_err(Error::io(format!("write {}", path.display())))?;
                return Ok(Some(path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path).ok().and_then(|p| p.trim().parse::<u32>().ok());
                match holder {
                    Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => return Ok(None),
                    // A claim being written right now reads empty: leave it to its writer.
                    None if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) => return Ok(None),
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            Err(e) => return Err(Error::io(format!("create {}", path.display()))(e)),
        }
    }
    Ok(None)
}

/// Whether a route on this host (other than a default route) overlaps `subnet`/24: a leftover
/// bridge of a crashed harness, or a network of the host's own.
fn routed(subnet: Ipv4Addr) -> bool {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    overlaps_any(&routes, subnet)
}

/// `/proc/net/route` prints addresses as the hex of the in-memory (network order) word.
fn overlaps_any(routes: &str, subnet: Ipv4Addr) -> bool {
    let ours = u32::from(subnet);
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(|w| u32::from(Ipv4Addr::from(w.to_ne_bytes())));
    routes.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dst), Some(mask)) = (fields.get(1).and_then(|d| word(d)), fields.get(7).and_then(|m| word(m))) else { return false };
        if mask == 0 {
            return false;
        }
        let common = mask & 0xffff_ff00;
        dst & common == ours & common
    })
}

/// A random number: std's hasher keys are random per process and per hasher.
fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_the_kernel_limit() {
        assert!(check_bridge_name("skh-250-255").is_ok());
        for bad in ["", "0123456789abcdef", "a/b", "a b", ".."] {
            assert!(matches!(check_bridge_name(bad), Err(Error::BadBridgeName(_))), "{bad:?}");
        }
    }

    #[test]
    fn subnets_must_be_a_slash_24_network() {
        assert_eq!(parse_subnet("10.201.3.0/24").expect("ok"), Ipv4Addr::new(10, 201, 3, 0));
        for bad in ["10.201.3.0", "10.201.3.1/24", "10.201.3.0/16", "10.201.3/24", "x/24"] {
            assert!(matches!(parse_subnet(bad), Err(Error::BadSubnet(_))), "{bad:?}");
        }
    }

    #[test]
    fn routes_overlapping_a_subnet_are_seen_default_routes_are_not() {
        let hex = |a: Ipv4Addr| format!("{:08X}", u32::from_ne_bytes(a.octets()));
        let table = |dst: Ipv4Addr, mask: Ipv4Addr| {
            format!("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t{}\t00000000\t0001\t0\t0\t0\t{}\t0\t0\t0\n", hex(dst), hex(mask))
        };
        let net = Ipv4Addr::new(10, 200, 7, 0);
        assert!(overlaps_any(&table(net, Ipv4Addr::new(255, 255, 255, 0)), net));
        assert!(overlaps_any(&table(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(255, 0, 0, 0)), net));
        assert!(!overlaps_any(&table(Ipv4Addr::new(10, 200, 8, 0), Ipv4Addr::new(255, 255, 255, 0)), net));
        assert!(!overlaps_any(&table(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED), net));
    }

    #[test]
    fn a_claim_held_by_a_live_process_is_refused_a_dead_ones_taken_over() {
        // 10.199/16 is outside the random range, so no harness of a parallel test picks these.
        let live = Ipv4Addr::new(10, 199, 250, 0);
        let path = claim(live).expect("claim").expect("free");
        assert_eq!(claim(live).expect("second claim"), None);
        std::fs::write(&path, "999999999").expect("make stale");
        assert_eq!(claim(live).expect("stale claim"), Some(path.clone()));
        assert_eq!(std::fs::read_to_string(&path).expect("claim"), std::process::id().to_string());
        std::fs::remove_file(path).expect("release");
    }
}
