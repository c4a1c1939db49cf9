//! A container's security context (the CRI's `LinuxContainerSecurityContext`, and what `skiff run`
//! may ask of it) and how it changes the spec, as containerd's CRI and runc make it: privileged,
//! capabilities, seccomp, no_new_privs, masked and read-only paths, the user's ids and groups,
//! devices, and mount propagation. `Security::default()` is the spec Skiff has always built.

use std::path::PathBuf;

use serde_json::Value;

use super::caps;
use super::devices::{self, Device, ResolvedDevice};
use crate::error::{Result, RuntimeError};
use crate::user::{self, Identity};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// All capabilities, no seccomp, no masked/read-only paths, /sys and cgroups writable, the host's devices (as runc/containerd do for privileged).
    pub privileged: bool,
    /// Capability names as the kubelet sends them ("NET_ADMIN", also accepted "CAP_NET_ADMIN", and "ALL"); added to, then dropped from, the default set. Unknown names: InvalidArgument naming them.
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    pub seccomp: Seccomp,
    /// None: Skiff's default (on, as today); Some(v): exactly v (the kubelet's allowPrivilegeEscalation=false sends true).
    pub no_new_privileges: Option<bool>,
    /// None: Skiff's defaults; Some(list): exactly that list (empty = none, the kubelet's unmasked procMount).
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// Numeric uid/gid from the CRI (run_as_user / run_as_group) override what `user` resolves to; supplemental groups are added to the process's additionalGids (with the user's groups from /etc/group, as today if that exists).
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub supplemental_groups: Vec<u32>,
    /// Resolved by the caller with `spec::resolve_devices` and given to `build` in `SpecInputs::devices`.
    pub devices: Vec<Device>,
    /// The capabilities the runtime itself holds (its bounding set), when known: a privileged
    /// container gets those, as containerd gives it the current process's, since the kernel
    /// refuses a capability set beyond the caller's (here root lacks CAP_SYS_RESOURCE). None: all.
    pub held_capabilities: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// Skiff's profile (`seccomp::default_profile`).
    #[default]
    RuntimeDefault,
    /// No `linux.seccomp`.
    Unconfined,
    /// An OCI seccomp JSON profile file (the `linux.seccomp` object), read at build time; a missing or bad file is InvalidArgument naming it.
    Localhost(PathBuf),
}

/// A bind mount's propagation (the CRI's MountPropagation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Neither way (the CRI's PROPAGATION_PRIVATE): `rprivate`.
    #[default]
    Private,
    /// Host mounts below the source appear in the container (HOST_TO_CONTAINER): `rslave`.
    RSlave,
    /// Both ways (BIDIRECTIONAL): `rshared`.
    RShared,
}

impl Propagation {
    pub fn option(self) -> &'static str {
        match self {
            Propagation::Private => "rprivate",
            Propagation::RSlave => "rslave",
            Propagation::RShared => "rshared",
        }
    }
}

/// `linux.rootfsPropagation` for mounts of these propagations: a slave or shared mount only
/// receives (or sends) events if the rootfs it sits in does too, so any `RShared` makes the
/// rootfs `rshared` and otherwise any `RSlave` makes it `rslave`, as containerd sets it; none
/// leaves the runtime's default.
pub fn rootfs_propagation(mounts: impl IntoIterator<Item = Propagation>) -> Option<&'static str> {
    let mut out = None;
    for p in mounts {
        match p {
            Propagation::RShared => return Some("rshared"),
            Propagation::RSlave => out = Some("rslave"),
            Propagation::Private => {}
        }
    }
    out
}

fn check_id(what: &'static str, id: u32, spec: &str) -> Result<u32> {
    if id > user::MAX_ID {
        return Err(RuntimeError::IdOutOfRange { what, id: id as u64, spec: spec.to_string() });
    }
    Ok(id)
}

/// The process identity: `user_spec` (the request's user, else the image's) resolved against the
/// image's files, with the CRI's numeric overrides. `run_as_user` replaces the user (its group
/// then comes from the image's passwd, as containerd resolves a bare uid); `run_as_group`
/// replaces the group while the user's /etc/group groups stay (containerd's Merge policy);
/// supplemental groups are added to them.
pub fn identity(user_spec: &str, sec: &Security, passwd: &str, group: &str) -> Result<Identity> {
    let mut id = if sec.run_as_user.is_none() && sec.run_as_group.is_none() {
        user::resolve(user_spec, passwd, group)?
    } else {
        let user_part = match sec.run_as_user {
            Some(uid) => uid.to_string(),
            None => user_spec.split_once(':').map_or(user_spec, |(u, _)| u).to_string(),
        };
        let mut id = user::resolve(&user_part, passwd, group)?;
        if let Some(gid) = sec.run_as_group {
            id.gid = check_id("gid", gid, &format!("{user_part}:{gid}"))?;
            id.additional_gids.retain(|g| *g != gid);
        }
        id
    };
    for g in &sec.supplemental_groups {
        check_id("supplementary gid", *g, user_spec)?;
    }
    id.additional_gids.extend(&sec.supplemental_groups);
    id.additional_gids.sort_unstable();
    id.additional_gids.dedup();
    Ok(id)
}

