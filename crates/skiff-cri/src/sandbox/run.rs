//! RunPodSandbox: the record first (durable, `creating`), then the namespaces pinned, the network
//! attached, and the record `ready`. Any failure undoes what was made, in reverse, and removes the
//! record; a crash leaves the record for recovery to undo.

use std::collections::BTreeMap;

use k8s_cri::v1 as cri;
use skiff_cni::{Dns, PodNetwork, PortMapping, Protocol};
use skiff_runtime::pod::{Namespaces, PinRequest};

use super::record::{sandbox_name, SandboxRecord, SandboxState};
use crate::blocking::blocking;
use crate::error::{text, CriError, Result};
use crate::runtime::CriRuntime;
use crate::timings::Stopwatch;

/// Checks what the kubelet sent before anything is made.
fn check(config: &cri::PodSandboxConfig) -> Result<()> {
    let m = config.metadata.as_ref().ok_or_else(|| CriError::InvalidArgument("config.metadata is missing".into()))?;
    for (field, value) in [("metadata.name", &m.name), ("metadata.namespace", &m.namespace), ("metadata.uid", &m.uid)] {
        if value.is_empty() {
            return Err(CriError::InvalidArgument(format!("config.{field} is empty")));
        }
        text(&format!("config.{field}"), value)?;
    }
    for (field, value) in [("hostname", &config.hostname), ("log_directory", &config.log_directory)] {
        text(&format!("config.{field}"), value)?;
    }
    for (field, map) in [("labels", &config.labels), ("annotations", &config.annotations)] {
        for (k, v) in map {
            text(&format!("config.{field} key"), k)?;
            text(&format!("config.{field} {k:?}"), v)?;
        }
    }
    if let Some(dns) = &config.dns_config {
        for v in dns.servers.iter().chain(&dns.searches).chain(&dns.options) {
            text("config.dns_config", v)?;
        }
    }
    let linux = config.linux.clone().unwrap_or_default();
    text("config.linux.cgroup_parent", &linux.cgroup_parent)?;
    if let Some(options) = linux.security_context.as_ref().and_then(|s| s.namespace_options.as_ref()) {
        let mode = |field: &str, value: i32, allowed: &[cri::NamespaceMode]| -> Result<()> {
            if allowed.iter().any(|m| *m as i32 == value) {
                return Ok(());
            }
            let name = cri::NamespaceMode::try_from(value).map(|m| m.as_str_name().to_string()).unwrap_or_else(|_| value.to_string());
            Err(CriError::InvalidArgument(format!("config.linux.security_context.namespace_options.{field} {name} is not supported for a pod")))
        };
        use cri::NamespaceMode::{Container, Node, Pod, Target};
        mode("network", options.network, &[Pod, Node])?;
        mode("ipc", options.ipc, &[Pod, Node])?;
        mode("pid", options.pid, &[Pod, Container, Node, Target])?;
        if options.userns_options.as_ref().is_some_and(|u| u.mode != cri::NamespaceMode::Node as i32) {
            return Err(CriError::InvalidArgument("config.linux.security_context.namespace_options.userns_options: user namespaces are not supported".into()));
        }
    }
    for mapping in &config.port_mappings {
        if !(0..=65535).contains(&mapping.host_port) || !(1..=65535).contains(&mapping.container_port) {
            return Err(CriError::InvalidArgument(format!("config.port_mappings: port {}:{} is out of range", mapping.host_port, mapping.container_port)));
        }
        text("config.port_mappings.host_ip", &mapping.host_ip)?;
    }
    Ok(())
}

fn port_mapping(m: &cri::PortMapping) -> PortMapping {
    let protocol = match cri::Protocol::try_from(m.protocol) {
        Ok(cri::Protocol::Udp) => Protocol::Udp,
        Ok(cri::Protocol::Sctp) => Protocol::Sctp,
        _ => Protocol::Tcp,
    };
    PortMapping { host_port: m.host_port as u16, container_port: m.container_port as u16, protocol, host_ip: m.host_ip.clone() }
}

