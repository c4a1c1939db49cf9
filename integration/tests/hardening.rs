//! What a local user, a hostile image and bad ids found: the store is not readable by other users,
//! and ids that would leave a process root are refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use skiff_integration::Skiff;
use skiff_testimage::{files_layer, write_layout, ImageSpec};

const IMAGE: &str = "localhost/test/busybox:1";
const PROBE: &str = "skiff-probe";

fn busybox(s: &Skiff, spec: &ImageSpec) {
    let layout = s.path(&format!("layout-{}", spec.name.replace(['/', ':'], "-")));
    write_layout(spec, &layout).expect("layout");
    s.cli(&["images", "import", layout.to_str().expect("utf8")]).ok();
}

fn image() -> ImageSpec {
    ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)")
}

/// A non-root user of the host, made for the test.
fn probe_user() -> &'static str {
    if !Command::new("id").arg(PROBE).output().is_ok_and(|o| o.status.success()) {
        let made = Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE]).status().expect("useradd");
        assert!(made.success() || Command::new("id").arg(PROBE).output().is_ok_and(|o| o.status.success()), "useradd {PROBE}");
    }
    PROBE
}

/// Runs `cmd` as the probe user; true when it succeeded.
fn as_probe(cmd: &[&str]) -> bool {
    let user = probe_user();
    Command::new("setpriv").args(["--reuid", user, "--regid", user, "--clear-groups", "--"]).args(cmd).output().expect("setpriv").status.success()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

#[test]
fn another_user_of_the_host_reads_nothing_of_the_store() {
    let mut s = Skiff::start().expect("skiffd");
    // The harness's temp dir is private; open it up as /var/lib is, so only Skiff's own modes count.
    std::fs::set_permissions(s.root.parent().expect("parent"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    busybox(&s, &image());
    let id = s.cli(&["run", "-d", "-e", "SECRET=hunter2", IMAGE, "sleep", "60"]).ok().trim().to_string();
    let root = s.root.clone();
    let config = root.join("containers").join(&id).join("bundle/config.json");
    assert!(std::fs::read_to_string(&config).expect("config.json").contains("hunter2"));
    for (what, cmd) in [
        ("list the root", vec!["ls", root.to_str().expect("utf8")]),
        ("list containers", vec!["ls", root.join("containers").to_str().expect("utf8")]),
        ("read a container's config.json", vec!["cat", config.to_str().expect("utf8")]),
        ("list a running container's rootfs", vec!["ls", root.join("containers").join(&id).join("bundle/rootfs").to_str().expect("utf8")]),
        ("list the blobs", vec!["ls", root.join("content/blobs/sha256").to_str().expect("utf8")]),
        ("list the metadata", vec!["ls", root.join("metadata").to_str().expect("utf8")]),
        ("list the snapshots", vec!["ls", root.join("snapshots").to_str().expect("utf8")]),
    ] {
        assert!(!as_probe(&cmd), "another user could {what}");
    }
    assert!(as_probe(&["true"]), "the probe itself runs");
    assert_eq!(mode(&root), 0o711);
    for dir in ["containers", "content", "metadata", "snapshots"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&root.join("containers").join(&id)), 0o700);
    assert_eq!(mode(&config), 0o600);
    s.cli(&["rm", "-f", &id]).ok();

    // A root made with wider modes (an older skiffd, or by hand) is narrowed at start.
    s.stop();
    for dir in [root.clone(), root.join("content"), root.join("snapshots"), root.join("containers")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    s.spawn().expect("restart");
    assert_eq!(mode(&root), 0o711);
    for dir in ["containers", "content", "snapshots"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir} after a restart");
    }
}

#[test]
fn ids_that_would_leave_a_process_root_are_refused() {
    let s = Skiff::start().expect("skiffd");
    let mut spec = image();
    // An image whose own passwd and group give a user and a group the id (uid_t)-1.
    spec.layers.push(
        files_layer(&[("etc/passwd", b"root:x:0:0::/root:/bin/sh\nevil:x:4294967295:0::/:/bin/sh\n"), ("etc/group", b"root:x:0:\nwheel:x:4294967295:\n")], true)
            .expect("layer"),
    );
    busybox(&s, &spec);
    assert_eq!(s.cli(&["run", "--rm", "-u", "2147483647", IMAGE, "id", "-u"]).ok(), "2147483647\n", "the largest id runs");
    for user in ["4294967295", "0:4294967295", "2147483648", "evil", "root:wheel"] {
        s.cli(&["run", "--rm", "-u", user, IMAGE, "id"]).fails_with(&["out of range", "0-2147483647"]);
        s.cli(&["run", "--rm", "--runtime", "runc", "-u", user, IMAGE, "id"]).fails_with(&["out of range"]);
    }
    let id = s.cli(&["run", "-d", IMAGE, "sleep", "60"]).ok().trim().to_string();
    s.cli(&["exec", "-u", "4294967295", &id, "id"]).fails_with(&["out of range"]);
    s.cli(&["rm", "-f", &id]).ok();
    assert_eq!(s.cli(&["ps", "-aq"]).ok(), "", "refused creates leave no container");
}

#[test]
fn a_second_daemon_never_takes_a_live_socket_and_removes_only_its_own() {
    let a = Skiff::start().expect("skiffd a");
    let other_root = a.path("other-root");
    let second = Command::new(skiff_integration::bin("skiffd")).arg("--root").arg(&other_root).arg("--socket").arg(&a.socket).output().expect("skiffd b");
    assert!(!second.status.success(), "a second skiffd on a live socket must not start");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another skiffd") && err.contains(a.socket.to_str().expect("utf8")), "{err}");
    a.cli(&["images", "ls"]).ok();

    // A socket path whose daemon is gone is taken over; a daemon stopping later leaves the new one.
    let mut b = Skiff::start().expect("skiffd b");
    let shared = b.socket.clone();
    std::fs::remove_file(&shared).expect("b's socket goes away (by hand)");
    let c_root = b.path("c-root");
    let spawn_c = || {
        Command::new(skiff_integration::bin("skiffd"))
            .arg("--root")
            .arg(&c_root)
            .arg("--socket")
            .arg(&shared)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("skiffd c")
    };
    let mut c = spawn_c();
    // b holds the lock beside the socket until it stops: c is refused even though the path is free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let refused = loop {
        if let Some(status) = c.try_wait().expect("try_wait") {
            break !status.success();
        }
        if std::time::Instant::now() > deadline {
            let _ = c.kill();
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(refused, "c refused while b holds the lock");
    b.stop();
    let mut c = spawn_c();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !shared.exists() {
        assert!(std::time::Instant::now() < deadline, "c binds the free socket");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let list = Command::new(skiff_integration::bin("skiff")).arg("--address").arg(&shared).args(["images", "ls"]).output().expect("skiff");
    assert!(list.status.success(), "c serves: {}", String::from_utf8_lossy(&list.stderr));
    let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    let _ = c.wait();
    assert!(!shared.exists(), "c removes its own socket at shutdown");
}

#[test]
fn stop_kill_and_rm_of_many_containers_run_at_once() {
    let s = Skiff::start().expect("skiffd");
    busybox(&s, &image());
    // PID 1 ignores SIGTERM without a handler: each stop waits its whole timeout.
    let ids: Vec<String> = (0..8).map(|i| s.cli(&["run", "-d", "--name", &format!("p{i}"), IMAGE, "sleep", "300"]).ok().trim().to_string()).collect();
    let mut args = vec!["stop", "-t", "1"];
    args.extend(ids.iter().map(String::as_str));
    let out = s.cli(&args).ok();
    assert_eq!(out.lines().count(), 8, "{out}");
    // One after another, their exits would be a second or more apart; together, they end as one.
    let mut finished: Vec<chrono::DateTime<chrono::FixedOffset>> = ids
        .iter()
        .map(|id| {
            let doc: serde_json::Value = serde_json::from_str(&s.cli(&["containers", "inspect", id]).ok()).expect("inspect json");
            chrono::DateTime::parse_from_rfc3339(doc[0]["FinishedAt"].as_str().expect("finished")).expect("time")
        })
        .collect();
    finished.sort();
    let spread = finished[7] - finished[0];
    assert!(spread < chrono::Duration::seconds(4), "stops ran one after another: exits {spread} apart");
    // A failure is named and does not stop the others.
    let mut args = vec!["rm", "nosuch"];
    args.extend(ids.iter().map(String::as_str));
    let err = s.cli(&args).fails_with(&["skiff: nosuch: no container \"nosuch\"", "1 container(s) failed"]);
    assert_eq!(s.cli(&["ps", "-aq"]).ok(), "", "the others were removed: {err}");
}

#[test]
fn kill_9_during_run_d_never_leaves_a_wrong_record() {
    let mut s = Skiff::start().expect("skiffd");
    busybox(&s, &image());
    let mut wrong = Vec::new();
    for trial in 0..40u64 {
        let name = format!("k{trial}");
        let mut run = Command::new(skiff_integration::bin("skiff"))
            .arg("--address")
            .arg(&s.socket)
            .args(["run", "-d", "--name", &name, IMAGE, "sleep", "300"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("skiff run");
        // Spread the kill over the whole create and start (a run -d takes some tens of ms).
        std::thread::sleep(std::time::Duration::from_millis(trial * 7 % 80));
        s.kill9();
        let _ = run.wait();
        s.spawn().expect("restart");
        let ps = s.cli(&["ps", "-a", "-o", "json"]);
        assert_eq!(ps.code, 0, "trial {trial}: ps after the restart: {}\nskiffd's log:\n{}", ps.stderr, s.log());
        let listed: serde_json::Value = serde_json::from_str(&ps.stdout).expect("ps json");
        let Some(c) = listed.as_array().expect("array").iter().find(|c| c["name"] == name.as_str()) else { continue };
        // What the record says must be what its state allows.
        let ok = match c["status"].as_str() {
            Some("running") => s.cli(&["exec", &name, "true"]).code == 0,
            Some("created") => s.cli(&["start", &name]).code == 0 && s.cli(&["exec", &name, "true"]).code == 0,
            Some("exited") => true,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{name}: {c}"));
        }
        let rm = s.cli(&["rm", "-f", &name]);
        assert_eq!(rm.code, 0, "trial {trial}: rm -f {name}: {}\nskiffd's log:\n{}", rm.stderr, s.log());
    }
    assert!(wrong.is_empty(), "records that do not say what runs: {wrong:?}");
    assert_eq!(s.cli(&["ps", "-aq"]).ok(), "");
}

#[test]
fn sigterm_ends_open_streams_and_exits_and_a_fifo_is_not_imported() {
    let mut s = Skiff::start().expect("skiffd");
    busybox(&s, &image());
    let fifo = s.path("not-an-archive");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    s.cli(&["images", "import", fifo.to_str().expect("utf8")]).fails_with(&["neither a regular file nor a directory"]);
    s.cli(&["run", "-d", "--name", "talker", IMAGE, "sh", "-c", "while :; do echo tick; sleep 0.2; done"]).ok();
    let follow = |args: &[&str]| {
        Command::new(skiff_integration::bin("skiff"))
            .arg("--address")
            .arg(&s.socket)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("skiff")
    };
    let mut logs = follow(&["logs", "-f", "talker"]);
    let mut events = follow(&["events"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    assert_eq!(s.stop(), Some(0), "skiffd exits 0 on SIGTERM");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "skiffd took {:?} to stop with streams open", started.elapsed());
    for (what, child) in [("logs -f", &mut logs), ("events", &mut events)] {
        let status = child.wait().expect("wait");
        assert!(status.success(), "{what} ends cleanly at shutdown: {status}");
    }
    // The container outlives skiffd, and is found again.
    s.spawn().expect("restart");
    assert!(s.cli(&["ps"]).ok().contains("talker"));
    s.cli(&["rm", "-f", "talker"]).ok();
}

#[test]
fn raw_requests_with_bad_fields_are_refused_at_the_edge() {
    use skiff_api::v1::{self, containers_client::ContainersClient, images_client::ImagesClient};
    let s = Skiff::start().expect("skiffd");
    busybox(&s, &image());
    // A mount over /proc or /sys would undo the masked paths, for every handler.
    for dest in ["/proc", "/sys/fs/cgroup"] {
        s.cli(&["run", "--rm", "-v", &format!("/tmp:{dest}"), IMAGE, "true"]).fails_with(&["cannot mount over /proc or /sys"]);
    }
    let victim = s.path("victim.txt");
    std::fs::write(&victim, "keep me\n").expect("victim");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let channel = skiff_api::connect(&s.socket).await.expect("connect");
        let mut containers = ContainersClient::new(channel.clone());
        let base = v1::CreateContainerRequest { image: IMAGE.into(), args: vec!["true".into()], ..Default::default() };
        let mut cases: Vec<(&str, v1::CreateContainerRequest)> = vec![
            ("hostname", v1::CreateContainerRequest { hostname: "a\0b".into(), ..base.clone() }),
            ("annotation key", v1::CreateContainerRequest { annotations: [("k\0".to_string(), "v".to_string())].into(), ..base.clone() }),
            ("annotation \"k\"", v1::CreateContainerRequest { annotations: [("k".to_string(), "v\0".to_string())].into(), ..base.clone() }),
            ("label key", v1::CreateContainerRequest { labels: [("l\0".to_string(), "v".to_string())].into(), ..base.clone() }),
            ("environment entry", v1::CreateContainerRequest { env: vec!["A=\0".into()], ..base.clone() }),
            ("workdir", v1::CreateContainerRequest { workdir: "/tm\0p".into(), ..base.clone() }),
        ];
        // The shim opens stdio as root: an existing host file, a FIFO the client made itself or
        // another stream's FIFO of a set skiffd made is not stdio.
        let client_fifo = s.path("client.fifo");
        assert!(std::process::Command::new("mkfifo").arg(&client_fifo).status().expect("mkfifo").success());
        let set = containers.prepare_stdio(v1::PrepareStdioRequest { stdout: true, stderr: true, ..Default::default() }).await.expect("prepare").into_inner();
        for path in [victim.display().to_string(), client_fifo.display().to_string(), set.stderr.clone()] {
            let stdio = Some(v1::StdioPaths { stdout: path, ..Default::default() });
            cases.push(("is not a FIFO skiffd made", v1::CreateContainerRequest { stdio, ..base.clone() }));
        }
        for (field, req) in cases {
            let err = containers.create(req).await.expect_err(field);
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{field}: {}", err.message());
            assert!(err.message().contains(field), "{field}: {}", err.message());
        }
        // A set serves one request: the first create takes it (and its FIFOs go once its start
        // had the shim open them), a second one is refused.
        let stdio = Some(set.clone());
        let made = containers.create(v1::CreateContainerRequest { stdio: stdio.clone(), ..base.clone() }).await.expect("create with the set");
        assert!(std::path::Path::new(&set.stdout).exists(), "the claimed set is held for the start");
        let err = containers.create(v1::CreateContainerRequest { stdio, ..base.clone() }).await.expect_err("reused set");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains("claimed already or expired"), "{}", err.message());
        let id = made.into_inner().container.expect("container").id;
        containers.start(v1::StartContainerRequest { id: id.clone() }).await.expect("start");
        assert!(!std::path::Path::new(&set.stdout).exists(), "the claimed set is removed once the start answered");
        containers.delete(v1::DeleteContainerRequest { id, force: true }).await.expect("delete");
        let mut images = ImagesClient::new(channel);
        let err = images.import(v1::ImportImageRequest { path: "/tmp/x\0y".into(), ..Default::default() }).await.expect_err("nul path");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{}", err.message());
    });
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me\n", "the host file is untouched");
    assert_eq!(s.cli(&["ps", "-aq"]).ok(), "", "nothing was made");
}

#[test]
fn a_cut_pull_leaves_a_lease_that_can_be_seen_and_released() {
    let reg = skiff_integration::registry::Registry::plain().expect("registry");
    let a = Skiff::start().expect("skiffd a");
    let name = format!("{}/hardening/leased:1", reg.host);
    let mut spec = image();
    spec.name = name.clone();
    busybox(&a, &spec);
    a.cli(&["images", "push", "--plain-http", &name]).ok();
    // The last layer is lost on the registry's side. Fetching one layer at a time, in the
    // manifest's order, the pull fails after fetching the one before it (with several at once, a
    // fast failure may stop the others from starting: then nothing is held, which is fine but not
    // what this test is about).
    let inspect: serde_json::Value = serde_json::from_str(&a.cli(&["images", "inspect", &name]).ok()).expect("inspect");
    let last = inspect["Layers"].as_array().and_then(|l| l.last()).and_then(|l| l["Digest"].as_str()).expect("a layer").to_string();
    std::fs::remove_file(reg.blob_data(&last)).expect("remove the blob");
    let b = Skiff::start_with(|_, cfg| Ok(cfg.replace("max_concurrent_downloads = 4", "max_concurrent_downloads = 1"))).expect("skiffd b");
    b.cli(&["images", "pull", "--plain-http", &name]).fails_with(&[&reg.host]);
    assert!(b.images().is_empty(), "no image from a failed pull");
    let listed: serde_json::Value = serde_json::from_str(&b.cli(&["leases", "ls", "-o", "json"]).ok()).expect("leases json");
    let lease = &listed.as_array().expect("array")[0];
    assert_eq!(lease["labels"]["io.skiff.operation"], "pull", "{lease}");
    assert!(lease["blobs"].as_u64().is_some_and(|n| n >= 1), "{lease}");
    let id = lease["id"].as_str().expect("id").to_string();
    assert!(!b.content().is_empty(), "what the pull fetched is kept for a retry");
    // Prune cannot take it, and says which lease holds it and how to let it go.
    let prune = b.cli(&["content", "prune"]);
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    assert!(prune.stderr.contains(&format!("lease {id} (a pull) still holds")) && prune.stderr.contains(&format!("skiff leases rm {id}")), "{}", prune.stderr);
    assert_eq!(b.cli(&["leases", "rm", &id]).ok().trim(), id);
    b.cli(&["leases", "rm", &id]).fails_with(&["not found"]);
    b.cli(&["content", "prune"]).ok();
    assert!(b.content().is_empty(), "released content is collected");
    assert_eq!(b.cli(&["leases", "ls", "-q"]).ok(), "");
}
