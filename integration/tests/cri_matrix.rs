//! The CRI behaviours the kubelet relies on, seen from inside the containers (ExecSync) and in
//! what the kubelet reads: the PID namespace modes, exit codes and reasons (OOMKilled among
//! them), the CRI log format with its partial lines, and a read-only rootfs.

use std::time::Duration;

use skiff_integration::cri::{container_config, container_namespaces, container_status, exec, pod_config, pod_namespaces, remove_pod, run_container, run_pod, start_with_busybox, wait_exited, runtime};
use skiff_integration::cri::{cri, shutdown_clean};
use skiff_integration::mounts_left_under;

const IMAGE: &str = "localhost/cri-matrix/busybox:1";

/// Every process the caller can see, one command line per line (arguments joined by spaces).
const PS: &str = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done";

fn pid_mode(mode: cri::NamespaceMode) -> cri::NamespaceOption {
    cri::NamespaceOption { pid: mode as i32, ..Default::default() }
}

/// POD: the pod's containers share one PID namespace whose PID 1 is Skiff's holder, not a
/// workload. CONTAINER: the workload is PID 1 and sees only itself. NODE: the host's processes.
#[test]
fn pid_namespace_modes_decide_what_a_container_sees() {
    let h = start_with_busybox(IMAGE).expect("skiffd");
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;

        let mut shared = pod_config("shared-pid");
        pod_namespaces(&mut shared, pid_mode(cri::NamespaceMode::Pod));
        let shared_id = run_pod(&mut rt, &shared).await.expect("shared pod");
        let mut ids = Vec::new();
        for (name, seconds) in [("one", "3601"), ("two", "3602")] {
            let mut c = container_config(name, IMAGE, &["sleep", seconds]);
            container_namespaces(&mut c, pid_mode(cri::NamespaceMode::Pod));
            ids.push(run_container(&mut rt, &shared_id, &shared, c).await.expect("container"));
        }
        for id in &ids {
            let (code, ps, _) = exec(&mut rt, id, &["sh", "-c", PS]).await.expect("ps");
            assert_eq!(code, 0);
            assert!(ps.contains("sleep 3601") && ps.contains("sleep 3602"), "both containers of the pod are in one PID namespace:\n{ps}");
            let (_, init, _) = exec(&mut rt, id, &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]).await.expect("cmdline");
            assert!(!init.is_empty() && !init.contains("sleep"), "PID 1 is the pod's holder, not a workload: {init:?}");
        }

        let own = pod_config("own-pid");
        let own_id = run_pod(&mut rt, &own).await.expect("own pod");
        let mut c = container_config("alone", IMAGE, &["sleep", "3603"]);
        container_namespaces(&mut c, pid_mode(cri::NamespaceMode::Container));
        let alone = run_container(&mut rt, &own_id, &own, c).await.expect("container");
        let (_, init, _) = exec(&mut rt, &alone, &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]).await.expect("cmdline");
        assert_eq!(init, "sleep 3603 ", "CONTAINER mode: the workload is PID 1");
        let (_, ps, _) = exec(&mut rt, &alone, &["sh", "-c", PS]).await.expect("ps");
        assert!(!ps.contains("sleep 3601"), "another pod's processes are not visible:\n{ps}");

        let mut host = pod_config("host-pid");
        pod_namespaces(&mut host, pid_mode(cri::NamespaceMode::Node));
        let host_id = run_pod(&mut rt, &host).await.expect("host pod");
        let mut c = container_config("onhost", IMAGE, &["sleep", "3604"]);
        container_namespaces(&mut c, pid_mode(cri::NamespaceMode::Node));
        let onhost = run_container(&mut rt, &host_id, &host, c).await.expect("container");
        let (_, ns, _) = exec(&mut rt, &onhost, &["sh", "-c", "readlink /proc/self/ns/pid"]).await.expect("readlink");
        let host_ns = std::fs::read_link("/proc/self/ns/pid").expect("host pid ns");
        assert_eq!(ns.trim(), host_ns.display().to_string(), "NODE mode: the host's PID namespace");
        let skiffd = h.pid().expect("skiffd's pid");
        let (code, cmdline, _) = exec(&mut rt, &onhost, &["cat", &format!("/proc/{skiffd}/cmdline")]).await.expect("cat");
        assert!(code == 0 && cmdline.contains("skiffd"), "skiffd is visible from the host-PID container: {cmdline:?}");
        let (_, ps, _) = exec(&mut rt, &onhost, &["sh", "-c", PS]).await.expect("ps");
        assert!(ps.contains("sleep 3601") && ps.contains("sleep 3603"), "every pod's processes:\n{ps}");

        for pod in [&shared_id, &own_id, &host_id] {
            remove_pod(&mut rt, pod).await.expect("remove pod");
        }
    });
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    shutdown_clean(h);
}

