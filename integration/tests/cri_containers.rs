//! Containers in pods through the CRI: created in a pod's namespaces with its files, started,
//! listed and inspected as the kubelet does, their logs where the kubelet reads them, the
//! annotations that reach config.json (and the spoofs that do not), stopped and removed with the
//! pod, leaving nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use skiff_integration::cri::{cri, image_spec, import_image, path_goes, pod_config, runtime, shutdown_clean, Harness, SkiffCli};
use skiff_integration::mounts_left_under;
use skiff_testimage::ImageSpec;
use tonic::Code;

const IMAGE: &str = "localhost/cri/busybox:1";

fn start() -> Harness {
    let h = Harness::start().expect("skiffd");
    let mut spec = ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox (apt-get install busybox-static)");
    spec.manifest_annotations = BTreeMap::from([
        ("com.urunc.unikernel.binary".into(), "/bin/busybox".into()),
        // An image may never set the keys the runtime sets.
        ("io.kubernetes.cri.sandbox-id".into(), "from-the-image".into()),
    ]);
    import_image(&h, &spec).expect("import");
    h
}

fn container(name: &str, command: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: image_spec(IMAGE),
        command: command.iter().map(|c| c.to_string()).collect(),
        labels: HashMap::from([("io.kubernetes.container.name".to_string(), name.to_string())]),
        annotations: HashMap::from([
            ("io.kubernetes.container.hash".to_string(), "abc123".to_string()),
            ("io.kubernetes.cri.sandbox-id".to_string(), "spoofed-by-the-container".to_string()),
        ]),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

async fn wait_exited(rt: &mut k8s_cri::v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>, id: &str) -> cri::ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = rt.container_status(cri::ContainerStatusRequest { container_id: id.into(), verbose: false }).await.expect("status");
        let st = st.into_inner().status.expect("status");
        if st.state == cri::ContainerState::ContainerExited as i32 || Instant::now() > deadline {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the process ends (is gone or a zombie) within 10 s.
async fn process_ends(pid: &str) -> bool {
    let stat = format!("/proc/{}/stat", pid.trim());
    for _ in 0..200 {
        match std::fs::read_to_string(&stat) {
            Err(_) => return true,
            Ok(text) if text.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')) => return true,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

#[test]
fn containers_run_in_their_pod_and_go_with_it() {
    let h = start();
    let logs = h.dir().join("pod-logs");
    let config_digest = {
        let inspect: serde_json::Value = serde_json::from_str(&h.skiff(&["images", "inspect", IMAGE]).ok()).expect("inspect");
        inspect["Config"]["Digest"].as_str().expect("config digest").to_string()
    };
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut pod = pod_config("web");
        pod.log_directory = logs.display().to_string();
        pod.annotations.insert("pod.example.com/owner".into(), "team-a".into());
        pod.dns_config = Some(cri::DnsConfig { servers: vec!["10.96.0.10".into()], searches: vec!["default.svc.cluster.local".into()], options: vec!["ndots:5".into()] });
        let sandbox_config = pod.clone();
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;

        let create = |config: cri::ContainerConfig| cri::CreateContainerRequest { pod_sandbox_id: pod_id.clone(), config: Some(config), sandbox_config: Some(sandbox_config.clone()) };
        let server = rt.create_container(create(container("server", &["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/"]))).await.expect("create server").into_inner().container_id;
        let st = rt.container_status(cri::ContainerStatusRequest { container_id: server.clone(), verbose: false }).await.expect("status").into_inner().status.expect("status");
        assert_eq!(st.state, cri::ContainerState::ContainerCreated as i32);
        rt.start_container(cri::StartContainerRequest { container_id: server.clone() }).await.expect("start server");
        let st = rt.container_status(cri::ContainerStatusRequest { container_id: server.clone(), verbose: false }).await.expect("status").into_inner().status.expect("status");
        assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32);
        assert!(st.created_at > 0 && st.started_at >= st.created_at, "{st:?}");
        assert_eq!((st.image_ref.as_str(), st.image.as_ref().map(|i| i.image.as_str())), (config_digest.as_str(), Some(IMAGE)));
        assert_eq!(st.annotations.get("io.kubernetes.cri.sandbox-id").map(String::as_str), Some("spoofed-by-the-container"), "echoed as sent");
        assert_eq!(st.log_path, logs.join("server/0.log").display().to_string());

        // A second container of the pod reaches the first over the pod's localhost, and sees the pod's files.
        let client = container("client", &["sh", "-c", "sleep 0.3; wget -q -O- http://127.0.0.1:8080/hello.txt; hostname; cat /etc/resolv.conf; echo oops >&2"]);
        let client = rt.create_container(create(client)).await.expect("create client").into_inner().container_id;
        // A created container has no process yet: its start brings it into the pod's supervisor.
        let shim_pid_file = |id: &str| h.root().join("containers").join(id).join("shim.pid");
        assert!(!shim_pid_file(&client).exists(), "no supervisor before the start");
        rt.start_container(cri::StartContainerRequest { container_id: client.clone() }).await.expect("start client");
        // One supervisor serves the pod: the client was adopted by the server's shim.
        let shim_of = |id: &str| std::fs::read_to_string(shim_pid_file(id)).expect("shim.pid");
        let group = h.root().join("supervisors").join(&pod_id);
        assert_eq!(shim_of(&client), shim_of(&server), "the pod's containers share a shim");
        assert_eq!(std::fs::read_to_string(group.join("shim.pid")).expect("the group's pid"), shim_of(&server));
        let shim_pid = shim_of(&server);
        let done = wait_exited(&mut rt, &client).await;
        assert_eq!((done.state, done.exit_code, done.reason.as_str()), (cri::ContainerState::ContainerExited as i32, 0, "Completed"), "{done:?}");
        assert!(done.finished_at >= done.started_at && done.finished_at > 0);
        let log = std::fs::read_to_string(logs.join("client/0.log")).expect("client log");
        for needle in [" stdout F hello from skiff", " stdout F web", " stdout F nameserver 10.96.0.10", " stdout F search default.svc.cluster.local", " stderr F oops"] {
            assert!(log.contains(needle), "{needle:?} in the CRI log:\n{log}");
        }

        // The kubelet's listings: by sandbox, by label, by state.
        let lister = rt.clone();
        let list = |filter: cri::ContainerFilter| {
            let mut rt = lister.clone();
            async move { rt.list_containers(cri::ListContainersRequest { filter: Some(filter) }).await.expect("list").into_inner().containers }
        };
        assert_eq!(list(cri::ContainerFilter { pod_sandbox_id: pod_id.clone(), ..Default::default() }).await.len(), 2);
        let by_label = list(cri::ContainerFilter { label_selector: HashMap::from([("io.kubernetes.container.name".into(), "server".into())]), ..Default::default() }).await;
        assert_eq!(by_label.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [server.as_str()]);
        let exited = cri::ContainerStateValue { state: cri::ContainerState::ContainerExited as i32 };
        assert_eq!(list(cri::ContainerFilter { state: Some(exited), ..Default::default() }).await.len(), 1);

        // config.json: the image's annotations, the pod's and the container's, and the CRI keys, which neither could spoof.
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(h.root().join("containers").join(&server).join("bundle/config.json")).expect("config.json")).expect("json");
        let a = &spec["annotations"];
        assert_eq!(a["com.urunc.unikernel.binary"], "/bin/busybox", "{a}");
        assert_eq!(a["pod.example.com/owner"], "team-a");
        assert_eq!(a["io.kubernetes.container.hash"], "abc123");
        assert_eq!(a["io.kubernetes.cri.container-type"], "container");
        assert_eq!(a["io.kubernetes.cri.sandbox-id"], pod_id.as_str(), "neither the image nor the container sets a reserved key");
        assert_eq!(a["io.kubernetes.cri.sandbox-name"], "web");
        assert_eq!(a["io.kubernetes.cri.container-name"], "server");
        assert_eq!(a["io.kubernetes.cri.image-name"], IMAGE);

        // `skiff ps` names the pod of a CRI container.
        let ps = h.skiff(&["ps"]).ok();
        assert!(ps.contains("POD") && ps.lines().any(|l| l.starts_with(&server[..12]) && l.ends_with("default/web")), "{ps}");
        let listed: serde_json::Value = serde_json::from_str(&h.skiff(&["ps", "--output", "json"]).ok()).expect("json");
        let row = listed.as_array().expect("rows").iter().find(|r| r["id"] == server.as_str()).expect("the server");
        assert_eq!((row["pod"].as_str(), row["pod_sandbox_id"].as_str()), (Some("default/web"), Some(pod_id.as_str())));

        // Skiff's own API leaves a pod's containers to the CRI.
        h.skiff(&["rm", "-f", &server]).fails_with(&["belongs to pod"]);

        rt.stop_container(cri::StopContainerRequest { container_id: server.clone(), timeout: 2 }).await.expect("stop");
        rt.stop_container(cri::StopContainerRequest { container_id: server.clone(), timeout: 2 }).await.expect("stop again");
        let stopped = wait_exited(&mut rt, &server).await;
        assert_eq!(stopped.state, cri::ContainerState::ContainerExited as i32);
        assert_ne!(stopped.exit_code, 0);
        rt.remove_container(cri::RemoveContainerRequest { container_id: server.clone() }).await.expect("remove");
        rt.remove_container(cri::RemoveContainerRequest { container_id: server.clone() }).await.expect("remove again");
        let err = rt.container_status(cri::ContainerStatusRequest { container_id: server.clone(), verbose: false }).await.expect_err("gone");
        assert_eq!(err.code(), Code::NotFound);
        assert!(std::path::Path::new(&format!("/proc/{shim_pid}/status")).exists(), "the shim lives on for the pod's other container");
        assert!(group.join("shim.sock").exists());

        // The pod's stop and removal take its remaining container with it.
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("stop pod");
        let err = rt.create_container(create(container("late", &["true"]))).await.expect_err("stopped pod");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("remove pod");
        assert!(list(cri::ContainerFilter::default()).await.is_empty());
        // Both after the removals answered, when their sweep has the runtime delete them.
        assert!(process_ends(&shim_pid).await, "the pod's shim exits with its last container");
        assert!(path_goes(&group, Duration::from_secs(10)).await, "the group's dir goes with its last container");
    });
    assert_eq!(h.skiff(&["ps", "-aq"]).ok(), "");
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    shutdown_clean(h);
}

#[test]
fn bad_container_requests_get_clear_codes() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod_config("bad")), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let req = |sandbox: &str, config: cri::ContainerConfig| cri::CreateContainerRequest { pod_sandbox_id: sandbox.into(), config: Some(config), sandbox_config: None };
        let mut missing_image = container("a", &["true"]);
        missing_image.image = image_spec("localhost/not/pulled:1");
        let mut nul = container("a", &["tr\0ue"]);
        nul.labels.clear();
        let cases = [
            ("no sandbox", req("0123456789abcdef", container("a", &["true"])), Code::NotFound),
            ("image not present", req(&pod, missing_image), Code::NotFound),
            ("nul", req(&pod, nul), Code::InvalidArgument),
            ("no metadata", req(&pod, cri::ContainerConfig { metadata: None, ..container("a", &["true"]) }), Code::InvalidArgument),
            ("no config", cri::CreateContainerRequest { pod_sandbox_id: pod.clone(), config: None, sandbox_config: None }, Code::InvalidArgument),
        ];
        for (what, r, code) in cases {
            let err = rt.create_container(r).await.expect_err(what);
            assert_eq!(err.code(), code, "{what}: {}", err.message());
        }
        let first = rt.create_container(req(&pod, container("dup", &["true"]))).await.expect("first").into_inner().container_id;
        let err = rt.create_container(req(&pod, container("dup", &["true"]))).await.expect_err("duplicate");
        assert_eq!(err.code(), Code::AlreadyExists);
        assert!(err.message().contains(&first), "names the holder: {}", err.message());
        for missing in ["stop", "remove"] {
            let id = "feedfacefeedface".to_string();
            let answer = match missing {
                "stop" => rt.stop_container(cri::StopContainerRequest { container_id: id, timeout: 0 }).await.map(drop),
                _ => rt.remove_container(cri::RemoveContainerRequest { container_id: id }).await.map(drop),
            };
            answer.expect("a missing container's stop and remove succeed");
        }
        let err = rt.start_container(cri::StartContainerRequest { container_id: "feedfacefeedface".into() }).await.expect_err("start missing");
        assert_eq!(err.code(), Code::NotFound);
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod }).await.expect("remove pod");
    });
    assert_eq!(h.skiff(&["ps", "-aq"]).ok(), "");
    assert!(mounts_left_under(h.root()).is_empty());
    shutdown_clean(h);
}

