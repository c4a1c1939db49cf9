//! The CRI stats the kubelet reads for eviction and `kubectl top`, from a real skiffd on real
//! cgroups and a real CNI bridge: a container that burns CPU, fills memory and writes to its
//! rootfs is seen doing so; a pod's network counters move after traffic; a pod with a cgroup
//! parent is measured by it, one without adds up its containers; the listings and their filters;
//! an exited container and missing ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skiff_integration::cri::{cri, image_spec, pod_config, runtime, shutdown_clean, start_with_busybox, Harness, SkiffCli};
use skiff_integration::mounts_left_under;
use tonic::transport::Channel;
use tonic::Code;

const IMAGE: &str = "localhost/cri/busybox:1";
const MIB: u64 = 1 << 20;

type Runtime = k8s_cri::v1::runtime_service_client::RuntimeServiceClient<Channel>;

fn start() -> Harness {
    start_with_busybox(IMAGE).expect("skiffd with a busybox image (apt-get install busybox-static)")
}

fn container(name: &str, script: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: image_spec(IMAGE),
        command: vec!["sh".into(), "-c".into(), script.into()],
        labels: HashMap::from([("io.kubernetes.container.name".to_string(), name.to_string())]),
        annotations: HashMap::from([("io.kubernetes.container.hash".to_string(), format!("hash-{name}"))]),
        ..Default::default()
    }
}

async fn run(rt: &mut Runtime, pod_id: &str, pod: &cri::PodSandboxConfig, config: cri::ContainerConfig) -> String {
    let req = cri::CreateContainerRequest { pod_sandbox_id: pod_id.into(), config: Some(config), sandbox_config: Some(pod.clone()) };
    let id = rt.create_container(req).await.expect("create").into_inner().container_id;
    rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.expect("start");
    id
}

async fn wait_for(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !file.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", file.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stats(rt: &mut Runtime, id: &str) -> cri::ContainerStats {
    rt.container_stats(cri::ContainerStatsRequest { container_id: id.into() }).await.expect("container stats").into_inner().stats.expect("stats")
}

fn cpu_ns(s: &cri::ContainerStats) -> u64 {
    s.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds.as_ref()).expect("cpu usage").value
}

fn layer_bytes(s: &cri::ContainerStats) -> u64 {
    s.writable_layer.as_ref().and_then(|l| l.used_bytes.as_ref()).expect("writable layer").value
}

fn working_set(m: Option<&cri::MemoryUsage>) -> u64 {
    m.and_then(|m| m.working_set_bytes.as_ref()).expect("working set").value
}

/// The pod cgroup the kubelet would have made: removed after the test in every hierarchy, deepest first.
struct PodCgroup(String);

