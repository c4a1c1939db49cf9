//! Exec, Attach and PortForward as kubectl reaches them: the URL the CRI call answers, upgraded
//! to SPDY/3.1 (kubectl's transport through the kubelet, crictl's default) or a WebSocket
//! (client-go's newer transport), by clients of this crate against skiffd's real streaming
//! server and real containers.

use std::time::Duration;

use skiff_integration::cri::{container_config, cri, exec, pod_config, remove_pod, run_container, run_pod, runtime, shutdown_clean, start_with_busybox, Harness, RuntimeClient};
use skiff_integration::stream::{forward, Protocols, Remote, Transport, Wanted};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

const IMAGE: &str = "localhost/cri-streaming/busybox:1";

fn start() -> Harness {
    start_with_busybox(IMAGE).expect("skiffd with a busybox image (apt-get install busybox-static)")
}

fn both() -> [Transport; 2] {
    [Transport::spdy(), Transport::websocket()]
}

async fn exec_url(rt: &mut RuntimeClient, id: &str, cmd: &[&str], wanted: Wanted) -> String {
    let req = cri::ExecRequest { container_id: id.into(), cmd: cmd.iter().map(|c| c.to_string()).collect(), tty: wanted.tty, stdin: wanted.stdin, stdout: wanted.stdout, stderr: wanted.stderr };
    rt.exec(req).await.expect("Exec").into_inner().url
}

async fn pod_with(rt: &mut RuntimeClient, name: &str, config: cri::ContainerConfig) -> (String, String) {
    let pod = pod_config(name);
    let pod_id = run_pod(rt, &pod).await.expect("pod");
    let id = run_container(rt, &pod_id, &pod, config).await.expect("container");
    (pod_id, id)
}

#[test]
fn exec_carries_stdin_stdout_stderr_and_the_exit_code_over_both_transports() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let (pod_id, id) = pod_with(&mut rt, "execd", container_config("app", IMAGE, &["sleep", "3600"])).await;
        let all = Wanted { stdin: true, stdout: true, stderr: true, tty: false };
        for transport in both() {
            let url = exec_url(&mut rt, &id, &["sh", "-c", "cat; echo to-stderr >&2; exit 3"], all).await;
            assert!(url.starts_with("http://127.0.0.1:") && url.contains("/exec/"), "{url}");
            let mut remote = Remote::connect(&url, &transport, all).await.expect("connect");
            remote.send_stdin(b"hello through the stream\n").await.expect("stdin");
            let done = remote.finish().await.expect("finish");
            assert_eq!(String::from_utf8_lossy(&done.stdout), "hello through the stream\n", "{transport:?}");
            assert_eq!(String::from_utf8_lossy(&done.stderr), "to-stderr\n", "{transport:?}");
            assert_eq!(done.exit_code().expect("exit code"), 3, "{transport:?}: {}", done.error);
            assert_eq!(done.status().expect("status")["reason"], "NonZeroExitCode");

            let url = exec_url(&mut rt, &id, &["cat", "/etc/hostname"], Wanted { stdout: true, ..Default::default() }).await;
            let done = Remote::connect(&url, &transport, Wanted { stdout: true, ..Default::default() }).await.expect("connect").finish().await.expect("finish");
            assert_eq!(String::from_utf8_lossy(&done.stdout).trim(), "execd", "{transport:?}");
            assert_eq!(done.status().expect("status")["status"], "Success");
        }
        // An older SPDY protocol: the error stream carries text, nothing on success.
        let url = exec_url(&mut rt, &id, &["sh", "-c", "exit 5"], Wanted { stdout: true, ..Default::default() }).await;
        let done = Remote::connect(&url, &Transport::new(Protocols::Spdy(vec!["v2.channel.k8s.io"])), Wanted { stdout: true, ..Default::default() }).await.expect("connect").finish().await.expect("finish");
        assert!(done.error.contains("exit status 5"), "{:?}", done.error);
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