/// The bounding, effective and permitted set.
pub fn capabilities(sec: &Security, default: &[&'static str]) -> Result<Vec<&'static str>> {
    if sec.privileged {
        caps::check(&sec.add_capabilities, &sec.drop_capabilities)?;
        let all = caps::ALL_CAPABILITIES.iter().copied();
        return Ok(match &sec.held_capabilities {
            Some(held) => all.filter(|c| held.iter().any(|h| h == c)).collect(),
            None => all.collect(),
        });
    }
    caps::compute(default, &sec.add_capabilities, &sec.drop_capabilities)
}

/// `linux.seccomp`, or None for none. A privileged container has none whatever was asked.
pub fn seccomp(sec: &Security) -> Result<Option<Value>> {
    if sec.privileged {
        return Ok(None);
    }
    match &sec.seccomp {
        Seccomp::RuntimeDefault => Ok(Some(crate::seccomp::default_profile())),
        Seccomp::Unconfined => Ok(None),
        Seccomp::Localhost(path) => {
            let bad = |why: String| RuntimeError::InvalidArgument(format!("seccomp profile {}: {why}", path.display()));
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let profile: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
            // Read in the runtime spec's types, so that a bad profile is refused with its name,
            // and written back from them: config.json holds the profile as the spec defines it,
            // in its field order, without the fields it does not know.
            let profile = serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(profile)
                .map_err(|e| bad(format!("not an OCI seccomp object (linux.seccomp, with defaultAction): {e}")))?;
            Ok(Some(serde_json::to_value(profile).map_err(|e| bad(e.to_string()))?))
        }
    }
}

/// `linux.maskedPaths` or `linux.readonlyPaths`: `default` unless the request gives a list; none
/// for a privileged container.
pub fn paths(what: &str, sec: &Security, asked: &Option<Vec<String>>, default: &[&str]) -> Result<Vec<String>> {
    if sec.privileged {
        return Ok(Vec::new());
    }
    match asked {
        None => Ok(default.iter().map(|p| p.to_string()).collect()),
        Some(list) => {
            if let Some(p) = list.iter().find(|p| !p.starts_with('/')) {
                return Err(RuntimeError::InvalidArgument(format!("{what} {p:?} must be absolute")));
            }
            Ok(list.clone())
        }
    }
}

/// A privileged container's /sys and /sys/fs/cgroup are mounted read-write.
pub fn writable_kernel_mounts(mounts: &mut [Value]) {
    for m in mounts.iter_mut().filter(|m| m["type"] == "sysfs" || m["type"] == "cgroup") {
        if let Some(options) = m["options"].as_array_mut() {
            for o in options.iter_mut().filter(|o| *o == "ro") {
                *o = Value::from("rw");
            }
        }
    }
}

/// `linux.devices` and the device cgroup rules: the request's devices, allowed with their
/// permissions after the deny-all rule; a privileged container also gets the host's devices
/// (those at a path a requested device takes excepted) and every device allowed.
pub fn device_entries(sec: &Security, requested: &[ResolvedDevice], host: &[ResolvedDevice]) -> Result<(Vec<Value>, Vec<Value>)> {
    if !sec.devices.is_empty() && requested.is_empty() {
        return Err(RuntimeError::InvalidArgument(
            "the request's devices were not looked up: pass spec::resolve_devices(&request.security.devices) as SpecInputs::devices".into(),
        ));
    }
    let mut all: Vec<&ResolvedDevice> = requested.iter().collect();
    if sec.privileged {
        all.extend(host.iter().filter(|h| !requested.iter().any(|r| r.container_path == h.container_path)));
    }
    let (nodes, rules) = devices::to_json(&all)?;
    let mut cgroup = vec![serde_json::json!({"allow": false, "access": "rwm"})];
    if sec.privileged {
        cgroup = vec![serde_json::json!({"allow": true, "access": "rwm"})];
    } else {
        cgroup.extend(rules);
    }
    Ok((nodes, cgroup))
}
