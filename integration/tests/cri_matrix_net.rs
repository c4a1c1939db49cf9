//! The CRI behaviours the kubelet relies on around the host: host IPC and host network pods,
//! hostPort mappings reached from the host, and pods that outlive a kill -9 of skiffd.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use skiff_integration::cri::{bridge_ports, container_config, container_namespaces, exec, in_subnet, pod_config, pod_namespaces, remove_pod, run_container, run_pod, start_with_busybox, runtime};
use skiff_integration::cri::{connect, cri, shutdown_clean};
use skiff_integration::registry::free_port;
use skiff_integration::{mounts_left_under, shims_under};

const IMAGE: &str = "localhost/cri-matrix-net/busybox:1";

fn options(network: cri::NamespaceMode, ipc: cri::NamespaceMode) -> cri::NamespaceOption {
    cri::NamespaceOption { network: network as i32, ipc: ipc as i32, pid: cri::NamespaceMode::Container as i32, ..Default::default() }
}

/// NODE for ipc: the host's IPC namespace, a pod's own otherwise. NODE for network: the host's
/// interfaces, no CNI attachment; a CNI pod meanwhile gets its own netns and a veth.
#[test]
fn host_ipc_and_host_network_pods_use_the_hosts_namespaces() {
    use cri::NamespaceMode::{Node, Pod};
    let h = start_with_busybox(IMAGE).expect("skiffd");
    let net = h.cni();
    // The test's own namespaces are the host's (skiffd's): /proc/1's links may not be readable here.
    let host_ns = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).expect("host ns").display().to_string();
    runtime().block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut hostnet = pod_config("hostnet");
        pod_namespaces(&mut hostnet, options(Node, Pod));
        let hostnet_id = run_pod(&mut rt, &hostnet).await.expect("host network pod");
        assert_eq!(bridge_ports(net), 0, "a host-network pod gets no veth");
        let mut c = container_config("onhostnet", IMAGE, &["sleep", "3600"]);
        container_namespaces(&mut c, options(Node, Pod));
        let onhostnet = run_container(&mut rt, &hostnet_id, &hostnet, c).await.expect("container");
        let status = rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: hostnet_id.clone(), verbose: false }).await.expect("status");
        let ip = status.into_inner().status.expect("status").network.map(|n| n.ip).unwrap_or_default();
        assert!(!in_subnet(net, &ip), "no address from the CNI network: {ip:?}");

        let mut hostipc = pod_config("hostipc");
        pod_namespaces(&mut hostipc, options(Pod, Node));
        let hostipc_id = run_pod(&mut rt, &hostipc).await.expect("host ipc pod");
        assert_eq!(bridge_ports(net), 1, "a pod-network pod gets its veth");
        let mut c = container_config("onhostipc", IMAGE, &["sleep", "3600"]);
        container_namespaces(&mut c, options(Pod, Node));
        let onhostipc = run_container(&mut rt, &hostipc_id, &hostipc, c).await.expect("container");

        let ns = |id: String, kind: &'static str| {
            let mut rt = rt.clone();
            async move { exec(&mut rt, &id, &["sh", "-c", &format!("readlink /proc/self/ns/{kind}")]).await.expect("readlink").1.trim().to_string() }
        };
        assert_eq!(ns(onhostipc.clone(), "ipc").await, host_ns("ipc"), "host IPC");
        assert_ne!(ns(onhostnet.clone(), "ipc").await, host_ns("ipc"), "the other pod's own IPC namespace");
        assert_eq!(ns(onhostnet.clone(), "net").await, host_ns("net"), "host network");
        assert_ne!(ns(onhostipc.clone(), "net").await, host_ns("net"), "the other pod's own netns");

        // The host's interfaces, including the bridge the CNI pod just brought up; the CNI pod sees eth0 and lo only.
        let (_, devs, _) = exec(&mut rt, &onhostnet, &["cat", "/proc/net/dev"]).await.expect("net dev");
        let host_devs = std::fs::read_to_string("/proc/net/dev").expect("host net dev");
        let names = |text: &str| -> Vec<String> {
            let mut v: Vec<String> = text.lines().skip(2).filter_map(|l| l.split(':').next()).map(|n| n.trim().to_string()).collect();
            v.sort();
            v
        };
        assert!(names(&devs).iter().any(|n| n == net.bridge()), "{devs}");
        assert_eq!(names(&devs), names(&host_devs));
        let (_, devs, _) = exec(&mut rt, &onhostipc, &["cat", "/proc/net/dev"]).await.expect("net dev");
        assert_eq!(names(&devs), ["eth0", "lo"], "{devs}");

        remove_pod(&mut rt, &hostipc_id).await.expect("remove");
        remove_pod(&mut rt, &hostnet_id).await.expect("remove");
    });
    assert_eq!(bridge_ports(net), 0);
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    shutdown_clean(h);
}

