//! The stats calls on real pinned pod namespaces (as root, with the built skiff-shim) and the
//! fake network: what a pod without containers answers, host-network pods, missing ids.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use skiff_types::{ErrorKind, HasKind};

use crate::runtime::testing::fixture;

fn config(name: &str, network: cri::NamespaceMode) -> cri::PodSandboxConfig {
    let options = cri::NamespaceOption { network: network as i32, pid: cri::NamespaceMode::Container as i32, ..Default::default() };
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "default".into(), attempt: 0 }),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        annotations: HashMap::from([("note".to_string(), format!("{name}\n"))]),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext { namespace_options: Some(options), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_pod_is_measured_in_its_own_network_namespace() {
    let (runtime, _fake, _dir) = fixture();
    let sent = config("lonely", cri::NamespaceMode::Pod);
    let id = runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(sent.clone()), runtime_handler: String::new() }).await.expect("pod");
    let host = runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config("host", cri::NamespaceMode::Node)), runtime_handler: String::new() }).await.expect("host pod");

    let stats = runtime.pod_sandbox_stats(&id[..10]).await.expect("stats");
    let attributes = stats.attributes.expect("attributes");
    assert_eq!((attributes.id.as_str(), attributes.labels, attributes.annotations), (id.as_str(), sent.labels.clone(), sent.annotations.clone()));
    let linux = stats.linux.expect("linux");
    // No container yet, no cgroup parent: nothing to add up.
    assert!(linux.cpu.is_none() && linux.memory.is_none() && linux.process.is_none() && linux.containers.is_empty(), "{linux:?}");
    // Read from inside the pinned namespace (no process is in it): the fake network gave it no
    // interface, so only its own lo is there, left out. The host's interfaces would show otherwise.
    let network = linux.network.expect("the pod's network");
    assert!(network.timestamp > 0 && network.interfaces.is_empty() && network.default_interface.is_none(), "{network:?}");

    let host_stats = runtime.pod_sandbox_stats(&host).await.expect("host stats");
    assert!(host_stats.linux.expect("linux").network.is_none(), "a host-network pod has no network of its own");

    let list = |filter: cri::PodSandboxStatsFilter| {
        let runtime = runtime.clone();
        async move { runtime.list_pod_sandbox_stats(Some(filter)).await.expect("list").into_iter().map(|s| s.attributes.expect("attributes").id).collect::<Vec<_>>() }
    };
    assert_eq!(list(Default::default()).await.len(), 2);
    assert_eq!(list(cri::PodSandboxStatsFilter { id: id[..8].into(), ..Default::default() }).await, [id.as_str()]);
    assert_eq!(list(cri::PodSandboxStatsFilter { label_selector: HashMap::from([("app".into(), "host".into())]), ..Default::default() }).await, [host.as_str()]);
    runtime.stop_pod_sandbox(&host).await.expect("stop");
    assert_eq!(list(Default::default()).await, [id.as_str()], "ready pods only");
    assert!(runtime.pod_sandbox_stats(&host).await.is_ok(), "a stopped pod still answers alone");

    for missing in [runtime.pod_sandbox_stats("feedfacefeedface").await.map(drop), runtime.container_stats("feedfacefeedface").await.map(drop)] {
        assert_eq!(missing.expect_err("missing").kind(), ErrorKind::NotFound);
    }
    assert!(runtime.list_container_stats(None).await.expect("no containers").is_empty());
    for pod in [id, host] {
        runtime.remove_pod_sandbox(&pod).await.expect("remove");
    }
}
