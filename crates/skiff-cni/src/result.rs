//! Plugin output: results of spec 0.3.x, 0.4.0 and 1.x (they differ in `ips[].version`, which 1.0
//! dropped) and the error shape `{code, msg, details}`. A result is kept as the plugin printed it,
//! so the next plugin's `prevResult` and the cache lose nothing this crate does not model.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{version_key, SUPPORTED_VERSIONS};

/// A parsed ADD result.
#[derive(Clone, Debug, PartialEq)]
pub struct CniResult {
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    /// The whole result, `cniVersion` filled in when the plugin left it out.
    pub raw: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: Option<String>,
    /// The namespace path for a pod's interface; absent for the host's.
    #[serde(default)]
    pub sandbox: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    pub interface: Option<usize>,
}

#[derive(Deserialize)]
struct Shape {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<IpShape>,
}

#[derive(Deserialize)]
struct IpShape {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    interface: Option<usize>,
    /// "4" or "6" before spec 1.0.
    #[serde(default)]
    version: Option<String>,
}

impl CniResult {
    /// Reads a plugin's stdout. A result without `cniVersion` is taken to be of the config's
    /// version, as libcni does for plugins that forget it.
    pub fn parse(stdout: &[u8], config_version: &str) -> Result<CniResult, String> {
        let value: Value = serde_json::from_slice(stdout).map_err(|e| format!("not valid JSON: {e}: {}", excerpt(stdout)))?;
        let Value::Object(mut raw) = value else { return Err(format!("not a JSON object: {}", excerpt(stdout))) };
        let cni_version = match raw.get("cniVersion") {
            Some(Value::String(v)) if !v.is_empty() => v.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => config_version.to_string(),
            Some(_) => return Err("\"cniVersion\" is not a string".into()),
        };
        if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
            return Err(format!("result version {cni_version} is not one this runtime reads ({})", SUPPORTED_VERSIONS.join(", ")));
        }
        raw.insert("cniVersion".into(), Value::String(cni_version.clone()));
        let shape: Shape = serde_json::from_value(Value::Object(raw.clone())).map_err(|e| e.to_string())?;
        let mut ips = Vec::with_capacity(shape.ips.len());
        for ip in shape.ips {
            let (address, prefix) = parse_address(&ip.address)?;
            if let Some(v) = &ip.version {
                let family = if address.is_ipv4() { "4" } else { "6" };
                if v != family {
                    return Err(format!("ip {} says version {v:?}", ip.address));
                }
            }
            let gateway = match ip.gateway.as_deref() {
                None | Some("") => None,
                Some(g) => Some(g.parse::<IpAddr>().map_err(|_| format!("gateway {g:?} is not an address"))?),
            };
            if let Some(i) = ip.interface {
                if i >= shape.interfaces.len() {
                    return Err(format!("ip {} names interface {i} of {}", ip.address, shape.interfaces.len()));
                }
            }
            ips.push(IpConfig { address, prefix, gateway, interface: ip.interface });
        }
        Ok(CniResult { cni_version, interfaces: shape.interfaces, ips, raw })
    }

    /// The result as a plugin of `version` expects it in `prevResult`: `ips[].version` added
    /// before 1.0, dropped from 1.0 on.
    pub fn as_version(&self, version: &str) -> Value {
        let mut raw = self.raw.clone();
        raw.insert("cniVersion".into(), Value::String(version.to_string()));
        let pre_1_0 = version_key(version) < (1, 0, 0);
        if let Some(Value::Array(ips)) = raw.get_mut("ips") {
            for (entry, ip) in ips.iter_mut().zip(&self.ips) {
                let Value::Object(entry) = entry else { continue };
                if pre_1_0 {
                    let family = if ip.address.is_ipv4() { "4" } else { "6" };
                    entry.insert("version".into(), Value::String(family.into()));
                } else {
                    entry.remove("version");
                }
            }
        }
        Value::Object(raw)
    }

    /// The pod interface's addresses, primary first (the first IPv4, else the first IPv6), and
    /// the primary's gateway. Addresses are the pod's when they name an interface called `ifname`
    /// inside a sandbox; when none does, the ones naming no interface (some plugins leave it out).
    pub fn pod_ips(&self, ifname: &str) -> (Vec<IpAddr>, Option<IpAddr>) {
        let on_pod = |ip: &&IpConfig| ip.interface.and_then(|i| self.interfaces.get(i)).is_some_and(|itf| itf.name == ifname && itf.sandbox.as_deref().is_some_and(|s| !s.is_empty()));
        let mut chosen: Vec<&IpConfig> = self.ips.iter().filter(on_pod).collect();
        if chosen.is_empty() {
            chosen = self.ips.iter().filter(|ip| ip.interface.is_none()).collect();
        }
        // Stable: within a family the plugin's order holds.
        chosen.sort_by_key(|ip| !ip.address.is_ipv4());
        let gateway = chosen.first().and_then(|ip| ip.gateway);
        (chosen.iter().map(|ip| ip.address).collect(), gateway)
    }
}

fn parse_address(cidr: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("ip address {cidr:?} is not address/prefix");
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > if addr.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok((addr, prefix))
}

/// The spec's error object.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PluginError {
    pub code: u32,
    #[serde(default)]
    pub msg: String,
    #[serde(default)]
    pub details: String,
}

impl PluginError {
    /// The error a failed plugin printed, if it printed one.
    pub fn parse(stdout: &[u8]) -> Option<PluginError> {
        serde_json::from_slice(stdout).ok()
    }
}

/// At most 512 bytes of a plugin's output, for messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(512) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