impl Drop for PodCgroup {
    fn drop(&mut self) {
        let rel = self.0.trim_start_matches('/');
        let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") else { return };
        let mut dirs: Vec<PathBuf> = vec![Path::new("/sys/fs/cgroup").join(rel)];
        for mount in mounts.flatten() {
            let mut dir = mount.path().join(rel);
            while dir.starts_with(mount.path()) && dir != mount.path() {
                dirs.push(dir.clone());
                dir.pop();
            }
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn stats_follow_what_containers_and_pods_use() {
    let h = start();
    let trigger = h.dir().join("trigger");
    std::fs::create_dir_all(&trigger).expect("trigger dir");
    let gateway = h.cni().gateway();
    let parent = PodCgroup(format!("/skiff-it-stats-{}/podburner", std::process::id()));
    let rt = runtime();
    rt.block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut pod = pod_config("burner");
        pod.annotations.insert("pod.example.com/owner".into(), "team-a".into());
        pod.linux.as_mut().expect("linux").cgroup_parent = parent.0.clone();
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;

        // Traffic to the bridge's gateway first (refused or not, packets go both ways), then it
        // waits; once told, it writes 8 MiB to its rootfs and 16 MiB to the pod's /dev/shm (memory
        // charged to it), and burns CPU.
        let script = format!(
            "wget -q -T 2 -O /dev/null http://{gateway}:9/ 2>/dev/null; touch /trigger/started; \
             until [ -e /trigger/go ]; do sleep 0.1; done; \
             dd if=/dev/zero of=/layer.bin bs=1M count=8 2>/dev/null; dd if=/dev/zero of=/dev/shm/blob bs=1M count=16 2>/dev/null; \
             touch /trigger/written; while :; do :; done"
        );
        let mut burner_config = container("burner", &script);
        burner_config.mounts = vec![cri::Mount { container_path: "/trigger".into(), host_path: trigger.display().to_string(), ..Default::default() }];
        let burner = run(&mut rt, &pod_id, &pod, burner_config.clone()).await;
        wait_for(&trigger.join("started")).await;

        let first = stats(&mut rt, &burner[..12]).await;
        let attributes = first.attributes.clone().expect("attributes");
        assert_eq!((attributes.id.as_str(), attributes.metadata, &attributes.labels, &attributes.annotations), (burner.as_str(), burner_config.metadata.clone(), &burner_config.labels, &burner_config.annotations), "as the kubelet sent them");
        assert!(first.cpu.as_ref().expect("cpu").usage_nano_cores.is_none(), "no rate on the first sample: {first:?}");
        let layer_before = layer_bytes(&first);
        let fs_id = first.writable_layer.as_ref().and_then(|l| l.fs_id.clone()).expect("fs id").mountpoint;
        assert_eq!(fs_id, h.root().join("snapshots").display().to_string());

        std::fs::write(trigger.join("go"), "").expect("go");
        wait_for(&trigger.join("written")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = stats(&mut rt, &burner).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let third = stats(&mut rt, &burner).await;
        assert!(cpu_ns(&third) > cpu_ns(&second) && cpu_ns(&second) > cpu_ns(&first), "CPU time grows: {} {} {}", cpu_ns(&first), cpu_ns(&second), cpu_ns(&third));
        let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        let rate = third.cpu.as_ref().and_then(|c| c.usage_nano_cores.as_ref()).expect("a rate on later samples").value;
        assert!(rate > 0 && rate <= cores * 1_100_000_000, "{rate} nanocores on {cores} cores");
        let memory = third.memory.as_ref().expect("memory");
        assert!(working_set(Some(memory)) >= 16 * MIB, "the /dev/shm write is in the working set: {memory:?}");
        assert!(memory.usage_bytes.as_ref().expect("usage").value >= working_set(Some(memory)));
        assert!(memory.available_bytes.is_none(), "no limit, no available bytes: {memory:?}");
        assert!(memory.page_faults.as_ref().expect("page faults").value > 0);
        assert!(layer_bytes(&third) >= layer_before + 8 * MIB, "the rootfs write is in the writable layer: {layer_before} -> {}", layer_bytes(&third));

        // An exited container answers alone (no CPU or memory) and is left out of the listing.
        let done = run(&mut rt, &pod_id, &pod, container("done", "true")).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let st = rt.container_status(cri::ContainerStatusRequest { container_id: done.clone(), verbose: false }).await.expect("status").into_inner().status.expect("status");
            if st.state == cri::ContainerState::ContainerExited as i32 {
                break;
            }
            assert!(Instant::now() < deadline, "{st:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let exited = stats(&mut rt, &done).await;
        assert!(exited.cpu.is_none() && exited.memory.is_none() && exited.writable_layer.is_some(), "{exited:?}");

        // The pod: its cgroup parent holds the burner's cgroup; eth0 saw the traffic.
        let pod_stats = rt.pod_sandbox_stats(cri::PodSandboxStatsRequest { pod_sandbox_id: pod_id.clone() }).await.expect("pod stats").into_inner().stats.expect("stats");
        let pod_attributes = pod_stats.attributes.expect("attributes");
        assert_eq!((pod_attributes.id.as_str(), &pod_attributes.labels, &pod_attributes.annotations), (pod_id.as_str(), &pod.labels, &pod.annotations));
        let linux = pod_stats.linux.expect("linux");
        let pod_cpu = linux.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds.as_ref()).expect("pod cpu").value;
        assert!(pod_cpu >= cpu_ns(&third), "the pod's cgroup counts its container: {pod_cpu} < {}", cpu_ns(&third));
        assert!(working_set(linux.memory.as_ref()) >= 16 * MIB, "{:?}", linux.memory);
        assert!(linux.process.as_ref().and_then(|p| p.process_count.as_ref()).expect("process count").value >= 1);
        assert_eq!(linux.containers.iter().map(|c| c.attributes.as_ref().expect("attributes").id.as_str()).collect::<Vec<_>>(), [burner.as_str()], "running containers only");
        let network = linux.network.expect("network");
        let eth0 = network.default_interface.expect("eth0");
        assert_eq!(eth0.name, "eth0");
        assert!(eth0.rx_bytes.expect("rx").value > 0 && eth0.tx_bytes.expect("tx").value > 0, "traffic to {gateway}");
        assert_eq!(network.interfaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["eth0"], "every interface but lo");

        // A host-network pod without a cgroup parent: its containers added up, no network of its own.
        let mut host = pod_config("sleeper");
        let options = host.linux.as_mut().and_then(|l| l.security_context.as_mut()).and_then(|s| s.namespace_options.as_mut()).expect("options");
        options.network = cri::NamespaceMode::Node as i32;
        let host_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(host.clone()), runtime_handler: String::new() }).await.expect("host pod").into_inner().pod_sandbox_id;
        let sleeper = run(&mut rt, &host_id, &host, container("sleeper", "dd if=/dev/zero of=/dev/shm/blob bs=1M count=4 2>/dev/null; exec sleep 1000")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let host_stats = rt.pod_sandbox_stats(cri::PodSandboxStatsRequest { pod_sandbox_id: host_id.clone() }).await.expect("host pod stats").into_inner().stats.expect("stats");
        let linux = host_stats.linux.expect("linux");
        assert!(linux.network.is_none(), "{:?}", linux.network);
        let [only] = linux.containers.as_slice() else { panic!("one container: {:?}", linux.containers) };
        let (pod_cpu, container_cpu) = (linux.cpu.and_then(|c| c.usage_core_nano_seconds).expect("cpu").value, cpu_ns(only));
        assert_eq!(pod_cpu, container_cpu, "one container's sum is that container");
        assert_eq!(working_set(linux.memory.as_ref()), working_set(only.memory.as_ref()));
        assert!(working_set(linux.memory.as_ref()) >= 4 * MIB);

        // The listings and their filters.
        let lister = rt.clone();
        let list = |filter: cri::ContainerStatsFilter| {
            let mut rt = lister.clone();
            async move {
                let stats = rt.list_container_stats(cri::ListContainerStatsRequest { filter: Some(filter) }).await.expect("list").into_inner().stats;
                let mut ids: Vec<String> = stats.into_iter().map(|s| s.attributes.expect("attributes").id).collect();
                ids.sort();
                ids
            }
        };
        let mut running = vec![burner.clone(), sleeper.clone()];
        running.sort();
        assert_eq!(list(Default::default()).await, running, "running containers only");
        assert_eq!(list(cri::ContainerStatsFilter { id: burner[..10].into(), ..Default::default() }).await, [burner.as_str()]);
        assert_eq!(list(cri::ContainerStatsFilter { id: done.clone(), ..Default::default() }).await, Vec::<String>::new(), "exited");
        assert_eq!(list(cri::ContainerStatsFilter { pod_sandbox_id: host_id.clone(), ..Default::default() }).await, [sleeper.as_str()]);
        let by_label = cri::ContainerStatsFilter { label_selector: HashMap::from([("io.kubernetes.container.name".into(), "burner".into())]), ..Default::default() };
        assert_eq!(list(by_label).await, [burner.as_str()]);
        let listed = rt.list_container_stats(cri::ListContainerStatsRequest { filter: None }).await.expect("list").into_inner().stats;
        assert!(listed.iter().all(|s| s.cpu.is_some() && s.memory.is_some() && s.writable_layer.is_some()), "{listed:?}");

        let pods = |filter: cri::PodSandboxStatsFilter| {
            let mut rt = lister.clone();
            async move {
                let stats = rt.list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: Some(filter) }).await.expect("list pods").into_inner().stats;
                let mut ids: Vec<String> = stats.into_iter().map(|s| s.attributes.expect("attributes").id).collect();
                ids.sort();
                ids
            }
        };
        let mut both = vec![pod_id.clone(), host_id.clone()];
        both.sort();
        assert_eq!(pods(Default::default()).await, both);
        assert_eq!(pods(cri::PodSandboxStatsFilter { id: host_id[..8].into(), ..Default::default() }).await, [host_id.as_str()]);
        let by_label = cri::PodSandboxStatsFilter { label_selector: HashMap::from([("io.kubernetes.pod.name".into(), "burner".into())]), ..Default::default() };
        assert_eq!(pods(by_label).await, [pod_id.as_str()]);

        let err = rt.container_stats(cri::ContainerStatsRequest { container_id: "feedfacefeedface".into() }).await.expect_err("missing container");
        assert_eq!(err.code(), Code::NotFound, "{}", err.message());
        let err = rt.pod_sandbox_stats(cri::PodSandboxStatsRequest { pod_sandbox_id: "feedfacefeedface".into() }).await.expect_err("missing pod");
        assert_eq!(err.code(), Code::NotFound, "{}", err.message());

        for id in [&pod_id, &host_id] {
            rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await.expect("stop pod");
            rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await.expect("remove pod");
        }
        assert!(pods(Default::default()).await.is_empty());
    });
    assert_eq!(h.skiff(&["ps", "-aq"]).ok(), "");
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    // Before the pod cgroup's guard drops: its rmdir needs every container's cgroup below it gone.
    shutdown_clean(h);
}
