//! The kubelet's evented PLEG and its in-place changes through the CRI: GetContainerEvents
//! through a pod's whole life (an exit seen by the engine included), UpdateContainerResources
//! reaching the container's cgroup, and ReopenContainerLog after a rotation.

use std::path::Path;
use std::time::{Duration, Instant};

use skiff_integration::cri::{container_config, cri, pod_config, runtime, shutdown_clean, start_with_busybox, Harness};
use tokio_stream::StreamExt;
use tonic::Code;

const IMAGE: &str = "localhost/cri-events/busybox:1";

fn start() -> Harness {
    start_with_busybox(IMAGE).expect("skiffd with a busybox image (apt-get install busybox-static)")
}

async fn next(events: &mut tonic::Streaming<cri::ContainerEventResponse>) -> cri::ContainerEventResponse {
    tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event within 10 s").expect("stream open").expect("event")
}

#[test]
fn the_events_stream_follows_a_pod_and_its_container_through_their_lives() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut events = rt.get_container_events(cri::GetEventsRequest {}).await.expect("subscribe").into_inner();

        let mut pod = pod_config("evented");
        pod.log_directory = h.dir().join("logs").display().to_string();
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let req = cri::CreateContainerRequest { pod_sandbox_id: pod_id.clone(), config: Some(container_config("quits", IMAGE, &["sh", "-c", "sleep 0.5; exit 2"])), sandbox_config: Some(pod) };
        let id = rt.create_container(req).await.expect("create").into_inner().container_id;
        rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.expect("start");

        use cri::ContainerEventType::*;
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(next(&mut events).await);
        }
        // The exit, seen by the engine's watcher, comes as stopped with the container's status in it.
        let stopped = &seen[3];
        let st = stopped.containers_statuses.iter().find(|c| c.id == id).expect("the container's status");
        assert_eq!((st.state, st.exit_code, st.reason.as_str()), (cri::ContainerState::ContainerExited as i32, 2, "Error"), "{stopped:?}");
        assert_eq!(stopped.pod_sandbox_status.as_ref().map(|p| p.id.as_str()), Some(pod_id.as_str()));
        assert!(stopped.created_at > seen[0].created_at);

        // The pod's status carries its containers' and its time, as the evented PLEG reads it.
        let pod_status = rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: pod_id.clone(), verbose: false }).await.expect("pod status").into_inner();
        assert_eq!(pod_status.containers_statuses.iter().map(|c| (c.id.as_str(), c.exit_code)).collect::<Vec<_>>(), [(id.as_str(), 2)]);
        assert!(pod_status.timestamp >= stopped.created_at, "{} < {}", pod_status.timestamp, stopped.created_at);

        rt.remove_container(cri::RemoveContainerRequest { container_id: id.clone() }).await.expect("remove");
        seen.push(next(&mut events).await);
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("stop pod");
        seen.push(next(&mut events).await);
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("remove pod");
        seen.push(next(&mut events).await);

        let got: Vec<(String, i32)> = seen.iter().map(|e| (e.container_id.clone(), e.container_event_type)).collect();
        let want: Vec<(String, i32)> = [
            (&pod_id, ContainerStartedEvent),
            (&id, ContainerCreatedEvent),
            (&id, ContainerStartedEvent),
            (&id, ContainerStoppedEvent),
            (&id, ContainerDeletedEvent),
            (&pod_id, ContainerStoppedEvent),
            (&pod_id, ContainerDeletedEvent),
        ]
        .into_iter()
        .map(|(c, t)| (c.clone(), t as i32))
        .collect();
        assert_eq!(got, want);
        let pod_started = seen[0].pod_sandbox_status.as_ref().expect("pod status");
        assert_eq!((pod_started.state, pod_started.metadata.as_ref().map(|m| m.uid.as_str())), (cri::PodSandboxState::SandboxReady as i32, Some("uid-evented")));
        let created = &seen[1];
        assert_eq!(created.containers_statuses.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
        let deleted = &seen[4];
        assert!(deleted.containers_statuses.is_empty(), "the deleted container is no longer among the pod's: {deleted:?}");
        assert_eq!(seen[6].pod_sandbox_status.as_ref().map(|p| p.state), Some(cri::PodSandboxState::SandboxNotready as i32));
    });
    shutdown_clean(h);
}

