//! The pinned namespaces: new, set up inside, seen by the host, refused cleanly, undone.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skiff_types::{ErrorKind, HasKind};

use super::*;
use crate::pod::{PidHolder, EXIT_INVALID};

fn inside(ns_flag: &str, file: &Path, cmd: &[&str]) -> String {
    let flag = format!("--{ns_flag}={}", file.display());
    let mut args = vec![flag.as_str(), "--"];
    args.extend_from_slice(cmd);
    run("nsenter", &args)
}

#[test]
fn net_ipc_uts_are_new_set_up_inside_and_unpinned() {
    if !is_root() {
        return;
    }
    let dir = PodDir::new("full");
    let mut req = dir.request(true, true, true);
    req.hostname = Some("pod-full".into());
    let host_port_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").expect("host sysctl");
    let host_ping = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").expect("host sysctl");
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").expect("host sysctl");
    req.sysctls.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
    // The slash form, as sysctl.d allows.
    req.sysctls.insert("net/ipv4/ping_group_range".into(), "0 2147483647".into());
    req.sysctls.insert("kernel.shmmni".into(), "1234".into());
    let pinned = pin_ok(&req);

    let files: Vec<_> = pinned.files().map(Path::to_path_buf).collect();
    assert_eq!(files, [dir.0.join("net"), dir.0.join("ipc"), dir.0.join("uts")]);
    for (name, file) in ["net", "ipc", "uts"].iter().zip(&files) {
        assert_ne!(ns_inode(file), ns_inode(&Path::new("/proc/self/ns").join(name)), "{name} namespace is the host's");
        // Visible in the host's mount namespace as the nsfs mount it is.
        assert_eq!(run("findmnt", &["-n", "-o", "FSTYPE", &file.display().to_string()]), "nsfs");
    }
    assert_eq!(dir.mounts().len(), 3);

    let lo = inside("net", &files[0], &["ip", "link", "show", "lo"]);
    assert!(lo.contains("<LOOPBACK,UP"), "lo is not up in the pod: {lo}");
    assert_eq!(inside("net", &files[0], &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]), "0");
    assert_eq!(inside("net", &files[0], &["cat", "/proc/sys/net/ipv4/ping_group_range"]), "0\t2147483647");
    assert_eq!(inside("ipc", &files[1], &["cat", "/proc/sys/kernel/shmmni"]), "1234");
    assert_eq!(inside("uts", &files[2], &["hostname"]), "pod-full");
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").expect("host"), host_port_start);
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").expect("host"), host_ping);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").expect("host"), host_shmmni);
    assert_ne!(run("hostname", &[]), "pod-full");

    unpin_ok(&pinned);
    dir_files_gone(&dir);
    unpin(&pinned).expect("a second unpin succeeds");
}

/// After an unpin the dir stays (it is the pod's) but holds neither mounts nor pin files.
fn dir_files_gone(dir: &PodDir) {
    assert_eq!(dir.mounts(), Vec::<String>::new());
    for name in ["net", "ipc", "uts"] {
        assert!(!dir.0.join(name).exists(), "{name} left in {}", dir.0.display());
    }
}

#[test]
fn a_host_network_pod_pins_no_net() {
    if !is_root() {
        return;
    }
    let dir = PodDir::new("hostnet");
    let pinned = pin_ok(&dir.request(false, true, true));
    assert_eq!(pinned.net, None);
    assert!(!dir.0.join("net").exists());
    assert_eq!(dir.mounts().len(), 2);
    unpin_ok(&pinned);
    dir_files_gone(&dir);
}

#[test]
fn a_host_wide_sysctl_is_refused_and_nothing_is_left() {
    if !is_root() {
        return;
    }
    let dir = PodDir::new("swappiness");
    let mut req = dir.request(true, true, true);
    req.sysctls.insert("vm.swappiness".into(), "10".into());
    let e = pin(&shim(), &req).expect_err("refused");
    assert!(e.to_string().contains("\"vm.swappiness\" is not namespaced"), "{e}");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    dir.assert_clean();

    // The helper refuses it as well when a caller skips the client's check.
    let mut child = Command::new(shim()).arg("pin").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(&serde_json::to_vec(&req).expect("json")).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(EXIT_INVALID));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vm.swappiness"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    dir.assert_clean();
}

#[test]
fn a_sysctl_the_kernel_refuses_undoes_the_files_and_mounts() {
    if !is_root() {
        return;
    }
    // Namespaced by name, so they pass the checks, but the kernel has no such knob or refuses
    // the value: the child fails after the dir and its files were made.
    for (name, value, says) in [("net.ipv4.no_such_knob", "1", "does not exist on this kernel"), ("net.ipv4.ip_unprivileged_port_start", "not-a-port", "the kernel refuses the value")] {
        let dir = PodDir::new("refused");
        let mut req = dir.request(true, true, true);
        req.pid_holder = true;
        req.sysctls.insert(name.into(), value.into());
        let e = pin(&shim(), &req).expect_err("refused by the kernel");
        assert!(e.to_string().contains(&format!("{name:?}: {says}")) || e.to_string().contains(&format!("{name:?} {says}")), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        dir.assert_clean();
    }
}

#[test]
fn a_pinned_dir_is_refused_and_left_as_it_was() {
    if !is_root() {
        return;
    }
    let dir = PodDir::new("twice");
    let req = dir.request(true, false, true);
    let pinned = pin_ok(&req);
    let inode = ns_inode(&dir.0.join("net"));
    let e = pin(&shim(), &req).expect_err("pinned already");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("holds a pin already"), "{e}");
    assert_eq!(ns_inode(&dir.0.join("net")), inode, "the first pin was disturbed");
    assert_eq!(dir.mounts().len(), 2);
    unpin_ok(&pinned);
    dir_files_gone(&dir);
}