/// Two names of one image id whose manifests differ (an annotated copy): a container named by
/// either gets that name's annotations, also when the kubelet names it by id beside what the user typed.
#[test]
fn the_name_asked_for_picks_the_manifest_among_names_of_one_id() {
    let h = start();
    let annotated = "localhost/cri/busybox:annotated";
    h.skiff(&["images", "annotate", IMAGE, annotated, "-a", "com.example.variant=annotated"]).ok();
    let inspect: serde_json::Value = serde_json::from_str(&h.skiff(&["images", "inspect", annotated]).ok()).expect("inspect");
    let id = inspect["Config"]["Digest"].as_str().expect("config digest").to_string();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod_config("names")), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let specs = [
            ("by-name", cri::ImageSpec { image: annotated.into(), ..Default::default() }, true),
            ("by-id", cri::ImageSpec { image: id.clone(), user_specified_image: annotated.into(), ..Default::default() }, true),
            ("plain", cri::ImageSpec { image: IMAGE.into(), ..Default::default() }, false),
        ];
        for (name, image, variant) in specs {
            let config = cri::ContainerConfig { image: Some(image), ..container(name, &["true"]) };
            let req = cri::CreateContainerRequest { pod_sandbox_id: pod.clone(), config: Some(config), sandbox_config: None };
            let cid = rt.create_container(req).await.expect("create").into_inner().container_id;
            let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(h.root().join("containers").join(&cid).join("bundle/config.json")).expect("config.json")).expect("json");
            assert_eq!(spec["annotations"].get("com.example.variant").is_some(), variant, "{name}: {}", spec["annotations"]);
        }
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod }).await.expect("remove pod");
    });
    shutdown_clean(h);
}

