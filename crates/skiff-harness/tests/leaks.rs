//! Teardown's leak checks: what skiffd, its containers or a test leave on the host is reported by
//! kind, then cleaned up, and a teardown that removed everything reports clean.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use skiff_harness::{Harness, Leak, LeakKind};

use common::{alive, cgroup_dirs, import_busybox, mounts_under, processes_under, run, shims_under, IMAGE};

#[test]
fn what_a_test_leaves_is_reported_by_kind_and_cleaned() {
    let h = Harness::start().expect("harness");
    let dir = h.dir().to_path_buf();
    let tmpfs = dir.join("leaked-tmpfs");
    std::fs::create_dir(&tmpfs).expect("mkdir");
    run("mount", &["-t", "tmpfs", "tmpfs", tmpfs.to_str().expect("utf8")]);
    // A network namespace pinned the way a pod's is: nsfs bind-mounted on a file.
    let netns = dir.join("leaked-netns");
    std::fs::write(&netns, "").expect("touch");
    run("mount", &["--bind", "/proc/self/ns/net", netns.to_str().expect("utf8")]);
    // An address host-local still holds for the harness's network, next to its bookkeeping.
    let reservations = h.cni().reservations_dir();
    std::fs::create_dir_all(&reservations).expect("reservations dir");
    let [a, b, c, _] = h.cni().gateway().octets();
    let ip = Ipv4Addr::new(a, b, c, 7).to_string();
    std::fs::write(reservations.join(&ip), "container\neth0").expect("reservation");
    std::fs::write(reservations.join("last_reserved_ip.0"), &ip).expect("last reserved");
    // A pod's veth left on the harness's bridge.
    let bridge = h.cni().bridge().to_string();
    let (veth, peer) = (bridge.replacen("skh", "skv", 1), bridge.replacen("skh", "skp", 1));
    run("ip", &["link", "add", &bridge, "type", "bridge"]);
    run("ip", &["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
    run("ip", &["link", "set", &veth, "master", &bridge]);
    // A process running from the dir.
    let mut sleeper = Command::new("sleep").arg("100").current_dir(&dir).spawn().expect("sleep");

    let report = h.shutdown().expect("shutdown");
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.leaks.contains(&Leak::Mount { point: tmpfs.clone(), fstype: "tmpfs".into() }), "{report}");
    assert!(report.leaks.contains(&Leak::NsfsMount { point: netns.clone(), holder: None }), "{report}");
    assert!(report.leaks.contains(&Leak::IpReservation { path: reservations.join(&ip), ip }), "{report}");
    assert_eq!(report.of_kind(LeakKind::IpReservation).count(), 1, "bookkeeping is not a reservation: {report}");
    assert!(report.leaks.contains(&Leak::Interface { name: veth.clone(), bridge: bridge.clone() }), "{report}");
    assert!(report.of_kind(LeakKind::Process).any(|l| matches!(l, Leak::Process { pid, .. } if *pid == sleeper.id())), "{report}");
    assert!(!report.is_clean());

    assert_eq!(sleeper.wait().expect("wait").signal(), Some(9));
    assert_eq!(mounts_under(&dir), Vec::<std::path::PathBuf>::new());
    assert!(!dir.exists() && !reservations.exists());
    for link in [&bridge, &veth, &peer] {
        assert!(!Path::new("/sys/class/net").join(link).exists(), "{link} still there");
    }
}

#[test]
fn a_namespace_pinned_in_another_mount_namespace_is_found_there() {
    let h = Harness::start().expect("harness");
    let pin = h.dir().join("pinned-elsewhere");
    std::fs::write(&pin, "").expect("touch");
    // A mount namespace of its own, where the pin is made: ours never sees it.
    let script = format!("mount --bind /proc/self/ns/net '{}' && exec sleep 100", pin.display());
    let mut holder = Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]).current_dir("/").spawn().expect("unshare");
    let pid = holder.id();
    let pinned = || std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default().contains(&format!(" {} ", pin.display()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pinned() {
        assert!(std::time::Instant::now() < deadline && holder.try_wait().expect("wait").is_none(), "the pin was not made");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!mounts_under(h.dir()).contains(&pin));

    let report = h.shutdown().expect("shutdown");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.leaks, vec![Leak::NsfsMount { point: pin.clone(), holder: Some(pid) }], "{report}");
    assert!(!pinned(), "the pin is still mounted in the namespace of {pid}");
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn a_leak_fails_the_drop_with_the_report() {
    let h = Harness::start().expect("harness");
    let dir = h.dir().to_path_buf();
    let tmpfs = dir.join("leaked-tmpfs");
    std::fs::create_dir(&tmpfs).expect("mkdir");
    run("mount", &["-t", "tmpfs", "tmpfs", tmpfs.to_str().expect("utf8")]);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(h))).expect_err("drop panics on a leak");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains(&format!("mount: {} (tmpfs)", tmpfs.display())), "{message}");
    assert!(mounts_under(&dir).is_empty() && !dir.exists());
}

#[test]
fn a_container_running_at_teardown_is_removed_and_the_report_is_clean() {
    let h = Harness::start().expect("harness");
    import_busybox(&h);
    let id = h.cli_ok(["run", "-d", IMAGE, "sleep", "100"]).expect("run -d").trim().to_string();
    let dir = h.dir().to_path_buf();
    let shims = shims_under(&dir);
    assert!(!shims.is_empty(), "no shim serves {id}");
    assert!(!cgroup_dirs(&id).is_empty(), "no cgroup for {id}");
    assert!(!mounts_under(&dir).is_empty(), "no rootfs mounted for {id}");

    let report = h.shutdown().expect("shutdown");
    assert!(report.is_clean(), "{report}");
    assert!(shims.iter().all(|&p| !alive(p)), "shims {shims:?} still there");
    assert!(cgroup_dirs(&id).is_empty() && !dir.exists());
}

#[test]
fn a_killed_skiffd_leaves_its_container_and_teardown_reports_and_cleans_it() {
    let mut h = Harness::start().expect("harness");
    import_busybox(&h);
    let id = h.cli_ok(["run", "-d", IMAGE, "sleep", "100"]).expect("run -d").trim().to_string();
    let dir = h.dir().to_path_buf();
    let shims = shims_under(&dir);
    assert!(!shims.is_empty(), "no shim serves {id}");
    // Nothing can remove the container now: teardown finds what it left.
    h.kill9();

    let report = h.shutdown().expect("shutdown");
    assert!(report.errors.is_empty(), "{report}");
    // A shim's forked child may have become the container's process since: it is in the cgroup.
    let reported: Vec<u32> = report
        .leaks
        .iter()
        .flat_map(|l| match l {
            Leak::Shim { pid, .. } => vec![*pid],
            Leak::Cgroup { pids, .. } => pids.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert!(report.of_kind(LeakKind::Shim).count() > 0 && shims.iter().all(|p| reported.contains(p)), "shims {shims:?}, reported: {report}");
    assert!(report.of_kind(LeakKind::Cgroup).any(|l| matches!(l, Leak::Cgroup { path, .. } if path.ends_with(&id))), "{report}");
    assert!(report.of_kind(LeakKind::Mount).any(|l| matches!(l, Leak::Mount { point, .. } if point.starts_with(h_root(&dir).join("containers").join(&id)))), "{report}");

    assert!(shims.iter().all(|&p| !alive(p)), "shims {shims:?} still there");
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(mounts_under(&dir).is_empty() && processes_under(&dir).is_empty() && !dir.exists());
}

fn h_root(dir: &Path) -> std::path::PathBuf {
    dir.join("root")
}
