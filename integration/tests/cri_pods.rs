//! Pod sandboxes through the CRI on real CNI plugins (bridge + host-local + portmap): addresses,
//! reachability between pods, pinned namespaces with the pod's hostname and sysctls, teardown
//! that leaves nothing, a failing plugin, and pods that outlive a kill -9 of skiffd.

use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_integration::cri::{bridge_ports, cri, in_subnet, pod_config, runtime, shutdown_clean, Harness};
use skiff_integration::mounts_left_under;
use tonic::Code;

fn start() -> Harness {
    Harness::start().expect("skiffd")
}

fn run_request(config: cri::PodSandboxConfig) -> cri::RunPodSandboxRequest {
    cri::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() }
}

fn in_netns(netns: &Path, cmd: &[&str]) -> std::process::Output {
    Command::new("nsenter").arg(format!("--net={}", netns.display())).args(cmd).output().expect("nsenter")
}

fn pod_dir(h: &Harness, id: &str) -> PathBuf {
    h.root().join("pods").join(id)
}

#[test]
fn pods_get_addresses_reach_each_other_and_leave_nothing() {
    let h = start();
    let net = h.cni();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let status = rt.status(cri::StatusRequest { verbose: false }).await.expect("status").into_inner();
        let ready = status.status.expect("status").conditions.into_iter().find(|c| c.r#type == "NetworkReady").expect("NetworkReady");
        assert!(ready.status, "{ready:?}");

        let mut a_config = pod_config("alpha");
        a_config.linux.as_mut().expect("linux").sysctls.insert("net.ipv4.ip_unprivileged_port_start".into(), "80".into());
        let a = rt.run_pod_sandbox(run_request(a_config)).await.expect("run a").into_inner().pod_sandbox_id;
        let b = rt.run_pod_sandbox(run_request(pod_config("beta"))).await.expect("run b").into_inner().pod_sandbox_id;
        let ip = |id: String| {
            let mut rt = rt.clone();
            async move {
                let req = cri::PodSandboxStatusRequest { pod_sandbox_id: id, verbose: true };
                let s = rt.pod_sandbox_status(req).await.expect("status").into_inner().status.expect("status");
                assert_eq!(s.state, cri::PodSandboxState::SandboxReady as i32);
                s.network.expect("network").ip
            }
        };
        let (ip_a, ip_b) = (ip(a.clone()).await, ip(b.clone()).await);
        assert!(in_subnet(net, &ip_a) && in_subnet(net, &ip_b) && ip_a != ip_b, "{ip_a} {ip_b} in {}", net.subnet());
        assert_eq!(bridge_ports(net), 2, "one veth per pod on the bridge");

        let netns_a = pod_dir(&h, &a).join("net");
        let addr = in_netns(&netns_a, &["ip", "-4", "addr", "show", "eth0"]);
        assert!(String::from_utf8_lossy(&addr.stdout).contains(&ip_a), "{addr:?}");
        let ping = in_netns(&netns_a, &["/usr/bin/busybox", "ping", "-c", "1", "-W", "3", &ip_b]);
        assert!(ping.status.success(), "pod a reaches pod b over the bridge: {ping:?}");
        let sysctl = in_netns(&netns_a, &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]);
        assert_eq!(String::from_utf8_lossy(&sysctl.stdout).trim(), "80", "the pod's sysctl, set in its netns");
        let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").expect("host sysctl");
        assert_ne!(host.trim(), "80", "the host's is untouched");
        let uts = Command::new("nsenter").arg(format!("--uts={}", pod_dir(&h, &a).join("uts").display())).arg("hostname").output().expect("nsenter");
        assert_eq!(String::from_utf8_lossy(&uts.stdout).trim(), "alpha");

        for id in [&a, &b] {
            rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await.expect("stop");
        }
        assert_eq!(bridge_ports(net), 0, "stop detaches the network");

        // Where the time went, stage by stage, for a benchmark to show: the pin, each plugin, the invoker's own share.
        let info = rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: a.clone(), verbose: true }).await.expect("status").into_inner().info;
        let timings: serde_json::Value = serde_json::from_str(info.get("timings").expect("timings in the verbose info")).expect("json");
        let stages = |phase: &str| -> Vec<String> { timings[phase].as_array().expect(phase).iter().map(|s| s["stage"].as_str().unwrap_or("").to_string()).collect() };
        for needle in ["pin namespaces", "cni bridge ADD", "cni portmap ADD", "cni ADD (skiff)", "persist ready"] {
            assert!(stages("run").iter().any(|s| s == needle), "{needle:?} in {timings}");
        }
        for needle in ["stop containers", "cni bridge DEL", "cni portmap DEL"] {
            assert!(stages("stop").iter().any(|s| s == needle), "{needle:?} in {timings}");
        }
        assert!(timings["run"].as_array().expect("run").iter().all(|s| s["ms"].as_f64().is_some_and(|ms| ms >= 0.0)), "{timings}");
        for id in [&a, &b] {
            rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await.expect("remove");
            rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await.expect("remove again");
        }
        let listed = rt.list_pod_sandbox(cri::ListPodSandboxRequest::default()).await.expect("list").into_inner().items;
        assert!(listed.is_empty(), "{listed:?}");
    });
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "no namespace pinned: {left:?}");
    let cached = std::fs::read_dir(net.cache_dir().join("results")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cached, 0, "no CNI result cached");
    shutdown_clean(h);
}

