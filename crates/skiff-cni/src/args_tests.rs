use std::path::Path;

use super::*;
use crate::pod::{Bandwidth, Dns, PortMapping, Protocol};

fn pod() -> PodNetwork {
    let mut pod = PodNetwork::new("sb1", "/var/lib/skiff/pods/sb1/ns/net");
    pod.pod_name = "web-0".into();
    pod.pod_namespace = "default".into();
    pod.pod_uid = "0b2c-11".into();
    pod
}

fn list() -> NetworkConfigList {
    let text = r#"{"cniVersion":"1.0.0","name":"pods","plugins":[
        {"type":"bridge","bridge":"cni0"},
        {"type":"portmap","capabilities":{"portMappings":true},"runtimeConfig":{"stale":1}},
        {"type":"bandwidth","capabilities":{"bandwidth":true,"dns":false}},
        {"type":"host-local-ish","capabilities":{"ipRanges":true,"dns":true}}]}"#;
    NetworkConfigList::from_list_bytes(text.as_bytes(), Path::new("t.conflist")).expect("list")
}

#[test]
fn cni_args_follow_the_kubelet_convention() {
    let args = cni_args(&pod()).expect("args");
    assert_eq!(join_cni_args(&args), "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=0b2c-11");
}

#[test]
fn cni_args_refuse_separators_in_values() {
    let mut p = pod();
    p.pod_name = "a;K8S_POD_NAMESPACE=kube-system".into();
    let err = cni_args(&p).expect_err("separator");
    assert!(err.to_string().contains("K8S_POD_NAME"), "{err}");
}

#[test]
fn capability_args_hold_only_what_the_pod_asks_for() {
    assert!(capability_args(&pod(), &[]).is_empty());
    let mut p = pod();
    p.port_mappings = vec![
        PortMapping { host_port: 8080, container_port: 80, protocol: Protocol::Tcp, host_ip: String::new() },
        PortMapping { host_port: 0, container_port: 9000, protocol: Protocol::Udp, host_ip: String::new() },
        PortMapping { host_port: 5353, container_port: 53, protocol: Protocol::Udp, host_ip: "127.0.0.1".into() },
    ];
    p.dns = Some(Dns { servers: vec!["10.96.0.10".into()], searches: vec!["svc.cluster.local".into()], options: vec!["ndots:5".into()] });
    p.bandwidth = Some(Bandwidth { ingress_rate: 1_000_000, ingress_burst: 2_000_000, egress_rate: 0, egress_burst: 0 });
    let caps = capability_args(&p, &["10.1.0.0/24".to_string(), "fd00::/64".to_string()]);
    assert_eq!(
        Value::Object(caps),
        json!({
            "portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}
            ],
            "dns": {"servers": ["10.96.0.10"], "searches": ["svc.cluster.local"], "options": ["ndots:5"]},
            "bandwidth": {"ingressRate": 1000000, "ingressBurst": 2000000, "egressRate": 0, "egressBurst": 0},
            "ipRanges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]
        })
    );
    // The pod's own CIDRs win over the node's.
    p.pod_cidrs = vec!["10.2.0.0/24".into()];
    assert_eq!(capability_args(&p, &["10.1.0.0/24".to_string()])["ipRanges"], json!([[{"subnet": "10.2.0.0/24"}]]));
}

#[test]
fn runtime_config_filters_by_declared_capabilities() {
    let mut p = pod();
    p.port_mappings = vec![PortMapping { host_port: 80, container_port: 80, protocol: Protocol::Tcp, host_ip: String::new() }];
    p.dns = Some(Dns { servers: vec!["1.1.1.1".into()], ..Dns::default() });
    p.bandwidth = Some(Bandwidth::default());
    let caps = capability_args(&p, &["10.1.0.0/24".to_string()]);
    let list = list();
    let keys = |i: usize| runtime_config(&list.plugins[i], &caps).keys().cloned().collect::<Vec<_>>();
    assert!(keys(0).is_empty(), "bridge declares nothing");
    assert_eq!(keys(1), ["portMappings"]);
    assert_eq!(keys(2), ["bandwidth"], "dns is declared false");
    assert_eq!(keys(3), ["dns", "ipRanges"]);
}

#[test]
fn stdin_injects_name_version_prev_result_and_runtime_config() {
    let list = list();
    let mut p = pod();
    p.port_mappings = vec![PortMapping { host_port: 80, container_port: 8080, protocol: Protocol::Sctp, host_ip: String::new() }];
    let caps = capability_args(&p, &[]);
    let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]});

    let first: Value = serde_json::from_slice(&plugin_stdin(&list, &list.plugins[0], None, &caps).expect("stdin")).expect("json");
    assert_eq!(first, json!({"type": "bridge", "bridge": "cni0", "name": "pods", "cniVersion": "1.0.0"}));

    let second: Value = serde_json::from_slice(&plugin_stdin(&list, &list.plugins[1], Some(&prev), &caps).expect("stdin")).expect("json");
    assert_eq!(second["prevResult"], prev);
    assert_eq!(second["runtimeConfig"], json!({"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "sctp"}]}), "the file's runtimeConfig is replaced");
    assert_eq!(second["name"], "pods");

    // No capability args for a plugin: the file's runtimeConfig stays as written.
    let bare: Value = serde_json::from_slice(&plugin_stdin(&list, &list.plugins[1], None, &Map::new()).expect("stdin")).expect("json");
    assert_eq!(bare["runtimeConfig"], json!({"stale": 1}));
    assert!(bare.get("prevResult").is_none());
}

#[test]
fn pod_network_validation() {
    validate(&pod()).expect("valid");
    let mut p = pod();
    p.sandbox_id = "../x".into();
    assert!(validate(&p).is_err());
    for bad in ["", ".", "..", "a/b", "eth:0", "eth 0", "abcdefghijklmnop"] {
        assert!(validate_ifname(bad).is_err(), "{bad:?}");
    }
    validate_ifname("abcdefghijklmno").expect("15 bytes is the limit");
    let mut p = pod();
    p.pod_cidrs = vec!["10.0.0.0/33".into()];
    assert!(validate(&p).is_err());
    assert_eq!(parse_cidr("fd00::/64").expect("v6").1, 64);
    assert!(parse_cidr("10.0.0.0").is_err());
}
