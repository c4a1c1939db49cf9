//! The pods and containers the benchmark makes, as the kubelet would send them, and their removal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

/// The label every pod of the benchmark carries, so that `cleanup` removes only those.
pub const LABEL: &str = "io.skiff.cri-bench";
pub const NAMESPACE: &str = "cri-bench";

/// The containers' command. `sleep` alone would be PID 1 of its own PID namespace (the kubelet's
/// default CONTAINER mode), where the kernel drops a SIGTERM it has no handler for: StopContainer
/// would time the 2 s timeout and the SIGKILL after it. A shell that exits on SIGTERM is the
/// well-behaved workload StopContainer is meant to stop; it says [`READY`] once its trap is set.
pub const COMMAND: [&str; 3] = ["sh", "-c", "trap 'exit 0' TERM; echo ready; sleep 3600 & wait"];
pub const READY: &str = " stdout F ready";

/// Unique names for this run's pods: the driver's pid and a counter.
#[derive(Debug)]
pub struct Namer {
    run: u32,
    next: usize,
}

impl Namer {
    pub fn new() -> Namer {
        Namer { run: std::process::id(), next: 0 }
    }

    pub fn next(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}-{}-{}", self.run, self.next)
    }
}

impl Default for Namer {
    fn default() -> Namer {
        Namer::new()
    }
}

/// The kubelet's pod log directory (`<log_dir>/<namespace>_<name>_<uid>`).
fn pod_log_dir(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(format!("{NAMESPACE}_{name}_{name}-uid"))
}