/// The kubelet's security context, seen from inside the containers (their logs) and in their
/// config.json: run-as user, group and supplemental groups; capabilities dropped and added;
/// privileged; no_new_privs; unmasked paths; a read-only rootfs.
#[test]
fn the_security_context_reaches_the_process() {
    let h = start();
    let logs = h.dir().join("sec-logs");
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut pod = pod_config("secure");
        pod.log_directory = logs.display().to_string();
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let status_line = "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; id; touch /probe 2>&1 | head -1; true";
        let cases = [
            ("plain", cri::LinuxContainerSecurityContext::default()),
            ("runas", cri::LinuxContainerSecurityContext {
                run_as_user: Some(cri::Int64Value { value: 1000 }),
                run_as_group: Some(cri::Int64Value { value: 2000 }),
                supplemental_groups: vec![3000],
                readonly_rootfs: true,
                no_new_privs: true,
                capabilities: Some(cri::Capability { drop_capabilities: vec!["ALL".into()], ..Default::default() }),
                ..Default::default()
            }),
            ("privileged", cri::LinuxContainerSecurityContext { privileged: true, ..Default::default() }),
        ];
        for (name, sc) in cases {
            let config = cri::ContainerConfig {
                linux: Some(cri::LinuxContainerConfig { security_context: Some(sc), resources: None }),
                ..container(name, &["sh", "-c", status_line])
            };
            let req = cri::CreateContainerRequest { pod_sandbox_id: pod_id.clone(), config: Some(config), sandbox_config: Some(pod.clone()) };
            let id = match rt.create_container(req).await {
                Ok(answer) => answer.into_inner().container_id,
                Err(e) => panic!("{name}: {}\nskiffd's log:\n{}", e.message(), h.log()),
            };
            rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.expect("start");
            let done = wait_exited(&mut rt, &id).await;
            assert_eq!(done.exit_code, 0, "{name}: {done:?}");
        }
        let runas = std::fs::read_to_string(logs.join("runas/0.log")).expect("log");
        assert!(runas.contains("uid=1000 gid=2000 groups=3000"), "run_as_user, run_as_group, supplemental_groups: {runas}");
        assert!(runas.contains("CapEff:\t0000000000000000") && runas.contains("NoNewPrivs:\t1"), "{runas}");
        assert!(runas.contains("Read-only file system"), "{runas}");
        let privileged = std::fs::read_to_string(logs.join("privileged/0.log")).expect("log");
        assert!(!privileged.contains("CapEff:\t0000000000000000") && privileged.contains("uid=0(root)"), "{privileged}");
        assert!(!privileged.contains("CapEff:\t00000000a80425fb"), "more than the default set: {privileged}");
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id }).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn devices_asked_for_appear_with_their_permissions() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = pod_config("devices");
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let mut c = container("dev", &["sleep", "3600"]);
        // Not among the devices every container gets (those are rwm whatever is asked).
        c.devices = vec![cri::Device { host_path: "/dev/loop-control".into(), container_path: "/dev/skiff-loop".into(), permissions: "r".into() }];
        let req = |config: cri::ContainerConfig| cri::CreateContainerRequest { pod_sandbox_id: pod_id.clone(), config: Some(config), sandbox_config: Some(pod.clone()) };
        let id = rt.create_container(req(c.clone())).await.expect("create").into_inner().container_id;
        rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.expect("start");
        let exec = |cmd: &str| cri::ExecSyncRequest { container_id: id.clone(), cmd: vec!["sh".into(), "-c".into(), cmd.into()], timeout: 10 };
        let kind = rt.exec_sync(exec("ls -l /dev/skiff-loop")).await.expect("ls").into_inner();
        assert!(String::from_utf8_lossy(&kind.stdout).starts_with('c'), "a character device: {kind:?}");
        let write = rt.exec_sync(exec("echo x > /dev/skiff-loop")).await.expect("write").into_inner();
        assert!(write.exit_code != 0 && String::from_utf8_lossy(&write.stderr).contains("not permitted"), "the device cgroup allows reading only: {write:?}");
        let rules = std::fs::read_to_string(format!("/sys/fs/cgroup/devices/skiff/{id}/devices.list")).expect("devices.list");
        assert!(rules.lines().any(|l| l == "c 10:237 r"), "{rules}");

        c.metadata = Some(cri::ContainerMetadata { name: "missing-dev".into(), attempt: 0 });
        c.devices = vec![cri::Device { host_path: "/dev/no-such-device".into(), container_path: String::new(), permissions: String::new() }];
        let err = rt.create_container(req(c.clone())).await.expect_err("no such device");
        assert!(matches!(err.code(), Code::NotFound | Code::InvalidArgument) && err.message().contains("/dev/no-such-device"), "{:?}: {}", err.code(), err.message());
        c.devices = vec![cri::Device { host_path: "dev/zero".into(), container_path: String::new(), permissions: String::new() }];
        let err = rt.create_container(req(c)).await.expect_err("relative");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("stop pod");
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id }).await.expect("remove pod");
    });
    assert_eq!(h.skiff(&["ps", "-aq"]).ok(), "");
    shutdown_clean(h);
}
