//! The runtime spec (`config.json`) for a container: defaults ⊕ image config ⊕ run request ⊕
//! annotations. A pure function of its inputs — the same inputs give the same spec — so that it is
//! unit-tested here and every runtime (libcontainer, runc, crun, urunc, kata) gets the same document.
//! What it needs of the host (the device nodes of `RunRequest::security`) the caller looks up
//! first, with `resolve_devices` and `host_devices`; a `Seccomp::Localhost` profile is the one
//! file it reads.
//!
//! The spec is assembled as the JSON document `config.json` holds, in the runtime spec's field
//! order, and written as it is: a typed `oci_spec` value would be a round trip through serde on
//! every create (and keeps some fields in hash maps and sets, which it writes in a different
//! order each time). `Built::spec` reads it back into the typed form for those who want one; the
//! tests check on every spec they build that the typed form writes the same document.

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde::Deserialize;
use serde_json::{json, Value};
use skiff_types::ImageAnnotations;

use crate::annotations::{merge, Effective, ImageAnnotationPolicy};
use crate::error::{Result, RuntimeError};
use crate::user;

mod caps;
mod devices;
mod security;

pub use caps::ALL_CAPABILITIES;
pub use devices::{host_devices, resolve_devices, Device, DeviceKind, ResolvedDevice};
pub use security::{Propagation, Seccomp, Security};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Capabilities a container gets unless the request says otherwise (containerd's default set).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// `/proc` or `/sys` when `destination` (cleaned lexically) is one of them or lies below it.
fn kernel_filesystem(destination: &str) -> Option<&'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for c in destination.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    match parts.first() {
        Some(&"proc") => Some("/proc"),
        Some(&"sys") => Some("/sys"),
        _ => None,
    }
}

/// A bind mount the request adds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountRequest {
    pub source: String,
    pub destination: String,
    pub readonly: bool,
    /// `rprivate`, `rslave` or `rshared` on the mount, and the rootfs made as shared as it needs.
    pub propagation: Propagation,
    /// Ignored, with a warning: Skiff does not run with SELinux.
    pub selinux_relabel: bool,
}

/// Resource limits (cgroup).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_limit: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
}

/// What the caller asks of this container (CLI `skiff run` flags, later CRI's CreateContainer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// Replaces the image's Cmd (after the Entrypoint), as `docker run IMAGE ARGS...` does.
    pub args: Vec<String>,
    /// Replaces the image's Entrypoint (and drops its Cmd unless `args` are given).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE`, over the image's Env.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub mounts: Vec<MountRequest>,
    pub annotations: BTreeMap<String, String>,
    pub resources: Resources,
    /// Namespaces to join instead of creating: (type, path), e.g. ("network", "/var/run/netns/x").
    pub join_namespaces: Vec<(String, String)>,
    pub readonly_rootfs: bool,
    pub cgroups_path: Option<String>,
    pub oom_score_adj: Option<i32>,
    /// Share the host's network namespace instead of creating one.
    pub host_network: bool,
    /// The security context; its default is the spec Skiff always built.
    pub security: Security,
}

/// Everything the spec is built from.
pub struct SpecInputs<'a> {
    pub image: &'a ImageConfiguration,
    pub image_annotations: &'a ImageAnnotations,
    /// The rootfs's /etc/passwd and /etc/group ("" when absent).
    pub passwd: &'a str,
    pub group: &'a str,
    pub request: &'a RunRequest,
    /// Keys the manager sets (container id and name, image name, ...): applied last.
    pub manager_annotations: &'a BTreeMap<String, String>,
    pub policy: &'a ImageAnnotationPolicy,
    /// `root.path`: the rootfs as the runtime sees it.
    pub rootfs: &'a str,
    /// `resolve_devices(&request.security.devices)`: the requested devices as the host has them.
    pub devices: &'a [ResolvedDevice],
    /// `host_devices()` for a privileged request (read only then; `&[]` otherwise): every device
    /// node of the host, which a privileged container gets.
    pub host_devices: &'a [ResolvedDevice],
}

/// The spec, and what went into its annotations.
#[derive(Debug)]
pub struct Built {
    /// The runtime spec as `config.json` holds it.
    pub doc: Value,
    pub annotations: Effective,
    /// The image's StopSignal, for the manager's stop.
    pub stop_signal: Option<String>,
}

