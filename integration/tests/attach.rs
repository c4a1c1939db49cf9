//! Attaching to running containers through skiffd and skiff-shim, with a real runtime: several
//! `skiff attach` clients share one container's output while its log keeps all of it; stdin kept
//! open (`skiff run -d -i`) takes one client at a time, across detaches; stdin_once closes it
//! after the first; a terminal's size follows Resize; a stopped container refuses clearly; and an
//! attachment leaves no fd or thread behind in the shim.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skiff_api::v1::{self, containers_client::ContainersClient};
use skiff_integration::{bin, Skiff};
use skiff_testimage::{write_layout, ImageSpec};

const IMAGE: &str = "localhost/test/busybox:1";
const LONG: Duration = Duration::from_secs(20);

fn busybox(s: &Skiff) {
    let spec = ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)");
    let layout = s.path("layout");
    write_layout(&spec, &layout).expect("layout");
    s.cli(&["images", "import", layout.to_str().expect("utf8")]).ok();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn container_id(s: &Skiff, name: &str) -> String {
    let docs: serde_json::Value = serde_json::from_str(&s.cli(&["containers", "inspect", name]).ok()).expect("inspect json");
    docs[0]["Id"].as_str().expect("id").to_string()
}

fn status(s: &Skiff, name: &str) -> String {
    let docs: serde_json::Value = serde_json::from_str(&s.cli(&["containers", "inspect", name]).ok()).expect("inspect json");
    docs[0]["Status"].as_str().expect("status").to_string()
}

/// The container's own supervisor (a container of no pod has one of its own).
fn shim_pid(s: &Skiff, id: &str) -> i32 {
    std::fs::read_to_string(s.root.join("containers").join(id).join("shim.pid")).expect("shim.pid").trim().parse().expect("pid")
}

/// The shim's open fds and threads.
fn fds_and_threads(pid: i32) -> (usize, usize) {
    let count = |what: &str| std::fs::read_dir(format!("/proc/{pid}/{what}")).map(|d| d.count()).unwrap_or(0);
    (count("fd"), count("task"))
}

/// What the shim's fds are, and its threads' names, for a failure's message.
fn open_fds(pid: i32) -> String {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        out.push(format!("fd {} -> {}", entry.file_name().to_string_lossy(), std::fs::read_link(entry.path()).map(|l| l.display().to_string()).unwrap_or_default()));
    }
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        out.push(format!("thread {}", std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim()));
    }
    out.join("\n")
}