#[test]
fn pods_outlive_a_killed_skiffd_and_are_torn_down_after() {
    let mut h = start();
    let rt = runtime();
    let (id, ip) = rt.block_on(async {
        let mut c = h.cri().await.expect("connect").runtime;
        let id = c.run_pod_sandbox(run_request(pod_config("survivor"))).await.expect("run").into_inner().pod_sandbox_id;
        let st = c.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose: false }).await.expect("status");
        (id, st.into_inner().status.expect("status").network.expect("network").ip)
    });
    h.kill9();
    h.restart().expect("restart");
    rt.block_on(async {
        let mut c = h.cri().await.expect("connect").runtime;
        let st = c.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose: false }).await.expect("status");
        let st = st.into_inner().status.expect("status");
        assert_eq!(st.state, cri::PodSandboxState::SandboxReady as i32, "the kubelet sees no change");
        assert_eq!(st.network.expect("network").ip, ip);
        assert_eq!(bridge_ports(h.cni()), 1);
        c.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await.expect("remove after restart");
    });
    assert_eq!(bridge_ports(h.cni()), 0, "torn down from the CNI cache after the restart");
    assert!(mounts_left_under(h.root()).is_empty());
    shutdown_clean(h);
}

#[test]
fn a_failing_plugin_or_no_config_leaves_nothing_and_says_why() {
    let h = start();
    let net = h.cni();
    // A chain whose last plugin fails: the bridge's veth and IP are undone.
    let script = net.bin_dir().join("skiff-test-refuse");
    std::fs::write(&script, "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"no capacity\",\"details\":\"test\"}'\nexit 1\n").expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let path = net.conflist_path();
    let mut conflist: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("conflist")).expect("json");
    conflist["plugins"].as_array_mut().expect("plugins").push(serde_json::json!({"type": "skiff-test-refuse"}));
    std::fs::write(&path, serde_json::to_vec(&conflist).expect("json")).expect("write");
    runtime().block_on(async {
        let mut c = h.cri().await.expect("connect").runtime;
        let err = c.run_pod_sandbox(run_request(pod_config("refused"))).await.expect_err("plugin fails");
        assert!(err.message().contains("no capacity") && err.message().contains("skiff-test-refuse"), "{}", err.message());
        assert!(c.list_pod_sandbox(cri::ListPodSandboxRequest::default()).await.expect("list").into_inner().items.is_empty());
        assert_eq!(bridge_ports(net), 0, "the bridge's veth is undone");

        std::fs::remove_file(&path).expect("remove the config");
        let status = c.status(cri::StatusRequest { verbose: false }).await.expect("status").into_inner();
        let ready = status.status.expect("status").conditions.into_iter().find(|c| c.r#type == "NetworkReady").expect("NetworkReady");
        assert!(!ready.status && ready.reason == "NoNetworkConfig", "{ready:?}");
        let err = c.run_pod_sandbox(run_request(pod_config("nonet"))).await.expect_err("no network config");
        assert_ne!(err.code(), Code::Ok);
        assert!(err.message().contains(&net.conf_dir().display().to_string()), "{}", err.message());
        // A host-network pod needs no CNI.
        let mut host = pod_config("hostnet");
        let options = cri::NamespaceOption { network: cri::NamespaceMode::Node as i32, pid: cri::NamespaceMode::Container as i32, ..Default::default() };
        host.linux.as_mut().expect("linux").security_context.as_mut().expect("sc").namespace_options = Some(options);
        let id = c.run_pod_sandbox(run_request(host)).await.expect("host network pod").into_inner().pod_sandbox_id;
        c.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id }).await.expect("remove");
    });
    assert!(mounts_left_under(h.root()).is_empty());
    assert!(!h.root().join("pods").exists() || std::fs::read_dir(h.root().join("pods")).expect("pods").count() == 0);
    shutdown_clean(h);
}
