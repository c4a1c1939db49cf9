//! PodSandboxStats and ListPodSandboxStats (Linux). CPU, memory and processes are those of the
//! pod's cgroup when the kubelet gave it one (its containers' cgroups are below it); a pod
//! without one adds up its running containers'. The network is the pod's namespace's, eth0 its
//! default interface; a pod on the host's network has none of its own.

use k8s_cri::v1 as cri;
use skiff_engine::Status;

use super::cgroup::{Cgroups, Sample};
use super::netdev::{self, Interface};
use crate::blocking::blocking;
use crate::error::{CriError, Result};
use crate::runtime::CriRuntime;
use crate::sandbox::status::selects;
use crate::sandbox::{SandboxRecord, SandboxState};

/// The interface CNI plugins give a pod, as the kubelet expects it.
const DEFAULT_INTERFACE: &str = "eth0";

fn attributes(r: &SandboxRecord) -> cri::PodSandboxAttributes {
    cri::PodSandboxAttributes { id: r.id.clone(), metadata: Some(r.metadata()), labels: r.config.labels.clone(), annotations: r.config.annotations.clone() }
}

fn interface(i: &Interface) -> cri::NetworkInterfaceUsage {
    cri::NetworkInterfaceUsage {
        name: i.name.clone(),
        rx_bytes: super::value(i.rx_bytes),
        rx_errors: super::value(i.rx_errors),
        tx_bytes: super::value(i.tx_bytes),
        tx_errors: super::value(i.tx_errors),
    }
}

fn network(at: i64, interfaces: &[Interface]) -> cri::NetworkUsage {
    cri::NetworkUsage {
        timestamp: at,
        default_interface: interfaces.iter().find(|i| i.name == DEFAULT_INTERFACE).map(interface),
        interfaces: interfaces.iter().filter(|i| i.name != "lo").map(interface).collect(),
    }
}

impl CriRuntime {
    pub async fn pod_sandbox_stats(&self, id: &str) -> Result<cri::PodSandboxStats> {
        let record = self.sandboxes.find(id)?.ok_or_else(|| CriError::NotFound(format!("pod sandbox {id:?} not found")))?;
        let runtime = self.clone();
        blocking("reading a pod's stats", move || {
            let cgroups = runtime.stats.cgroups()?;
            runtime.measure_pod(cgroups, &record)
        })
        .await
    }

    /// The ready pods the filter selects; one that cannot be measured is logged and listed with
    /// its attributes only.
    pub async fn list_pod_sandbox_stats(&self, filter: Option<cri::PodSandboxStatsFilter>) -> Result<Vec<cri::PodSandboxStats>> {
        let filter = filter.unwrap_or_default();
        let runtime = self.clone();
        blocking("listing pod stats", move || {
            let all = runtime.sandboxes.list();
            runtime.stats.pods.retain(|id| all.iter().any(|r| r.id == id));
            let containers = runtime.containers.list();
            runtime.stats.containers.retain(|id| containers.iter().any(|c| c.id == id));
            let cgroups = runtime.stats.cgroups()?;
            let selected = all.iter().filter(|r| r.state == SandboxState::Ready && r.id.starts_with(&filter.id) && selects(&filter.label_selector, &r.config.labels));
            Ok(selected
                .map(|r| {
                    runtime.measure_pod(cgroups, r).unwrap_or_else(|e| {
                        tracing::warn!(sandbox = %r.id, error = %e, "pod stats");
                        cri::PodSandboxStats { attributes: Some(attributes(r)), ..Default::default() }
                    })
                })
                .collect())
        })
        .await
    }

    /// Blocking: the pod's cgroup (or its containers'), its network namespace, its containers.
    fn measure_pod(&self, cgroups: &Cgroups, record: &SandboxRecord) -> Result<cri::PodSandboxStats> {
        let mut running = Vec::new();
        for c in self.containers.of_sandbox(&record.id) {
            match self.parts.manager.records().get(&c.id)? {
                Some(r) if r.status == Status::Running => running.push((c, r)),
                _ => {}
            }
        }
        let measured: Vec<_> = running.iter().map(|(c, r)| self.measure_or_log(cgroups, c, r)).collect();
        let at = crate::now_ns();
        let parent = record.config.linux.as_ref().map(|l| l.cgroup_parent.as_str()).filter(|p| !p.is_empty());
        let (sample, processes) = match parent {
            Some(parent) => (cgroups.sample(parent)?, cgroups.process_count(parent)?),
            None => {
                let mut count = None;
                for (_, r) in &running {
                    if let Some(n) = cgroups.process_count(&r.cgroup_path())? {
                        count = Some(count.unwrap_or(0) + n);
                    }
                }
                (Sample::sum(measured.iter().filter_map(|m| m.sample)), count)
            }
        };
        let net = match record.pinned.as_ref().and_then(|p| p.net.as_ref()) {
            Some(netns) if !record.modes().host_network => {
                let holder = record.pinned.as_ref().and_then(|p| p.pid_holder.as_ref()).map(|h| h.pid);
                let pids: Vec<i32> = holder.into_iter().chain(running.iter().map(|(_, r)| r.pid)).collect();
                netdev::pod_interfaces(netns, &pids)?.map(|interfaces| network(crate::now_ns(), &interfaces))
            }
            _ => None,
        };
        let linux = cri::LinuxPodSandboxStats {
            cpu: sample.and_then(|s| s.cpu_ns).map(|ns| super::cpu(at, ns, self.stats.pods.nano_cores(&record.id, at, ns))),
            memory: sample.and_then(|s| s.memory).map(|m| super::memory(at, &m)),
            network: net,
            process: processes.map(|n| cri::ProcessUsage { timestamp: at, process_count: super::value(n) }),
            containers: measured.into_iter().map(|m| m.stats).collect(),
        };
        Ok(cri::PodSandboxStats { attributes: Some(attributes(record)), linux: Some(linux), windows: None })
    }
}
