//! The sandbox lifecycle on real pinned namespaces (as root, with the built skiff-shim) and the
//! fake network.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use skiff_cni::fake::Call;
use skiff_cni::netns::{probe, NetnsState};
use skiff_types::{ErrorKind, HasKind};

use crate::runtime::testing::fixture;
use crate::runtime::CriRuntime;

fn config(name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "default".into(), attempt: 0 }),
        hostname: name.into(),
        labels: HashMap::from([("app".to_string(), name.to_string()), ("io.kubernetes.pod.uid".to_string(), format!("uid-{name}"))]),
        annotations: HashMap::from([("kubectl.kubernetes.io/last-applied".to_string(), "{\"x\": 1}\n".to_string())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption { pid: cri::NamespaceMode::Container as i32, ..Default::default() }),
                ..Default::default()
            }),
            sysctls: HashMap::from([("net.ipv4.ip_unprivileged_port_start".to_string(), "0".to_string())]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run(runtime: &CriRuntime, config: cri::PodSandboxConfig) -> crate::Result<String> {
    runtime.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() }).await
}

fn status(runtime: &CriRuntime, id: &str) -> cri::PodSandboxStatus {
    runtime.pod_sandbox_status(&cri::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false }).expect("status").status.expect("status")
}

#[tokio::test]
async fn a_sandbox_is_made_shown_stopped_and_removed() {
    let (runtime, fake, dir) = fixture();
    let sent = config("web");
    let id = run(&runtime, sent.clone()).await.expect("run");
    let s = status(&runtime, &id);
    assert_eq!(s.state, cri::PodSandboxState::SandboxReady as i32);
    assert_eq!((s.labels.clone(), s.annotations.clone()), (sent.labels.clone(), sent.annotations.clone()), "echoed byte for byte");
    assert_eq!(s.linux.and_then(|l| l.namespaces).and_then(|n| n.options), sent.linux.as_ref().and_then(|l| l.security_context.clone()).and_then(|c| c.namespace_options));
    assert!(s.created_at > 0 && !s.network.expect("network").ip.is_empty());
    let record = runtime.sandboxes.get(&id).expect("record");
    let pinned = record.pinned.clone().expect("pinned");
    for file in pinned.files() {
        assert_eq!(probe(file), NetnsState::Live, "{}", file.display());
    }
    assert!(pinned.pid_holder.is_none(), "CONTAINER pid mode needs no holder");
    let files = record.files.clone().expect("pod files");
    assert_eq!(std::fs::read_to_string(&files.hostname).expect("hostname"), "web\n");
    let mounted = |path: &std::path::Path| std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").contains(&format!(" {} ", path.display()));
    assert!(mounted(&files.shm), "the pod's /dev/shm is a tmpfs of its own");
    assert!(fake.is_set_up(&id));

    let listed = |filter: cri::PodSandboxFilter| runtime.list_pod_sandbox(&cri::ListPodSandboxRequest { filter: Some(filter) }).len();
    assert_eq!(listed(cri::PodSandboxFilter::default()), 1);
    assert_eq!(listed(cri::PodSandboxFilter { id: id[..8].into(), ..Default::default() }), 1);
    assert_eq!(listed(cri::PodSandboxFilter { label_selector: HashMap::from([("app".into(), "web".into())]), ..Default::default() }), 1);
    assert_eq!(listed(cri::PodSandboxFilter { label_selector: HashMap::from([("app".into(), "db".into())]), ..Default::default() }), 0);
    let not_ready = Some(cri::PodSandboxStateValue { state: cri::PodSandboxState::SandboxNotready as i32 });
    assert_eq!(listed(cri::PodSandboxFilter { state: not_ready, ..Default::default() }), 0);

    runtime.stop_pod_sandbox(&id).await.expect("stop");
    runtime.stop_pod_sandbox(&id).await.expect("stop again");
    assert!(!fake.is_set_up(&id), "network detached at stop");
    assert_eq!(status(&runtime, &id).state, cri::PodSandboxState::SandboxNotready as i32);
    assert_eq!(listed(cri::PodSandboxFilter { state: not_ready, ..Default::default() }), 1);
    runtime.remove_pod_sandbox(&id).await.expect("remove");
    runtime.remove_pod_sandbox(&id).await.expect("remove again");
    runtime.stop_pod_sandbox(&id).await.expect("stop after remove");
    assert!(!record.dir.exists(), "state dir removed");
    assert!(!mounted(&files.shm), "shm unmounted");
    for file in pinned.files() {
        assert_ne!(probe(file), NetnsState::Live);
    }
    let err = runtime.pod_sandbox_status(&cri::PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose: false }).expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(fake.calls().iter().filter(|c| matches!(c, Call::Teardown(_))).count(), 1, "one DEL for one ADD");
    drop(dir);
}

