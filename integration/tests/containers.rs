//! Containers through skiffd, skiff-shim and a real runtime (libcontainer, and Debian's runc as an
//! external handler): annotations into config.json, exit codes, OOM, stdio and TTY, bad input,
//! leaks after rm, image volumes, and a skiffd killed with containers running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skiff_integration::{cgroup_dirs, mounts_left_under, mounts_under, shims_under, Skiff};
use skiff_testimage::{files_layer, write_layout, ImageSpec};

const IMAGE: &str = "localhost/test/busybox:1";

fn import(s: &Skiff, spec: &ImageSpec) {
    let layout = s.path(&format!("layout-{}", spec.name.replace(['/', ':'], "-")));
    write_layout(spec, &layout).expect("layout");
    s.cli(&["images", "import", layout.to_str().expect("utf8")]).ok();
}

/// An image annotated at every level, with a spoofed reserved key and a denied prefix.
fn annotated() -> ImageSpec {
    let mut spec = ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)");
    spec.force_index = true;
    spec.index_annotations = BTreeMap::from([
        ("org.opencontainers.image.title".into(), "from-index".into()),
        ("com.example.level".into(), "index".into()),
    ]);
    spec.manifest_descriptor_annotations = BTreeMap::from([
        ("com.example.descriptor".into(), "from-descriptor".into()),
        ("com.example.level".into(), "manifest-descriptor".into()),
    ]);
    spec.manifest_annotations = BTreeMap::from([
        ("com.urunc.unikernel.binary".into(), "/bin/busybox  (bytes: \u{e9}\t\"x\")".into()),
        ("com.example.level".into(), "manifest".into()),
        ("com.example.request-wins".into(), "manifest".into()),
        ("io.kubernetes.cri.container-type".into(), "sandbox".into()),
        ("org.systemd.property.CPUShares".into(), "1".into()),
    ]);
    spec
}

fn state_dir(s: &Skiff, id: &str) -> PathBuf {
    s.root.join("containers").join(id)
}

fn config_json(s: &Skiff, id: &str) -> serde_json::Value {
    let bytes = std::fs::read(state_dir(s, id).join("bundle/config.json")).expect("config.json");
    serde_json::from_slice(&bytes).expect("config json")
}