/// The other processes (and which of their fds) that hold the terminal on `pid`'s stdin: the
/// same device (its devpts instance and number).
fn terminal_holders(pid: &str) -> Vec<(String, String)> {
    use std::os::unix::fs::MetadataExt;
    let identity = |path: &str| std::fs::metadata(path).ok().filter(|m| m.rdev() != 0).map(|m| (m.dev(), m.rdev()));
    let Some(terminal) = identity(&format!("/proc/{pid}/fd/0")) else { return Vec::new() };
    let mut holders = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(other) = entry.file_name().to_str().filter(|n| n.parse::<u32>().is_ok() && *n != pid).map(str::to_string) else { continue };
        for fd in std::fs::read_dir(format!("/proc/{other}/fd")).into_iter().flatten().flatten() {
            let fd = fd.file_name().to_string_lossy().into_owned();
            if identity(&format!("/proc/{other}/fd/{fd}")) == Some(terminal) {
                holders.push((other.clone(), fd));
            }
        }
    }
    holders
}

/// The state of each process whose command line holds `needle`, and of its children, for a
/// failure message: what runs, where it waits, and the modes of the terminal on its stdin.
fn describe_processes(needle: &str) -> String {
    let describe = |pid: &str| {
        let read = |what: &str| std::fs::read_to_string(format!("/proc/{pid}/{what}")).unwrap_or_default();
        let cmdline = read("cmdline").replace('\0', " ");
        let stat = read("stat");
        let state = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').take(4).collect::<Vec<_>>().join(" ")).unwrap_or_default();
        // CPU time over 200 ms: a running process that gets none is starved, not spinning.
        let ran = |text: String| text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let before = ran(read("schedstat"));
        std::thread::sleep(Duration::from_millis(200));
        let cpu_ms = (ran(read("schedstat")) - before.min(ran(read("schedstat")))) / 1_000_000;
        let cgroup = read("cgroup");
        let signals: Vec<String> = read("status").lines().filter(|l| l.starts_with("Sig") || l.starts_with("ShdPnd")).map(str::to_string).collect();
        format!("pid {pid} {cmdline:?} state {state:?} cpu {cpu_ms} ms in 200 wchan {} syscall {:?} {signals:?} cgroup {cgroup:?} stack {:?} exe {:?}", read("wchan"), read("syscall"), read("stack"), std::fs::read_link(format!("/proc/{pid}/exe")).ok())
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().filter(|n| n.parse::<u32>().is_ok()).map(str::to_string) else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        let modes = std::process::Command::new("stty").args(["-a", "-F", &format!("/proc/{pid}/fd/0")]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        out.push(format!("{} stdin modes {modes:?}", describe(&pid)));
        // Another process reading the same terminal would take the lines typed: each one that
        // holds it is named.
        for (holder, fd) in terminal_holders(&pid) {
            out.push(format!("holding its terminal as fd {fd}: {}", describe(&holder)));
        }
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            out.push(format!("its child {}", describe(child)));
        }
    }
    if out.is_empty() { "no such process".to_string() } else { out.join("; ") }
}