/// GET `path` from `addr` over HTTP/1.0: the whole answer, or the last error after `within`.
fn http_get(addr: &str, path: &str, within: Duration) -> std::io::Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(3)))?;
            stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        })();
        match attempt {
            Ok(answer) if !answer.is_empty() => return Ok(answer),
            Err(e) if Instant::now() > deadline => return Err(e),
            Ok(_) if Instant::now() > deadline => return Ok(String::new()),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A hostPort on 127.0.0.1 reaches the container's port through portmap's DNAT, and is gone with the pod.
#[test]
fn a_host_port_on_loopback_reaches_the_container() {
    let h = start_with_busybox(IMAGE).expect("skiffd");
    let net = h.cni();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let rt = runtime();
    let pod_id = rt.block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut pod = pod_config("served");
        pod.port_mappings = vec![cri::PortMapping { protocol: cri::Protocol::Tcp as i32, container_port: 8080, host_port: port as i32, host_ip: "127.0.0.1".into() }];
        let pod_id = run_pod(&mut rt, &pod).await.expect("pod");
        let script = "mkdir -p /www && echo served-through-the-host-port > /www/index.html && exec httpd -f -p 8080 -h /www";
        let web = run_container(&mut rt, &pod_id, &pod, container_config("web", IMAGE, &["sh", "-c", script])).await.expect("container");
        // The server is up inside before the host is asked, so a failure below is the mapping's.
        let (code, body, err) = exec(&mut rt, &web, &["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://127.0.0.1:8080/index.html && exit 0; sleep 0.2; done; exit 1"]).await.expect("wget");
        assert_eq!((code, body.trim()), (0, "served-through-the-host-port"), "{err}");
        pod_id
    });
    let answer = http_get(&addr, "/index.html", Duration::from_secs(5));
    let answer = answer.unwrap_or_else(|e| panic!("GET http://{addr}/index.html: {e}\nroute_localnet on {}: {:?}\nnat rules:\n{}", net.bridge(), route_localnet(net.bridge()), nat_rules()));
    assert!(answer.starts_with("HTTP/1.") && answer.contains(" 200 "), "{answer}");
    assert!(answer.ends_with("served-through-the-host-port\n"), "{answer}");
    rt.block_on(async {
        let mut c = h.cri().await.expect("connect").runtime;
        remove_pod(&mut c, &pod_id).await.expect("remove pod");
    });
    assert!(TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_secs(1)).is_err(), "the mapping is gone with the pod");
    assert!(!nat_rules().contains(&format!("dport {port}")) && !nat_rules().contains(&format!("dpt:{port}")), "{}", nat_rules());
    shutdown_clean(h);
}

/// portmap sets it on the bridge for a 127.0.0.1 host IP: without it the kernel drops the DNATed
/// packets with a loopback source as martians.
fn route_localnet(interface: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{interface}/route_localnet")).map(|v| v.trim().to_string()).unwrap_or_else(|e| e.to_string())
}

fn nat_rules() -> String {
    let out = std::process::Command::new("iptables").args(["-t", "nat", "-S"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    out.unwrap_or_else(|e| format!("iptables: {e}"))
}

/// Five running pods survive a kill -9 of skiffd: listed with the same ids, states and addresses
/// after the restart, their containers still running and reachable by ExecSync, then torn down
/// leaving no veth, mount or shim.
#[test]
fn running_pods_and_containers_outlive_a_killed_skiffd() {
    let mut h = start_with_busybox(IMAGE).expect("skiffd");
    let rt = runtime();
    let socket = h.socket().to_path_buf();
    let pods = move |c: cri::ListPodSandboxRequest| {
        let socket = socket.clone();
        async move {
            let mut rt = connect(&socket).await.expect("connect").runtime;
            let mut v: Vec<(String, i32)> = rt.list_pod_sandbox(c).await.expect("list pods").into_inner().items.into_iter().map(|p| (p.id, p.state)).collect();
            v.sort();
            v
        }
    };
    let before = rt.block_on(async {
        let mut rt = h.cri().await.expect("connect").runtime;
        let mut before = Vec::new();
        for n in 0..5 {
            let pod = pod_config(&format!("load-{n}"));
            let pod_id = run_pod(&mut rt, &pod).await.expect("pod");
            let id = run_container(&mut rt, &pod_id, &pod, container_config("app", IMAGE, &["sleep", "3600"])).await.expect("container");
            let st = rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: pod_id.clone(), verbose: false }).await.expect("status");
            before.push((pod_id, id, st.into_inner().status.expect("status").network.expect("network").ip));
        }
        before
    });
    let pods_before = rt.block_on(pods(Default::default()));
    assert_eq!(bridge_ports(h.cni()), 5);
    h.kill9();
    h.restart().expect("restart");
    rt.block_on(async {
        assert_eq!(pods(Default::default()).await, pods_before, "the same pods, in the same states");
        let mut rt = h.cri().await.expect("connect").runtime;
        let containers = rt.list_containers(cri::ListContainersRequest::default()).await.expect("list").into_inner().containers;
        assert_eq!(containers.len(), 5);
        for (n, (pod_id, id, ip)) in before.iter().enumerate() {
            let st = rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: pod_id.clone(), verbose: false }).await.expect("status");
            let st = st.into_inner().status.expect("status");
            assert_eq!((st.state, st.network.map(|n| n.ip)), (cri::PodSandboxState::SandboxReady as i32, Some(ip.clone())));
            let c = containers.iter().find(|c| &c.id == id).unwrap_or_else(|| panic!("container {id} is listed: {containers:?}"));
            assert_eq!((c.pod_sandbox_id.as_str(), c.state), (pod_id.as_str(), cri::ContainerState::ContainerRunning as i32));
            let (code, out, err) = exec(&mut rt, id, &["echo", &format!("alive-{n}")]).await.expect("exec after the restart");
            assert_eq!((code, out.as_str()), (0, format!("alive-{n}\n").as_str()), "{err}");
        }
        for (pod_id, _, _) in &before {
            remove_pod(&mut rt, pod_id).await.expect("remove after the restart");
        }
        assert!(rt.list_containers(cri::ListContainersRequest::default()).await.expect("list").into_inner().containers.is_empty());
    });
    assert!(rt.block_on(pods(Default::default())).is_empty());
    assert_eq!(bridge_ports(h.cni()), 0, "every veth is gone");
    let left = mounts_left_under(h.root());
    assert!(left.is_empty(), "{left:?}");
    assert!(shims_under(h.root()).is_empty(), "{:?}", shims_under(h.root()));
    shutdown_clean(h);
}