/// What the kubelet's restart policy reads: a clean exit, a failing one, a stop, and the OOM killer.
#[test]
fn exit_codes_and_reasons_reach_the_status() {
    let h = start_with_busybox(IMAGE).expect("skiffd");
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = pod_config("exits");
        let pod_id = run_pod(&mut rt, &pod).await.expect("pod");
        for (name, script, code, reason) in [("ok", "exit 0", 0, "Completed"), ("seven", "exit 7", 7, "Error")] {
            let id = run_container(&mut rt, &pod_id, &pod, container_config(name, IMAGE, &["sh", "-c", script])).await.expect("container");
            let st = wait_exited(&mut rt, &id, Duration::from_secs(10)).await.expect("status");
            assert_eq!((st.state, st.exit_code, st.reason.as_str()), (cri::ContainerState::ContainerExited as i32, code, reason), "{name}: {st:?}");
        }

        let sleeper = run_container(&mut rt, &pod_id, &pod, container_config("stopped", IMAGE, &["sleep", "3600"])).await.expect("container");
        rt.stop_container(cri::StopContainerRequest { container_id: sleeper.clone(), timeout: 1 }).await.expect("stop");
        let st = container_status(&mut rt, &sleeper).await.expect("status");
        assert_eq!(st.state, cri::ContainerState::ContainerExited as i32, "exited once StopContainer answers: {st:?}");
        assert!(st.exit_code != 0 && st.reason == "Error", "a stopped container did not complete: {st:?}");

        // The shell itself (the container's PID 1) holds the growing string: the kernel kills it.
        let mut hog = container_config("hog", IMAGE, &["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}"]);
        let resources = cri::LinuxContainerResources { memory_limit_in_bytes: 32 << 20, ..Default::default() };
        hog.linux = Some(cri::LinuxContainerConfig { resources: Some(resources), security_context: None });
        let hog = run_container(&mut rt, &pod_id, &pod, hog).await.expect("hog");
        let st = wait_exited(&mut rt, &hog, Duration::from_secs(20)).await.expect("status");
        assert_eq!((st.state, st.exit_code, st.reason.as_str()), (cri::ContainerState::ContainerExited as i32, 137, "OOMKilled"), "{st:?}");
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    shutdown_clean(h);
}

/// One CRI log entry: `RFC3339Nano STREAM P|F MESSAGE`.
fn entry(line: &str) -> (chrono::DateTime<chrono::FixedOffset>, &str, &str, &str) {
    let mut parts = line.splitn(4, ' ');
    let (time, stream, tag, message) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let at = chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("{time:?} is not RFC 3339: {e}"));
    let fraction = time.split_once('.').map(|(_, f)| f.trim_end_matches('Z')).unwrap_or("");
    assert!((1..=9).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit()), "RFC3339Nano's fraction of a second: {time:?}");
    assert!(matches!(stream, "stdout" | "stderr") && matches!(tag, "P" | "F"), "{line:.80}");
    (at, stream, tag, message)
}

