//! A pod left running when a test ends: the harness's teardown stops and removes it through the
//! CRI (containers, network, pinned namespaces) and reports clean.

mod common;

use k8s_cri::v1 as cri;
use skiff_harness::Harness;

use common::{import_busybox, mounts_under, IMAGE};

#[test]
fn a_running_pod_is_torn_down_through_the_cri_and_the_report_is_clean() {
    let h = Harness::start().expect("harness");
    import_busybox(&h);
    let dir = h.dir().to_path_buf();
    let bridge = h.cni().bridge().to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut c = h.cri().await.expect("cri").runtime;
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata { name: "left".into(), uid: "uid-left".into(), namespace: "default".into(), attempt: 0 }),
            log_directory: dir.join("logs").display().to_string(),
            ..Default::default()
        };
        let pod = c.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let container = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: "sleeper".into(), attempt: 0 }),
            image: Some(cri::ImageSpec { image: IMAGE.into(), ..Default::default() }),
            command: vec!["sleep".into(), "300".into()],
            log_path: "sleeper.log".into(),
            ..Default::default()
        };
        let req = cri::CreateContainerRequest { pod_sandbox_id: pod, config: Some(container), sandbox_config: Some(config) };
        let id = c.create_container(req).await.expect("create").into_inner().container_id;
        c.start_container(cri::StartContainerRequest { container_id: id }).await.expect("start");
    });
    assert!(std::fs::read_dir(format!("/sys/class/net/{bridge}/brif")).map(|d| d.count()).unwrap_or(0) == 1, "the pod is on the bridge");
    let report = h.shutdown().expect("shutdown");
    assert!(report.is_clean(), "{report}");
    assert!(mounts_under(&dir).is_empty() && !dir.exists());
    assert!(!std::path::Path::new("/sys/class/net").join(&bridge).exists());
}

/// The harness's own plugin dir is searched before the system's: a `bridge` put there is the one
/// skiffd runs (here one that refuses every ADD), and the failed pod leaves nothing.
#[test]
fn a_plugin_in_the_harness_bin_dir_shadows_the_systems() {
    let h = Harness::start().expect("harness");
    let plugin = h.cni().bin_dir().join("bridge");
    let script = "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"refused by the harness bin dir\"}'\nexit 1\n";
    std::fs::write(&plugin, script).expect("plugin");
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    assert!(h.cni().conflist_path().is_file(), "{}", h.cni().conflist_path().display());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut c = h.cri().await.expect("cri").runtime;
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata { name: "shadowed".into(), uid: "uid-shadowed".into(), namespace: "default".into(), attempt: 0 }),
            ..Default::default()
        };
        let err = c.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() }).await.expect_err("the shadowing bridge refuses");
        assert!(err.message().contains("refused by the harness bin dir"), "{}", err.message());
    });
    let report = h.shutdown().expect("shutdown");
    assert!(report.is_clean(), "{report}");
}

/// A container the test removed itself, in a pod with a cgroup parent of its own: a cgroup the
/// runtime left of it is found under that parent (the harness followed the container from its
/// creation), reported and removed.
#[test]
fn a_cgroup_left_by_a_removed_container_is_found_under_its_pods_parent() {
    let h = Harness::start().expect("harness");
    import_busybox(&h);
    let parent = format!("/skiff-harness-test-{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let id = rt.block_on(async {
        let mut c = h.cri().await.expect("cri").runtime;
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata { name: "parented".into(), uid: "uid-parented".into(), namespace: "default".into(), attempt: 0 }),
            linux: Some(cri::LinuxPodSandboxConfig { cgroup_parent: parent.clone(), ..Default::default() }),
            ..Default::default()
        };
        let pod = c.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let container = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: "brief".into(), attempt: 0 }),
            image: Some(cri::ImageSpec { image: IMAGE.into(), ..Default::default() }),
            command: vec!["true".into()],
            ..Default::default()
        };
        let req = cri::CreateContainerRequest { pod_sandbox_id: pod.clone(), config: Some(container), sandbox_config: Some(config) };
        let id = c.create_container(req).await.expect("create").into_inner().container_id;
        c.remove_container(cri::RemoveContainerRequest { container_id: id.clone() }).await.expect("remove");
        c.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod.clone() }).await.expect("stop pod");
        c.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod }).await.expect("remove pod");
        id
    });
    // What a runtime that died half-way through its delete would leave.
    let memory = std::path::Path::new("/sys/fs/cgroup/memory");
    let left = memory.join(parent.trim_start_matches('/')).join(&id);
    std::fs::create_dir_all(&left).expect("a leftover cgroup");
    let report = h.shutdown().expect("shutdown");
    let found = report.of_kind(skiff_harness::LeakKind::Cgroup).any(|l| matches!(l, skiff_harness::Leak::Cgroup { path, .. } if *path == left));
    // The pod's parent is the kubelet's to remove, not Skiff's; the test made it, the test removes it.
    for controller in std::fs::read_dir("/sys/fs/cgroup").expect("cgroup mounts").flatten() {
        let _ = std::fs::remove_dir(controller.path().join(parent.trim_start_matches('/')));
    }
    assert!(found, "the leftover cgroup is reported: {report}");
    assert!(!left.exists(), "and removed");
}
