//! What each plugin is given besides its environment: `CNI_ARGS` (the kubelet's `K8S_POD_*`
//! convention), the capability arguments a pod asks for, and the stdin built from the plugin's own
//! config with `name`, `cniVersion`, `prevResult` and a `runtimeConfig` holding only the
//! capabilities that plugin declares.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::config::{is_valid_name, NetworkConfigList, PluginConfig};
use crate::error::{CniError, Result};
use crate::pod::PodNetwork;

/// `CNI_ARGS` as pairs (the cache keeps them so). `IgnoreUnknown=1` first: plugins that parse
/// `CNI_ARGS` strictly would otherwise refuse the `K8S_*` keys they do not know.
pub fn cni_args(pod: &PodNetwork) -> Result<Vec<[String; 2]>> {
    let pairs = [
        ("IgnoreUnknown", "1"),
        ("K8S_POD_NAMESPACE", pod.pod_namespace.as_str()),
        ("K8S_POD_NAME", pod.pod_name.as_str()),
        ("K8S_POD_INFRA_CONTAINER_ID", pod.sandbox_id.as_str()),
        ("K8S_POD_UID", pod.pod_uid.as_str()),
    ];
    pairs
        .iter()
        .map(|(k, v)| {
            // Plugins split on ';' then on '=': either in a value would change what they read.
            if v.contains([';', '=']) || v.chars().any(char::is_control) {
                return Err(CniError::InvalidArgument(format!("{k} value {v:?} must not hold ';', '=' or control characters")));
            }
            Ok([k.to_string(), v.to_string()])
        })
        .collect()
}

/// `K=V;K=V`, the variable's form.
pub fn join_cni_args(args: &[[String; 2]]) -> String {
    args.iter().map(|[k, v]| format!("{k}={v}")).collect::<Vec<_>>().join(";")
}

/// The capability arguments of a pod, keyed by capability; only what the pod asks for is present.
/// `node_cidrs` stands in for the pod's own CIDRs when it names none.
pub fn capability_args(pod: &PodNetwork, node_cidrs: &[String]) -> Map<String, Value> {
    let mut caps = Map::new();
    let ports: Vec<_> = pod.port_mappings.iter().filter(|p| p.host_port != 0).collect();
    if !ports.is_empty() {
        caps.insert("portMappings".into(), json!(ports));
    }
    if let Some(dns) = pod.dns.as_ref().filter(|d| !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty())) {
        caps.insert("dns".into(), json!(dns));
    }
    if let Some(bw) = &pod.bandwidth {
        caps.insert("bandwidth".into(), json!(bw));
    }
    let cidrs = if pod.pod_cidrs.is_empty() { node_cidrs } else { &pod.pod_cidrs };
    if !cidrs.is_empty() {
        // One range set per CIDR: host-local then allocates one address from each (dual stack).
        let sets: Vec<Value> = cidrs.iter().map(|c| json!([{ "subnet": c }])).collect();
        caps.insert("ipRanges".into(), Value::Array(sets));
    }
    caps
}

/// The capability arguments this plugin declares, for its `runtimeConfig`.
pub fn runtime_config(plugin: &PluginConfig, caps: &Map<String, Value>) -> Map<String, Value> {
    caps.iter().filter(|(k, _)| plugin.capabilities.contains(k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The JSON a plugin reads on stdin.
pub fn plugin_stdin(list: &NetworkConfigList, plugin: &PluginConfig, prev_result: Option<&Value>, caps: &Map<String, Value>) -> Result<Vec<u8>> {
    let mut conf = plugin.raw.clone();
    conf.insert("name".into(), Value::String(list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    let rc = runtime_config(plugin, caps);
    if !rc.is_empty() {
        // As libcni: the runtime's values replace a runtimeConfig written in the file.
        conf.insert("runtimeConfig".into(), Value::Object(rc));
    }
    serde_json::to_vec(&conf).map_err(|e| CniError::bad_config(&list.source, format!("cannot encode the config of plugin {:?}: {e}", plugin.plugin_type)))
}

/// Refuses a pod network the plugins could not be given.
pub fn validate(pod: &PodNetwork) -> Result<()> {
    if !is_valid_name(&pod.sandbox_id) {
        return Err(CniError::InvalidArgument(format!("sandbox id {:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'", pod.sandbox_id)));
    }
    validate_ifname(&pod.ifname)?;
    if pod.netns.as_os_str().is_empty() {
        return Err(CniError::InvalidArgument("no network namespace path".into()));
    }
    for cidr in &pod.pod_cidrs {
        parse_cidr(cidr)?;
    }
    Ok(())
}

/// The spec's interface name rule (Linux's): 1 to 15 bytes, not `.` or `..`, no `/`, `:` or space.
pub fn validate_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() < 16 && name != "." && name != ".." && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(CniError::InvalidArgument(format!("interface name {name:?} must be 1 to 15 bytes, not '.' or '..', without '/', ':' or spaces")))
    }
}

/// `addr/prefix`, the prefix within the family's bits.
pub fn parse_cidr(cidr: &str) -> Result<(IpAddr, u8)> {
    let bad = || CniError::InvalidArgument(format!("pod cidr {cidr:?} is not an address/prefix"));
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok((addr, prefix))
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