#[test]
fn a_tty_exec_follows_the_clients_terminal_size() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let (pod_id, id) = pod_with(&mut rt, "tty", container_config("app", IMAGE, &["sleep", "3600"])).await;
        let tty = Wanted { stdin: true, stdout: true, stderr: false, tty: true };
        // Each line typed prints the terminal's size; "go" ends it. Sizes are applied as they
        // come (after the process may have started), so the test types until it sees each one.
        let script = "while read line; do busybox stty size; [ \"$line\" = go ] && break; done; echo got=$line";
        for transport in both() {
            let url = exec_url(&mut rt, &id, &["sh", "-c", script], tty).await;
            let mut remote = Remote::connect(&url, &transport, tty).await.expect("connect");
            let mut stdout = remote.stdout.take().expect("stdout");
            let mut stdin = remote.stdin.take().expect("stdin");
            let mut seen = String::new();
            // A line is typed once the shell has answered the one before: the terminal echoes a
            // line at once, but the size comes a fork and an exec of `stty` later, and lines typed
            // ahead of the answers would queue up past the deadline on a loaded machine.
            let answers = |text: &str| text.lines().filter(|l| l.trim().split(' ').filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).count() == 2).count();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            for (width, height) in [(100u16, 30u16), (120, 40)] {
                remote.resize(width, height).await.expect("resize");
                let want = format!("{height} {width}");
                while !seen.contains(&want) && tokio::time::Instant::now() < deadline {
                    let answered = answers(&seen);
                    stdin.write_all(b"x\n").await.expect("type");
                    while answers(&seen) == answered {
                        let mut buf = [0u8; 256];
                        let Ok(read) = tokio::time::timeout_at(deadline, stdout.read(&mut buf)).await else { break };
                        let n = read.expect("read");
                        assert!(n > 0, "the tty ended early: {seen:?}");
                        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
                // The shell's state goes with a failure.
                assert!(seen.contains(&want), "{transport:?}: no {want:?} in {seen:?}; the shell: {}", describe_processes("busybox stty size"));
            }
            stdin.write_all(b"go\n").await.expect("type");
            let mut rest = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), stdout.read_to_end(&mut rest)).await.expect("the end in time").expect("read");
            remote.stdin = Some(stdin);
            let done = remote.finish().await.expect("finish");
            // Both checked with the whole outcome in view: how it ended tells a lost tail of
            // output from a process that ended early.
            let rest = String::from_utf8_lossy(&rest);
            let code = done.exit_code().ok();
            assert!(rest.contains("got=go") && code == Some(0), "{transport:?}: output {rest:?}, exit {code:?}, error {:?}", done.error);
        }
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn attached_clients_see_a_running_containers_output_and_feed_its_stdin() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut config = container_config("echoer", IMAGE, &["sh", "-c", "while read line; do echo echo:$line; done"]);
        config.stdin = true;
        let (pod_id, id) = pod_with(&mut rt, "attached", config).await;
        let attach = |wanted: Wanted| cri::AttachRequest { container_id: id.clone(), stdin: wanted.stdin, tty: false, stdout: wanted.stdout, stderr: wanted.stderr };
        let writer = Wanted { stdin: true, stdout: true, stderr: true, tty: false };
        let watcher = Wanted { stdout: true, ..Default::default() };
        let url = rt.attach(attach(writer)).await.expect("Attach").into_inner().url;
        let mut first = Remote::connect(&url, &Transport::spdy(), writer).await.expect("attach over SPDY");
        let url = rt.attach(attach(watcher)).await.expect("Attach").into_inner().url;
        let mut second = Remote::connect(&url, &Transport::websocket(), watcher).await.expect("attach over a WebSocket");
        // A client sees the output from the moment its attach reached the shim, which can be a
        // moment after its connect returned (and an attach replays nothing, as kubectl's): a line
        // is typed every 100 ms until each client has seen one echoed.
        let mut stdin = first.stdin.take().expect("stdin");
        for remote in [&mut first, &mut second] {
            let stdout = remote.stdout.as_mut().expect("stdout");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("echo:one\n") {
                assert!(std::time::Instant::now() < deadline, "no line echoed within 10 s: {:?}", String::from_utf8_lossy(&got));
                stdin.write_all(b"one\n").await.expect("write");
                let mut buf = [0u8; 256];
                if let Ok(read) = tokio::time::timeout(Duration::from_millis(100), stdout.read(&mut buf)).await {
                    let n = read.expect("read");
                    assert!(n > 0, "the attach ended early");
                    got.extend_from_slice(&buf[..n]);
                }
            }
        }
        second.abandon().await;
        first.abandon().await;
        drop(stdin);
        // The container runs on, and its log has what it printed.
        let (code, out, _) = exec(&mut rt, &id, &["true"]).await.expect("exec");
        assert_eq!((code, out), (0, String::new()));
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn port_forward_reaches_a_server_in_the_pod_over_both_transports() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let serve = "mkdir -p /www && echo served-from-the-pod > /www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /www";
        let (pod_id, id) = pod_with(&mut rt, "forwarded", container_config("web", IMAGE, &["sh", "-c", serve])).await;
        for _ in 0..100 {
            if exec(&mut rt, &id, &["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]).await.is_ok_and(|(code, _, _)| code == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for transport in both() {
            let url = rt.port_forward(cri::PortForwardRequest { pod_sandbox_id: pod_id.clone(), port: vec![] }).await.expect("PortForward").into_inner().url;
            let mut forwarder = forward(&url, &transport, &[8080]).await.expect("connect");
            let mut conn = forwarder.open(8080).await.expect("open");
            conn.writer.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").await.expect("request");
            let mut answer = String::new();
            tokio::time::timeout(Duration::from_secs(10), conn.reader.read_to_string(&mut answer)).await.expect("the answer in time").expect("answer");
            assert!(answer.starts_with("HTTP/1.") && answer.contains("served-from-the-pod"), "{transport:?}: {answer:?}");
            forwarder.close().await;
        }
        // Nothing listens on port 9 in the pod: the error stream says so.
        let url = rt.port_forward(cri::PortForwardRequest { pod_sandbox_id: pod_id.clone(), port: vec![] }).await.expect("PortForward").into_inner().url;
        let mut forwarder = forward(&url, &Transport::spdy(), &[9]).await.expect("connect");
        let mut conn = forwarder.open(9).await.expect("open");
        let error = conn.error_text().await.expect("error stream");
        assert!(error.contains("forwarding 9 -> 9") && error.contains("refused"), "{error:?}");
        forwarder.close().await;
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn streaming_calls_refuse_what_cannot_stream() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let (pod_id, id) = pod_with(&mut rt, "refused", container_config("app", IMAGE, &["sleep", "3600"])).await;
        let req = |tty: bool, stderr: bool| cri::ExecRequest { container_id: id.clone(), cmd: vec!["true".into()], tty, stdin: false, stdout: true, stderr };
        let err = rt.exec(req(true, true)).await.expect_err("tty with stderr");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        let err = rt.exec(cri::ExecRequest { cmd: vec![], ..req(false, false) }).await.expect_err("no command");
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = rt.exec(cri::ExecRequest { container_id: "no-such-container".into(), ..req(false, false) }).await.expect_err("missing");
        assert_eq!(err.code(), Code::NotFound);
        let err = rt.port_forward(cri::PortForwardRequest { pod_sandbox_id: pod_id.clone(), port: vec![70000] }).await.expect_err("bad port");
        assert_eq!(err.code(), Code::InvalidArgument);

        // A URL serves once.
        let url = rt.exec(req(false, false)).await.expect("Exec").into_inner().url;
        let done = Remote::connect(&url, &Transport::spdy(), Wanted { stdout: true, ..Default::default() }).await.expect("first").finish().await.expect("finish");
        assert_eq!(done.exit_code().expect("code"), 0);
        let again = Remote::connect(&url, &Transport::spdy(), Wanted { stdout: true, ..Default::default() }).await.err().expect("a used URL");
        assert!(again.to_string().contains("404"), "{again}");
        let made_up = url.rsplit_once('/').map(|(base, _)| format!("{base}/AAAAAAAAAAAAAAAAAAAAAA")).expect("url");
        assert!(Remote::connect(&made_up, &Transport::websocket(), Wanted::default()).await.is_err());

        // A command that does not exist: the error stream says so, the container runs on.
        let url = exec_url(&mut rt, &id, &["no-such-command"], Wanted { stdout: true, ..Default::default() }).await;
        let done = Remote::connect(&url, &Transport::spdy(), Wanted { stdout: true, ..Default::default() }).await.expect("connect").finish().await.expect("finish");
        let status = done.status().expect("status");
        assert_eq!(status["status"], "Failure", "{status}");
        assert!(status["message"].as_str().unwrap_or_default().contains("no-such-command"), "{status}");

        // A stopped container: Exec and Attach refuse it.
        rt.stop_container(cri::StopContainerRequest { container_id: id.clone(), timeout: 0 }).await.expect("stop");
        let err = rt.exec(req(false, false)).await.expect_err("stopped");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        let err = rt.attach(cri::AttachRequest { container_id: id.clone(), stdin: false, tty: false, stdout: true, stderr: false }).await.expect_err("stopped");
        assert_eq!(err.code(), Code::FailedPrecondition);
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

/// skiffd's pid: the process running the harness's config.
fn skiffd_pid(h: &Harness) -> i32 {
    let config = h.config_path().to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("skiffd") && String::from_utf8_lossy(&c).contains(&config)))
        .expect("skiffd is running")
}

