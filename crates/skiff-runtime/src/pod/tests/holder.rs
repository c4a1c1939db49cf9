//! The pid holder: PID 1 of the pod's PID namespace, hard to kill but by unpin, a reaper of
//! orphans, small, and gone with its pod.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::*;
use crate::pod::PidHolder;

fn pin_with_holder(tag: &str) -> (PodDir, Pinning, PidHolder) {
    let dir = PodDir::new(tag);
    let mut req = dir.request(true, true, true);
    req.hostname = Some(format!("holder-{tag}"));
    req.pid_holder = true;
    let pinned = pin_ok(&req);
    let holder = pinned.pid_holder.clone().expect("a holder was asked for");
    (dir, pinned, holder)
}

fn status_field(pid: i32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
}

#[test]
fn the_holder_is_pid_1_of_the_pods_namespaces_and_ignores_signals() {
    if !is_root() {
        return;
    }
    let (dir, pinned, holder) = pin_with_holder("pid1");
    assert_eq!(status_field(holder.pid, "NSpid:"), format!("{}\t1", holder.pid));
    // What a process of the pod sees, with its own /proc.
    let ns = format!("--pid={}", holder.ns.display());
    let ps = run("nsenter", &[&ns, "--", "unshare", "--mount", "--mount-proc", "ps", "-o", "pid=,comm=", "-p", "1"]);
    assert_eq!(ps.split_whitespace().collect::<Vec<_>>(), ["1", "skiff-pod-init"]);
    // In the pod's other namespaces, not the host's.
    for name in ["net", "ipc", "uts"] {
        assert_eq!(ns_inode(Path::new(&format!("/proc/{}/ns/{name}", holder.pid))), ns_inode(&dir.0.join(name)), "{name}");
    }
    // Unprivileged, with nothing of the helper's open.
    assert_eq!(status_field(holder.pid, "Uid:").split_whitespace().collect::<Vec<_>>(), ["65535"; 4]);
    assert_eq!(status_field(holder.pid, "CapEff:"), "0000000000000000");
    // Non-dumpable: its /proc files stay root's, out of reach of a pod process of uid 65535.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::symlink_metadata(format!("/proc/{}/exe", holder.pid)).expect("exe").uid(), 0);
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", holder.pid)).expect("fds").map(|e| std::fs::read_link(e.expect("fd").path()).expect("link")).collect();
    assert_eq!(fds, vec![PathBuf::from("/dev/null"); 3]);

    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGPIPE] {
        kill(Pid::from_raw(holder.pid), signal).expect("signal");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(holder.is_alive(), "the holder died of a signal it should ignore");
    let (rss, pss) = rss_pss(holder.pid);
    eprintln!("holder {}: RSS {rss} kB, PSS {pss} kB", holder.pid);
    assert!(pss < 4096, "the holder costs {pss} kB PSS");
    unpin_ok(&pinned);
}

#[test]
fn the_holder_reaps_the_pods_orphans() {
    if !is_root() {
        return;
    }
    let (_dir, pinned, holder) = pin_with_holder("reap");
    // sh starts a sleep in the pod's PID namespace and exits: the sleep is orphaned and goes
    // to the namespace's PID 1. (Its stdio elsewhere: `run` waits for EOF on its stdout.)
    let ns = format!("--pid={}", holder.ns.display());
    run("nsenter", &[&ns, "--", "sh", "-c", "sleep 0.5 </dev/null >/dev/null 2>&1 & exit 0"]);
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.pid)).expect("children");
    let orphans: Vec<i32> = children.split_whitespace().map(|p| p.parse().expect("pid")).collect();
    assert_eq!(orphans.len(), 1, "the orphan was not reparented to the holder: {children:?}");
    let orphan = orphans[0];
    let orphan_start = crate::pod::start_time(orphan).expect("orphan's stat");
    // Once the sleep exits it must not stay a zombie.
    assert!(wait_gone(orphan, orphan_start, Duration::from_secs(5)), "orphan {orphan} was not reaped");
    assert!(holder.is_alive());
    unpin_ok(&pinned);
}

#[test]
fn unpin_kills_the_holder_and_no_process_is_left() {
    if !is_root() {
        return;
    }
    let (dir, pinned, holder) = pin_with_holder("kill");
    assert!(holder.is_alive());
    unpin_ok(&pinned);
    // Exited at once; gone once whoever it was reparented to (here init) reaped it.
    assert!(!holder.is_alive());
    assert!(wait_gone(holder.pid, holder.start_time, Duration::from_secs(10)), "holder {} was never reaped", holder.pid);
    unpin(&pinned).expect("a second unpin succeeds");
    assert_eq!(dir.mounts(), Vec::<String>::new());
}

#[test]
fn a_holder_whose_answer_cannot_be_delivered_does_not_stay() {
    if !is_root() {
        return;
    }
    let dir = PodDir::new("lost");
    let mut req = dir.request(true, true, true);
    req.hostname = Some(format!("lost-{}", std::process::id()));
    req.pid_holder = true;
    // Nobody reads the answer: the helper's write fails after the holder was made.
    let mut child = Command::new(shim()).arg("pin").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    drop(child.stdout.take());
    child.stdin.take().expect("stdin").write_all(&serde_json::to_vec(&req).expect("json")).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writing the answer"), "{}", String::from_utf8_lossy(&out.stderr));
    dir.assert_clean();
    // No holder lives in a UTS namespace with this pod's hostname.
    let hostname = req.hostname.as_deref().expect("set above");
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "skiff-pod-init") {
            let uts = format!("--uts=/proc/{pid}/ns/uts");
            let name = Command::new("nsenter").args([uts.as_str(), "hostname"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
            assert_ne!(name, hostname, "holder {pid} of the failed pin is still running");
        }
    }
}
