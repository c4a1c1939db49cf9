//! The engine's event bus through `skiff events`, images that containers use, and many running
//! containers followed without a thread each (also after skiffd is killed and restarted).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skiff_integration::{bin, Skiff};
use skiff_testimage::{write_layout, ImageSpec};

const IMAGE: &str = "localhost/test/busybox:1";

fn busybox(s: &Skiff) {
    let spec = ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)");
    let layout = s.path("layout");
    write_layout(&spec, &layout).expect("layout");
    s.cli(&["images", "import", layout.to_str().expect("utf8")]).ok();
}

/// A running `skiff events`, its lines read on a thread.
struct Events {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Events {
    fn start(s: &Skiff, filters: &[&str]) -> Events {
        let mut cmd = Command::new(bin("skiff"));
        cmd.arg("--address").arg(&s.socket).arg("events");
        for f in filters {
            cmd.args(["--filter", f]);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("skiff events");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).expect("a JSON line"));
            }
        });
        // The subscription is made once the stream opened; give the RPC a moment.
        std::thread::sleep(Duration::from_millis(300));
        Events { child, lines }
    }

    fn next(&self) -> serde_json::Value {
        self.lines.recv_timeout(Duration::from_secs(20)).expect("an event within 20 s")
    }

    /// (Type, Name) of the next `n` events.
    fn take(&self, n: usize) -> Vec<(String, String)> {
        (0..n).map(|_| self.next()).map(|e| (e["Type"].as_str().unwrap_or("").to_string(), e["Name"].as_str().unwrap_or("").to_string())).collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

#[test]
fn lifecycle_events_reach_subscribers_with_their_filters() {
    let s = Skiff::start().expect("skiffd");
    busybox(&s);
    let all = Events::start(&s, &[]);
    let exits = Events::start(&s, &["type=exited", "container=second"]);

    assert_eq!(s.cli(&["run", "--name", "first", IMAGE, "sh", "-c", "exit 3"]).code, 3);
    s.cli(&["rm", "first"]).ok();
    assert_eq!(all.take(4), [pair("created", "first"), pair("started", "first"), pair("exited", "first"), pair("deleted", "first")]);

    s.cli(&["run", "--rm", "--name", "second", IMAGE, "true"]).ok();
    let created = all.next();
    assert_eq!((created["Type"].as_str(), created["Name"].as_str()), (Some("created"), Some("second")));
    assert_eq!(created["ID"].as_str().map(str::len), Some(64));
    assert_eq!(all.take(3), [pair("started", "second"), pair("exited", "second"), pair("deleted", "second")]);
    let exit = exits.next();
    assert_eq!((exit["Name"].as_str(), exit["ExitCode"].as_i64(), exit["Reason"].as_str()), (Some("second"), Some(0), Some("Completed")));

    // An OOM kill is its own event, before the exit.
    let out = s.cli(&["run", "--name", "oom", "-m", "16m", IMAGE, "sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"]);
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert_eq!(all.take(4), [pair("created", "oom"), pair("started", "oom"), pair("oom", "oom"), pair("exited", "oom")]);
    assert!(exits.lines.try_recv().is_err(), "the filtered subscriber saw nothing of the others");

    s.cli(&["events", "--filter", "type=exploded"]).fails_with(&["unknown event type \"exploded\""]);
}

#[test]
fn an_image_in_use_is_kept_unless_forced_and_found_by_id() {
    let s = Skiff::start().expect("skiffd");
    busybox(&s);
    s.cli(&["run", "-d", "--name", "user", IMAGE, "sleep", "60"]).ok();
    s.cli(&["images", "rm", IMAGE]).fails_with(&["used by container(s) user", "force"]);
    // A second name keeps the image: removing one name is fine.
    s.cli(&["images", "tag", IMAGE, "localhost/test/other:1"]).ok();
    s.cli(&["images", "rm", "localhost/test/other:1"]).ok();
    // By id: the target digest's hex, or a unique prefix of it.
    let listed: serde_json::Value = serde_json::from_str(&s.cli(&["images", "ls", "-o", "json"]).ok()).expect("json");
    let digest = listed[0]["digest"].as_str().expect("digest").to_string();
    let short = &digest["sha256:".len()..][..12];
    let doc: serde_json::Value = serde_json::from_str(&s.cli(&["images", "inspect", short]).ok()).expect("inspect json");
    assert_eq!(doc["Name"].as_str(), Some(IMAGE), "inspect by short id");
    s.cli(&["images", "inspect", &digest]).ok();
    s.cli(&["images", "rm", short]).fails_with(&["used by container(s) user"]);
    s.cli(&["rm", "-f", "user"]).ok();
    s.cli(&["images", "rm", short]).ok();
    assert!(s.images().is_empty());
}

/// Threads of a process, from /proc.
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).expect("Threads:")
}

#[test]
fn many_running_containers_cost_no_thread_each_and_every_exit_is_reported() {
    const N: usize = 48;
    let mut s = Skiff::start().expect("skiffd");
    busybox(&s);
    for i in 0..N {
        s.cli(&["run", "-d", "--name", &format!("s{i}"), IMAGE, "sleep", "300"]).ok();
    }
    let pid = s.pid().expect("pid");
    // Followers are futures, not threads: the count does not grow with the containers.
    let limit = 32;
    assert!(threads(pid) <= limit, "skiffd has {} threads with {N} running containers", threads(pid));
    s.kill9();
    s.spawn().expect("restart");
    let pid = s.pid().expect("pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads(pid) > limit && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(threads(pid) <= limit, "skiffd has {} threads following {N} containers after a restart", threads(pid));
    let exits = Events::start(&s, &["type=exited"]);
    for i in 0..N {
        s.cli(&["kill", &format!("s{i}")]).ok();
    }
    let mut names: Vec<String> = (0..N).map(|_| exits.next()["Name"].as_str().unwrap_or("").to_string()).collect();
    names.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
    want.sort();
    assert_eq!(names, want, "every exit reported once");
    assert_eq!(s.cli(&["ps", "-q"]).ok(), "", "none listed as running");
    for i in 0..N {
        s.cli(&["rm", &format!("s{i}")]).ok();
    }
}
