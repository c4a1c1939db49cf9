//! An in-memory `NetworkPlugin` for unit tests of the CRI's sandbox code: it keeps the rules of
//! the real one (validated input, no second setup before a teardown, teardown repeatable, the pod
//! CIDR used for addresses) without touching the host, records every call, and can be told to
//! fail the next setup or teardown or to report not ready.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;

use crate::args::{parse_cidr, validate};
use crate::error::{CniError, Result};
use crate::invoke::Command;
use crate::pod::{NetworkStatus, NotReady, PluginTiming, PodNetwork};
use crate::NetworkPlugin;

/// The network the fake plays, so that results look like a real chain's.
pub const FAKE_NETWORK: &str = "fake";

/// A call the fake saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Setup(String),
    Teardown(String),
    SetPodCidr(String),
}

#[derive(Default)]
pub struct FakeNetwork {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pods: BTreeMap<String, (PodNetwork, NetworkStatus)>,
    allocated: u32,
    node_cidrs: Vec<String>,
    not_ready: Option<NotReady>,
    setup_failures: VecDeque<(u32, String)>,
    teardown_failures: VecDeque<(u32, String)>,
    calls: Vec<Call>,
}

impl FakeNetwork {
    pub fn new() -> FakeNetwork {
        FakeNetwork::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `status` reports from now on (`None`: ready).
    pub fn set_not_ready(&self, not_ready: Option<NotReady>) {
        self.state().not_ready = not_ready;
    }

    /// The next setup fails as a plugin failing with this code and message would.
    pub fn fail_next_setup(&self, code: u32, msg: &str) {
        self.state().setup_failures.push_back((code, msg.to_string()));
    }

    /// The next teardown fails so; the pod stays set up.
    pub fn fail_next_teardown(&self, code: u32, msg: &str) {
        self.state().teardown_failures.push_back((code, msg.to_string()));
    }

    pub fn is_set_up(&self, sandbox_id: &str) -> bool {
        self.state().pods.contains_key(sandbox_id)
    }

    /// What setup gave the sandbox, while it is set up.
    pub fn status_of(&self, sandbox_id: &str) -> Option<NetworkStatus> {
        self.state().pods.get(sandbox_id).map(|(_, s)| s.clone())
    }

    /// The sandboxes set up now.
    pub fn set_up(&self) -> Vec<String> {
        self.state().pods.keys().cloned().collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    pub fn pod_cidrs(&self) -> Vec<String> {
        self.state().node_cidrs.clone()
    }
}

fn plugin_error(command: Command, (code, msg): (u32, String)) -> CniError {
    CniError::Plugin { plugin: "fake".into(), network: FAKE_NETWORK.into(), command, code, msg, details: String::new() }
}

/// The n-th address of the first IPv4 CIDR (10.88.0.0/16 when none), past the gateway, and the gateway.
fn allocate(cidrs: &[String], n: u32) -> Result<(IpAddr, u8, IpAddr)> {
    let mut base = (Ipv4Addr::new(10, 88, 0, 0), 16);
    for c in cidrs {
        if let (IpAddr::V4(a), p) = parse_cidr(c)? {
            base = (a, p);
            break;
        }
    }
    let (net, prefix) = base;
    let size = if prefix >= 32 { 1 } else { 1u64 << (32 - prefix) };
    // Network address, gateway and broadcast are not handed out.
    if u64::from(n) + 4 > size {
        return Err(CniError::Plugin { plugin: "fake".into(), network: FAKE_NETWORK.into(), command: Command::Add, code: 11, msg: format!("no addresses left in {net}/{prefix}"), details: String::new() });
    }
    let start = u32::from(net) & (u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0));
    Ok((IpAddr::V4(Ipv4Addr::from(start + 2 + n)), prefix, IpAddr::V4(Ipv4Addr::from(start + 1))))
}

impl NetworkPlugin for FakeNetwork {
    fn setup(&self, pod: &PodNetwork) -> Result<NetworkStatus> {
        validate(pod)?;
        let mut st = self.state();
        st.calls.push(Call::Setup(pod.sandbox_id.clone()));
        if let Some(f) = st.setup_failures.pop_front() {
            return Err(plugin_error(Command::Add, f));
        }
        if st.pods.contains_key(&pod.sandbox_id) {
            let path = format!("(fake)/results/{FAKE_NETWORK}-{}-{}", pod.sandbox_id, pod.ifname).into();
            return Err(CniError::AlreadySetUp { network: FAKE_NETWORK.into(), sandbox: pod.sandbox_id.clone(), ifname: pod.ifname.clone(), path });
        }
        let cidrs = if pod.pod_cidrs.is_empty() { st.node_cidrs.clone() } else { pod.pod_cidrs.clone() };
        let (ip, prefix, gateway) = allocate(&cidrs, st.allocated)?;
        st.allocated += 1;
        let result = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": pod.ifname, "sandbox": pod.netns.display().to_string()}],
            "ips": [{"address": format!("{ip}/{prefix}"), "gateway": gateway.to_string(), "interface": 0}],
        });
        let status = NetworkStatus { interface: pod.ifname.clone(), ips: vec![ip], gateway: Some(gateway), result, timings: vec![PluginTiming { plugin: "fake".into(), command: Command::Add, duration: Duration::ZERO }] };
        st.pods.insert(pod.sandbox_id.clone(), (pod.clone(), status.clone()));
        Ok(status)
    }

    fn teardown(&self, pod: &PodNetwork) -> Result<Vec<PluginTiming>> {
        validate(pod)?;
        let mut st = self.state();
        st.calls.push(Call::Teardown(pod.sandbox_id.clone()));
        if let Some(f) = st.teardown_failures.pop_front() {
            return Err(plugin_error(Command::Del, f));
        }
        st.pods.remove(&pod.sandbox_id);
        // No plugin ran: nothing took any time.
        Ok(Vec::new())
    }

    fn status(&self) -> Result<(), NotReady> {
        match &self.state().not_ready {
            Some(n) => Err(n.clone()),
            None => Ok(()),
        }
    }

    fn set_pod_cidr(&self, cidr: &str) -> Result<()> {
        let cidrs: Vec<String> = cidr.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
        for c in &cidrs {
            parse_cidr(c)?;
        }
        let mut st = self.state();
        st.calls.push(Call::SetPodCidr(cidr.to_string()));
        st.node_cidrs = cidrs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str) -> PodNetwork {
        PodNetwork::new(id, format!("/var/lib/skiff/pods/{id}/ns/net"))
    }

    #[test]
    fn keeps_the_real_ones_rules() {
        let net = FakeNetwork::new();
        let a = net.setup(&pod("a")).expect("setup a");
        let b = net.setup(&pod("b")).expect("setup b");
        assert_ne!(a.ips, b.ips);
        assert_eq!(a.ips, ["10.88.0.2".parse::<IpAddr>().expect("ip")]);
        assert_eq!(a.gateway, Some("10.88.0.1".parse().expect("gw")));
        assert!(matches!(net.setup(&pod("a")), Err(CniError::AlreadySetUp { .. })));
        net.teardown(&pod("a")).expect("teardown");
        net.teardown(&pod("a")).expect("teardown twice");
        assert!(!net.is_set_up("a") && net.is_set_up("b"));
        assert!(matches!(net.setup(&pod("../x")), Err(CniError::InvalidArgument(_))));
        assert_eq!(net.calls()[..3], [Call::Setup("a".into()), Call::Setup("b".into()), Call::Setup("a".into())]);
    }

    #[test]
    fn allocates_from_the_pod_cidr() {
        let net = FakeNetwork::new();
        net.set_pod_cidr("fd00::/64, 10.244.3.0/24").expect("cidr");
        assert_eq!(net.pod_cidrs(), ["fd00::/64", "10.244.3.0/24"]);
        let s = net.setup(&pod("a")).expect("setup");
        assert_eq!(s.ips, ["10.244.3.2".parse::<IpAddr>().expect("ip")]);
        assert_eq!(s.result["ips"][0]["address"], "10.244.3.2/24");
        assert!(net.set_pod_cidr("10.0.0.0/40").is_err());
        net.set_pod_cidr("10.9.9.0/30").expect("cidr");
        // The count runs across CIDRs: the second address is past the one a /30 has to give.
        net.setup(&pod("b")).expect_err("a /30 is full");
    }

    #[test]
    fn injected_failures_and_readiness() {
        let net = FakeNetwork::new();
        net.fail_next_setup(7, "boom");
        match net.setup(&pod("a")) {
            Err(CniError::Plugin { code: 7, msg, .. }) => assert_eq!(msg, "boom"),
            other => panic!("{other:?}"),
        }
        assert!(!net.is_set_up("a"));
        net.setup(&pod("a")).expect("the next one works");
        net.fail_next_teardown(11, "busy");
        assert!(net.teardown(&pod("a")).is_err());
        assert!(net.is_set_up("a"), "a failed teardown leaves it set up");
        assert_eq!(net.status(), Ok(()));
        net.set_not_ready(Some(NotReady { reason: "NoNetworkConfig".into(), message: "none".into() }));
        assert_eq!(net.status().expect_err("not ready").reason, "NoNetworkConfig");
    }
}
