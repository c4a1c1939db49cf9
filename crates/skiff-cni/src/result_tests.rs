use serde_json::json;

use super::*;

/// What bridge + host-local print at 1.0.0 (the order of interfaces as the bridge plugin gives it).
const V1: &str = r#"{"cniVersion":"1.0.0",
  "interfaces":[{"name":"cni0","mac":"ba:98:9e:74:1c:0d"},{"name":"veth1","mac":"86:13:a1:17:93:78"},
                {"name":"eth0","mac":"5a:5e:0f:c7:1d:0f","sandbox":"/run/netns/p"}],
  "ips":[{"interface":2,"address":"fd00::5/64","gateway":"fd00::1"},{"interface":2,"address":"10.240.1.2/24","gateway":"10.240.1.1"}],
  "routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#;

const V040: &str = r#"{"cniVersion":"0.4.0",
  "interfaces":[{"name":"eth0","sandbox":"/proc/1/ns/net"}],
  "ips":[{"version":"4","interface":0,"address":"10.1.2.3/16","gateway":"10.1.0.1"}],
  "dns":{"nameservers":["10.96.0.10"]}}"#;

const V031: &str = r#"{"cniVersion":"0.3.1",
  "interfaces":[{"name":"eth0","sandbox":"/proc/1/ns/net"}],
  "ips":[{"version":"6","interface":0,"address":"2001:db8::2/64"},{"version":"4","interface":0,"address":"192.168.7.9/24","gateway":"192.168.7.1"}]}"#;

#[test]
fn reads_a_1_0_result_and_puts_ipv4_first() {
    let r = CniResult::parse(V1.as_bytes(), "1.0.0").expect("parse");
    assert_eq!(r.cni_version, "1.0.0");
    assert_eq!(r.interfaces.len(), 3);
    assert_eq!(r.ips[0].prefix, 64);
    let (ips, gw) = r.pod_ips("eth0");
    assert_eq!(ips, ["10.240.1.2".parse::<IpAddr>().expect("ip"), "fd00::5".parse().expect("ip")]);
    assert_eq!(gw, Some("10.240.1.1".parse().expect("gw")));
    // The fields this crate does not model are kept.
    assert_eq!(r.raw["routes"], json!([{"dst": "0.0.0.0/0"}]));
}

#[test]
fn reads_0_4_0_and_0_3_1_results_with_ip_versions() {
    let r = CniResult::parse(V040.as_bytes(), "0.4.0").expect("0.4.0");
    assert_eq!(r.pod_ips("eth0"), (vec!["10.1.2.3".parse().expect("ip")], Some("10.1.0.1".parse().expect("gw"))));
    let r = CniResult::parse(V031.as_bytes(), "0.3.1").expect("0.3.1");
    assert_eq!(r.cni_version, "0.3.1");
    let (ips, gw) = r.pod_ips("eth0");
    assert_eq!(ips, ["192.168.7.9".parse::<IpAddr>().expect("ip"), "2001:db8::2".parse().expect("ip")]);
    assert_eq!(gw, Some("192.168.7.1".parse().expect("gw")));
}

#[test]
fn a_wrong_ip_version_is_refused() {
    let text = r#"{"cniVersion":"0.4.0","ips":[{"version":"6","address":"10.0.0.2/24"}]}"#;
    assert!(CniResult::parse(text.as_bytes(), "0.4.0").expect_err("mismatch").contains("version"));
}

#[test]
fn a_missing_version_is_the_configs() {
    let r = CniResult::parse(br#"{"ips":[{"address":"10.0.0.2/24"}]}"#, "1.0.0").expect("parse");
    assert_eq!(r.cni_version, "1.0.0");
    assert_eq!(r.raw["cniVersion"], "1.0.0");
    // No interface named: the addresses are taken as the pod's.
    assert_eq!(r.pod_ips("eth0").0, ["10.0.0.2".parse::<IpAddr>().expect("ip")]);
}

#[test]
fn bad_results_say_why() {
    for (text, want) in [
        ("not json", "not valid JSON"),
        ("[1]", "not a JSON object"),
        (r#"{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}}"#, "result version 0.2.0"),
        (r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.300/24"}]}"#, "not address/prefix"),
        (r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.3/24","interface":4}]}"#, "names interface 4"),
        (r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.3/24","gateway":"x"}]}"#, "gateway"),
    ] {
        let err = CniResult::parse(text.as_bytes(), "1.0.0").expect_err(text);
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn host_side_addresses_are_not_the_pods() {
    let text = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0"},{"name":"eth0","sandbox":"/n"}],
        "ips":[{"address":"10.9.0.1/24","interface":0},{"address":"10.9.0.7/24","interface":1}]}"#;
    let r = CniResult::parse(text.as_bytes(), "1.0.0").expect("parse");
    assert_eq!(r.pod_ips("eth0").0, ["10.9.0.7".parse::<IpAddr>().expect("ip")]);
    assert!(r.pod_ips("net1").0.is_empty());
}

#[test]
fn converts_between_versions_for_prev_result() {
    let r = CniResult::parse(V1.as_bytes(), "1.0.0").expect("parse");
    let old = r.as_version("0.4.0");
    assert_eq!(old["cniVersion"], "0.4.0");
    assert_eq!(old["ips"][0]["version"], "6");
    assert_eq!(old["ips"][1]["version"], "4");
    let r = CniResult::parse(V031.as_bytes(), "0.3.1").expect("parse");
    let new = r.as_version("1.0.0");
    assert_eq!(new["cniVersion"], "1.0.0");
    assert!(new["ips"][0].get("version").is_none());
    assert_eq!(new["ips"][1]["address"], "192.168.7.9/24");
}

#[test]
fn error_objects_parse() {
    let e = PluginError::parse(br#"{"cniVersion":"1.0.0","code":7,"msg":"boom","details":"no such bridge"}"#).expect("error");
    assert_eq!(e, PluginError { code: 7, msg: "boom".into(), details: "no such bridge".into() });
    let e = PluginError::parse(br#"{"code":11,"msg":"busy"}"#).expect("without details");
    assert_eq!((e.code, e.details.as_str()), (11, ""));
    assert!(PluginError::parse(b"panic: runtime error").is_none());
    assert!(PluginError::parse(br#"{"msg":"no code"}"#).is_none());
}