fn inspect(s: &Skiff, id: &str) -> serde_json::Value {
    let docs: serde_json::Value = serde_json::from_str(&s.cli(&["containers", "inspect", id]).ok()).expect("inspect json");
    docs[0].clone()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nothing of any container is left: records, state dirs, mounts, shims, cgroups.
fn assert_no_leaks(s: &Skiff, ids: &[String]) {
    assert_eq!(s.cli(&["ps", "-a", "-q"]).ok(), "", "containers left");
    // A removal answers before its rootfs, snapshot and state dir are swept: give it a moment.
    let state_dirs = || std::fs::read_dir(s.root.join("containers")).map(|d| d.count()).unwrap_or(0);
    wait_until("removed containers' state dirs to be swept", || state_dirs() == 0);
    assert_eq!(mounts_left_under(&s.root), Vec::<String>::new(), "mounts left");
    assert_eq!(shims_under(&s.root), Vec::<i32>::new(), "shims left");
    for id in ids {
        assert_eq!(cgroup_dirs(id), Vec::<PathBuf>::new(), "cgroups left for {id}");
    }
    let active: Vec<String> = s.cli(&["snapshots", "ls", "-o", "json"]).ok().lines().filter(|l| l.contains("container/")).map(str::to_string).collect();
    assert!(active.is_empty(), "container snapshots left: {active:?}");
}

#[test]
fn image_annotations_reach_config_json_through_libcontainer_and_runc() {
    let s = Skiff::start().expect("skiffd");
    import(&s, &annotated());
    for runtime in ["builtin", "runc"] {
        let id = s
            .cli(&[
                "run", "-d", "--runtime", runtime, "--name", &format!("ann-{runtime}"),
                "--annotation", "com.example.request-wins=request",
                "--annotation", "io.skiff.container.id=spoofed",
                IMAGE, "sleep", "60",
            ])
            .ok()
            .trim()
            .to_string();
        let got = config_json(&s, &id)["annotations"].clone();
        assert_eq!(got["org.opencontainers.image.title"], "from-index");
        assert_eq!(got["com.example.descriptor"], "from-descriptor");
        // Precedence: manifest over manifest-descriptor over index; the request over the image.
        assert_eq!(got["com.example.level"], "manifest");
        assert_eq!(got["com.example.request-wins"], "request");
        // Byte for byte.
        assert_eq!(got["com.urunc.unikernel.binary"], "/bin/busybox  (bytes: \u{e9}\t\"x\")");
        // Reserved and denied keys never come from the image (or the request).
        assert!(got.get("io.kubernetes.cri.container-type").is_none(), "{got}");
        assert!(got.get("org.systemd.property.CPUShares").is_none(), "{got}");
        assert_eq!(got["io.skiff.container.id"], id.as_str());
        assert_eq!(got["io.skiff.runtime.handler"], runtime);

        let doc = inspect(&s, &id);
        assert_eq!(doc["Runtime"], runtime);
        let source_of = |key: &str| {
            doc["Annotations"].as_array().expect("annotations").iter().find(|a| a["Key"] == key).map(|a| a["Source"].clone())
        };
        assert_eq!(source_of("com.example.level"), Some("manifest".into()));
        assert_eq!(source_of("org.opencontainers.image.title"), Some("index".into()));
        assert_eq!(source_of("com.example.descriptor"), Some("manifest-descriptor".into()));
        assert_eq!(source_of("com.example.request-wins"), Some("request".into()));
        let dropped: Vec<String> = doc["DroppedAnnotations"].as_array().expect("dropped").iter().map(|d| d["Key"].as_str().unwrap_or("").to_string()).collect();
        for key in ["io.kubernetes.cri.container-type", "org.systemd.property.CPUShares", "io.skiff.container.id"] {
            assert!(dropped.contains(&key.to_string()), "{key} not reported dropped: {dropped:?}");
        }
        // The runtime is really running it: exec and logs work through either handler.
        assert_eq!(s.cli(&["exec", &id, "sh", "-c", "echo hello from $0; exit 0", runtime]).ok(), format!("hello from {runtime}\n"));
        s.cli(&["stop", "-t", "1", &id]).ok();
        s.cli(&["rm", &id]).ok();
        assert!(s.log().contains("dropping image annotation key=\"org.systemd.property.CPUShares\""), "drops are logged");
    }
    assert_no_leaks(&s, &[]);
}

#[test]
fn exit_codes_stdio_tty_and_oom() {
    let s = Skiff::start().expect("skiffd");
    import(&s, &annotated());
    // Foreground run streams stdout and stderr and exits with the container's code.
    let out = s.cli(&["run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (3, "out\n", "err\n"));
    // A process that exits at once.
    assert_eq!(s.cli(&["run", "--rm", IMAGE, "true"]).code, 0);
    // stdin.
    assert_eq!(s.cli_stdin(&["run", "--rm", "-i", IMAGE, "cat"], b"piped\n").ok(), "piped\n");
    // A terminal, through both handlers; loopback is up in the new network namespace.
    for runtime in ["builtin", "runc"] {
        let out = s.cli(&["run", "--rm", "-t", "--runtime", runtime, IMAGE, "sh", "-c", "busybox tty; ip -o addr show lo"]).ok();
        assert!(out.contains("/dev/pts/0"), "{runtime}: {out}");
        assert!(out.contains("inet 127.0.0.1/8"), "{runtime}: {out}");
    }
    // Environment, user and working directory.
    let out = s.cli(&["run", "--rm", "-e", "GREETING=hi", "-u", "nobody", "-w", "/tmp", IMAGE, "sh", "-c", "echo $GREETING $(id -u) $(pwd)"]).ok();
    assert_eq!(out, "hi 65534 /tmp\n");

    // Killed by the OOM killer under a memory limit: 137 and OOMKilled.
    let out = s.cli(&["run", "--name", "oom", "-m", "16m", IMAGE, "sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"]);
    assert_eq!(out.code, 137, "{}", out.stderr);
    let doc = inspect(&s, "oom");
    assert_eq!((doc["Status"].as_str(), doc["ExitCode"].as_i64(), doc["Reason"].as_str()), (Some("exited"), Some(137), Some("OOMKilled")));
    assert!(s.cli(&["ps", "-a"]).ok().contains("Exited (137) OOMKilled"));
    let oom_id = doc["Id"].as_str().expect("id").to_string();

    // Logs are kept in the CRI format and read back per stream.
    // stdout and stderr are copied into the log by two threads: their lines are ordered only when
    // written apart in time, and `--tail 1` must find the last stdout line last.
    let id = s.cli(&["run", "-d", "--name", "logger", IMAGE, "sh", "-c", "echo two >&2; sleep 0.2; echo one; printf partial"]).ok().trim().to_string();
    assert_eq!(s.cli(&["logs", "-f", "logger"]).ok(), "one\npartial\n");
    let raw = std::fs::read_to_string(state_dir(&s, &id).join("container.log")).expect("log");
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), 3, "{raw}");
    for line in &lines {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        assert!(chrono::DateTime::parse_from_rfc3339(fields[0]).is_ok(), "{line}");
        assert!(matches!(fields[1], "stdout" | "stderr") && fields[2] == "F", "{line}");
    }
    assert_eq!(s.cli(&["logs", "--tail", "1", "logger"]).ok(), "partial\n");
    s.cli(&["rm", "oom", "logger"]).ok();
    assert_no_leaks(&s, &[oom_id, id]);
}

#[test]
fn bad_input_is_refused_clearly_and_leaves_nothing() {
    let s = Skiff::start_with(|_, config| Ok(format!("{config}\n[runtime.handlers.ghost]\nbinary = \"/nonexistent/ghost-runtime\"\n")))
        .expect("skiffd");
    import(&s, &annotated());
    let mut no_cmd = ImageSpec::busybox("localhost/test/nocmd:1", Path::new("/usr/bin/busybox")).expect("busybox");
    no_cmd.cmd.clear();
    import(&s, &no_cmd);

    s.cli(&["run", "--rm", "localhost/test/nocmd:1"]).fails_with(&["image has no command", "give one"]);
    s.cli(&["run", "--rm", "-u", "nosuchuser", IMAGE, "id"]).fails_with(&["user \"nosuchuser\" not found in the image's /etc/passwd"]);
    s.cli(&["run", "--rm", "--annotation", "novalue", IMAGE, "true"]).fails_with(&["annotation \"novalue\" must be KEY=VALUE"]);
    s.cli(&["run", "--rm", "--runtime", "ghost", IMAGE, "true"]).fails_with(&["/nonexistent/ghost-runtime"]);
    s.cli(&["run", "--rm", "--runtime", "nosuch", IMAGE, "true"]).fails_with(&["unknown runtime handler \"nosuch\"", "builtin", "runc"]);
    s.cli(&["run", "--rm", IMAGE, "/no/such/binary"]).fails_with(&["/no/such/binary"]);
    s.cli(&["run", "--rm", "-v", "/no/such/dir:/data", IMAGE, "true"]).fails_with(&["/no/such/dir does not exist"]);
    s.cli(&["run", "--rm", "--name", "bad name", IMAGE, "true"]).fails_with(&["container name \"bad name\""]);
    s.cli(&["exec", "nosuch", "true"]).fails_with(&["no container \"nosuch\""]);
    s.cli(&["kill", "-s", "SIGNOPE", "nosuch"]).fails_with(&["unknown signal"]);
    s.cli(&["run", "-d", "--name", "dup", IMAGE, "sleep", "30"]).ok();
    s.cli(&["run", "-d", "--name", "dup", IMAGE, "true"]).fails_with(&["container name \"dup\" is in use"]);
    s.cli(&["rm", "dup"]).fails_with(&["is running"]);
    s.cli(&["rm", "-f", "dup"]).ok();
    assert_no_leaks(&s, &[]);
}

#[test]
fn containers_survive_skiffd_kill9_and_are_followed_again() {
    let mut s = Skiff::start().expect("skiffd");
    import(&s, &annotated());
    let mut ids = Vec::new();
    for i in 0..10 {
        // The exit is triggered by a signal, not by an exec: an exec'd process is killed with its
        // PID namespace when the init exits, so an exec that ends the init would race its own output.
        let script = format!("trap 'echo stopping-{i}; exit {i}' USR1; echo started-{i}; while :; do sleep 0.1; done");
        ids.push(s.cli(&["run", "-d", "--name", &format!("c{i}"), IMAGE, "sh", "-c", &script]).ok().trim().to_string());
    }
    // Each container writes its first line before skiffd goes.
    for i in 0..10 {
        wait_until("first log line", || s.cli(&["logs", &format!("c{i}")]).stdout.contains("started"));
    }
    s.kill9();
    assert_eq!(shims_under(&s.root).len(), 10, "shims outlive skiffd");
    s.spawn().expect("restart");
    assert!(s.log().contains("reconnected to shim"), "{}", s.log());
    let running: Vec<String> = s.cli(&["ps", "-q"]).ok().lines().map(str::to_string).collect();
    assert_eq!(running.len(), 10, "all 10 listed as running");
    for (i, id) in ids.iter().enumerate() {
        assert!(running.contains(id));
        assert_eq!(s.cli(&["logs", id]).ok(), format!("started-{i}\n"), "log intact");
        assert_eq!(s.cli(&["exec", id, "sh", "-c", "echo ok"]).ok(), "ok\n", "exec after restart");
    }
    // Their exits, after the restart, are reported with their own codes.
    for id in &ids {
        s.cli(&["kill", "-s", "USR1", id]).ok();
    }
    for (i, id) in ids.iter().enumerate() {
        wait_until("exit recorded", || inspect(&s, id)["Status"] == "exited");
        let doc = inspect(&s, id);
        assert_eq!(doc["ExitCode"].as_i64(), Some(i as i64), "{doc}");
        assert_eq!(s.cli(&["logs", id]).ok(), format!("started-{i}\nstopping-{i}\n"));
    }
    for id in &ids {
        s.cli(&["rm", id]).ok();
    }
    assert_no_leaks(&s, &ids);
}

#[test]
fn exit_while_skiffd_is_down_is_read_from_the_exit_file() {
    let mut s = Skiff::start().expect("skiffd");
    import(&s, &annotated());
    let id = s.cli(&["run", "-d", IMAGE, "sh", "-c", "sleep 1; exit 42"]).ok().trim().to_string();
    s.kill9();
    // The shim keeps the container and records its exit atomically.
    wait_until("exit file", || state_dir(&s, &id).join("exit.json").exists());
    s.spawn().expect("restart");
    wait_until("exit recorded", || inspect(&s, &id)["Status"] == "exited");
    assert_eq!(inspect(&s, &id)["ExitCode"].as_i64(), Some(42));
    // A --rm container whose exit skiffd missed is removed once it is back.
    let gone = s.cli(&["run", "-d", "--rm", IMAGE, "sh", "-c", "sleep 1"]).ok().trim().to_string();
    s.kill9();
    wait_until("exit file", || state_dir(&s, &gone).join("exit.json").exists());
    s.spawn().expect("restart");
    wait_until("--rm container removed", || !s.cli(&["ps", "-a", "-q"]).stdout.contains(&gone));
    s.cli(&["rm", &id]).ok();
    assert_no_leaks(&s, &[id, gone]);
}

#[test]
fn kill9_during_a_start_ends_its_supervisor_and_counts_the_start_as_failed() {
    // A runtime that never finishes creating holds skiffd inside Start (a create makes no
    // process; the start brings up the shim, whose runtime makes the init) while it is killed.
    let mut s = Skiff::start_with(|dir, config| {
        let runtime = dir.join("stuck-runtime");
        std::fs::write(&runtime, "#!/bin/sh\nexec sleep 30\n")?;
        std::process::Command::new("chmod").arg("+x").arg(&runtime).status()?;
        Ok(format!("{config}\n[runtime.handlers.stuck]\nbinary = \"{}\"\n", runtime.display()))
    })
    .expect("skiffd");
    import(&s, &annotated());
    let mut run = std::process::Command::new(skiff_integration::bin("skiff"))
        .arg("--address")
        .arg(&s.socket)
        .args(["run", "-d", "--runtime", "stuck", IMAGE, "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("skiff run");
    wait_until("a shim mid-create", || shims_under(&s.root).len() == 1 && !mounts_under(&s.root).is_empty());
    s.kill9();
    let _ = run.wait();
    s.spawn().expect("restart");
    assert!(s.log().contains("the container's start was cut short"), "{}", s.log());
    wait_until("the stuck supervisor ended", || shims_under(&s.root).is_empty());
    let listed: serde_json::Value = serde_json::from_str(&s.cli(&["ps", "-a", "-o", "json"]).ok()).expect("json");
    let row = &listed.as_array().expect("rows")[0];
    let id = row["id"].as_str().expect("id").to_string();
    assert_eq!(row["status"].as_str(), Some("exited"), "{row}");
    let inspect = s.cli(&["containers", "inspect", &id]).ok();
    assert!(inspect.contains("StartError"), "{inspect}");
    s.cli(&["rm", &id]).ok();
    assert_no_leaks(&s, &[id]);
}

#[test]
fn a_killed_shim_is_reported_and_its_container_cleaned_up() {
    let s = Skiff::start().expect("skiffd");
    import(&s, &annotated());
    let id = s.cli(&["run", "-d", IMAGE, "sleep", "300"]).ok().trim().to_string();
    let shims = shims_under(&s.root);
    assert_eq!(shims.len(), 1);
    std::process::Command::new("kill").arg("-9").arg(shims[0].to_string()).status().expect("kill");
    wait_until("lost shim recorded", || inspect(&s, &id)["Status"] == "exited");
    let doc = inspect(&s, &id);
    assert_eq!((doc["ExitCode"].as_i64(), doc["Reason"].as_str()), (Some(255), Some("Unknown")), "{doc}");
    // Nothing of the orphaned container keeps running.
    for cgroup in cgroup_dirs(&id) {
        assert_eq!(std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default(), "", "{}", cgroup.display());
    }
    s.cli(&["rm", &id]).ok();
    assert_no_leaks(&s, &[id]);
}

const VOLUME_IMAGE: &str = "localhost/test/volumes:1";

/// busybox with `Volumes` at /data (holding a file in the image) and /cache (not in the image).
fn with_volumes() -> ImageSpec {
    let mut spec = ImageSpec::busybox(VOLUME_IMAGE, Path::new("/usr/bin/busybox")).expect("busybox test image");
    spec.layers.push(files_layer(&[("data/seed", b"seeded from the image\n")], true).expect("layer"));
    spec.volumes = vec!["/data".into(), "/cache/".into()];
    spec
}

fn mount_source(config: &serde_json::Value, destination: &str) -> Option<String> {
    config["mounts"].as_array()?.iter().find(|m| m["destination"] == destination).map(|m| m["source"].as_str().unwrap_or_default().to_string())
}

#[test]
fn image_volumes_are_seeded_writable_and_go_with_the_container() {
    let s = Skiff::start().expect("skiffd");
    import(&s, &with_volumes());
    // On a read-only rootfs the volumes stay writable, and /data holds what the image has there.
    let script = "cat /data/seed; echo new > /data/new && echo data written; touch /cache/x && echo cache written; \
                  touch /etc/x 2>/dev/null || echo rootfs read-only";
    let out = s.cli(&["run", "--rm", "--read-only", VOLUME_IMAGE, "sh", "-c", script]).ok();
    assert_eq!(out, "seeded from the image\ndata written\ncache written\nrootfs read-only\n");

    // Each volume is a directory of the container's own, outside its layer.
    let id = s.cli(&["run", "-d", VOLUME_IMAGE, "sh", "-c", "echo kept > /data/new; sleep 30"]).ok().trim().to_string();
    let volumes = state_dir(&s, &id).join("volumes");
    let config = config_json(&s, &id);
    let data = PathBuf::from(mount_source(&config, "/data").expect("a mount at /data"));
    let cache = PathBuf::from(mount_source(&config, "/cache").expect("a mount at /cache"));
    assert!(data.starts_with(&volumes) && cache.starts_with(&volumes) && data != cache, "{config}");
    wait_until("the write in the volume", || data.join("new").exists());
    assert_eq!(std::fs::read_to_string(data.join("seed")).expect("seeded"), "seeded from the image\n");
    s.cli(&["rm", "-f", &id]).ok();
    wait_until("anonymous volumes to go with the container", || !volumes.exists());

    // A -v at the volume's place wins, and one inside it is mounted after it.
    let host = s.path("host-data");
    let inner = s.path("host-inner");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::create_dir_all(&inner).expect("mkdir");
    std::fs::write(inner.join("marker"), "inner\n").expect("write");
    let out = s
        .cli(&[
            "run", "--rm",
            "-v", &format!("{}:/cache/sub", inner.display()),
            "-v", &format!("{}:/data", host.display()),
            VOLUME_IMAGE, "sh", "-c", "ls /data; echo from-container > /data/out; cat /cache/sub/marker",
        ])
        .ok();
    assert_eq!(out, "inner\n", "the host dir, not the image's /data, is at /data; /cache/sub is not hidden by /cache");
    assert_eq!(std::fs::read_to_string(host.join("out")).expect("written through"), "from-container\n");
    assert_no_leaks(&s, &[id]);
}

#[test]
fn image_volumes_mkdir_and_ignore_modes() {
    for mode in ["mkdir", "ignore"] {
        let s = Skiff::start_with(|_, config| {
            assert!(config.contains("image_volumes = \"bind\""));
            Ok(config.replace("image_volumes = \"bind\"", &format!("image_volumes = \"{mode}\"")))
        })
        .expect("skiffd");
        import(&s, &with_volumes());
        let id = s.cli(&["run", "-d", VOLUME_IMAGE, "sleep", "30"]).ok().trim().to_string();
        let config = config_json(&s, &id);
        assert_eq!(mount_source(&config, "/data"), None, "{mode}");
        assert!(!state_dir(&s, &id).join("volumes").exists(), "{mode}");
        // mkdir makes the directory in the container's layer; ignore leaves the image as it is.
        let cache = s.cli(&["exec", &id, "sh", "-c", "test -d /cache && echo present || echo absent"]).ok();
        assert_eq!(cache.trim(), if mode == "mkdir" { "present" } else { "absent" }, "{mode}");
        assert_eq!(s.cli(&["exec", &id, "cat", "/data/seed"]).ok(), "seeded from the image\n");
        s.cli(&["rm", "-f", &id]).ok();
        assert_no_leaks(&s, &[id]);
    }
}