fn cgroup_file(controller: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/skiff/{id}/{file}")).unwrap_or_else(|e| panic!("{controller}/skiff/{id}/{file}: {e}")).trim().to_string()
}

#[test]
fn resources_update_in_place_and_a_rotated_log_is_reopened() {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("this test reads cgroup v1 files; the host is cgroup v2");
        return;
    }
    let h = start();
    let logs = h.dir().join("logs");
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut pod = pod_config("resized");
        pod.log_directory = logs.display().to_string();
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let talker = container_config("talker", IMAGE, &["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done"]);
        let req = cri::CreateContainerRequest { pod_sandbox_id: pod_id.clone(), config: Some(talker), sandbox_config: Some(pod) };
        let id = rt.create_container(req).await.expect("create").into_inner().container_id;
        rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.expect("start");

        let linux = cri::LinuxContainerResources { cpu_period: 100_000, cpu_quota: 50_000, cpu_shares: 512, memory_limit_in_bytes: 64 << 20, ..Default::default() };
        rt.update_container_resources(cri::UpdateContainerResourcesRequest { container_id: id.clone(), linux: Some(linux), ..Default::default() }).await.expect("update");
        assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "512");
        assert_eq!(cgroup_file("memory", &id, "memory.limit_in_bytes"), (64u64 << 20).to_string());
        // A second update changes one limit and keeps the others.
        let more = cri::LinuxContainerResources { memory_limit_in_bytes: 128 << 20, ..Default::default() };
        rt.update_container_resources(cri::UpdateContainerResourcesRequest { container_id: id.clone(), linux: Some(more), ..Default::default() }).await.expect("update again");
        assert_eq!(cgroup_file("memory", &id, "memory.limit_in_bytes"), (128u64 << 20).to_string());
        assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
        let st = rt.container_status(cri::ContainerStatusRequest { container_id: id.clone(), verbose: false }).await.expect("status").into_inner().status.expect("status");
        let r = st.resources.and_then(|r| r.linux).expect("resources in the status");
        assert_eq!((r.cpu_quota, r.cpu_shares, r.memory_limit_in_bytes), (50_000, 512, 128 << 20));
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(h.root().join("containers").join(&id).join("bundle/config.json")).expect("config.json")).expect("json");
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 128 << 20, "the spec says what is in force");

        let huge = cri::LinuxContainerResources { hugepage_limits: vec![cri::HugepageLimit { page_size: "2MB".into(), limit: 2 << 20 }], ..Default::default() };
        let err = rt.update_container_resources(cri::UpdateContainerResourcesRequest { container_id: id.clone(), linux: Some(huge), ..Default::default() }).await.expect_err("hugepages");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        let err = rt.update_container_resources(cri::UpdateContainerResourcesRequest { container_id: "nope".into(), ..Default::default() }).await.expect_err("missing");
        assert_eq!(err.code(), Code::NotFound);

        // The kubelet's rotation: rename, reopen, and the container's output goes on in a fresh file.
        let log = logs.join("talker/0.log");
        let rotated = logs.join("talker/0.log.20261201-000000");
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::rename(&log, &rotated).expect("rotate");
        rt.reopen_container_log(cri::ReopenContainerLogRequest { container_id: id.clone() }).await.expect("reopen");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0) < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let fresh = std::fs::read_to_string(&log).expect("the reopened log");
        assert!(fresh.lines().count() >= 3 && fresh.lines().all(|l| l.contains(" stdout F line ")), "{fresh}");
        let old = std::fs::read_to_string(&rotated).expect("rotated");
        assert!(old.lines().count() >= 1, "the rotated file keeps what was written before");

        rt.stop_container(cri::StopContainerRequest { container_id: id.clone(), timeout: 1 }).await.expect("stop");
        let err = rt.reopen_container_log(cri::ReopenContainerLogRequest { container_id: id.clone() }).await.expect_err("not running");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        let err = rt.update_container_resources(cri::UpdateContainerResourcesRequest { container_id: id.clone(), linux: Some(cri::LinuxContainerResources { cpu_shares: 256, ..Default::default() }), ..Default::default() }).await.expect_err("exited");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(err.message().contains("resources can be updated"), "{}", err.message());
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("stop pod");
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id }).await.expect("remove pod");
    });
    shutdown_clean(h);
}