impl Built {
    /// The spec as `config.json` bytes (the same inputs give the same bytes).
    pub fn config_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(&self.doc).map_err(|e| RuntimeError::Spec(e.to_string()))
    }

    /// The spec in oci-spec's types.
    pub fn spec(&self) -> Result<Spec> {
        Spec::deserialize(&self.doc).map_err(|e| RuntimeError::Spec(e.to_string()))
    }

    /// The process's arguments.
    pub fn args(&self) -> Vec<String> {
        self.doc["process"]["args"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
    }
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

fn default_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ]
}

/// Builds the spec. See the module docs for the order things are applied in.
pub fn build(inputs: &SpecInputs<'_>) -> Result<Built> {
    let req = inputs.request;
    let config = inputs.image.config().clone().unwrap_or_default();

    // Process args, with Docker's Entrypoint/Cmd rules.
    let entrypoint = req.entrypoint.clone().unwrap_or_else(|| config.entrypoint().clone().unwrap_or_default());
    let cmd = if !req.args.is_empty() {
        req.args.clone()
    } else if req.entrypoint.is_some() {
        Vec::new()
    } else {
        config.cmd().clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(RuntimeError::NoCommand);
    }

    // Env: image, then request, by key; PATH when neither sets one.
    let mut env: Vec<String> = Vec::new();
    for e in config.env().clone().unwrap_or_default().into_iter().chain(req.env.iter().cloned()) {
        if !e.contains('=') {
            return Err(RuntimeError::InvalidArgument(format!("environment entry {e:?} must be KEY=VALUE")));
        }
        env.retain(|old| env_key(old) != env_key(&e));
        env.push(e);
    }
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(0, DEFAULT_PATH.to_string());
    }

    let user_spec = req.user.clone().or_else(|| config.user().clone()).unwrap_or_default();
    let sec = &req.security;
    let identity = security::identity(&user_spec, sec, inputs.passwd, inputs.group)?;
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={}", identity.home.clone().unwrap_or_else(|| "/".into())));
    }
    let cwd = req.workdir.clone().or_else(|| config.working_dir().clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(RuntimeError::InvalidArgument(format!("working directory {cwd:?} must be absolute")));
    }

    let annotations = merge(inputs.image_annotations, &req.annotations, inputs.manager_annotations, inputs.policy)?;

    let mut mounts = default_mounts();
    if sec.privileged {
        security::writable_kernel_mounts(&mut mounts);
    }
    for m in &req.mounts {
        if !m.destination.starts_with('/') {
            return Err(RuntimeError::InvalidArgument(format!("mount destination {:?} must be absolute", m.destination)));
        }
        if let Some(kernel) = kernel_filesystem(&m.destination) {
            // A bind over them would undo the masked and read-only paths (runc refuses it too);
            // a privileged container has none of those, but a bind over /proc or /sys hides the
            // kernel's view all the same, so it is refused there too.
            return Err(RuntimeError::InvalidArgument(format!(
                "mount destination {:?} covers {kernel}: containers cannot mount over /proc or /sys",
                m.destination
            )));
        }
        if m.selinux_relabel {
            tracing::warn!(source = %m.source, destination = %m.destination, "selinux relabel asked for a mount: skiff does not run with selinux, the mount is not relabelled");
        }
        mounts.push(json!({
            "destination": m.destination, "type": "bind", "source": m.source,
            "options": ["rbind", m.propagation.option(), if m.readonly { "ro" } else { "rw" }],
        }));
    }

    let kinds: &[&str] = if req.host_network { &["pid", "ipc", "uts", "mount"] } else { &["pid", "ipc", "uts", "mount", "network"] };
    let mut namespaces: Vec<Value> = kinds.iter().map(|t| json!({"type": t})).collect();
    for (kind, path) in &req.join_namespaces {
        match namespaces.iter_mut().find(|n| n["type"] == *kind) {
            Some(n) => n["path"] = json!(path),
            None => return Err(RuntimeError::InvalidArgument(format!("cannot join a {kind:?} namespace"))),
        }
    }

    let (device_nodes, device_rules) = security::device_entries(sec, inputs.devices, inputs.host_devices)?;
    let mut resources = json!({"devices": device_rules});
    let r = &req.resources;
    if let Some(limit) = r.memory_limit {
        resources["memory"] = json!({"limit": limit, "swap": limit});
    }
    if r.cpu_quota.is_some() || r.cpu_period.is_some() || r.cpu_shares.is_some() {
        let mut cpu = json!({});
        if let Some(s) = r.cpu_shares {
            cpu["shares"] = json!(s);
        }
        if let Some(q) = r.cpu_quota {
            cpu["quota"] = json!(q);
        }
        if let Some(p) = r.cpu_period {
            cpu["period"] = json!(p);
        }
        resources["cpu"] = cpu;
    }
    if let Some(p) = r.pids_limit {
        resources["pids"] = json!({"limit": p});
    }

    let mut caps = security::capabilities(sec, DEFAULT_CAPABILITIES)?;
    caps.sort_unstable();
    caps.dedup();
    // RLIMIT_NOFILE 1024:1024 is containerd's default; a higher hard limit than the caller's would
    // need CAP_SYS_RESOURCE, which a manager does not always hold.
    let mut process = json!({
        "terminal": req.tty,
        "user": {"uid": identity.uid, "gid": identity.gid},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": sec.no_new_privileges.unwrap_or(true),
    });
    if !identity.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(identity.additional_gids);
    }
    if let Some(adj) = req.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }
    // Fields in the order of the runtime spec's types (oci-spec writes them so).
    let mut linux = serde_json::Map::new();
    linux.insert("resources".into(), resources);
    if let Some(path) = &req.cgroups_path {
        linux.insert("cgroupsPath".into(), json!(path));
    }
    linux.insert("namespaces".into(), json!(namespaces));
    if !device_nodes.is_empty() {
        linux.insert("devices".into(), json!(device_nodes));
    }
    if let Some(profile) = security::seccomp(sec)? {
        linux.insert("seccomp".into(), profile);
    }
    if let Some(propagation) = security::rootfs_propagation(req.mounts.iter().map(|m| m.propagation)) {
        linux.insert("rootfsPropagation".into(), json!(propagation));
    }
    linux.insert("maskedPaths".into(), json!(security::paths("masked path", sec, &sec.masked_paths, MASKED_PATHS)?));
    linux.insert("readonlyPaths".into(), json!(security::paths("read-only path", sec, &sec.readonly_paths, READONLY_PATHS)?));
    let doc = json!({
        "ociVersion": "1.0.2",
        "root": {"path": inputs.rootfs, "readonly": req.readonly_rootfs},
        "mounts": mounts,
        "process": process,
        "hostname": req.hostname.clone().unwrap_or_default(),
        "annotations": annotations.annotations,
        "linux": linux,
    });
    Ok(Built { doc, annotations, stop_signal: config.stop_signal().clone() })
}

