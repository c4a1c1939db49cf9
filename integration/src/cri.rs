//! The kubelet's side of the CRI: the tonic clients `k8s-cri` generates, connected to a
//! throwaway skiffd's socket (the one Skiff's own API is served on). The CRI tests run that
//! skiffd under a `skiff_harness::Harness`, whose teardown checks that nothing leaked.

use std::path::Path;

use anyhow::Result;
pub use k8s_cri::v1 as cri;
pub use skiff_harness::{CniNetwork, CriClients, Harness};

use crate::Run;

/// The clients the kubelet would hold, with its 16 MiB message limits (skiff-harness's).
pub async fn connect(socket: &Path) -> Result<CriClients> {
    Ok(skiff_harness::connect_cri(socket).await?)
}

/// The async runtime a CRI test drives its clients on (one thread, as a test needs).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// An ImageSpec naming `image`.
pub fn image_spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec { image: image.to_string(), ..Default::default() })
}

/// A pod's sandbox config as the kubelet sends it.
pub fn pod_config(name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "default".into(), attempt: 0 }),
        hostname: name.into(),
        labels: [("io.kubernetes.pod.name".to_string(), name.to_string())].into(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption { pid: cri::NamespaceMode::Container as i32, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The kubelet's runtime client.
pub type RuntimeClient = cri::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

/// A harness (skiffd with a CNI network of its own, see `skiff_harness`) with `image`, the host's
/// static busybox, imported.
pub fn start_with_busybox(image: &str) -> Result<Harness> {
    let h = Harness::start()?;
    import_image(&h, &skiff_testimage::ImageSpec::busybox(image, Path::new("/usr/bin/busybox"))?)?;
    Ok(h)
}

/// Imports the image `spec` describes (a busybox built by skiff-testimage) through the harness's CLI.
pub fn import_image(h: &Harness, spec: &skiff_testimage::ImageSpec) -> Result<()> {
    let layout = h.dir().join("busybox-layout");
    skiff_testimage::write_layout(spec, &layout)?;
    h.cli_ok([Path::new("images"), Path::new("import"), layout.as_path()])?;
    Ok(())
}

/// The skiff CLI against a harness's skiffd, answered as a [`Run`] (for `ok()`, `fails_with()`).
pub trait SkiffCli {
    fn skiff(&self, args: &[&str]) -> Run;
}

impl SkiffCli for Harness {
    fn skiff(&self, args: &[&str]) -> Run {
        let out = self.cli(args).expect("run skiff");
        Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
    }
}

/// Tears the harness down and fails the test with the harness's report on any leak: mounts and
/// nsfs pins under its dir, veths on its bridge, cgroups of its containers, shims and other
/// processes running from its dir, host-local reservations and CNI cache entries.
pub fn shutdown_clean(h: Harness) {
    let report = h.shutdown().expect("the harness's teardown");
    assert!(report.is_clean(), "{report}");
}

/// The interfaces on the harness's bridge (one veth per attached pod).
pub fn bridge_ports(net: &CniNetwork) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{}/brif", net.bridge())).map(|d| d.count()).unwrap_or(0)
}

/// Whether `ip` is in the harness's /24.
pub fn in_subnet(net: &CniNetwork, ip: &str) -> bool {
    let [a, b, c, _] = net.gateway().octets();
    ip.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.octets()[..3] == [a, b, c])
}

/// A container config as the kubelet sends it: `command` in `image`, its log at `<name>/0.log`.
pub fn container_config(name: &str, image: &str, command: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: image_spec(image),
        command: command.iter().map(|c| c.to_string()).collect(),
        labels: [("io.kubernetes.container.name".to_string(), name.to_string())].into(),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

/// The pod's namespace options, set where the kubelet sets them.
pub fn pod_namespaces(pod: &mut cri::PodSandboxConfig, options: cri::NamespaceOption) {
    pod.linux.get_or_insert_with(Default::default).security_context.get_or_insert_with(Default::default).namespace_options = Some(options);
}

/// The container's security context's namespace options (the kubelet copies the pod's there).
pub fn container_namespaces(config: &mut cri::ContainerConfig, options: cri::NamespaceOption) {
    config.linux.get_or_insert_with(Default::default).security_context.get_or_insert_with(Default::default).namespace_options = Some(options);
}

/// RunPodSandbox on the default handler; the sandbox's id.
pub async fn run_pod(rt: &mut RuntimeClient, config: &cri::PodSandboxConfig) -> Result<String> {
    let req = cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
    Ok(rt.run_pod_sandbox(req).await?.into_inner().pod_sandbox_id)
}

/// CreateContainer then StartContainer in pod `pod_id`; the container's id.
pub async fn run_container(rt: &mut RuntimeClient, pod_id: &str, pod: &cri::PodSandboxConfig, config: cri::ContainerConfig) -> Result<String> {
    let req = cri::CreateContainerRequest { pod_sandbox_id: pod_id.to_string(), config: Some(config), sandbox_config: Some(pod.clone()) };
    let id = rt.create_container(req).await?.into_inner().container_id;
    rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await?;
    Ok(id)
}

/// ContainerStatus (not verbose).
pub async fn container_status(rt: &mut RuntimeClient, id: &str) -> Result<cri::ContainerStatus> {
    let st = rt.container_status(cri::ContainerStatusRequest { container_id: id.to_string(), verbose: false }).await?.into_inner();
    st.status.ok_or_else(|| anyhow::anyhow!("container {id}: a status answer without a status"))
}

/// Polls ContainerStatus until the container exited (or `within` passed: the last status).
pub async fn wait_exited(rt: &mut RuntimeClient, id: &str, within: std::time::Duration) -> Result<cri::ContainerStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let st = container_status(rt, id).await?;
        if st.state == cri::ContainerState::ContainerExited as i32 || std::time::Instant::now() > deadline {
            return Ok(st);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// ExecSync `cmd` in container `id` (10 s timeout): exit code, stdout, stderr.
pub async fn exec(rt: &mut RuntimeClient, id: &str, cmd: &[&str]) -> Result<(i32, String, String)> {
    let req = cri::ExecSyncRequest { container_id: id.to_string(), cmd: cmd.iter().map(|c| c.to_string()).collect(), timeout: 10 };
    let a = rt.exec_sync(req).await?.into_inner();
    Ok((a.exit_code, String::from_utf8_lossy(&a.stdout).into_owned(), String::from_utf8_lossy(&a.stderr).into_owned()))
}

/// Whether `path` is gone within `within`: what a removal leaves is swept after it answered.
pub async fn path_goes(path: &std::path::Path, within: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while path.exists() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    true
}

/// StopPodSandbox then RemovePodSandbox.
pub async fn remove_pod(rt: &mut RuntimeClient, pod_id: &str) -> Result<()> {
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.to_string() }).await?;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.to_string() }).await?;
    Ok(())
}
