use super::*;

fn image(config: serde_json::Value) -> ImageConfiguration {
    serde_json::from_value(json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": config,
    }))
    .expect("image config")
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\nvideo:x:44:app\n";

fn build_with(img: &ImageConfiguration, req: &RunRequest, ann: &ImageAnnotations) -> Result<Built> {
    build_inputs(img, req, ann, &[], &[])
}

/// The spec of `req` over `img` with the test's passwd and group (also the security tests').
pub(super) fn build_inputs(img: &ImageConfiguration, req: &RunRequest, ann: &ImageAnnotations, devices: &[ResolvedDevice], host_devices: &[ResolvedDevice]) -> Result<Built> {
    let manager = BTreeMap::from([("io.skiff.container.id".to_string(), "c1".to_string())]);
    let built = build(&SpecInputs {
        image: img,
        image_annotations: ann,
        passwd: PASSWD,
        group: GROUP,
        request: req,
        manager_annotations: &manager,
        policy: &ImageAnnotationPolicy::default(),
        rootfs: "rootfs",
        devices,
        host_devices,
    })?;
    typed_spec_writes_the_same(&built);
    Ok(built)
}

/// Every spec a test builds is read back into oci-spec's types, which must write the very
/// document built: the shape is the runtime spec's (no field misnamed, mistyped or missing),
/// with nothing dropped and nothing added. oci-spec holds capabilities in hash sets, written in
/// any order; they are sorted before comparing (the document has them sorted).
fn typed_spec_writes_the_same(built: &Built) {
    let mut typed = serde_json::to_value(built.spec().expect("the typed spec reads the document")).expect("json");
    if let Some(caps) = typed.pointer_mut("/process/capabilities").and_then(Value::as_object_mut) {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    assert_eq!(typed, built.doc, "oci-spec writes the document built");
}

#[test]
fn docker_entrypoint_and_cmd_rules() {
    let img = image(json!({"Entrypoint": ["/bin/app"], "Cmd": ["--default"]}));
    let args = |req: RunRequest| build_with(&img, &req, &ImageAnnotations::default()).expect("spec").spec().expect("typed").process().clone().expect("process").args().clone().expect("args");
    assert_eq!(args(RunRequest::default()), ["/bin/app", "--default"]);
    assert_eq!(args(RunRequest { args: vec!["--flag".into()], ..Default::default() }), ["/bin/app", "--flag"]);
    assert_eq!(args(RunRequest { entrypoint: Some(vec!["/bin/sh".into()]), ..Default::default() }), ["/bin/sh"]);
    assert_eq!(args(RunRequest { entrypoint: Some(vec!["/bin/sh".into()]), args: vec!["-c".into(), "x".into()], ..Default::default() }), ["/bin/sh", "-c", "x"]);
    let none = image(json!({}));
    assert!(matches!(build_with(&none, &RunRequest::default(), &ImageAnnotations::default()), Err(RuntimeError::NoCommand)));
}

#[test]
fn env_user_workdir_and_annotations() {
    let img = image(json!({"Cmd": ["/bin/sh"], "Env": ["A=image", "B=image"], "User": "app", "WorkingDir": "/srv", "StopSignal": "SIGQUIT", "Volumes": {"/data": {}}}));
    let req = RunRequest {
        env: vec!["B=request".into(), "C=request".into()],
        annotations: BTreeMap::from([("from.request".to_string(), "r".to_string())]),
        ..Default::default()
    };
    let ann = ImageAnnotations {
        manifest: BTreeMap::from([("com.urunc.unikernel.type".to_string(), "hvt".to_string()), ("io.skiff.container.id".to_string(), "spoof".to_string())]),
        ..Default::default()
    };
    let built = build_with(&img, &req, &ann).expect("spec");
    let p = built.spec().expect("typed").process().clone().expect("process");
    assert_eq!(p.env().clone().expect("env"), [DEFAULT_PATH, "A=image", "B=request", "C=request", "HOME=/home/app"]);
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(p.user().additional_gids().clone().expect("gids"), [44]);
    assert_eq!(p.cwd().display().to_string(), "/srv");
    assert_eq!(built.stop_signal.as_deref(), Some("SIGQUIT"));
    let a = built.spec().expect("typed").annotations().clone().expect("annotations");
    assert_eq!(a.get("com.urunc.unikernel.type").map(String::as_str), Some("hvt"));
    assert_eq!(a.get("from.request").map(String::as_str), Some("r"));
    assert_eq!(a.get("io.skiff.container.id").map(String::as_str), Some("c1"), "the manager's key, not the image's");
    let bad_user = RunRequest { user: Some("ghost".into()), ..Default::default() };
    assert!(matches!(build_with(&img, &bad_user, &ImageAnnotations::default()), Err(RuntimeError::UnknownUser { .. })));
}

#[test]
fn defaults_resources_and_namespaces() {
    let img = image(json!({"Cmd": ["/bin/true"]}));
    let req = RunRequest {
        resources: Resources { memory_limit: Some(64 << 20), pids_limit: Some(100), cpu_quota: Some(50_000), cpu_period: Some(100_000), ..Default::default() },
        join_namespaces: vec![("network".into(), "/var/run/netns/pod".into())],
        mounts: vec![MountRequest { source: "/host".into(), destination: "/in".into(), readonly: true, ..Default::default() }],
        hostname: Some("box".into()),
        ..Default::default()
    };
    let built = build_with(&img, &req, &ImageAnnotations::default()).expect("spec");
    let doc = built.doc.clone();
    assert_eq!(doc["process"]["noNewPrivileges"], true);
    assert_eq!(doc["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(doc["linux"]["resources"]["pids"]["limit"], 100);
    assert_eq!(doc["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
    assert!(doc["linux"]["seccomp"]["syscalls"][0]["names"].as_array().expect("names").iter().any(|n| n == "kexec_load"));
    let net = doc["linux"]["namespaces"].as_array().expect("ns").iter().find(|n| n["type"] == "network").cloned().expect("net");
    assert_eq!(net["path"], "/var/run/netns/pod");
    assert!(doc["mounts"].as_array().expect("mounts").iter().any(|m| m["destination"] == "/in" && m["options"] == json!(["rbind", "rprivate", "ro"])));
    assert!(doc["linux"]["maskedPaths"].as_array().expect("masked").iter().any(|p| p == "/proc/kcore"));
    assert_eq!(doc["hostname"], "box");
    // Same inputs, same spec.
    let again = build_with(&img, &req, &ImageAnnotations::default()).expect("spec");
    assert_eq!(again.doc, built.doc);
    assert_eq!(again.config_json().expect("json"), built.config_json().expect("json"), "config.json is byte-identical");
    let bad = RunRequest { join_namespaces: vec![("user".into(), "/x".into())], ..Default::default() };
    assert!(build_with(&img, &bad, &ImageAnnotations::default()).is_err());
}

#[test]
fn host_network_and_exec_process() {
    let img = image(json!({"Env": ["A=1", "B=2"], "Cmd": ["sh"]}));
    let req = RunRequest { host_network: true, ..Default::default() };
    let built = build_with(&img, &req, &ImageAnnotations::default()).expect("build");
    let doc = built.doc.clone();
    let kinds: Vec<&str> = doc["linux"]["namespaces"].as_array().expect("ns").iter().filter_map(|n| n["type"].as_str()).collect();
    assert!(!kinds.contains(&"network"), "{kinds:?}");

    let identity = crate::user::Identity { uid: 1000, gid: 1000, additional_gids: vec![10], home: None };
    let process = exec_process(&doc["process"], &["id".into()], &["B=3".into()], Some("/tmp"), Some(&identity), true).expect("exec");
    assert_eq!(process["args"], json!(["id"]));
    let env: Vec<&str> = process["env"].as_array().expect("env").iter().filter_map(|v| v.as_str()).collect();
    assert!(env.contains(&"A=1") && env.contains(&"B=3") && !env.contains(&"B=2"), "{env:?}");
    assert_eq!(process["cwd"], "/tmp");
    assert_eq!(process["user"], json!({"uid": 1000, "gid": 1000, "additionalGids": [10]}));
    assert_eq!(process["terminal"], true);
    assert_eq!(process["capabilities"], doc["process"]["capabilities"]);
    assert!(exec_process(&doc["process"], &[], &[], None, None, false).is_err());
    assert!(exec_process(&doc["process"], &["x".into()], &["NOEQUALS".into()], None, None, false).is_err());
}

#[test]
fn mounts_over_proc_and_sys_are_refused() {
    let img = image(serde_json::json!({"Cmd": ["sh"]}));
    for dest in ["/proc", "/proc/sys", "/sys", "//sys/fs/cgroup", "/x/../proc/1", "/./proc"] {
        let req = RunRequest { mounts: vec![MountRequest { source: "/tmp".into(), destination: dest.into(), readonly: false, ..Default::default() }], ..Default::default() };
        let err = build_with(&img, &req, &ImageAnnotations::default()).expect_err(dest);
        assert!(err.to_string().contains("cannot mount over /proc or /sys"), "{dest}: {err}");
    }
    let fine = RunRequest { mounts: vec![MountRequest { source: "/tmp".into(), destination: "/procs".into(), readonly: false, ..Default::default() }], ..Default::default() };
    assert!(build_with(&img, &fine, &ImageAnnotations::default()).is_ok(), "/procs is not /proc");
}

#[test]
fn config_json_has_its_annotations_in_key_order() {
    // Given in any order, written in key order: the same inputs give the same config.json.
    let img = image(json!({"Cmd": ["sh"]}));
    let keys = ["h.eight", "a.one", "g.seven", "b.two", "f.six", "c.three", "e.five", "d.four"];
    let req = RunRequest { annotations: keys.iter().map(|k| (k.to_string(), "v".to_string())).collect(), ..Default::default() };
    let built = build_with(&img, &req, &ImageAnnotations::default()).expect("spec");
    let doc: Value = serde_json::from_slice(&built.config_json().expect("json")).expect("parse");
    let order = |v: &Value| v.as_object().expect("map").keys().cloned().collect::<Vec<String>>();
    let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).chain(["io.skiff.container.id".to_string()]).collect();
    want.sort();
    assert_eq!(order(&doc["annotations"]), want);
}