/// The OCI `process` of an exec into a container whose spec's process is `base`: the same
/// capabilities, rlimits and no_new_privs, with its own args; `env` over the container's by key;
/// `cwd` and `user` when given.
pub fn exec_process(base: &Value, args: &[String], env: &[String], cwd: Option<&str>, user: Option<&user::Identity>, tty: bool) -> Result<Value> {
    if args.is_empty() {
        return Err(RuntimeError::InvalidArgument("exec needs a command".into()));
    }
    let mut process = base.clone();
    if !process.is_object() {
        return Err(RuntimeError::Spec("the container's spec has no process".into()));
    }
    let mut merged: Vec<String> = process["env"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
    for e in env {
        if !e.contains('=') {
            return Err(RuntimeError::InvalidArgument(format!("environment entry {e:?} must be KEY=VALUE")));
        }
        merged.retain(|old| env_key(old) != env_key(e));
        merged.push(e.clone());
    }
    process["args"] = json!(args);
    process["env"] = json!(merged);
    process["terminal"] = json!(tty);
    if let Some(cwd) = cwd {
        if !cwd.starts_with('/') {
            return Err(RuntimeError::InvalidArgument(format!("working directory {cwd:?} must be absolute")));
        }
        process["cwd"] = json!(cwd);
    }
    if let Some(id) = user {
        process["user"] = json!({"uid": id.uid, "gid": id.gid});
        if !id.additional_gids.is_empty() {
            process["user"]["additionalGids"] = json!(id.additional_gids);
        }
    }
    if let Some(obj) = process.as_object_mut() {
        obj.remove("consoleSize");
    }
    Ok(process)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod security_tests;
