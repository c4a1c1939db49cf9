//! CreateContainer: the kubelet's ContainerConfig turned into an engine create in the pod — its
//! namespaces joined, its cgroup parent, its /etc files and /dev/shm mounted, its log where the
//! kubelet reads it, and the annotations in order (image levels < pod < container < the
//! `io.kubernetes.cri.*` keys, which nothing sent can set).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_cri::v1 as cri;
use skiff_engine::{CreateSpec, Owner};
use skiff_runtime::spec::{MountRequest, Propagation, Resources, RunRequest};

use super::security::{security, user};

use super::CriContainer;
use crate::blocking::blocking;
use crate::error::{text, CriError, Result};
use crate::runtime::CriRuntime;
use crate::timings::Stopwatch;
use crate::sandbox::{SandboxRecord, SandboxState};

/// The engine's name of a CRI container: unique per pod and attempt, within the engine's rules.
fn engine_name(c: &cri::ContainerMetadata, sandbox: &SandboxRecord) -> String {
    let pod = sandbox.metadata();
    let clean = |s: &str| s.chars().map(|ch| if ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-') { ch } else { '-' }).collect::<String>();
    let mut name = format!("{}_{}_{}_{}_{}", clean(&c.name), clean(&pod.name), clean(&pod.namespace), &sandbox.id[..8], c.attempt);
    name.truncate(128);
    name
}

fn check(config: &cri::ContainerConfig) -> Result<()> {
    let m = config.metadata.as_ref().ok_or_else(|| CriError::InvalidArgument("config.metadata is missing".into()))?;
    if m.name.is_empty() {
        return Err(CriError::InvalidArgument("config.metadata.name is empty".into()));
    }
    text("config.metadata.name", &m.name)?;
    let image = config.image.as_ref().map(|i| i.image.as_str()).unwrap_or("");
    if image.is_empty() {
        return Err(CriError::InvalidArgument("config.image is empty: name the image to run".into()));
    }
    text("config.image", image)?;
    for (field, list) in [("command", &config.command), ("args", &config.args)] {
        for v in list {
            text(&format!("config.{field}"), v)?;
        }
    }
    for kv in &config.envs {
        if kv.key.is_empty() || kv.key.contains('=') {
            return Err(CriError::InvalidArgument(format!("config.envs key {:?} must be non-empty and hold no '='", kv.key)));
        }
        text("config.envs key", &kv.key)?;
        text(&format!("config.envs {:?}", kv.key), &kv.value)?;
    }
    for (field, v) in [("working_dir", &config.working_dir), ("log_path", &config.log_path)] {
        text(&format!("config.{field}"), v)?;
    }
    for (field, map) in [("labels", &config.labels), ("annotations", &config.annotations)] {
        for (k, v) in map {
            text(&format!("config.{field} key"), k)?;
            text(&format!("config.{field} {k:?}"), v)?;
        }
    }
    for m in &config.mounts {
        text("config.mounts.host_path", &m.host_path)?;
        text("config.mounts.container_path", &m.container_path)?;
        if !m.container_path.starts_with('/') {
            return Err(CriError::InvalidArgument(format!("config.mounts: container_path {:?} must be absolute", m.container_path)));
        }
        if m.image.as_ref().is_some_and(|i| !i.image.is_empty()) {
            return Err(CriError::InvalidArgument("config.mounts.image: image volumes are not supported".into()));
        }
    }
    for d in &config.devices {
        text("config.devices.host_path", &d.host_path)?;
        text("config.devices.container_path", &d.container_path)?;
        if !d.host_path.starts_with('/') || (!d.container_path.is_empty() && !d.container_path.starts_with('/')) {
            return Err(CriError::InvalidArgument(format!("config.devices: {:?} -> {:?} must be absolute paths", d.host_path, d.container_path)));
        }
    }
    Ok(())
}

/// The namespaces a container joins: the pod's pinned ones, the host's for NODE modes (skiffd's
/// own, by /proc path), its own PID namespace for CONTAINER mode.
/// The CRI's devices as the runtime takes them (looked up on the host when the spec is built).
fn devices(devices: &[cri::Device]) -> Vec<skiff_runtime::spec::Device> {
    devices
        .iter()
        .map(|d| skiff_runtime::spec::Device {
            host_path: d.host_path.clone(),
            container_path: d.container_path.clone(),
            // The kubelet leaves it empty for "all of them", as runc reads it.
            permissions: if d.permissions.is_empty() { "rwm".into() } else { d.permissions.clone() },
        })
        .collect()
}

/// `target_pid` is asked for the PID namespace to join in TARGET mode only.
fn namespaces(sandbox: &SandboxRecord, sc: &cri::LinuxContainerSecurityContext, target_pid: impl FnOnce(&str) -> Result<String>) -> Result<(Vec<(String, String)>, bool)> {
    let pinned = sandbox.pinned.clone().unwrap_or_default();
    let host = |kind: &str| (kind.to_string(), format!("/proc/{}/ns/{kind}", std::process::id()));
    let modes = sandbox.modes();
    let mut join = Vec::new();
    match &pinned.net {
        Some(net) => join.push(("network".to_string(), net.display().to_string())),
        None if modes.host_network => {}
        None => return Err(CriError::FailedPrecondition(format!("pod sandbox {} has no network namespace", sandbox.id))),
    }
    join.push(match &pinned.ipc {
        Some(ipc) => ("ipc".to_string(), ipc.display().to_string()),
        None => host("ipc"),
    });
    join.push(match &pinned.uts {
        Some(uts) => ("uts".to_string(), uts.display().to_string()),
        None => host("uts"),
    });
    let pid_mode = sc.namespace_options.as_ref().map(|o| o.pid).unwrap_or(cri::NamespaceMode::Container as i32);
    if pid_mode == cri::NamespaceMode::Node as i32 || modes.host_pid {
        join.push(host("pid"));
    } else if pid_mode == cri::NamespaceMode::Pod as i32 {
        let holder = pinned.pid_holder.as_ref().filter(|h| h.is_alive()).ok_or_else(|| {
            CriError::FailedPrecondition(format!("pod sandbox {} has no shared PID namespace (its PID 1 is gone): recreate the pod", sandbox.id))
        })?;
        join.push(("pid".to_string(), holder.ns.display().to_string()));
    } else if pid_mode == cri::NamespaceMode::Target as i32 {
        let target_id = sc.namespace_options.as_ref().map(|o| o.target_id.as_str()).unwrap_or_default();
        join.push(("pid".to_string(), target_pid(target_id)?));
    }
    Ok((join, modes.host_network))
}

impl CriRuntime {
    pub async fn create_container(&self, req: cri::CreateContainerRequest) -> Result<String> {
        let mut watch = Stopwatch::start();
        let config = req.config.ok_or_else(|| CriError::InvalidArgument("config is missing".into()))?;
        check(&config)?;
        let sandbox = self
            .sandboxes
            .find(&req.pod_sandbox_id)?
            .ok_or_else(|| CriError::NotFound(format!("pod sandbox {:?} not found", req.pod_sandbox_id)))?;
        if sandbox.state != SandboxState::Ready {
            return Err(CriError::FailedPrecondition(format!("pod sandbox {} is not ready (stopped): containers cannot be created in it", sandbox.id)));
        }
        let metadata = config.metadata.clone().expect("checked");
        let name = engine_name(&metadata, &sandbox);
        let (_name, waited) = self.container_names.lock_noting_wait(&name).await;
        if let Some(existing) = self.containers.of_sandbox(&sandbox.id).into_iter().find(|c| c.metadata == metadata) {
            if waited {
                return Ok(existing.id);
            }
            return Err(CriError::NameInUse { what: "container", name: metadata.name.clone(), holder: existing.id });
        }
        watch.lap("checks and name");
        let runtime = self.clone();
        blocking("creating a container", move || {
            watch.lap("to the blocking pool");
            let id = runtime.create_in(&sandbox, config, name, &mut watch)?;
            runtime.timings.record(&id, "create", watch);
            Ok(id)
        })
        .await
    }

    /// The PID namespace a TARGET-mode container joins (the kubelet's ephemeral debug
    /// containers): that of `id`, a running container of the same pod.
    fn target_pid_namespace(&self, sandbox: &SandboxRecord, id: &str) -> Result<String> {
        if id.is_empty() {
            return Err(CriError::InvalidArgument("namespace_options.pid is TARGET but target_id is empty".into()));
        }
        let not_found = || CriError::NotFound(format!("namespace_options.target_id: no container {id:?} in this pod sandbox"));
        let c = self.containers.find(id)?.filter(|c| c.sandbox_id == sandbox.id).ok_or_else(not_found)?;
        let record = self.parts.manager.records().get(&c.id)?.ok_or_else(not_found)?;
        if record.status != skiff_engine::Status::Running || record.pid <= 0 {
            return Err(CriError::FailedPrecondition(format!("namespace_options.target_id: container {} is {}, not running: its PID namespace cannot be joined", c.id, record.status.as_str())));
        }
        Ok(format!("/proc/{}/ns/pid", record.pid))
    }

    fn create_in(&self, sandbox: &SandboxRecord, config: cri::ContainerConfig, name: String, watch: &mut Stopwatch) -> Result<String> {
        let image_spec = config.image.clone().unwrap_or_default();
        let (image_ref, mut image_name) = self
            .parts
            .images
            .resolve(&image_spec.image)?
            .ok_or_else(|| CriError::NotFound(format!("image {:?} is not present: pull it first (PullImage)", image_spec.image)))?;
        // The kubelet names the image by its id and says what the user typed beside it: that
        // name picks among the names of one id (their manifests, and so annotations, may differ).
        if !image_spec.user_specified_image.is_empty() {
            if let Some((id, name)) = self.parts.images.resolve(&image_spec.user_specified_image)? {
                if id == image_ref {
                    image_name = name;
                }
            }
        }
        let linux = config.linux.clone().unwrap_or_default();
        let sc = linux.security_context.clone().unwrap_or_default();
        let res = linux.resources.clone().unwrap_or_default();
        let (join_namespaces, host_network) = namespaces(sandbox, &sc, |target_id| self.target_pid_namespace(sandbox, target_id))?;
        let mut mounts = Vec::new();
        if let Some(files) = &sandbox.files {
            for (dest, source) in [("/etc/hostname", &files.hostname), ("/etc/hosts", &files.hosts), ("/etc/resolv.conf", &files.resolv_conf), ("/dev/shm", &files.shm)] {
                // The kubelet mounts its own /etc/hosts (with the pod's IP) once the pod has one: it wins.
                if config.mounts.iter().any(|m| m.container_path == dest) {
                    continue;
                }
                mounts.push(MountRequest { source: source.display().to_string(), destination: dest.to_string(), ..Default::default() });
            }
        }
        for m in &config.mounts {
            let propagation = match cri::MountPropagation::try_from(m.propagation) {
                Ok(cri::MountPropagation::PropagationHostToContainer) => Propagation::RSlave,
                Ok(cri::MountPropagation::PropagationBidirectional) => Propagation::RShared,
                _ => Propagation::Private,
            };
            mounts.push(MountRequest {
                source: m.host_path.clone(),
                destination: m.container_path.clone(),
                readonly: m.readonly,
                propagation,
                selinux_relabel: m.selinux_relabel,
            });
        }
        // Pod annotations, then the container's: the container's win.
        let mut annotations: BTreeMap<String, String> = sandbox.config.annotations.clone().into_iter().collect();
        annotations.extend(config.annotations.clone());
        let pod = sandbox.metadata();
        let log_directory = &sandbox.config.log_directory;
        let log_path = (!log_directory.is_empty() && !config.log_path.is_empty()).then(|| PathBuf::from(log_directory).join(&config.log_path));
        let manager_annotations = BTreeMap::from([
            ("io.kubernetes.cri.container-type".to_string(), "container".to_string()),
            ("io.kubernetes.cri.container-name".to_string(), config.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default()),
            ("io.kubernetes.cri.sandbox-id".to_string(), sandbox.id.clone()),
            ("io.kubernetes.cri.sandbox-name".to_string(), pod.name.clone()),
            ("io.kubernetes.cri.sandbox-namespace".to_string(), pod.namespace.clone()),
            ("io.kubernetes.cri.sandbox-uid".to_string(), pod.uid.clone()),
            ("io.kubernetes.cri.image-name".to_string(), image_spec.image.clone()),
            ("io.kubernetes.cri.sandbox-log-directory".to_string(), log_directory.clone()),
        ]);
        let run = RunRequest {
            args: config.args.clone(),
            entrypoint: (!config.command.is_empty()).then(|| config.command.clone()),
            env: config.envs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect(),
            user: user(&sc),
            workdir: (!config.working_dir.is_empty()).then(|| config.working_dir.clone()),
            tty: config.tty,
            mounts,
            annotations,
            resources: Resources {
                memory_limit: (res.memory_limit_in_bytes > 0).then_some(res.memory_limit_in_bytes),
                cpu_quota: (res.cpu_quota > 0).then_some(res.cpu_quota),
                cpu_period: (res.cpu_period > 0).then_some(res.cpu_period as u64),
                cpu_shares: (res.cpu_shares > 0).then_some(res.cpu_shares as u64),
                ..Default::default()
            },
            join_namespaces,
            readonly_rootfs: sc.readonly_rootfs,
            oom_score_adj: (res.oom_score_adj != 0).then_some(res.oom_score_adj as i32),
            host_network,
            security: skiff_runtime::spec::Security { devices: devices(&config.devices), ..security(&sc)? },
            ..Default::default()
        };
        let cgroup_parent = sandbox.config.linux.as_ref().map(|l| l.cgroup_parent.clone()).filter(|p| !p.is_empty());
        let id = skiff_engine::containers::random_id()?;
        let spec = CreateSpec {
            id: Some(id.clone()),
            image: image_name,
            name,
            run,
            runtime: sandbox.runtime_handler.clone(),
            labels: config.labels.clone().into_iter().collect(),
            host_network,
            owner: Some(Owner { sandbox_id: sandbox.id.clone(), pod: format!("{}/{}", pod.namespace, pod.name) }),
            log_path: log_path.clone(),
            cgroup_parent,
            manager_annotations,
            // Attach's stdin: the shim holds the container's stdin open for clients to come.
            stdin: config.stdin,
            stdin_once: config.stdin_once,
            ..Default::default()
        };
        let meta = CriContainer {
            id,
            sandbox_id: sandbox.id.clone(),
            metadata: config.metadata.clone().unwrap_or_default(),
            image: image_spec,
            image_ref,
            labels: config.labels,
            annotations: config.annotations,
            mounts: config.mounts,
            log_path: log_path.map(|p| p.display().to_string()).unwrap_or_default(),
            created_at: crate::now_ns(),
            resources: Some(res.clone()),
        };
        watch.lap("image lookup and request");
        // The CRI's record is written first, not flushed: the engine's create flushes once, with
        // its `created` record, and that covers both. A crash before leaves this record without
        // an engine container, which `recover` drops; until the engine's record exists, nothing
        // lists it.
        self.containers.put(&meta, false)?;
        watch.lap("record");
        let record = match self.parts.manager.create(spec) {
            Ok(record) => record,
            Err(e) => {
                if let Err(forget) = self.containers.delete(&meta.id, false) {
                    tracing::warn!(container = %meta.id, error = %forget, "forgetting the record of a failed create");
                }
                return Err(e.into());
            }
        };
        watch.lap("engine create (rootfs, spec, record, flush)");
        self.cri_events.created(&record.id, &sandbox.id);
        tracing::info!(container = %record.id, sandbox = %sandbox.id, name = %record.name, "cri container created");
        Ok(record.id)
    }
}
