//! `skiff pods run`, `skiff pods create` and `skiff pods rm`: a pod by hand, as the kubelet
//! would make it (crictl's runp, create + start, stopp + rmp).

use anyhow::{bail, Result};
use k8s_cri::v1 as cri;

use super::client;
use crate::containers::key_values;
use crate::{status, Ctx};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The pod's name.
    pub name: String,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The pod's uid (default: one made from the name and namespace).
    #[arg(long)]
    pub uid: Option<String>,
    /// The pod's hostname (default: its name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Where the pod's container logs go (`<dir>/<container>.log`).
    #[arg(long)]
    pub log_dir: Option<String>,
    #[arg(long = "label", short = 'l')]
    pub labels: Vec<String>,
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    /// Share the host's network (no CNI).
    #[arg(long)]
    pub host_network: bool,
    /// A namespaced sysctl, KEY=VALUE.
    #[arg(long = "sysctl")]
    pub sysctls: Vec<String>,
    /// A runtime handler ([runtime.handlers.NAME]).
    #[arg(long)]
    pub runtime: Option<String>,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The pod (id or a unique prefix).
    pub pod: String,
    /// The container's name in the pod.
    pub name: String,
    pub image: String,
    /// Replaces the image's entrypoint and command.
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    #[arg(long = "label", short = 'l')]
    pub labels: Vec<String>,
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    /// Created only, not started.
    #[arg(long)]
    pub no_start: bool,
}

pub async fn run_pod(ctx: &Ctx, a: RunArgs) -> Result<()> {
    let mut linux = cri::LinuxPodSandboxConfig { sysctls: key_values(&a.sysctls, "sysctl")?, ..Default::default() };
    let node = cri::NamespaceMode::Node as i32;
    let options = cri::NamespaceOption { network: if a.host_network { node } else { cri::NamespaceMode::Pod as i32 }, pid: cri::NamespaceMode::Container as i32, ..Default::default() };
    linux.security_context = Some(cri::LinuxSandboxSecurityContext { namespace_options: Some(options), ..Default::default() });
    let config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            uid: a.uid.unwrap_or_else(|| format!("{}-{}", a.namespace, a.name)),
            name: a.name.clone(),
            namespace: a.namespace,
            attempt: 0,
        }),
        hostname: a.hostname.unwrap_or_default(),
        log_directory: a.log_dir.unwrap_or_default(),
        labels: key_values(&a.labels, "label")?,
        annotations: key_values(&a.annotations, "annotation")?,
        linux: Some(linux),
        ..Default::default()
    };
    let req = cri::RunPodSandboxRequest { config: Some(config), runtime_handler: a.runtime.unwrap_or_default() };
    let id = client(ctx).run_pod_sandbox(req).await.map_err(status)?.into_inner().pod_sandbox_id;
    outln!("{id}")?;
    Ok(())
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    let mut c = client(ctx);
    let st = c.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: a.pod.clone(), verbose: true }).await.map_err(status)?.into_inner();
    let info: serde_json::Value = st.info.get("info").and_then(|i| serde_json::from_str(i).ok()).unwrap_or_default();
    // The kubelet sends the pod's config along; it is in the verbose status.
    let sandbox_config: Option<cri::PodSandboxConfig> = serde_json::from_value(info["config"].clone()).ok();
    let pod_id = st.status.map(|s| s.id).unwrap_or(a.pod);
    let env = key_values(&a.env, "env")?.into_iter().map(|(key, value)| cri::KeyValue { key, value }).collect();
    let config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: a.name.clone(), attempt: 0 }),
        image: Some(cri::ImageSpec { image: a.image, ..Default::default() }),
        command: a.command,
        envs: env,
        labels: key_values(&a.labels, "label")?,
        annotations: key_values(&a.annotations, "annotation")?,
        log_path: format!("{}.log", a.name),
        ..Default::default()
    };
    let req = cri::CreateContainerRequest { pod_sandbox_id: pod_id, config: Some(config), sandbox_config };
    let id = c.create_container(req).await.map_err(status)?.into_inner().container_id;
    if !a.no_start {
        c.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.map_err(status)?;
    }
    outln!("{id}")?;
    Ok(())
}

pub async fn rm(ctx: &Ctx, pods: &[String]) -> Result<()> {
    let mut c = client(ctx);
    let mut failed = 0;
    for id in pods {
        let stopped = c.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await;
        let removed = match stopped {
            Ok(_) => c.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await.map(drop),
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => outln!("{id}")?,
            Err(s) => {
                eprintln!("skiff: {id}: {}", s.message());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} pod(s) not removed");
    }
    Ok(())
}