impl CriRuntime {
    pub async fn run_pod_sandbox(&self, req: cri::RunPodSandboxRequest) -> Result<String> {
        let mut watch = Stopwatch::start();
        let config = req.config.ok_or_else(|| CriError::InvalidArgument("config is missing".into()))?;
        check(&config)?;
        let handler = if req.runtime_handler.is_empty() { self.parts.handlers.first().cloned().unwrap_or_default() } else { req.runtime_handler };
        if !self.parts.handlers.contains(&handler) {
            return Err(CriError::InvalidArgument(format!("runtime_handler {handler:?} is not configured ({})", self.parts.handlers.join(", "))));
        }
        let name = sandbox_name(config.metadata.as_ref().expect("checked"));
        // A kubelet retry while the first call runs waits for it, then gets the same sandbox.
        let (_name, waited) = self.pod_names.lock_noting_wait(&name).await;
        if let Some(holder) = self.sandboxes.by_name(&name) {
            if waited && holder.state == SandboxState::Ready {
                return Ok(holder.id);
            }
            return Err(CriError::NameInUse { what: "pod sandbox", name, holder: holder.id });
        }
        let id = skiff_engine::containers::random_id()?;
        watch.lap("checks and name");
        let mut record = SandboxRecord {
            id: id.clone(),
            name,
            state: SandboxState::Creating,
            created_at: crate::now_ns(),
            runtime_handler: handler,
            dir: self.parts.root.join("pods").join(&id),
            config,
            pinned: None,
            network_attached: false,
            ips: Vec::new(),
            files: None,
        };
        // A pod with a network of its own counts as attached from the start: a crash anywhere
        // from here (during its CNI ADD too) has its DEL run, which is harmless before an ADD, and
        // this one durable write covers it.
        record.network_attached = !record.modes().host_network;
        // A request the pin helper would refuse (a sysctl that is not namespaced, say) is refused
        // before anything is made; the helper checks it again.
        let (pin, pod_hostname) = self.pin_request(&record);
        skiff_runtime::pod::validate(&pin).map_err(skiff_runtime::RuntimeError::from)?;
        self.sandboxes.put(&record, true)?;
        watch.lap("persist creating");
        let runtime = self.clone();
        blocking("running a pod sandbox", move || {
            let mut record = record;
            match runtime.make(&mut record, &pin, &pod_hostname, &mut watch) {
                Ok(()) => {
                    runtime.timings.record(&record.id, "run", watch);
                    runtime.cri_events.sandbox(cri::ContainerEventType::ContainerStartedEvent, super::status::status_of(&record));
                    Ok(record.id)
                }
                Err(e) => {
                    tracing::warn!(sandbox = %record.id, error = %e, "pod sandbox failed; undoing it");
                    if let Err(undo) = runtime.undo(&record, true) {
                        tracing::warn!(sandbox = %record.id, error = %undo, "undoing the failed pod sandbox");
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    /// Pins the namespaces and attaches the network, recording each step; meanwhile the pod's
    /// supervisor starts on a thread of its own, ready for its first container's start, and is
    /// waited for before this answers (so that an undo finds it).
    fn make(&self, record: &mut SandboxRecord, pin: &PinRequest, pod_hostname: &str, watch: &mut Stopwatch) -> Result<()> {
        let manager = self.parts.manager.clone();
        // The pod's containers come next: their inits' cgroup moves find the kernel's lock warm.
        manager.expect_start();
        let id = record.id.clone();
        std::thread::scope(|s| {
            s.spawn(move || manager.prepare_pod_supervisor(&id));
            self.make_parts(record, pin, pod_hostname, watch)
        })
    }

    fn make_parts(&self, record: &mut SandboxRecord, pin: &PinRequest, pod_hostname: &str, watch: &mut Stopwatch) -> Result<()> {
        let started = std::time::Instant::now();
        watch.lap("to the blocking pool");
        let modes = record.modes();
        let pinned = self.pins.pin(pin)?;
        let pinned_at = started.elapsed();
        watch.lap("pin namespaces");
        record.pinned = Some(pinned.clone());
        self.sandboxes.put(record, false)?;
        watch.lap("persist pinned");
        let files = super::files::make_pod_files(&super::files::PodFilesRequest {
            dir: &record.dir,
            hostname: pod_hostname,
            dns: record.config.dns_config.as_ref(),
            host_network: modes.host_network,
            host_ipc: modes.host_ipc,
            shm_size: self.parts.pod_shm_size,
        })?;
        record.files = Some(files);
        watch.lap("pod files");
        if let Some(netns) = &pinned.net {
            let status = self.parts.network.setup(&self.pod_network(record, netns))?;
            record.ips = status.ips.iter().map(|ip| ip.to_string()).collect();
            watch.lap_plugins("ADD", &status.timings);
        }
        record.state = SandboxState::Ready;
        self.sandboxes.put(record, true)?;
        watch.lap("persist ready");
        tracing::info!(sandbox = %record.id, name = %record.name, ips = ?record.ips, pin = ?pinned_at, elapsed = ?started.elapsed(), "pod sandbox ready");
        Ok(())
    }

    /// What the pin helper is asked to make for `record`, and the pod's hostname.
    fn pin_request(&self, record: &SandboxRecord) -> (PinRequest, String) {
        let modes = record.modes();
        let linux = record.config.linux.clone().unwrap_or_default();
        let mut sysctls: BTreeMap<String, String> = self.parts.default_sysctls.clone();
        sysctls.extend(linux.sysctls);
        if modes.host_network {
            // The host's network namespace is not the pod's to change.
            sysctls.retain(|k, _| !k.starts_with("net.") && !k.starts_with("net/"));
        }
        let pod_hostname = if record.config.hostname.is_empty() { record.metadata().name } else { record.config.hostname.clone() };
        let hostname = (!modes.host_network).then(|| pod_hostname.clone());
        let pin = PinRequest {
            dir: record.dir.clone(),
            namespaces: Namespaces { net: !modes.host_network, ipc: !modes.host_ipc, uts: !modes.host_network },
            hostname,
            sysctls,
            pid_holder: modes.shared_pid && !modes.host_pid,
        };
        (pin, pod_hostname)
    }

    pub(crate) fn pod_network(&self, record: &SandboxRecord, netns: &std::path::Path) -> PodNetwork {
        let m = record.metadata();
        let mut pod = PodNetwork::new(record.id.clone(), netns);
        pod.pod_name = m.name;
        pod.pod_namespace = m.namespace;
        pod.pod_uid = m.uid;
        pod.port_mappings = record.config.port_mappings.iter().filter(|p| p.host_port > 0).map(port_mapping).collect();
        pod.dns = record.config.dns_config.as_ref().map(|d| Dns { servers: d.servers.clone(), searches: d.searches.clone(), options: d.options.clone() });
        pod
    }
}