/// The kubelet's log parser: each stream's entries, partial lines cut at 16 KiB and ended by a
/// full entry, so that joining them gives the line back.
#[test]
fn the_log_is_in_the_cri_format_with_long_lines_split() {
    let h = start_with_busybox(IMAGE).expect("skiffd");
    let logs = h.dir().join("pod-logs");
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut pod = pod_config("logs");
        pod.log_directory = logs.display().to_string();
        let pod_id = run_pod(&mut rt, &pod).await.expect("pod");
        let script = "echo short; echo oops >&2; head -c 40000 /dev/zero | tr '\\0' x; echo; echo after";
        let id = run_container(&mut rt, &pod_id, &pod, container_config("talker", IMAGE, &["sh", "-c", script])).await.expect("container");
        let st = wait_exited(&mut rt, &id, Duration::from_secs(10)).await.expect("status");
        assert_eq!(st.exit_code, 0, "{st:?}");
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    let text = std::fs::read_to_string(logs.join("talker/0.log")).expect("log");
    assert!(text.ends_with('\n'), "every entry is a line");
    let entries: Vec<_> = text.lines().map(entry).collect();
    let stdout: Vec<(&str, &str)> = entries.iter().filter(|e| e.1 == "stdout").map(|e| (e.2, e.3)).collect();
    let stderr: Vec<(&str, &str)> = entries.iter().filter(|e| e.1 == "stderr").map(|e| (e.2, e.3)).collect();
    let long = "x".repeat(40000);
    let expected = [("F", "short"), ("P", &long[..16384]), ("P", &long[16384..32768]), ("F", &long[32768..]), ("F", "after")];
    assert_eq!(stdout.len(), expected.len(), "{:?}", stdout.iter().map(|(t, m)| (t, m.len())).collect::<Vec<_>>());
    for (got, want) in stdout.iter().zip(expected) {
        assert_eq!((got.0, got.1.len(), got.1 == want.1), (want.0, want.1.len(), true));
    }
    assert_eq!(stderr, [("F", "oops")]);
    // Each stream's copier writes in order; the two streams' entries may interleave either way.
    for stream in ["stdout", "stderr"] {
        let times: Vec<_> = entries.iter().filter(|e| e.1 == stream).map(|e| e.0).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{stream}: timestamps in the order written");
    }
    shutdown_clean(h);
}

/// readonly_rootfs: the image's files cannot be written (the pod's /dev/shm still can); without
/// it they can.
#[test]
fn a_read_only_rootfs_refuses_writes() {
    let h = start_with_busybox(IMAGE).expect("skiffd");
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let pod = pod_config("readonly");
        let pod_id = run_pod(&mut rt, &pod).await.expect("pod");
        let mut locked = container_config("locked", IMAGE, &["sleep", "3600"]);
        let sc = cri::LinuxContainerSecurityContext { readonly_rootfs: true, ..Default::default() };
        locked.linux = Some(cri::LinuxContainerConfig { security_context: Some(sc), resources: None });
        let locked = run_container(&mut rt, &pod_id, &pod, locked).await.expect("locked");
        let open = run_container(&mut rt, &pod_id, &pod, container_config("open", IMAGE, &["sleep", "3600"])).await.expect("open");

        let (code, _, err) = exec(&mut rt, &locked, &["sh", "-c", "touch /x"]).await.expect("touch");
        assert!(code != 0 && err.contains("Read-only file system"), "{code} {err:?}");
        let (code, _, err) = exec(&mut rt, &locked, &["sh", "-c", "touch /dev/shm/x"]).await.expect("touch shm");
        assert_eq!(code, 0, "the pod's /dev/shm stays writable: {err}");
        let (code, _, err) = exec(&mut rt, &open, &["sh", "-c", "touch /x && ls /x"]).await.expect("touch");
        assert_eq!(code, 0, "a writable rootfs: {err}");
        let (code, _, _) = exec(&mut rt, &locked, &["sh", "-c", "ls /x"]).await.expect("ls");
        assert_ne!(code, 0, "each container has its own rootfs");
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    shutdown_clean(h);
}