/// A pod with the network, IPC and UTS namespaces of its own (network POD: the runtime makes the
/// namespace and runs CNI in it), PID per container, as the kubelet sends by default.
pub fn pod_config(name: &str, log_dir: Option<&Path>) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: format!("{name}-uid"), namespace: NAMESPACE.into(), attempt: 0 }),
        hostname: name.into(),
        log_directory: log_dir.map(|d| pod_log_dir(d, name).display().to_string()).unwrap_or_default(),
        labels: HashMap::from([(LABEL.to_string(), "1".to_string()), ("io.kubernetes.pod.name".to_string(), name.to_string())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The kubelet makes a container's log directory before CreateContainer.
pub fn make_log_dirs(pod: &cri::PodSandboxConfig, container: &str) -> Result<()> {
    if pod.log_directory.is_empty() {
        return Ok(());
    }
    let dir = Path::new(&pod.log_directory).join(container);
    std::fs::create_dir_all(&dir).with_context(|| format!("create the log directory {}", dir.display()))
}

/// Waits until the container's CRI log shows it [`READY`]: a SIGTERM before its trap is set would
/// be dropped, and StopContainer would time its timeout instead of the stop. Without a log
/// directory there is nothing to read: a pause stands in.
pub async fn wait_ready(pod: &cri::PodSandboxConfig, container: &str) -> Result<()> {
    if pod.log_directory.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    wait_logged(&Path::new(&pod.log_directory).join(container).join("0.log"), Duration::from_secs(10)).await
}

async fn wait_logged(log: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(log).is_ok_and(|text| text.contains(READY)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("the container did not log {READY:?} to {} within {timeout:?}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn container_config(name: &str, image: &str, logs: bool) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: Some(cri::ImageSpec { image: image.into(), ..Default::default() }),
        command: COMMAND.iter().map(|c| c.to_string()).collect(),
        labels: HashMap::from([("io.kubernetes.container.name".to_string(), name.to_string())]),
        log_path: if logs { format!("{name}/0.log") } else { String::new() },
        linux: Some(cri::LinuxContainerConfig::default()),
        ..Default::default()
    }
}

pub fn create_request(pod_id: &str, pod: &cri::PodSandboxConfig, name: &str, image: &str) -> cri::CreateContainerRequest {
    cri::CreateContainerRequest {
        pod_sandbox_id: pod_id.into(),
        config: Some(container_config(name, image, !pod.log_directory.is_empty())),
        sandbox_config: Some(pod.clone()),
    }
}

/// Stops and removes every pod carrying [`LABEL`] with its containers; returns how many pods.
/// Each step is tried even when an earlier one failed; the first failure is returned at the end.
pub async fn remove_all(rt: &mut RuntimeServiceClient<Channel>) -> Result<usize> {
    let filter = cri::PodSandboxFilter { label_selector: HashMap::from([(LABEL.to_string(), "1".to_string())]), ..Default::default() };
    let pods = rt.list_pod_sandbox(cri::ListPodSandboxRequest { filter: Some(filter) }).await.context("list the benchmark's pods")?.into_inner().items;
    let mut first_error = None;
    for pod in &pods {
        let containers = rt
            .list_containers(cri::ListContainersRequest { filter: Some(cri::ContainerFilter { pod_sandbox_id: pod.id.clone(), ..Default::default() }) })
            .await
            .map(|r| r.into_inner().containers)
            .unwrap_or_default();
        for c in containers {
            if let Err(e) = rt.stop_container(cri::StopContainerRequest { container_id: c.id.clone(), timeout: 2 }).await {
                first_error.get_or_insert(format!("stop container {}: {}", c.id, e.message()));
            }
            if let Err(e) = rt.remove_container(cri::RemoveContainerRequest { container_id: c.id.clone() }).await {
                first_error.get_or_insert(format!("remove container {}: {}", c.id, e.message()));
            }
        }
        if let Err(e) = rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod.id.clone() }).await {
            first_error.get_or_insert(format!("stop pod {}: {}", pod.id, e.message()));
        }
        if let Err(e) = rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod.id.clone() }).await {
            first_error.get_or_insert(format!("remove pod {}: {}", pod.id, e.message()));
        }
    }
    match first_error {
        Some(e) => anyhow::bail!("cleanup of {} pods: {e}", pods.len()),
        None => Ok(pods.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_ask_for_a_pod_network_namespace_and_carry_the_cleanup_label() {
        let pod = pod_config("bench-1-1", Some(Path::new("/logs")));
        let ns = pod.linux.as_ref().and_then(|l| l.security_context.as_ref()).and_then(|s| s.namespace_options.as_ref()).expect("namespace options");
        assert_eq!((ns.network, ns.pid, ns.ipc), (cri::NamespaceMode::Pod as i32, cri::NamespaceMode::Container as i32, cri::NamespaceMode::Pod as i32));
        assert_eq!(pod.labels.get(LABEL).map(String::as_str), Some("1"));
        assert_eq!(pod.log_directory, "/logs/cri-bench_bench-1-1_bench-1-1-uid");
        let req = create_request("pod-id", &pod, "c", "busybox:1");
        let config = req.config.expect("config");
        assert_eq!((config.log_path.as_str(), config.command.first().map(String::as_str)), ("c/0.log", Some("sh")));
        assert_eq!(pod_config("x", None).log_directory, "");
        assert_eq!(create_request("p", &pod_config("x", None), "c", "i").config.expect("config").log_path, "", "no log dir, no log");
    }

    #[test]
    fn ready_is_read_from_the_cri_log_as_it_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let err = rt.block_on(wait_logged(&log, Duration::from_millis(20))).expect_err("no log yet");
        assert!(err.to_string().contains("did not log \" stdout F ready\""), "{err}");
        std::fs::write(&log, "2024-01-01T00:00:00.000000000Z stdout P rea\n").expect("write");
        assert!(rt.block_on(wait_logged(&log, Duration::from_millis(20))).is_err(), "a partial line is not ready");
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                std::fs::write(&log, "2024-01-01T00:00:00.000000000Z stdout F ready\n").expect("write");
            })
        };
        rt.block_on(wait_logged(&log, Duration::from_secs(5))).expect("ready once logged");
        writer.join().expect("writer");
    }

    #[test]
    fn names_are_unique_within_a_run() {
        let mut n = Namer::new();
        let (a, b) = (n.next("pod"), n.next("pod"));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("pod-{}-", std::process::id())));
    }
}
