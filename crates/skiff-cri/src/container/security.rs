//! The kubelet's `LinuxContainerSecurityContext` as Skiff's spec builder takes it
//! (`skiff_runtime::spec::Security`): privilege, capabilities, seccomp, no_new_privs, masked and
//! read-only paths, the user and its groups.

use k8s_cri::v1 as cri;
use skiff_runtime::spec::{Seccomp, Security};

use crate::error::{CriError, Result};

/// A user name, looked up in the image's passwd; numeric ids travel in `Security` (they
/// override what the name or the image's `User` gives).
pub fn user(sc: &cri::LinuxContainerSecurityContext) -> Option<String> {
    (!sc.run_as_username.is_empty()).then(|| sc.run_as_username.clone())
}

/// The kubelet's security context as the spec builder takes it. AppArmor and SELinux options are
/// ignored with a warning: this kernel has neither (as containerd does without them).
// The deprecated fields are what kubelets before 1.25 send.
#[allow(deprecated)]
pub fn security(sc: &cri::LinuxContainerSecurityContext) -> Result<Security> {
    let id = |field: &str, v: i64| -> Result<u32> {
        u32::try_from(v).map_err(|_| CriError::InvalidArgument(format!("security_context.{field} {v} is not a user or group id")))
    };
    let seccomp = match &sc.seccomp {
        Some(p) => match cri::security_profile::ProfileType::try_from(p.profile_type) {
            Ok(cri::security_profile::ProfileType::Unconfined) => Seccomp::Unconfined,
            Ok(cri::security_profile::ProfileType::Localhost) => {
                if p.localhost_ref.is_empty() {
                    return Err(CriError::InvalidArgument("security_context.seccomp: a Localhost profile needs localhost_ref".into()));
                }
                Seccomp::Localhost(p.localhost_ref.clone().into())
            }
            _ => Seccomp::RuntimeDefault,
        },
        None => match sc.seccomp_profile_path.as_str() {
            "" | "runtime/default" | "docker/default" => Seccomp::RuntimeDefault,
            "unconfined" => Seccomp::Unconfined,
            path => Seccomp::Localhost(path.trim_start_matches("localhost/").into()),
        },
    };
    if sc.apparmor.as_ref().is_some_and(|a| a.profile_type != cri::security_profile::ProfileType::Unconfined as i32) || !sc.apparmor_profile.is_empty() {
        tracing::warn!("apparmor profile ignored: this kernel has no AppArmor");
    }
    if sc.selinux_options.is_some() {
        tracing::warn!("selinux options ignored: this kernel has no SELinux");
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    let filtered = !sc.privileged && seccomp != Seccomp::Unconfined;
    // The kubelet sends empty lists for an unmasked procMount, and none when it has no opinion.
    let paths = |list: &Vec<String>| (!list.is_empty() || sc.privileged).then(|| list.clone());
    Ok(Security {
        privileged: sc.privileged,
        add_capabilities: caps.add_capabilities.iter().chain(&caps.add_ambient_capabilities).cloned().collect(),
        drop_capabilities: caps.drop_capabilities,
        seccomp,
        // The kubelet sends false unless allowPrivilegeEscalation is false. libcontainer 0.7 loads
        // the seccomp filter after dropping CAP_SYS_ADMIN, so a filter without no_new_privs cannot
        // be loaded: false keeps Skiff's default (on) while seccomp applies.
        no_new_privileges: match (sc.no_new_privs, filtered) {
            (true, _) => Some(true),
            (false, false) => Some(false),
            (false, true) => None,
        },
        masked_paths: paths(&sc.masked_paths),
        readonly_paths: paths(&sc.readonly_paths),
        run_as_user: sc.run_as_user.as_ref().map(|u| id("run_as_user", u.value)).transpose()?,
        run_as_group: sc.run_as_group.as_ref().map(|g| id("run_as_group", g.value)).transpose()?,
        supplemental_groups: sc.supplemental_groups.iter().map(|g| id("supplemental_groups", *g)).collect::<Result<_>>()?,
        devices: Vec::new(),
        held_capabilities: sc.privileged.then(held_capabilities),
    })
}

/// skiffd's own bounding set (`CapBnd` of /proc/self/status), by name: all a privileged
/// container can be given.
fn held_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    held_from_status(&status)
}

fn held_from_status(status: &str) -> Vec<String> {
    let Some(mask) = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok()) else {
        // Unknown: ask for all, and let the kernel say.
        return skiff_runtime::spec::ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    };
    skiff_runtime::spec::ALL_CAPABILITIES.iter().enumerate().filter(|(bit, _)| mask & (1 << bit) != 0).map(|(_, c)| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_set_is_read_by_bit() {
        // Every capability up to CAP_CHECKPOINT_RESTORE but CAP_SYS_RESOURCE (24), as on this machine's root.
        let held = held_from_status("Name:\tskiffd\nCapBnd:\t000001fffeffffff\n");
        assert_eq!(held.len(), 40);
        assert!(!held.iter().any(|c| c == "CAP_SYS_RESOURCE") && held.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert_eq!(held_from_status("").len(), skiff_runtime::spec::ALL_CAPABILITIES.len());
    }

    #[test]
    fn the_kubelets_fields_become_the_builders() {
        let sc = cri::LinuxContainerSecurityContext {
            run_as_user: Some(cri::Int64Value { value: 1000 }),
            supplemental_groups: vec![5],
            no_new_privs: false,
            ..Default::default()
        };
        let s = security(&sc).expect("security");
        assert_eq!((s.run_as_user, s.supplemental_groups.clone(), s.no_new_privileges), (Some(1000), vec![5], None), "seccomp applies: no_new_privs stays on");
        assert_eq!((s.masked_paths.clone(), s.held_capabilities.clone()), (None, None));
        let unconfined = cri::LinuxContainerSecurityContext {
            seccomp: Some(cri::SecurityProfile { profile_type: cri::security_profile::ProfileType::Unconfined as i32, localhost_ref: String::new() }),
            ..Default::default()
        };
        assert_eq!(security(&unconfined).expect("unconfined").no_new_privileges, Some(false));
        let bad = cri::LinuxContainerSecurityContext { run_as_user: Some(cri::Int64Value { value: -1 }), ..Default::default() };
        assert!(security(&bad).expect_err("negative uid").to_string().contains("run_as_user"));
        let privileged = security(&cri::LinuxContainerSecurityContext { privileged: true, ..Default::default() }).expect("privileged");
        assert!(privileged.held_capabilities.is_some());
    }
}

