//! The pure part of a create: from the request, the image's config, facts read off the rootfs
//! and the host, and the configuration, to the run request and every other input of the spec and
//! the shim. No I/O here, so every rule is table-tested without root.

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use skiff_runtime::shim::{RuntimeKind, Stdio};
use skiff_runtime::spec::{self, Built, RunRequest, SpecInputs};
use skiff_runtime::ImageAnnotationPolicy;
use skiff_types::ImageAnnotations;

use super::record::ContainerRecord;
use crate::config::HandlerConfig;
use crate::error::Result;

/// What a create asks for (an API request, decoded).
#[derive(Clone, Debug, Default)]
pub struct CreateSpec {
    /// The caller's id for the container (64 lowercase hex digits), as containerd's CRI picks its
    /// containers' ids and writes its own record under it first; None: a random one.
    pub id: Option<String>,
    pub image: String,
    /// `os/arch[/variant]` of the image to run; empty: the daemon's default.
    pub platform: String,
    pub name: String,
    pub run: RunRequest,
    /// Runtime handler; empty: the configured default.
    pub runtime: String,
    pub stdio: Stdio,
    /// Keep the container's stdin open for clients that attach later (the CRI's `stdin`,
    /// `skiff run -i`); default false.
    pub stdin: bool,
    /// Close its stdin once the first attached client's stdin ends (the CRI's `stdin_once`);
    /// default false.
    pub stdin_once: bool,
    pub labels: BTreeMap<String, String>,
    pub auto_remove: bool,
    pub host_network: bool,
    /// The pod sandbox the container belongs to (a CRI container); None for Skiff's own.
    pub owner: Option<Owner>,
    /// Where the container's log goes (the CRI's `log_directory/log_path`); None: its state dir.
    pub log_path: Option<std::path::PathBuf>,
    /// The cgroup the container's goes under (the pod's); None: `/skiff`.
    pub cgroup_parent: Option<String>,
    /// Keys the caller sets at the manager's level (the CRI's `io.kubernetes.cri.*`): no image or
    /// request annotation can override them.
    pub manager_annotations: BTreeMap<String, String>,
}

/// The pod sandbox a container belongs to: Skiff's own API leaves such containers to the CRI.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub sandbox_id: String,
    /// The pod's name (`namespace/name`), for listings.
    pub pod: String,
}

/// What is read off the rootfs and the host before planning.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The rootfs's /etc/passwd and /etc/group ("" when absent).
    pub passwd: String,
    pub group: String,
    /// skiffd's own `oom_score_adj`, below which a container's cannot go here.
    pub oom_score_floor: i32,
}

/// Everything the side-effecting steps need, decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The request as the spec builder gets it (image volumes are added to its mounts later, once
    /// they are made).
    pub run: RunRequest,
    /// Keys the manager sets itself; an image or a request can never set them.
    pub manager_annotations: BTreeMap<String, String>,
    pub runtime: RuntimeKind,
    /// Bring loopback up in a new network namespace (libcontainer leaves it down; runc does it).
    pub loopback_up: bool,
    /// The image config's `Volumes`.
    pub image_volumes: Vec<String>,
}

/// Decides the run request and the shim's inputs for `record` (its id, name, image and handler
/// already chosen).
pub fn plan(request: &CreateSpec, record: &ContainerRecord, handler: &HandlerConfig, image: &ImageConfiguration, facts: &Facts) -> Plan {
    let mut run = request.run.clone();
    run.cgroups_path = Some(record.cgroup_path());
    if let Some(adj) = run.oom_score_adj {
        if adj < facts.oom_score_floor {
            tracing::warn!(requested = adj, used = facts.oom_score_floor, "oom_score_adj clamped to skiffd's own");
            run.oom_score_adj = Some(facts.oom_score_floor);
        }
    }
    if request.host_network {
        run.host_network = true;
    } else if run.hostname.is_none() {
        // As docker and nerdctl do: the short id names the container's UTS namespace.
        run.hostname = Some(record.id[..12].to_string());
    }
    let manager_annotations = BTreeMap::from([
        ("io.skiff.container.id".to_string(), record.id.clone()),
        ("io.skiff.container.name".to_string(), record.name.clone()),
        ("io.skiff.image.name".to_string(), record.image.clone()),
        ("io.skiff.image.digest".to_string(), record.image_digest.clone()),
        ("io.skiff.runtime.handler".to_string(), record.runtime.clone()),
    ]);
    let mut manager_annotations = manager_annotations;
    manager_annotations.extend(request.manager_annotations.clone());
    let runtime = if handler.binary.as_os_str().is_empty() {
        RuntimeKind::Builtin
    } else {
        RuntimeKind::Binary { path: handler.binary.clone() }
    };
    let new_netns = !run.host_network && !run.join_namespaces.iter().any(|(kind, _)| kind == "network");
    let image_volumes = image.config().as_ref().and_then(|c| c.volumes().clone()).unwrap_or_default();
    Plan { run, manager_annotations, loopback_up: new_netns && runtime == RuntimeKind::Builtin, runtime, image_volumes }
}

/// The host's device nodes a spec needs: those the request names, and every one for a
/// privileged container (as runc and containerd give it).
#[derive(Debug, Default)]
pub struct HostDevices {
    pub requested: Vec<skiff_runtime::spec::ResolvedDevice>,
    pub all: Vec<skiff_runtime::spec::ResolvedDevice>,
}

impl HostDevices {
    /// Looks the devices of `run` up on the host (its /dev).
    pub fn of(run: &skiff_runtime::spec::RunRequest) -> Result<HostDevices> {
        let requested = spec::resolve_devices(&run.security.devices)?;
        let all = if run.security.privileged { spec::host_devices()? } else { Vec::new() };
        Ok(HostDevices { requested, all })
    }
}

/// The spec of a planned container (its `run` completed with the image volumes' mounts).
pub fn build_spec(
    plan: &Plan,
    image: &ImageConfiguration,
    image_annotations: &ImageAnnotations,
    facts: &Facts,
    policy: &ImageAnnotationPolicy,
    devices: &HostDevices,
) -> Result<Built> {
    Ok(spec::build(&SpecInputs {
        image,
        image_annotations,
        passwd: &facts.passwd,
        group: &facts.group,
        request: &plan.run,
        manager_annotations: &plan.manager_annotations,
        policy,
        rootfs: "rootfs",
        devices: &devices.requested,
        host_devices: &devices.all,
    })?)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