/// The shim's fds and threads once they stopped changing (skiffd's follower connects to it
/// after the start).
fn settled(pid: i32) -> (usize, usize) {
    let mut last = fds_and_threads(pid);
    let mut same = 0;
    let deadline = Instant::now() + LONG;
    while same < 5 {
        assert!(Instant::now() < deadline, "the shim's fds and threads never settled: {last:?}");
        std::thread::sleep(Duration::from_millis(100));
        let now = fds_and_threads(pid);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// Attachments the container's shim has wired, from its log.
fn attached(s: &Skiff, id: &str) -> usize {
    std::fs::read_to_string(s.root.join("containers").join(id).join("shim.log")).unwrap_or_default().matches("client attached").count()
}

/// A `skiff attach` with piped stdio; its stdout lines arrive on a channel.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

fn attach(s: &Skiff, args: &[&str]) -> Client {
    let mut child = Command::new(bin("skiff"))
        .arg("--address")
        .arg(&s.socket)
        .arg("attach")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skiff attach");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Client { stdin: child.stdin.take(), child, lines }
}

impl Client {
    fn line(&self) -> String {
        self.lines.recv_timeout(LONG).expect("a line from skiff attach")
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to skiff attach");
        stdin.flush().expect("flush");
    }

    /// Every line up to EOF, then the exit code and stderr.
    fn finish(mut self) -> (Vec<String>, i32, String) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(LONG) {
            rest.push(line);
        }
        let deadline = Instant::now() + LONG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "skiff attach did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (rest, status.code().unwrap_or(-1), stderr)
    }
}

#[test]
fn two_clients_see_the_same_lines_and_the_log_keeps_them_all() {
    let s = Skiff::start().expect("skiffd");
    busybox(&s);
    // Prints once before anyone attached, then counts once told to.
    let script = "echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; i=1; while [ $i -le 200 ]; do echo line $i; i=$((i+1)); done";
    s.cli(&["run", "-d", "--name", "counter", IMAGE, "sh", "-c", script]).ok();
    let id = container_id(&s, "counter");
    // "before" is printed before anyone attaches: `run -d` returns once the shell started, not once it printed.
    wait_until("the container printed before anyone attached", || s.cli(&["logs", "counter"]).stdout.contains("before"));
    let a = attach(&s, &["counter"]);
    let b = attach(&s, &["--no-stdin", "counter"]);
    wait_until("both clients are attached", || attached(&s, &id) == 2);
    s.cli(&["exec", "counter", "sh", "-c", "echo > /tmp/go"]).ok();
    let expected: Vec<String> = (1..=200).map(|i| format!("line {i}")).collect();
    for client in [a, b] {
        let (lines, code, stderr) = client.finish();
        assert_eq!(lines, expected, "{stderr}");
        assert_eq!(code, 0, "skiff attach exits with the container's code: {stderr}");
    }
    let mut log = vec!["before".to_string()];
    log.extend(expected);
    assert_eq!(s.cli(&["logs", "counter"]).ok().lines().map(str::to_string).collect::<Vec<_>>(), log);
    // Attaching to what has exited is refused, saying why.
    s.cli(&["attach", "counter"]).fails_with(&["container counter is exited, not running", "skiff logs"]);
    s.cli(&["rm", "counter"]).ok();
}

#[test]
fn stdin_kept_open_takes_one_client_at_a_time_across_detaches_and_leaks_nothing() {
    let s = Skiff::start().expect("skiffd");
    busybox(&s);
    s.cli(&["run", "-d", "-i", "--name", "cat", IMAGE, "cat"]).ok();
    let id = container_id(&s, "cat");
    let shim = shim_pid(&s, &id);
    let before = settled(shim);
    let listed = open_fds(shim);

    let mut first = attach(&s, &["cat"]);
    wait_until("the first client is attached", || attached(&s, &id) == 1);
    first.type_line("hello");
    assert_eq!(first.line(), "hello");
    // Our stdin's end ends this attachment, not the container's stdin.
    let (rest, code, stderr) = first.finish();
    assert_eq!((rest.len(), code), (0, 0), "{stderr}");
    assert_eq!(status(&s, "cat"), "running");

    let mut again = attach(&s, &["cat"]);
    wait_until("the client is attached again", || attached(&s, &id) == 2);
    // One stdin at a time: a second client must do without.
    s.cli(&["attach", "cat"]).fails_with(&["another client is attached to the container's stdin", "attach without stdin"]);
    let watcher = attach(&s, &["--no-stdin", "cat"]);
    wait_until("the watcher is attached", || attached(&s, &id) == 3);
    again.type_line("again");
    assert_eq!(again.line(), "again");
    assert_eq!(watcher.line(), "again", "every client sees the output");
    let (_, code, stderr) = again.finish();
    assert_eq!(code, 0, "{stderr}");
    // A client that dies is dropped without a write to tell it.
    let mut watcher = watcher;
    watcher.child.kill().expect("kill the watcher");
    let _ = watcher.child.wait();

    let deadline = Instant::now() + LONG;
    while fds_and_threads(shim) != before {
        assert!(Instant::now() < deadline, "the shim kept fds or threads: {before:?} then:\n{listed}\n{:?} now:\n{}", fds_and_threads(shim), open_fds(shim));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(&s, "cat"), "running");
    assert_eq!(s.cli(&["logs", "cat"]).ok(), "hello\nagain\n");
    s.cli(&["rm", "-f", "cat"]).ok();
}

/// A set of FIFOs from PrepareStdio, our ends opened as the CLI opens them.
struct Fifos {
    paths: v1::StdioPaths,
    stdout: File,
    stdin: Option<File>,
}

async fn fifos(containers: &mut ContainersClient<tonic::transport::Channel>, stdin: bool) -> Fifos {
    let paths = containers.prepare_stdio(v1::PrepareStdioRequest { stdin, stdout: true, stderr: false }).await.expect("prepare").into_inner();
    // Opened before the attach without waiting for a writer: the shim's end needs a reader.
    let stdout = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&paths.stdout).expect("stdout reader");
    let stdin = stdin.then(|| OpenOptions::new().read(true).write(true).open(&paths.stdin).expect("stdin writer"));
    Fifos { paths, stdout, stdin }
}

