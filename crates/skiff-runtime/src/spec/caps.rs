//! Capability names: the kernel's table, the kubelet's spellings of them, and containerd's order
//! for a security context's add and drop lists.

use crate::error::{Result, RuntimeError};

/// Every capability the kernel defines, in number order, up to CAP_CHECKPOINT_RESTORE (40): what a
/// privileged container or `add: [ALL]` gets. A runtime on an older kernel skips the ones it does
/// not know (runc does), so listing them all is safe.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/// One entry of an add or drop list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    All,
    Cap(&'static str),
}

/// "NET_ADMIN", "net_admin", "CAP_NET_ADMIN" and "ALL" as the kubelet and users write them.
fn parse(name: &str) -> Option<Name> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Some(Name::All);
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    ALL_CAPABILITIES.iter().find(|c| c.strip_prefix("CAP_") == Some(bare)).map(|c| Name::Cap(c))
}

fn parse_all(add: &[String], drop: &[String]) -> Result<(Vec<Name>, Vec<Name>)> {
    let parse_list = |list: &[String]| -> Vec<Option<Name>> { list.iter().map(|n| parse(n)).collect() };
    let (add_names, drop_names) = (parse_list(add), parse_list(drop));
    let unknown: Vec<String> = add.iter().zip(&add_names).chain(drop.iter().zip(&drop_names)).filter(|(_, p)| p.is_none()).map(|(n, _)| format!("{n:?}")).collect();
    if !unknown.is_empty() {
        return Err(RuntimeError::InvalidArgument(format!(
            "unknown capabilities {}: names are the kernel's with or without CAP_ (NET_ADMIN, CAP_NET_ADMIN), or ALL",
            unknown.join(", ")
        )));
    }
    Ok((add_names.into_iter().flatten().collect(), drop_names.into_iter().flatten().collect()))
}

/// The capability set of a container that starts from `default`, in containerd's order: `ALL`
/// in `add` makes it every capability, then `ALL` in `drop` empties it, then each named addition
/// is added and each named drop removed, so `drop: [ALL], add: [NET_ADMIN]` is just NET_ADMIN and
/// `add: [ALL], drop: [CHOWN]` everything but CAP_CHOWN. Every name is checked, so a typo is an
/// error rather than a capability silently kept or missing.
pub fn compute(default: &[&'static str], add: &[String], drop: &[String]) -> Result<Vec<&'static str>> {
    let (add, drop) = parse_all(add, drop)?;
    let mut set: Vec<&'static str> = default.to_vec();
    if add.contains(&Name::All) {
        set = ALL_CAPABILITIES.to_vec();
    }
    if drop.contains(&Name::All) {
        set.clear();
    }
    for name in &add {
        if let Name::Cap(c) = name {
            if !set.contains(c) {
                set.push(c);
            }
        }
    }
    set.retain(|c| !drop.contains(&Name::Cap(c)));
    Ok(set)
}

/// Checks the names of `add` and `drop` without applying them (a privileged container gets every
/// capability whatever they say, but a typo in them is still the caller's mistake to hear about).
pub fn check(add: &[String], drop: &[String]) -> Result<()> {
    parse_all(add, drop).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_kernels_and_oci_spec_knows_every_name() {
        assert_eq!(ALL_CAPABILITIES.len(), 41, "CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40)");
        for c in ALL_CAPABILITIES {
            let parsed: oci_spec::runtime::Capability = serde_json::from_value(serde_json::json!(c)).expect(c);
            assert_eq!(serde_json::to_value(parsed).expect("json"), serde_json::json!(c));
        }
        assert_eq!(parse("net_admin"), Some(Name::Cap("CAP_NET_ADMIN")));
        assert_eq!(parse("CAP_SYS_ADMIN"), Some(Name::Cap("CAP_SYS_ADMIN")));
        assert_eq!(parse("all"), Some(Name::All));
        assert_eq!(parse("CAP_ALL"), None);
        assert_eq!(parse("NET_ADMINX"), None);
    }
}
