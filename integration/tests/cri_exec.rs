//! ExecSync through the CRI, as the kubelet's exec probes use it: output and exit code back, the
//! cap on a flood of output, a timeout that kills the exec'd process and leaves the container
//! running, and clear codes for what cannot run.

use std::time::{Duration, Instant};

use skiff_integration::cri::{container_config, cri, exec, image_spec, pod_config, remove_pod, run_container, run_pod, runtime, shutdown_clean, start_with_busybox, Harness, SkiffCli};
use tonic::Code;

const IMAGE: &str = "localhost/cri-exec/busybox:1";

fn start() -> Harness {
    start_with_busybox(IMAGE).expect("skiffd with a busybox image (apt-get install busybox-static)")
}

/// A container of `sleep 36NN`, NN the name's length: each one told apart in /proc.
fn sleeper(name: &str) -> cri::ContainerConfig {
    container_config(name, IMAGE, &["sleep", &(3600 + name.len()).to_string()])
}

#[test]
fn a_target_mode_container_shares_its_targets_pid_namespace() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = pod_config("debugged");
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let create = |config: cri::ContainerConfig| cri::CreateContainerRequest { pod_sandbox_id: pod_id.clone(), config: Some(config), sandbox_config: Some(pod.clone()) };
        let app = rt.create_container(create(sleeper("app"))).await.expect("app").into_inner().container_id;
        let mut debug = sleeper("debugger");
        let target = |target_id: &str| cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(cri::NamespaceOption { pid: cri::NamespaceMode::Target as i32, target_id: target_id.into(), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        debug.linux = Some(target(&app));
        let err = rt.create_container(create(debug.clone())).await.expect_err("the target is not running");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        rt.start_container(cri::StartContainerRequest { container_id: app.clone() }).await.expect("start app");
        let dbg = rt.create_container(create(debug.clone())).await.expect("debugger").into_inner().container_id;
        rt.start_container(cri::StartContainerRequest { container_id: dbg.clone() }).await.expect("start debugger");
        let ps = rt.exec_sync(cri::ExecSyncRequest { container_id: dbg.clone(), cmd: vec!["sh".into(), "-c".into(), "cat /proc/1/cmdline | tr '\\0' ' '".into()], timeout: 10 }).await.expect("ps").into_inner();
        assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "sleep 3603", "the debugger's PID 1 is the app's workload");
        let seen = rt.exec_sync(cri::ExecSyncRequest { container_id: app.clone(), cmd: vec!["sh".into(), "-c".into(), "cat /proc/[0-9]*/cmdline | tr '\\0' ' '".into()], timeout: 10 }).await.expect("ps").into_inner();
        assert!(String::from_utf8_lossy(&seen.stdout).contains("sleep 3608"), "the app sees the debugger: {seen:?}");
        let mut stray = sleeper("stray");
        stray.linux = Some(target("no-such-container"));
        let err = rt.create_container(create(stray.clone())).await.expect_err("unknown target");
        assert_eq!(err.code(), Code::NotFound, "{}", err.message());
        stray.linux = Some(target(""));
        let err = rt.create_container(create(stray)).await.expect_err("no target");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("stop pod");
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id }).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn exec_sync_runs_in_the_container_and_its_timeout_kills_only_the_exec() {
    let h = start();

    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = pod_config("probed");
        let pod_id = rt.run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(pod.clone()), runtime_handler: String::new() }).await.expect("pod").into_inner().pod_sandbox_id;
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: "app".into(), attempt: 0 }),
            image: image_spec(IMAGE),
            command: vec!["sleep".into(), "3600".into()],
            envs: vec![cri::KeyValue { key: "GREETING".into(), value: "from-the-spec".into() }],
            working_dir: "/tmp".into(),
            ..Default::default()
        };
        let id = rt.create_container(cri::CreateContainerRequest { pod_sandbox_id: pod_id.clone(), config: Some(config), sandbox_config: Some(pod) }).await.expect("create").into_inner().container_id;
        let exec = |cmd: &[&str], timeout: i64| cri::ExecSyncRequest { container_id: id.clone(), cmd: cmd.iter().map(|c| c.to_string()).collect(), timeout };

        let err = rt.exec_sync(exec(&["true"], 0)).await.expect_err("not started");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.expect("start");

        // Both streams and the exit code, in the container's environment, cwd and hostname.
        let answer = rt.exec_sync(exec(&["sh", "-c", "echo $GREETING; pwd; hostname; echo oops >&2; exit 3"], 10)).await.expect("exec").into_inner();
        assert_eq!(String::from_utf8_lossy(&answer.stdout), "from-the-spec\n/tmp\nprobed\n");
        assert_eq!(String::from_utf8_lossy(&answer.stderr), "oops\n");
        assert_eq!(answer.exit_code, 3);

        // A flood of output is capped with a marker, and the answer still fits the kubelet's 16 MiB message.
        let flood = rt.exec_sync(exec(&["sh", "-c", "head -c 20000000 /dev/zero; echo small >&2"], 30)).await.expect("flood").into_inner();
        assert!(flood.stdout.len() < 16 << 20, "{} bytes", flood.stdout.len());
        assert!(flood.stdout.len() > 15 << 20, "the cap is used: {} bytes", flood.stdout.len());
        assert!(String::from_utf8_lossy(&flood.stdout[flood.stdout.len() - 200..]).contains("output truncated"));
        assert_eq!(flood.stderr, b"small\n");
        assert_eq!(flood.exit_code, 0);

        // A timeout: DeadlineExceeded soon after it, the exec'd process gone, the container running.
        let started = Instant::now();
        let err = rt.exec_sync(exec(&["sleep", "31"], 1)).await.expect_err("timed out");
        assert_eq!(err.code(), Code::DeadlineExceeded, "{}", err.message());
        assert!(started.elapsed() < Duration::from_secs(8), "answered after {:?}", started.elapsed());
        let st = rt.container_status(cri::ContainerStatusRequest { container_id: id.clone(), verbose: false }).await.expect("status").into_inner().status.expect("status");
        assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32, "the container survives its exec's timeout");
        let ps = rt.exec_sync(exec(&["sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"], 10)).await.expect("ps").into_inner();
        let ps = String::from_utf8_lossy(&ps.stdout).to_string();
        assert!(ps.contains("sleep 3600"), "the workload is there:\n{ps}");
        assert!(!ps.contains("sleep 31"), "the timed-out exec was killed:\n{ps}");

        // What cannot run gets a clear code; the container is still fine afterwards.
        let err = rt.exec_sync(exec(&[], 10)).await.expect_err("empty");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        let err = rt.exec_sync(cri::ExecSyncRequest { container_id: "nope".into(), cmd: vec!["true".into()], timeout: 1 }).await.expect_err("missing");
        assert_eq!(err.code(), Code::NotFound, "{}", err.message());
        let err = rt.exec_sync(exec(&["tr\0ue"], 10)).await.expect_err("nul");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        match rt.exec_sync(exec(&["/no/such/binary"], 10)).await {
            Ok(a) => assert_ne!(a.into_inner().exit_code, 0, "a missing binary does not succeed"),
            Err(e) => assert!(e.message().contains("no/such/binary") || e.message().contains("No such file"), "{}", e.message()),
        }
        let again = rt.exec_sync(exec(&["echo", "still", "here"], 10)).await.expect("exec after errors").into_inner();
        assert_eq!(again.stdout, b"still here\n");

        // The CLI's way to it: output printed, the command's exit code skiff's own.
        let cli = h.skiff(&["pods", "exec", "--timeout", "5", &id, "sh", "-c", "echo via-cli; echo err >&2; exit 4"]);
        assert_eq!((cli.code, cli.stdout.as_str(), cli.stderr.as_str()), (4, "via-cli\n", "err\n"));

        // Many probes do not pile up state: a hundred execs in a row.
        for _ in 0..100 {
            assert_eq!(rt.exec_sync(exec(&["true"], 5)).await.expect("probe").into_inner().exit_code, 0);
        }

        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.expect("stop pod");
        let err = rt.exec_sync(exec(&["true"], 5)).await.expect_err("stopped");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id }).await.expect("remove pod");
    });
    let leftovers: Vec<_> = std::fs::read_dir(h.root().join("exec")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(leftovers.is_empty(), "exec fifo dirs left: {leftovers:?}");
    shutdown_clean(h);
}

