//! `skiff pods exec -i|-t`, `skiff pods attach` and `skiff pods port-forward`: the real CLI,
//! run as a user runs it (piped stdio, a pty through util-linux `script`, a local TCP client),
//! against a throwaway skiffd's CRI and streaming server and real containers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use skiff_integration::bin;
use skiff_integration::cri::{container_config, cri, exec, pod_config, remove_pod, run_container, run_pod, runtime, shutdown_clean, start_with_busybox, wait_exited, Harness, RuntimeClient, SkiffCli};

const IMAGE: &str = "localhost/pods-streaming/busybox:1";

fn start() -> Harness {
    start_with_busybox(IMAGE).expect("skiffd with a busybox image (apt-get install busybox-static)")
}

async fn pod_with(rt: &mut RuntimeClient, name: &str, config: cri::ContainerConfig) -> (String, String) {
    let pod = pod_config(name);
    let pod_id = run_pod(rt, &pod).await.expect("pod");
    let id = run_container(rt, &pod_id, &pod, config).await.expect("container");
    (pod_id, id)
}

/// The CLI against the harness's skiffd, not yet run.
fn skiff(h: &Harness, args: &[&str]) -> Command {
    let mut c = Command::new(bin("skiff"));
    c.arg("--address").arg(h.socket()).args(args);
    c
}

/// Waits for `child` at most `limit`; a child still running then is killed and fails the test.
fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads `out` in a thread until a line holds `needle` (or `limit` passed); answers what was read.
fn read_until<R: Read + Send + 'static>(out: R, needle: &'static str, limit: Duration) -> (String, R) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut seen = String::new();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            seen.push_str(&line);
            if line.contains(needle) {
                break;
            }
            line.clear();
        }
        let _ = tx.send((seen, reader.into_inner()));
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("no line with {needle:?} within {limit:?}"))
}