#[test]
fn unpin_of_what_was_never_made_succeeds_and_kills_nobody() {
    let dir = PodDir::new("half");
    let me = std::process::id() as i32;
    let my_start = crate::pod::start_time(me).expect("own start time");
    // Files never made, and a holder record whose pid is now someone else's (this test's):
    // the start time tells them apart.
    let half = Pinned {
        net: Some(dir.0.join("net")),
        ipc: None,
        uts: Some(dir.0.join("uts")),
        pid_holder: Some(PidHolder { pid: me, ns: format!("/proc/{me}/ns/pid").into(), start_time: my_start + 1 }),
    };
    unpin(&half).expect("nothing to undo");
    unpin(&half).expect("still nothing");
    let gone = Pinned { pid_holder: Some(PidHolder { pid: i32::MAX, ns: "/proc/2147483647/ns/pid".into(), start_time: 1 }), ..Default::default() };
    unpin(&gone).expect("no such process");
}

#[test]
fn twenty_parallel_pins_are_distinct_and_all_undone() {
    if !is_root() {
        return;
    }
    let dirs: Vec<PodDir> = (0..20).map(|_| PodDir::new("parallel")).collect();
    let pinned: Vec<Pinning> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|d| {
                s.spawn(move || {
                    let mut req = d.request(true, true, true);
                    req.pid_holder = true;
                    pin_ok(&req)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("pin thread")).collect()
    });
    let mut nets: Vec<String> = pinned.iter().map(|p| ns_inode(p.net.as_deref().expect("net"))).collect();
    let mut pids: Vec<i32> = pinned.iter().map(|p| p.pid_holder.as_ref().expect("holder").pid).collect();
    nets.sort();
    nets.dedup();
    pids.sort();
    pids.dedup();
    assert_eq!((nets.len(), pids.len()), (20, 20), "pins share namespaces or holders");
    let (rss, pss): (Vec<u64>, Vec<u64>) = pinned.iter().map(|p| rss_pss(p.pid_holder.as_ref().expect("holder").pid)).unzip();
    eprintln!("20 holders: RSS {:?} kB, PSS {:?} kB", rss, pss);
    std::thread::scope(|s| {
        for p in &pinned {
            s.spawn(move || unpin_ok(p));
        }
    });
    for (d, p) in dirs.iter().zip(&pinned) {
        dir_files_gone(d);
        let h = p.pid_holder.as_ref().expect("holder");
        assert!(!h.is_alive(), "holder {} survived its unpin", h.pid);
    }
}

#[test]
fn one_pin_takes_milliseconds() {
    if !is_root() {
        return;
    }
    let sealed = shim();
    let disk = shim_on_disk();
    for (what, shim, holder) in [("sealed memfd", &sealed, false), ("sealed memfd, pid holder", &sealed, true), ("binary on disk", &disk, false)] {
        let mut times = Vec::new();
        for _ in 0..50 {
            let dir = PodDir::new("latency");
            let mut req = dir.request(true, true, true);
            req.pid_holder = holder;
            let started = Instant::now();
            let pinned = Pinning(pin(shim, &req).unwrap_or_else(|e| panic!("pin: {e}")));
            times.push(started.elapsed());
            unpin_ok(&pinned);
        }
        times.sort();
        eprintln!("pin ({what}): p50 {:?}, p90 {:?}, max {:?}", times[25], times[45], times[49]);
        assert!(times[25] < Duration::from_millis(500), "p50 of a pin from the {what} is {:?}", times[25]);
    }
}

#[test]
fn under_a_shared_mount_the_pin_and_its_unpin_reach_peer_mount_namespaces() {
    if !is_root() {
        return;
    }
    // As on a systemd host, where / is shared: the pod dir below a shared mount, and another
    // mount namespace its peer.
    let dir = PodDir::new("shared");
    let parent = dir.0.parent().expect("a parent").to_path_buf();
    std::fs::create_dir_all(&parent).expect("mkdir");
    let parent_arg = parent.display().to_string();
    run("mount", &["--bind", &parent_arg, &parent_arg]);
    run("mount", &["--make-shared", &parent_arg]);
    let mut peer = Command::new("unshare").args(["--mount", "--propagation", "unchanged", "sleep", "60"]).spawn().expect("unshare");
    let peer_mounts = |pid: u32| -> Vec<String> {
        let table = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        table.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&format!("{}/", dir.0.display()))).map(str::to_string).collect()
    };
    // unshare has made its namespace once its ns/mnt link differs from ours.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_link(format!("/proc/{}/ns/mnt", peer.id())).ok() == std::fs::read_link("/proc/self/ns/mnt").ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ne!(std::fs::read_link(format!("/proc/{}/ns/mnt", peer.id())).ok(), std::fs::read_link("/proc/self/ns/mnt").ok(), "unshare made no mount namespace");
    let pinned = pin_ok(&dir.request(true, false, true));
    assert_eq!(peer_mounts(peer.id()), [dir.0.join("net").display().to_string(), dir.0.join("uts").display().to_string()]);
    unpin_ok(&pinned);
    assert_eq!(peer_mounts(peer.id()), Vec::<String>::new(), "the peer keeps the namespaces alive after the unpin");
    let _ = peer.kill();
    let _ = peer.wait();
    run("umount", &["-l", &parent_arg]);
}
