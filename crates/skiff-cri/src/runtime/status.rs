//! Version, Status, RuntimeConfig and UpdateRuntimeConfig: what the kubelet checks before it
//! runs a pod. It refuses a runtime whose Version leaves a field empty, and marks the node
//! NotReady while `NetworkReady` is false.

use std::collections::HashMap;

use k8s_cri::v1 as cri;

use super::CriRuntime;
use crate::error::{CriError, Result};

/// The CRI API version Skiff serves, as the kubelet names it.
pub const RUNTIME_API_VERSION: &str = "v1";
/// The version field of VersionResponse: the kubelet's runtime API version (the same "0.1.0" every
/// CRI runtime answers).
pub const KUBE_RUNTIME_API_VERSION: &str = "0.1.0";
pub const RUNTIME_NAME: &str = "skiff";

pub fn version() -> cri::VersionResponse {
    cri::VersionResponse {
        version: KUBE_RUNTIME_API_VERSION.into(),
        runtime_name: RUNTIME_NAME.into(),
        runtime_version: env!("CARGO_PKG_VERSION").into(),
        runtime_api_version: RUNTIME_API_VERSION.into(),
    }
}

fn condition(kind: &str, state: std::result::Result<(), skiff_cni::NotReady>) -> cri::RuntimeCondition {
    match state {
        Ok(()) => cri::RuntimeCondition { r#type: kind.into(), status: true, ..Default::default() },
        Err(n) => cri::RuntimeCondition { r#type: kind.into(), status: false, reason: n.reason, message: n.message },
    }
}

impl CriRuntime {
    pub fn status(&self, verbose: bool) -> Result<cri::StatusResponse> {
        let conditions = vec![condition("RuntimeReady", Ok(())), condition("NetworkReady", self.parts.network.status())];
        // The default handler answers to "" too, as the kubelet names it when a pod gives none.
        let mut names = vec![String::new()];
        names.extend(self.parts.handlers.iter().cloned());
        let runtime_handlers = names
            .into_iter()
            .map(|name| cri::RuntimeHandler {
                name,
                features: Some(cri::RuntimeHandlerFeatures { recursive_read_only_mounts: false, user_namespaces: false }),
            })
            .collect();
        let mut info = HashMap::new();
        if verbose {
            let doc = serde_json::json!({
                "runtimeHandlers": self.parts.handlers,
                "defaultRuntimeHandler": self.parts.handlers.first(),
                "podCIDR": self.pod_cidr(),
                "cgroupDriver": "cgroupfs",
                "version": version(),
            });
            info.insert("info".to_string(), serde_json::to_string(&doc).map_err(|source| CriError::Encode { what: "the runtime's info", source })?);
        }
        Ok(cri::StatusResponse {
            status: Some(cri::RuntimeStatus { conditions }),
            info,
            runtime_handlers,
            features: Some(cri::RuntimeFeatures { supplemental_groups_policy: false }),
        })
    }

    pub fn runtime_config(&self) -> cri::RuntimeConfigResponse {
        // No systemd here: cgroups are made under cgroupfs.
        cri::RuntimeConfigResponse { linux: Some(cri::LinuxRuntimeConfiguration { cgroup_driver: cri::CgroupDriver::Cgroupfs as i32 }) }
    }

    pub fn update_runtime_config(&self, req: cri::UpdateRuntimeConfigRequest) -> Result<()> {
        let cidr = req.runtime_config.and_then(|c| c.network_config).map(|n| n.pod_cidr).unwrap_or_default();
        if cidr.is_empty() {
            return Ok(());
        }
        crate::error::text("runtime_config.network_config.pod_cidr", &cidr)?;
        for part in cidr.split(',') {
            let (addr, len) = part.trim().split_once('/').ok_or_else(|| CriError::InvalidArgument(format!("pod CIDR {part:?} is not ADDRESS/LENGTH")))?;
            let ip: std::net::IpAddr = addr.parse().map_err(|_| CriError::InvalidArgument(format!("pod CIDR {part:?}: {addr:?} is not an IP address")))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if !len.parse::<u8>().is_ok_and(|l| l <= max) {
                return Err(CriError::InvalidArgument(format!("pod CIDR {part:?}: prefix length must be 0..{max}")));
            }
        }
        self.parts.network.set_pod_cidr(&cidr)?;
        tracing::info!(pod_cidr = %cidr, "pod CIDR from the kubelet");
        *self.pod_cidr.write().unwrap_or_else(|p| p.into_inner()) = cidr;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::testing::fixture;
    use skiff_cni::NotReady;

    fn runtime(network: Option<NotReady>) -> (CriRuntime, tempfile::TempDir) {
        let (runtime, fake, dir) = fixture();
        fake.set_not_ready(network);
        (runtime, dir)
    }

    #[test]
    fn version_fills_every_field_the_kubelet_checks() {
        let v = version();
        assert!(!v.version.is_empty() && !v.runtime_name.is_empty() && !v.runtime_version.is_empty() && !v.runtime_api_version.is_empty());
    }

    #[test]
    fn status_carries_both_conditions_and_every_handler() {
        let not_ready = NotReady { reason: "NetworkPluginNotReady".into(), message: "no network config found in /x".into() };
        let s = runtime(Some(not_ready)).0.status(true).expect("status");
        let conditions = s.status.expect("status").conditions;
        assert_eq!(conditions.iter().map(|c| (c.r#type.as_str(), c.status)).collect::<Vec<_>>(), [("RuntimeReady", true), ("NetworkReady", false)]);
        assert_eq!(conditions[1].reason, "NetworkPluginNotReady");
        assert_eq!(s.runtime_handlers.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["", "builtin", "runc"]);
        let info: serde_json::Value = serde_json::from_str(&s.info["info"]).expect("json");
        assert_eq!(info["cgroupDriver"], "cgroupfs");
        assert!(runtime(None).0.status(false).expect("status").status.expect("status").conditions.iter().all(|c| c.status));
    }

    #[test]
    fn pod_cidrs_are_kept_and_checked() {
        let (r, _dir) = runtime(None);
        let update = |cidr: &str| {
            r.update_runtime_config(cri::UpdateRuntimeConfigRequest {
                runtime_config: Some(cri::RuntimeConfig { network_config: Some(cri::NetworkConfig { pod_cidr: cidr.into() }) }),
            })
        };
        update("10.244.1.0/24,fd00:10:244:1::/64").expect("dual stack");
        assert_eq!(r.pod_cidr(), "10.244.1.0/24,fd00:10:244:1::/64");
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "10.0.0.0/\0"] {
            assert!(update(bad).is_err(), "{bad}");
        }
        update("").expect("empty leaves it");
        assert_eq!(r.pod_cidr(), "10.244.1.0/24,fd00:10:244:1::/64");
    }
}