/// The signals a process ignores, from the `SigIgn` mask of its /proc status.
fn ignored_signals(status: &str) -> u64 {
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).expect("SigIgn in /proc/self/status");
    u64::from_str_radix(mask.trim(), 16).expect("hex mask")
}

#[test]
fn a_containers_processes_start_with_sigpipe_at_its_default() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = pod_config("signals");
        let pod_id = run_pod(&mut rt, &pod).await.expect("pod");
        let app = run_container(&mut rt, &pod_id, &pod, sleeper("app")).await.expect("container");
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        // The container's init (sleep, exec'd by libcontainer) and an exec'd process (cat).
        let (_, init, _) = exec(&mut rt, &app, &["cat", "/proc/1/status"]).await.expect("init's status");
        assert_eq!(ignored_signals(&init) & sigpipe, 0, "the init ignores SIGPIPE");
        let (_, own, _) = exec(&mut rt, &app, &["cat", "/proc/self/status"]).await.expect("an exec's status");
        assert_eq!(ignored_signals(&own) & sigpipe, 0, "an exec'd process ignores SIGPIPE");
        // What that means for a pipeline: the writer ends when its reader does.
        let (code, out, _) = exec(&mut rt, &app, &["sh", "-c", "yes | head -n 1"]).await.expect("yes | head");
        assert_eq!((code, out.trim()), (0, "y"));
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}