/// Reads a FIFO on a thread into a shared buffer.
fn collect(file: File) -> (std::sync::Arc<std::sync::Mutex<Vec<u8>>>, mpsc::Receiver<()>) {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (done, ended) = mpsc::channel();
    let into = buf.clone();
    std::thread::spawn(move || {
        let mut file = file;
        let mut chunk = [0u8; 4096];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => into.lock().expect("buffer").extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
    (buf, ended)
}

fn wait_for_text(buf: &std::sync::Mutex<Vec<u8>>, text: &str) {
    wait_until(&format!("{text:?} in the output"), || String::from_utf8_lossy(&buf.lock().expect("buffer")).contains(text));
}

#[test]
fn stdin_once_a_terminal_and_its_resizes_through_the_api() {
    let s = Skiff::start().expect("skiffd");
    busybox(&s);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let channel = skiff_api::connect(&s.socket).await.expect("connect");
        let mut containers = ContainersClient::new(channel);

        // stdin_once: the first client's stdin end is the container's; cat then exits.
        let create = v1::CreateContainerRequest {
            image: IMAGE.into(),
            name: "once".into(),
            args: vec!["cat".into()],
            open_stdin: true,
            stdin_once: true,
            ..Default::default()
        };
        containers.create(create).await.expect("create");
        containers.start(v1::StartContainerRequest { id: "once".into() }).await.expect("start");
        let mut client = attach(&s, &["once"]);
        client.type_line("only once");
        assert_eq!(client.line(), "only once");
        let (rest, code, stderr) = client.finish();
        assert_eq!((rest.len(), code), (0, 0), "cat read EOF and exited 0: {stderr}");
        let exit = containers.wait(v1::WaitContainerRequest { id: "once".into(), exec_id: String::new() }).await.expect("wait").into_inner();
        assert_eq!(exit.exit_code, 0);
        let refused = containers.create(v1::CreateContainerRequest { image: IMAGE.into(), stdin_once: true, ..Default::default() }).await.expect_err("stdin_once alone");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);

        // A terminal: one output stream, sized at attach and by Resize; it ends with the shell.
        s.cli(&["run", "-d", "-t", "-i", "--name", "term", IMAGE, "sh"]).ok();
        let mut wrong = fifos(&mut containers, false).await;
        wrong.paths.tty = false;
        let refused = containers.attach(v1::AttachContainerRequest { id: "term".into(), stdio: Some(wrong.paths.clone()) }).await.expect_err("tty must match");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains("the container has a terminal: attach with tty"), "{}", refused.message());
        let mut term = fifos(&mut containers, true).await;
        term.paths.tty = true;
        (term.paths.rows, term.paths.columns) = (40, 100);
        containers.attach(v1::AttachContainerRequest { id: "term".into(), stdio: Some(term.paths.clone()) }).await.expect("attach with a terminal");
        let (output, ended) = collect(term.stdout);
        let mut stdin = term.stdin.take().expect("stdin");
        stdin.write_all(b"busybox stty size\n").expect("type");
        wait_for_text(&output, "40 100");
        containers.resize(v1::ResizeContainerRequest { id: "term".into(), exec_id: String::new(), rows: 33, columns: 111 }).await.expect("resize");
        stdin.write_all(b"busybox stty size\n").expect("type");
        wait_for_text(&output, "33 111");
        stdin.write_all(b"exit 7\n").expect("type");
        ended.recv_timeout(LONG).expect("the output ends when the shell exits");
        let exit = containers.wait(v1::WaitContainerRequest { id: "term".into(), exec_id: String::new() }).await.expect("wait").into_inner();
        assert_eq!(exit.exit_code, 7);
        drop(stdin);
        for name in ["once", "term"] {
            containers.delete(v1::DeleteContainerRequest { id: name.into(), force: true }).await.expect("delete");
        }
    });
}
