use std::path::PathBuf;

use skiff_runtime::spec::MountRequest;

use super::*;
use crate::containers::state::Status;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn image(json: &str) -> ImageConfiguration {
    serde_json::from_str(json).expect("image config")
}

fn record() -> ContainerRecord {
    ContainerRecord {
        id: ID.into(),
        name: "web".into(),
        image: "docker.io/library/busybox:latest".into(),
        image_digest: "sha256:aa".into(),
        runtime: "builtin".into(),
        snapshot_key: format!("container/{ID}"),
        status: Status::Creating,
        pid: 0,
        exit: None,
        created_at: String::new(),
        started_at: String::new(),
        command: Vec::new(),
        labels: Default::default(),
        auto_remove: false,
        open_stdin: false,
        stdin_once: false,
        stop_signal: None,
        annotations: Default::default(),
        log_path: String::new(),
        cgroup_path: String::new(),
        owner: None,
    }
}

const BUSYBOX: &str = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
    "config":{"Cmd":["sh"],"User":"nobody","Volumes":{"/data":{}}}}"#;
const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";

struct Case {
    what: &'static str,
    request: CreateSpec,
    handler: HandlerConfig,
    floor: i32,
    check: fn(&Plan, &serde_json::Value),
}

#[test]
fn plans_and_their_specs() {
    let runc = HandlerConfig { binary: PathBuf::from("/usr/sbin/runc"), image_annotations: None };
    let cases = [
        Case {
            what: "defaults: own netns with loopback, short-id hostname, cgroup, image user and volume",
            request: CreateSpec::default(),
            handler: HandlerConfig::default(),
            floor: 0,
            check: |plan, spec| {
                assert_eq!(plan.run.cgroups_path.as_deref(), Some(format!("/skiff/{ID}").as_str()));
                assert_eq!(plan.run.hostname.as_deref(), Some(&ID[..12]));
                assert!(plan.loopback_up);
                assert_eq!(plan.runtime, RuntimeKind::Builtin);
                assert_eq!(plan.image_volumes, ["/data"]);
                assert_eq!(spec["hostname"], ID[..12]);
                assert_eq!(spec["process"]["user"]["uid"], 65534);
                assert_eq!(spec["linux"]["cgroupsPath"], format!("/skiff/{ID}"));
                assert_eq!(spec["annotations"]["io.skiff.container.name"], "web");
                assert_eq!(spec["annotations"]["io.skiff.runtime.handler"], "builtin");
            },
        },
        Case {
            what: "host network: no hostname of its own, no loopback to bring up",
            request: CreateSpec { host_network: true, ..Default::default() },
            handler: HandlerConfig::default(),
            floor: 0,
            check: |plan, spec| {
                assert!(plan.run.host_network && !plan.loopback_up && plan.run.hostname.is_none());
                let namespaces = spec["linux"]["namespaces"].as_array().expect("namespaces");
                assert!(!namespaces.iter().any(|n| n["type"] == "network"), "{namespaces:?}");
            },
        },
        Case {
            what: "joining a network namespace: loopback is the owner's business",
            request: CreateSpec {
                run: RunRequest { join_namespaces: vec![("network".into(), "/run/netns/pod".into())], ..Default::default() },
                ..Default::default()
            },
            handler: HandlerConfig::default(),
            floor: 0,
            check: |plan, spec| {
                assert!(!plan.loopback_up);
                let namespaces = spec["linux"]["namespaces"].as_array().expect("namespaces");
                assert!(namespaces.iter().any(|n| n["type"] == "network" && n["path"] == "/run/netns/pod"), "{namespaces:?}");
            },
        },
        Case {
            what: "an external runtime brings loopback up itself",
            request: CreateSpec::default(),
            handler: runc,
            floor: 0,
            check: |plan, _| {
                assert_eq!(plan.runtime, RuntimeKind::Binary { path: PathBuf::from("/usr/sbin/runc") });
                assert!(!plan.loopback_up);
            },
        },
        Case {
            what: "oom_score_adj below skiffd's own is clamped, above it kept",
            request: CreateSpec { run: RunRequest { oom_score_adj: Some(-500), ..Default::default() }, ..Default::default() },
            handler: HandlerConfig::default(),
            floor: 100,
            check: |plan, spec| {
                assert_eq!(plan.run.oom_score_adj, Some(100));
                assert_eq!(spec["process"]["oomScoreAdj"], 100);
            },
        },
        Case {
            what: "the request's hostname, user and annotations; reserved keys stay the manager's",
            request: CreateSpec {
                run: RunRequest {
                    hostname: Some("box".into()),
                    user: Some("root".into()),
                    annotations: [("com.example/a".to_string(), "1".to_string()), ("io.skiff.container.name".to_string(), "forged".to_string())].into(),
                    mounts: vec![MountRequest { source: "/tmp".into(), destination: "/data".into(), readonly: true, ..Default::default() }],
                    ..Default::default()
                },
                ..Default::default()
            },
            handler: HandlerConfig::default(),
            floor: 0,
            check: |plan, spec| {
                assert_eq!(plan.run.hostname.as_deref(), Some("box"));
                assert_eq!(spec["process"]["user"]["uid"], 0);
                assert_eq!(spec["annotations"]["com.example/a"], "1");
                assert_eq!(spec["annotations"]["io.skiff.container.name"], "web");
            },
        },
    ];
    let img = image(BUSYBOX);
    for case in cases {
        let facts = Facts { passwd: PASSWD.into(), group: String::new(), oom_score_floor: case.floor };
        let plan = plan(&case.request, &record(), &case.handler, &img, &facts);
        let built = build_spec(&plan, &img, &Default::default(), &facts, &Default::default(), &Default::default()).unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let spec = built.doc.clone();
        (case.check)(&plan, &spec);
        // The same inputs give the same plan.
        assert_eq!(plan, super::plan(&case.request, &record(), &case.handler, &img, &facts), "{}", case.what);
    }
}

#[test]
fn an_unknown_user_is_refused_before_anything_is_made() {
    let img = image(BUSYBOX);
    let facts = Facts { passwd: "root:x:0:0::/root:/bin/sh\n".into(), ..Default::default() };
    let plan = plan(&CreateSpec::default(), &record(), &HandlerConfig::default(), &img, &facts);
    let err = build_spec(&plan, &img, &Default::default(), &facts, &Default::default(), &Default::default()).expect_err("nobody is unknown");
    assert!(err.to_string().contains("user \"nobody\" not found"), "{err}");
    assert_eq!(skiff_types::HasKind::kind(&err), skiff_types::ErrorKind::InvalidArgument);
}
