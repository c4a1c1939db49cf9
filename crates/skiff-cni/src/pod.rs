//! What the CRI asks for (a pod's network) and what it gets back.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::invoke::Command;

/// The interface a pod gets when the request names none.
pub const DEFAULT_IFNAME: &str = "eth0";

/// One pod's network, as setup and teardown are asked for it. Teardown should get what setup got
/// (the spec asks for the same parameters); after a restart the cache supplies what it lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNetwork {
    /// The sandbox's ID: the CNI container ID. Letters, digits, `_`, `.`, `-`; a letter or digit first.
    pub sandbox_id: String,
    /// The file the pod's network namespace is bind-mounted on.
    pub netns: PathBuf,
    /// The interface made inside the namespace (default `eth0`).
    pub ifname: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    /// Host ports; mappings with host port 0 are the container's own business and not passed.
    pub port_mappings: Vec<PortMapping>,
    pub dns: Option<Dns>,
    pub bandwidth: Option<Bandwidth>,
    /// CIDRs to allocate from (`ipRanges`); empty means the node's, as set by `set_pod_cidr`.
    pub pod_cidrs: Vec<String>,
}

impl PodNetwork {
    /// A pod network on `eth0` with nothing else asked for.
    pub fn new(sandbox_id: impl Into<String>, netns: impl Into<PathBuf>) -> PodNetwork {
        PodNetwork {
            sandbox_id: sandbox_id.into(),
            netns: netns.into(),
            ifname: DEFAULT_IFNAME.to_string(),
            pod_name: String::new(),
            pod_namespace: String::new(),
            pod_uid: String::new(),
            port_mappings: Vec::new(),
            dns: None,
            bandwidth: None,
            pod_cidrs: Vec::new(),
        }
    }
}

/// A host port forwarded to the pod (the `portMappings` capability).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    /// The host address to listen on; empty for all.
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// The pod's resolver settings (the `dns` capability).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub searches: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// Traffic shaping (the `bandwidth` capability): rates in bits per second, bursts in bits, 0 for none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    pub ingress_rate: u64,
    pub ingress_burst: u64,
    pub egress_rate: u64,
    pub egress_burst: u64,
}

/// What setup gives back.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkStatus {
    /// The pod's interface.
    pub interface: String,
    /// Its addresses: the primary (the first IPv4, else the first IPv6) first, then the others.
    pub ips: Vec<IpAddr>,
    /// The primary address's gateway, when the result names one.
    pub gateway: Option<IpAddr>,
    /// The chain's final result as the last plugin printed it.
    pub result: serde_json::Value,
    /// How long each plugin took, in the order run.
    pub timings: Vec<PluginTiming>,
}

/// One plugin invocation's wall time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginTiming {
    /// The plugin's type (its executable).
    pub plugin: String,
    pub command: Command,
    pub duration: Duration,
}

/// Why the network is not ready, for the CRI's `NetworkReady` condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct NotReady {
    /// CamelCase, for machines: `NoNetworkConfig`, `InvalidNetworkConfig`, `PluginNotFound`, `NetworkPluginNotReady`.
    pub reason: String,
    /// For people.
    pub message: String,
}
