//! The security context's rules, on the built spec.

use super::*;


fn image(config: Value) -> ImageConfiguration {
    serde_json::from_value(json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "config": config})).expect("image config")
}

fn build_full(img: &ImageConfiguration, req: &RunRequest, devices: &[ResolvedDevice], host_devices: &[ResolvedDevice]) -> Result<Value> {
    let built = super::tests::build_inputs(img, req, &ImageAnnotations::default(), devices, host_devices)?;
    // The file a runtime reads, so that every assertion is on config.json itself.
    Ok(serde_json::from_slice(&built.config_json()?).expect("config.json"))
}

fn spec_of(security: Security) -> Result<Value> {
    build_full(&image(json!({"Cmd": ["sh"], "User": "app"})), &RunRequest { security, ..Default::default() }, &[], &[])
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("array").iter().map(|s| s.as_str().expect("string").to_string()).collect()
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn invalid(result: Result<Value>) -> String {
    match result {
        Err(e @ RuntimeError::InvalidArgument(_)) => e.to_string(),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn null_device(container_path: &str, permissions: &str) -> ResolvedDevice {
    ResolvedDevice {
        host_path: "/dev/null".into(),
        container_path: container_path.into(),
        kind: DeviceKind::Char,
        major: 1,
        minor: 3,
        file_mode: 0o666,
        uid: 0,
        gid: 0,
        permissions: permissions.into(),
    }
}

/// The spec of a request without a security context is byte for byte the one built before the
/// security context existed (captured from that builder into testdata/default_spec.json).
#[test]
fn the_default_security_builds_the_spec_skiff_always_built() {
    let img = image(json!({"Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["A=1"], "User": "app", "WorkingDir": "/srv"}));
    let req = RunRequest {
        env: vec!["B=2".into()],
        hostname: Some("web".into()),
        tty: true,
        annotations: BTreeMap::from([("org.example/a".to_string(), "1".to_string())]),
        resources: Resources { memory_limit: Some(128 << 20), cpu_quota: Some(50_000), cpu_period: Some(100_000), cpu_shares: Some(512), pids_limit: Some(64) },
        join_namespaces: vec![("network".into(), "/run/netns/pod".into())],
        readonly_rootfs: true,
        cgroups_path: Some("/skiff/c1".into()),
        oom_score_adj: Some(100),
        security: Security::default(),
        ..Default::default()
    };
    let built = super::tests::build_inputs(&img, &req, &ImageAnnotations::default(), &[], &[]).expect("spec");
    let json = built.config_json().expect("json");
    assert_eq!(String::from_utf8(json).expect("utf-8"), include_str!("testdata/default_spec.json"));
}

#[test]
fn privileged_gets_every_capability_no_seccomp_no_masked_paths_and_writable_sys() {
    let host = [null_device("/dev/null", "rwm"), ResolvedDevice { host_path: "/dev/sda".into(), container_path: "/dev/sda".into(), kind: DeviceKind::Block, major: 8, minor: 0, file_mode: 0o660, uid: 0, gid: 6, permissions: "rwm".into() }];
    let sec = Security {
        privileged: true,
        // Ignored for a privileged container, as containerd ignores them: even a profile that
        // does not exist is not read.
        drop_capabilities: vec!["CHOWN".into()],
        seccomp: Seccomp::Localhost("/nonexistent/profile.json".into()),
        masked_paths: Some(vec!["/proc/kcore".into()]),
        readonly_paths: Some(vec!["/proc/sys".into()]),
        ..Default::default()
    };
    let img = image(json!({"Cmd": ["sh"]}));
    let doc = build_full(&img, &RunRequest { security: sec.clone(), ..Default::default() }, &[], &host).expect("privileged");
    let caps = &doc["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(strings(&caps[set]), sorted(ALL_CAPABILITIES), "{set}");
    }
    assert!(caps.get("inheritable").is_none() && caps.get("ambient").is_none(), "{caps}");
    assert!(doc["linux"].get("seccomp").is_none());
    assert_eq!(doc["linux"]["maskedPaths"], json!([]));
    assert_eq!(doc["linux"]["readonlyPaths"], json!([]));
    let mount = |dest: &str| doc["mounts"].as_array().expect("mounts").iter().find(|m| m["destination"] == dest).cloned().expect(dest);
    assert_eq!(mount("/sys")["options"], json!(["nosuid", "noexec", "nodev", "rw"]));
    assert_eq!(mount("/sys/fs/cgroup")["options"], json!(["nosuid", "noexec", "nodev", "relatime", "rw"]));
    assert_eq!(doc["linux"]["devices"], json!([
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660, "uid": 0, "gid": 6},
    ]));
    assert_eq!(doc["linux"]["resources"]["devices"], json!([{"allow": true, "access": "rwm"}]));
    assert_eq!(doc["process"]["noNewPrivileges"], true, "no_new_privileges stays the request's (None: on)");

    // Host devices are read only for a privileged request.
    let plain = build_full(&img, &RunRequest::default(), &[], &host).expect("unprivileged");
    assert!(plain["linux"].get("devices").is_none());
    assert_eq!(plain["linux"]["resources"]["devices"], json!([{"allow": false, "access": "rwm"}]));

    // Still no bind over /sys, and capability names are still checked.
    let over_sys = RunRequest { security: sec.clone(), mounts: vec![MountRequest { source: "/tmp".into(), destination: "/sys/kernel".into(), ..Default::default() }], ..Default::default() };
    assert!(invalid(build_full(&img, &over_sys, &[], &host)).contains("cannot mount over /proc or /sys"));
    assert!(invalid(spec_of(Security { privileged: true, add_capabilities: vec!["NOPE".into()], ..Default::default() })).contains("\"NOPE\""));
}

#[test]
fn capabilities_are_added_then_dropped_in_containerds_order() {
    let caps = |add: &[&str], drop: &[&str]| -> Result<Vec<String>> {
        let doc = spec_of(Security { add_capabilities: add.iter().map(|s| s.to_string()).collect(), drop_capabilities: drop.iter().map(|s| s.to_string()).collect(), ..Default::default() })?;
        let bounding = strings(&doc["process"]["capabilities"]["bounding"]);
        assert_eq!(bounding, strings(&doc["process"]["capabilities"]["effective"]));
        assert_eq!(bounding, strings(&doc["process"]["capabilities"]["permitted"]));
        Ok(bounding)
    };
    let with = |extra: &[&str], without: &[&str]| {
        let mut v: Vec<&str> = DEFAULT_CAPABILITIES.iter().copied().filter(|c| !without.contains(c)).collect();
        v.extend(extra);
        sorted(&v)
    };
    assert_eq!(caps(&[], &[]).expect("none"), sorted(DEFAULT_CAPABILITIES));
    assert_eq!(caps(&["NET_ADMIN", "cap_sys_time"], &["CAP_CHOWN", "kill"]).expect("add and drop"), with(&["CAP_NET_ADMIN", "CAP_SYS_TIME"], &["CAP_CHOWN", "CAP_KILL"]));
    assert_eq!(caps(&["NET_ADMIN"], &["NET_ADMIN"]).expect("drop wins"), sorted(DEFAULT_CAPABILITIES), "a drop comes after the adds");
    assert_eq!(caps(&["ALL"], &[]).expect("add all"), sorted(ALL_CAPABILITIES));
    assert_eq!(caps(&["ALL"], &["CHOWN"]).expect("all but one"), sorted(&ALL_CAPABILITIES.iter().copied().filter(|c| *c != "CAP_CHOWN").collect::<Vec<_>>()));
    assert_eq!(caps(&["NET_BIND_SERVICE"], &["ALL"]).expect("only one"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(caps(&["ALL"], &["all"]).expect("none at all"), Vec::<String>::new());
    assert_eq!(caps(&[], &["ALL"]).expect("none"), Vec::<String>::new());
    let err = caps(&["NET_ADMIN", "FLY"], &["CAP_TELEPORT"]).expect_err("unknown");
    assert!(matches!(err, RuntimeError::InvalidArgument(_)));
    let msg = err.to_string();
    assert!(msg.contains("\"FLY\"") && msg.contains("\"CAP_TELEPORT\"") && !msg.contains("NET_ADMIN\""), "{msg}");
}

#[test]
fn seccomp_is_skiffs_profile_none_or_the_localhost_file() {
    let default = spec_of(Security::default()).expect("default");
    assert_eq!(default["linux"]["seccomp"], crate::seccomp::default_profile());
    let unconfined = spec_of(Security { seccomp: Seccomp::Unconfined, ..Default::default() }).expect("unconfined");
    assert!(unconfined["linux"].get("seccomp").is_none());

    let dir = super::devices::tests::TempDir::new("seccomp");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}],
    });
    let good = dir.path().join("good.json");
    std::fs::write(&good, serde_json::to_vec(&profile).expect("json")).expect("write");
    let local = spec_of(Security { seccomp: Seccomp::Localhost(good), ..Default::default() }).expect("localhost");
    assert_eq!(local["linux"]["seccomp"], profile);

    let not_json = dir.path().join("not-json.json");
    std::fs::write(&not_json, b"{ nope").expect("write");
    let no_action = dir.path().join("no-action.json");
    std::fs::write(&no_action, br#"{"syscalls": []}"#).expect("write");
    let bad_action = dir.path().join("bad-action.json");
    std::fs::write(&bad_action, br#"{"defaultAction": "SCMP_ACT_EXPLODE"}"#).expect("write");
    for path in [dir.path().join("missing.json"), not_json, no_action, bad_action] {
        let msg = invalid(spec_of(Security { seccomp: Seccomp::Localhost(path.clone()), ..Default::default() }));
        assert!(msg.contains(&format!("seccomp profile {}", path.display())), "{msg}");
    }
}

#[test]
fn no_new_privileges_is_on_unless_the_request_says() {
    for (asked, want) in [(None, true), (Some(false), false), (Some(true), true)] {
        let doc = spec_of(Security { no_new_privileges: asked, ..Default::default() }).expect("spec");
        assert_eq!(doc["process"]["noNewPrivileges"], want, "{asked:?}");
    }
}

#[test]
fn masked_and_readonly_paths_are_the_defaults_or_exactly_the_list() {
    let default = spec_of(Security::default()).expect("default");
    assert_eq!(strings(&default["linux"]["maskedPaths"]), MASKED_PATHS);
    assert_eq!(strings(&default["linux"]["readonlyPaths"]), READONLY_PATHS);
    let unmasked = spec_of(Security { masked_paths: Some(vec![]), readonly_paths: Some(vec![]), ..Default::default() }).expect("unmasked");
    assert_eq!((&unmasked["linux"]["maskedPaths"], &unmasked["linux"]["readonlyPaths"]), (&json!([]), &json!([])));
    let own = spec_of(Security { masked_paths: Some(vec!["/proc/kcore".into(), "/data/secret".into()]), readonly_paths: Some(vec!["/proc/sys".into()]), ..Default::default() }).expect("own");
    assert_eq!(own["linux"]["maskedPaths"], json!(["/proc/kcore", "/data/secret"]));
    assert_eq!(own["linux"]["readonlyPaths"], json!(["/proc/sys"]));
    assert!(invalid(spec_of(Security { masked_paths: Some(vec!["proc/kcore".into()]), ..Default::default() })).contains("masked path \"proc/kcore\" must be absolute"));
    assert!(invalid(spec_of(Security { readonly_paths: Some(vec!["sys".into()]), ..Default::default() })).contains("read-only path \"sys\" must be absolute"));
}

#[test]
fn run_as_user_and_group_override_the_user_and_supplemental_groups_are_added() {
    let user = |sec: Security| -> Result<(Value, Value)> {
        let doc = spec_of(sec)?;
        let home = doc["process"]["env"].as_array().expect("env").iter().find(|e| e.as_str().is_some_and(|e| e.starts_with("HOME="))).cloned().expect("HOME");
        Ok((doc["process"]["user"].clone(), home))
    };
    // The image's user is app (1000:1000, a member of video 44).
    assert_eq!(user(Security::default()).expect("image user").0, json!({"uid": 1000, "gid": 1000, "additionalGids": [44]}));
    assert_eq!(user(Security { run_as_user: Some(0), ..Default::default() }).expect("root"), (json!({"uid": 0, "gid": 0}), json!("HOME=/root")));
    assert_eq!(user(Security { run_as_user: Some(4242), ..Default::default() }).expect("not in passwd"), (json!({"uid": 4242, "gid": 0}), json!("HOME=/")));
    assert_eq!(user(Security { run_as_user: Some(1000), run_as_group: Some(3000), ..Default::default() }).expect("uid:gid").0, json!({"uid": 1000, "gid": 3000, "additionalGids": [44]}), "the user's /etc/group groups stay");
    assert_eq!(user(Security { run_as_group: Some(3000), ..Default::default() }).expect("group only").0, json!({"uid": 1000, "gid": 3000, "additionalGids": [44]}));
    assert_eq!(user(Security { run_as_user: Some(0), supplemental_groups: vec![2000, 44, 2000], ..Default::default() }).expect("supplemental").0, json!({"uid": 0, "gid": 0, "additionalGids": [44, 2000]}));
    assert_eq!(user(Security { supplemental_groups: vec![5], ..Default::default() }).expect("added to the image user's").0, json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 44]}));
    for sec in [
        Security { run_as_user: Some(u32::MAX), ..Default::default() },
        Security { run_as_group: Some(u32::MAX), ..Default::default() },
        Security { supplemental_groups: vec![1 << 31], ..Default::default() },
    ] {
        assert!(matches!(spec_of(sec.clone()), Err(RuntimeError::IdOutOfRange { .. })), "{sec:?}");
    }
}

#[test]
fn devices_become_nodes_and_allow_rules() {
    let img = image(json!({"Cmd": ["sh"]}));
    let asked = Device { host_path: "/dev/null".into(), container_path: "/dev/xnull".into(), permissions: "rw".into() };
    let req = RunRequest { security: Security { devices: vec![asked.clone()], ..Default::default() }, ..Default::default() };
    let resolved = resolve_devices(&req.security.devices).expect("resolve /dev/null");
    let doc = build_full(&img, &req, &resolved, &[]).expect("devices");
    assert_eq!(doc["linux"]["devices"][0]["path"], "/dev/xnull");
    assert_eq!((&doc["linux"]["devices"][0]["type"], &doc["linux"]["devices"][0]["major"], &doc["linux"]["devices"][0]["minor"]), (&json!("c"), &json!(1), &json!(3)));
    assert_eq!(doc["linux"]["resources"]["devices"], json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]));

    // Devices asked for but not looked up are refused rather than silently left out.
    assert!(invalid(build_full(&img, &req, &[], &[])).contains("spec::resolve_devices"));
    // A hand-made resolved device is checked too.
    assert!(invalid(build_full(&img, &req, &[null_device("/dev/x", "rwx")], &[])).contains("must be letters of"));
    assert!(invalid(build_full(&img, &req, &[null_device("dev/x", "rw")], &[])).contains("must be absolute"));

    // Privileged: the requested device takes its path, the host's others are added once.
    let privileged = RunRequest { security: Security { privileged: true, devices: vec![asked], ..Default::default() }, ..Default::default() };
    let host = [null_device("/dev/xnull", "rwm"), null_device("/dev/null", "rwm")];
    let doc = build_full(&img, &privileged, &[null_device("/dev/xnull", "r")], &host).expect("privileged devices");
    let paths: Vec<&str> = doc["linux"]["devices"].as_array().expect("devices").iter().filter_map(|d| d["path"].as_str()).collect();
    assert_eq!(paths, ["/dev/xnull", "/dev/null"]);
    assert_eq!(doc["linux"]["resources"]["devices"], json!([{"allow": true, "access": "rwm"}]));
}

