//! UpdateContainerResources (the kubelet's in-place resize and its CPU manager): new limits
//! written into a live container's cgroup through the engine, and kept so that ContainerStatus
//! answers what is in force. As containerd does, a zero or empty field leaves that limit as it is.

use k8s_cri::v1 as cri;
use skiff_engine::ResourceUpdate;

use crate::blocking::blocking;
use crate::error::{text, CriError, Result};
use crate::runtime::CriRuntime;

/// The engine's update for what the kubelet sent.
pub fn resource_update(r: &cri::LinuxContainerResources) -> Result<ResourceUpdate> {
    if let Some(h) = r.hugepage_limits.iter().find(|h| h.limit > 0) {
        return Err(CriError::InvalidArgument(format!("linux.hugepage_limits: a limit for {} pages is not supported by Skiff", h.page_size)));
    }
    for (field, v) in [("cpuset_cpus", &r.cpuset_cpus), ("cpuset_mems", &r.cpuset_mems)] {
        text(&format!("linux.{field}"), v)?;
    }
    for (k, v) in &r.unified {
        text("linux.unified key", k)?;
        text(&format!("linux.unified {k:?}"), v)?;
    }
    let positive = |v: i64| (v > 0).then_some(v);
    let set = |v: &String| (!v.is_empty()).then(|| v.clone());
    Ok(ResourceUpdate {
        cpu_period: positive(r.cpu_period).map(|v| v as u64),
        cpu_quota: positive(r.cpu_quota),
        cpu_shares: positive(r.cpu_shares).map(|v| v as u64),
        memory_limit: positive(r.memory_limit_in_bytes),
        memory_swap_limit: (r.memory_swap_limit_in_bytes != 0).then_some(r.memory_swap_limit_in_bytes),
        cpuset_cpus: set(&r.cpuset_cpus),
        cpuset_mems: set(&r.cpuset_mems),
        pids_limit: None,
        unified: r.unified.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    })
}

/// What is in force after `new` was applied over `old` (zero fields keep the old value).
pub fn merged(old: Option<&cri::LinuxContainerResources>, new: &cri::LinuxContainerResources) -> cri::LinuxContainerResources {
    let mut out = old.cloned().unwrap_or_default();
    let keep = |old: &mut i64, new: i64| {
        if new != 0 {
            *old = new;
        }
    };
    keep(&mut out.cpu_period, new.cpu_period);
    keep(&mut out.cpu_quota, new.cpu_quota);
    keep(&mut out.cpu_shares, new.cpu_shares);
    keep(&mut out.memory_limit_in_bytes, new.memory_limit_in_bytes);
    keep(&mut out.memory_swap_limit_in_bytes, new.memory_swap_limit_in_bytes);
    for (old, new) in [(&mut out.cpuset_cpus, &new.cpuset_cpus), (&mut out.cpuset_mems, &new.cpuset_mems)] {
        if !new.is_empty() {
            old.clone_from(new);
        }
    }
    out.unified.extend(new.unified.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

impl CriRuntime {
    pub async fn update_container_resources(&self, req: cri::UpdateContainerResourcesRequest) -> Result<()> {
        let mut c = self.containers.find(&req.container_id)?.ok_or_else(|| CriError::NotFound(format!("container {:?} not found", req.container_id)))?;
        let Some(linux) = req.linux else {
            // Windows resources only: nothing of them applies to a Linux container.
            return Ok(());
        };
        let update = resource_update(&linux)?;
        let runtime = self.clone();
        blocking("updating container resources", move || {
            runtime.parts.manager.update_resources(&c.id, &update)?;
            c.resources = Some(merged(c.resources.as_ref(), &linux));
            runtime.containers.put(&c, true)?;
            Ok(())
        })
        .await
    }

    /// ReopenContainerLog: the kubelet renamed the log to rotate it; the shim opens a new one.
    pub async fn reopen_container_log(&self, id: &str) -> Result<()> {
        let c = self.containers.find(id)?.ok_or_else(|| CriError::NotFound(format!("container {id:?} not found")))?;
        let manager = self.parts.manager.clone();
        blocking("reopening a container log", move || Ok(manager.reopen_log(&c.id)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fields_leave_limits_as_they_are() {
        let r = cri::LinuxContainerResources { cpu_quota: 50_000, cpu_period: 100_000, memory_limit_in_bytes: 64 << 20, ..Default::default() };
        let u = resource_update(&r).expect("update");
        assert_eq!((u.cpu_quota, u.cpu_period, u.memory_limit, u.cpu_shares, u.cpuset_cpus), (Some(50_000), Some(100_000), Some(64 << 20), None, None));
        let kept = merged(Some(&cri::LinuxContainerResources { cpu_shares: 512, cpuset_cpus: "0".into(), ..Default::default() }), &r);
        assert_eq!((kept.cpu_shares, kept.cpuset_cpus.as_str(), kept.cpu_quota), (512, "0", 50_000));
    }

    #[test]
    fn the_kubelets_empty_hugepage_entries_pass_and_real_ones_are_refused() {
        let mut r = cri::LinuxContainerResources { hugepage_limits: vec![cri::HugepageLimit { page_size: "2MB".into(), limit: 0 }], ..Default::default() };
        resource_update(&r).expect("zero limits are what the kubelet always sends");
        r.hugepage_limits[0].limit = 1 << 21;
        let e = resource_update(&r).expect_err("refused");
        assert!(e.to_string().contains("hugepage_limits") && e.to_string().contains("2MB"), "{e}");
    }
}