fn count(path: String) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn floods_and_clients_that_leave_end_cleanly_without_leaks() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let (pod_id, id) = pod_with(&mut rt, "flooded", container_config("app", IMAGE, &["sleep", "3600"])).await;
        let pid = skiffd_pid(&h);
        let out = Wanted { stdout: true, ..Default::default() };
        // Warm up: the first exec starts what stays (the blocking pool's first threads).
        let url = exec_url(&mut rt, &id, &["true"], out).await;
        Remote::connect(&url, &Transport::spdy(), out).await.expect("connect").finish().await.expect("finish");
        let fds = count(format!("/proc/{pid}/fd"));
        let threads = count(format!("/proc/{pid}/task"));

        for transport in both() {
            let url = exec_url(&mut rt, &id, &["sh", "-c", "cat /dev/zero | head -c 104857600"], out).await;
            let mut remote = Remote::connect(&url, &transport, out).await.expect("connect");
            let mut stdout = remote.stdout.take().expect("stdout");
            let mut total = 0usize;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = stdout.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                assert!(buf[..n].iter().all(|b| *b == 0));
                total += n;
            }
            assert_eq!(total, 100 << 20, "{transport:?}");
            assert_eq!(remote.finish().await.expect("finish").exit_code().expect("code"), 0);

            // A client that leaves mid-stream takes its process with it.
            let url = exec_url(&mut rt, &id, &["sleep", "4242"], out).await;
            let remote = Remote::connect(&url, &transport, out).await.expect("connect");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (_, ps, _) = exec(&mut rt, &id, &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).await.expect("ps");
            assert!(ps.contains("sleep 4242"), "the exec runs: {ps}");
            remote.abandon().await;
            let mut gone = false;
            for _ in 0..100 {
                let (_, ps, _) = exec(&mut rt, &id, &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).await.expect("ps");
                if !ps.contains("sleep 4242") {
                    gone = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(gone, "{transport:?}: the abandoned exec was killed");
        }
        // A resize stream on an exec without a terminal is refused (reset); the exec goes on.
        let url = exec_url(&mut rt, &id, &["echo", "no-tty"], out).await;
        let done = Remote::connect(&url, &Transport::spdy(), Wanted { tty: true, ..out }).await.expect("connect").finish().await.expect("finish");
        assert_eq!(String::from_utf8_lossy(&done.stdout), "no-tty\n");

        // skiffd holds no more descriptors or threads than before (tokio's blocking threads idle
        // 10 s before they end).
        let (mut fds_now, mut threads_now) = (usize::MAX, usize::MAX);
        for _ in 0..150 {
            (fds_now, threads_now) = (count(format!("/proc/{pid}/fd")), count(format!("/proc/{pid}/task")));
            if fds_now <= fds && threads_now <= threads {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(fds_now <= fds, "skiffd's descriptors: {fds} before, {fds_now} after");
        assert!(threads_now <= threads, "skiffd's threads: {threads} before, {threads_now} after");
        assert!(!h.root().join("exec").read_dir().is_ok_and(|mut d| d.next().is_some()), "no exec FIFO directory is left");
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}