#[test]
fn mount_propagation_sets_the_options_and_the_rootfs_propagation() {
    let img = image(json!({"Cmd": ["sh"]}));
    let mount = |dest: &str, propagation: Propagation, readonly: bool| MountRequest { source: "/tmp".into(), destination: dest.into(), readonly, propagation, selinux_relabel: true };
    let build_mounts = |mounts: Vec<MountRequest>| build_full(&img, &RunRequest { mounts, ..Default::default() }, &[], &[]).expect("mounts");
    let doc = build_mounts(vec![mount("/a", Propagation::Private, false), mount("/b", Propagation::RSlave, true), mount("/c", Propagation::RShared, false)]);
    let options: Vec<&Value> = ["/a", "/b", "/c"].iter().map(|d| &doc["mounts"].as_array().expect("mounts").iter().find(|m| m["destination"] == *d).expect(d)["options"]).collect();
    assert_eq!(options, [&json!(["rbind", "rprivate", "rw"]), &json!(["rbind", "rslave", "ro"]), &json!(["rbind", "rshared", "rw"])]);
    assert_eq!(doc["linux"]["rootfsPropagation"], "rshared", "a shared mount needs a shared rootfs");
    // Order does not matter: shared wins over slave.
    assert_eq!(build_mounts(vec![mount("/c", Propagation::RShared, false), mount("/b", Propagation::RSlave, false)])["linux"]["rootfsPropagation"], "rshared");
    assert_eq!(build_mounts(vec![mount("/a", Propagation::Private, false), mount("/b", Propagation::RSlave, false)])["linux"]["rootfsPropagation"], "rslave");
    assert!(build_mounts(vec![mount("/a", Propagation::Private, false)])["linux"].get("rootfsPropagation").is_none(), "private leaves the runtime's default");
    // selinux_relabel changes nothing in the spec (it is only warned about).
    let relabel = build_mounts(vec![mount("/a", Propagation::Private, false)]);
    let plain = build_mounts(vec![MountRequest { selinux_relabel: false, ..mount("/a", Propagation::Private, false) }]);
    assert_eq!(relabel, plain);
}