#[test]
fn exec_dash_i_carries_piped_stdin_and_the_exit_code_over_both_transports() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let (pod_id, id) = pod_with(&mut rt, "exec-i", container_config("app", IMAGE, &["sleep", "3600"])).await;
        for transport in ["spdy", "websocket"] {
            let mut child = skiff(&h, &["pods", "exec", "-i", "--transport", transport, &id, "sh", "-c", "cat; echo to-stderr >&2; exit 4"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn skiff");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"piped through the stream\n").expect("write stdin");
            // Our stdin's end is the command's: cat ends, then the exit code comes back.
            drop(stdin);
            let status = wait_within(&mut child, Duration::from_secs(30), "skiff pods exec -i");
            let mut out = String::new();
            let mut err = String::new();
            child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
            child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
            assert_eq!((status.code(), out.as_str(), err.as_str()), (Some(4), "piped through the stream\n", "to-stderr\n"), "{transport}");
        }
        // A command that cannot start: the status's message, exit 1 (as kubectl).
        let run = h.skiff(&["pods", "exec", "-i", &id, "/no/such/binary"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("no/such/binary"), "{}", run.stderr);
        // Without -i/-t it stays ExecSync.
        let run = h.skiff(&["pods", "exec", &id, "sh", "-c", "echo sync; exit 2"]);
        assert_eq!((run.code, run.stdout.as_str()), (2, "sync\n"));

        // Errors the CRI answers, told as the rest of the CLI tells them.
        let run = h.skiff(&["pods", "exec", "-i", "no-such-container", "true"]);
        assert_eq!(run.code, 1);
        assert!(run.stderr.starts_with("skiff: ") && run.stderr.contains("not found"), "{}", run.stderr);
        let stopped = run_container(&mut rt, &pod_id, &pod_config("exec-i"), container_config("done", IMAGE, &["true"])).await.expect("container");
        wait_exited(&mut rt, &stopped, Duration::from_secs(10)).await.expect("the container exits");
        let run = h.skiff(&["pods", "exec", "-it", &stopped, "sh"]);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("not running"), "{}", run.stderr);
        let run = h.skiff(&["pods", "attach", &stopped]);
        assert!(run.code == 1 && run.stderr.contains("not running"), "{}", run.stderr);
        let run = h.skiff(&["pods", "port-forward", "no-such-pod", "8080"]);
        assert!(run.code == 1 && run.stderr.contains("not found"), "{}", run.stderr);
        let run = h.skiff(&["pods", "port-forward", &pod_id, "80:http"]);
        assert!(run.code != 0 && run.stderr.contains("not a TCP port"), "{}", run.stderr);
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn exec_dash_t_gives_the_command_a_terminal_under_a_pty() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let (pod_id, id) = pod_with(&mut rt, "exec-t", container_config("app", IMAGE, &["sleep", "3600"])).await;
        // `script` runs skiff on a pty of its own (stdin and stdout a terminal: raw mode, the
        // size sent) and feeds it what we write; -e: its exit code is skiff's.
        let cli = format!("{} --address {} pods exec -i -t {id} sh -c '[ -t 0 ] && echo is-a-tty; read line; echo got=$line; exit 3'", bin("skiff").display(), h.socket().display());
        let mut child = Command::new("script").args(["-qec", &cli, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn script (util-linux)");
        let (seen, out) = read_until(child.stdout.take().expect("stdout"), "is-a-tty", Duration::from_secs(30));
        assert!(seen.contains("is-a-tty"), "{seen:?}");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"typed\n").expect("type");
        let (seen, _out) = read_until(out, "got=", Duration::from_secs(30));
        assert!(seen.contains("got=typed"), "{seen:?}");
        let status = wait_within(&mut child, Duration::from_secs(30), "skiff pods exec -it under script");
        assert_eq!(status.code(), Some(3));
        drop(stdin);
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn port_forward_carries_local_connections_to_a_server_in_the_pod() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let serve = "mkdir -p /www && echo served-from-the-pod > /www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /www";
        let (pod_id, id) = pod_with(&mut rt, "forwarded", container_config("web", IMAGE, &["sh", "-c", serve])).await;
        let mut up = false;
        for _ in 0..100 {
            if exec(&mut rt, &id, &["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]).await.is_ok_and(|(code, _, _)| code == 0) {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "httpd did not answer in the pod");
        let local = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let mut child = skiff(&h, &["pods", "port-forward", &pod_id, &format!("{local}:8080")]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn skiff");
        let (seen, _out) = read_until(child.stdout.take().expect("stdout"), "Forwarding from", Duration::from_secs(30));
        assert_eq!(seen.trim(), format!("Forwarding from 127.0.0.1:{local} -> 8080"));
        // Two connections, one after the other, over the one session.
        for _ in 0..2 {
            let mut conn = TcpStream::connect(("127.0.0.1", local)).expect("connect the local port");
            conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").expect("request");
            let mut answer = String::new();
            conn.read_to_string(&mut answer).expect("the answer");
            assert!(answer.starts_with("HTTP/1.") && answer.contains("served-from-the-pod"), "{answer:?}");
        }
        // The same port on IPv6 loopback, where the host has one (kubectl's "localhost").
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            let mut conn = TcpStream::connect(("::1", local)).expect("connect [::1]");
            conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").expect("request");
            let mut answer = String::new();
            conn.read_to_string(&mut answer).expect("the answer");
            assert!(answer.contains("served-from-the-pod"), "over [::1]: {answer:?}");
        }
        // A port nothing listens on in the pod: the connection ends, the error is printed.
        child.kill().expect("kill skiff");
        let _ = child.wait();
        let nothing = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let mut child = skiff(&h, &["pods", "port-forward", &pod_id, &format!("{nothing}:9")]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn skiff");
        // Kept open: "Handling connection" lines go there.
        let (_, _out) = read_until(child.stdout.take().expect("stdout"), "Forwarding from", Duration::from_secs(30));
        let mut conn = TcpStream::connect(("127.0.0.1", nothing)).expect("connect the local port");
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).expect("the connection ends");
        assert!(answer.is_empty());
        let (err, _stderr) = read_until(child.stderr.take().expect("stderr"), "port 9", Duration::from_secs(10));
        assert!(err.contains("port 9") && err.contains("refused"), "{err}");
        // The session serves on after a failed connection.
        let mut conn = TcpStream::connect(("127.0.0.1", nothing)).expect("connect again");
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        assert_eq!(conn.read(&mut [0u8; 16]).expect("the connection ends"), 0);
        child.kill().expect("kill skiff");
        let _ = child.wait();
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}

#[test]
fn attach_shows_a_running_containers_output_and_ends_with_it() {
    let h = start();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let printer = "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.2; done";
        let (pod_id, id) = pod_with(&mut rt, "attached", container_config("printer", IMAGE, &["sh", "-c", printer])).await;
        let mut child = skiff(&h, &["pods", "attach", &id]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn skiff");
        let (seen, _out) = read_until(child.stdout.take().expect("stdout"), "line-", Duration::from_secs(30));
        assert!(seen.contains("line-"), "{seen:?}");
        child.kill().expect("kill skiff");
        let _ = child.wait();
        // The container runs on after its client went away.
        let (code, _, _) = exec(&mut rt, &id, &["true"]).await.expect("exec");
        assert_eq!(code, 0);

        // A container whose output ends: the attach ends by itself, a success.
        let finite = "sleep 1; for i in 1 2 3 4 5; do echo tick-$i; sleep 0.3; done";
        let ends = run_container(&mut rt, &pod_id, &pod_config("attached"), container_config("ticker", IMAGE, &["sh", "-c", finite])).await.expect("container");
        let mut child = skiff(&h, &["pods", "attach", &ends]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn skiff");
        let status = wait_within(&mut child, Duration::from_secs(30), "skiff pods attach to an ending container");
        let mut out = String::new();
        child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
        assert!(out.contains("tick-5"), "{out:?}");
        assert_eq!(status.code(), Some(0));
        remove_pod(&mut rt, &pod_id).await.expect("remove pod");
    });
    shutdown_clean(h);
}