#[tokio::test]
async fn names_are_unique_and_a_retry_in_flight_gets_the_same_sandbox() {
    let (runtime, _fake, _dir) = fixture();
    let (a, b) = tokio::join!(run(&runtime, config("twice")), run(&runtime, config("twice")));
    let (a, b) = (a.expect("first"), b.expect("retry"));
    assert_eq!(a, b, "a retry while the first call runs gets its sandbox");
    let err = run(&runtime, config("twice")).await.expect_err("duplicate");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains(&a), "names the holder: {err}");
    runtime.remove_pod_sandbox(&a).await.expect("remove");
    let again = run(&runtime, config("twice")).await.expect("name free again");
    runtime.remove_pod_sandbox(&again).await.expect("remove");
}

#[tokio::test]
async fn a_failing_network_leaves_nothing() {
    let (runtime, fake, dir) = fixture();
    fake.fail_next_setup(7, "no IPs left");
    let err = run(&runtime, config("unlucky")).await.expect_err("network fails");
    assert!(err.to_string().contains("no IPs left"), "{err}");
    assert!(runtime.sandboxes.list().is_empty(), "no record");
    let pods = dir.path().join("root/pods");
    assert_eq!(std::fs::read_dir(&pods).map(|d| d.count()).unwrap_or(0), 0, "no state dir");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&pods.display().to_string()), "no namespace left pinned");
}

#[tokio::test]
async fn host_network_pods_skip_the_network_and_shared_pid_gets_a_holder() {
    let (runtime, fake, _dir) = fixture();
    let mut host = config("host");
    let options = cri::NamespaceOption { network: cri::NamespaceMode::Node as i32, pid: cri::NamespaceMode::Pod as i32, ..Default::default() };
    host.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext { namespace_options: Some(options), ..Default::default() }),
        ..Default::default()
    });
    let id = run(&runtime, host).await.expect("host network pod");
    let record = runtime.sandboxes.get(&id).expect("record");
    let pinned = record.pinned.clone().expect("pinned");
    assert!(pinned.net.is_none() && pinned.uts.is_none() && pinned.ipc.is_some(), "{pinned:?}");
    let holder = pinned.pid_holder.clone().expect("a PID 1 that is not the workload");
    assert!(holder.is_alive());
    assert!(fake.calls().is_empty(), "no CNI for a host-network pod");
    assert!(status(&runtime, &id).network.expect("network").ip.is_empty());
    runtime.remove_pod_sandbox(&id).await.expect("remove");
    assert!(!holder.is_alive(), "the holder goes with the pod");
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_made() {
    let (runtime, fake, _dir) = fixture();
    let mut cases: Vec<(&str, cri::PodSandboxConfig)> = Vec::new();
    cases.push(("metadata is missing", cri::PodSandboxConfig { metadata: None, ..config("a") }));
    let mut c = config("a");
    c.metadata.as_mut().expect("metadata").uid.clear();
    cases.push(("metadata.uid is empty", c));
    let mut c = config("a");
    c.labels.insert("bad\0".into(), "v".into());
    cases.push(("NUL", c));
    let mut c = config("a");
    c.hostname = "h\0".into();
    cases.push(("hostname holds a NUL", c));
    let mut c = config("a");
    let options = cri::NamespaceOption { network: cri::NamespaceMode::Container as i32, ..Default::default() };
    c.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext { namespace_options: Some(options), ..Default::default() }),
        ..Default::default()
    });
    cases.push(("namespace_options.network CONTAINER", c));
    let mut c = config("a");
    c.linux.as_mut().expect("linux").sysctls.insert("vm.swappiness".into(), "1".into());
    cases.push(("vm.swappiness", c));
    for (needle, c) in cases {
        let err = run(&runtime, c).await.expect_err(needle);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{needle}: {err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let err = runtime
        .run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(config("a")), runtime_handler: "kata".into() })
        .await
        .expect_err("handler");
    assert!(err.to_string().contains("kata"), "{err}");
    assert!(runtime.sandboxes.list().is_empty() && fake.calls().is_empty());
}

#[tokio::test]
async fn a_cri_container_record_without_its_engine_container_is_dropped_at_start() {
    let (runtime, _fake, _dir) = fixture();
    let id = run(&runtime, config("cut")).await.expect("run");
    // What a RemoveContainer cut short between the engine's durable removal and its own leaves.
    let orphan = crate::container::CriContainer {
        id: "c".repeat(64),
        sandbox_id: id.clone(),
        metadata: cri::ContainerMetadata { name: "app".into(), attempt: 0 },
        image: cri::ImageSpec { image: "busybox".into(), ..Default::default() },
        image_ref: "sha256:".to_string() + &"0".repeat(64),
        labels: HashMap::new(),
        annotations: HashMap::new(),
        mounts: Vec::new(),
        log_path: String::new(),
        created_at: 1,
        resources: None,
    };
    runtime.containers.put(&orphan, false).expect("put");
    runtime.recover().expect("recover");
    assert!(runtime.containers.get(&orphan.id).is_none(), "the orphan record was dropped");
    assert_eq!(status(&runtime, &id).state, cri::PodSandboxState::SandboxReady as i32, "its pod is untouched");
    runtime.stop_pod_sandbox(&id).await.expect("stop");
    runtime.remove_pod_sandbox(&id).await.expect("remove");
}
