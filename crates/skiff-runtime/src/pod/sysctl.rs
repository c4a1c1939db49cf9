//! Which sysctls a pod may set, and where they live under `/proc/sys`.
//!
//! Only namespaced ones: a write to any other would change the host for every pod. The rule is
//! the kubelet's (`pkg/kubelet/sysctl/namespace.go`): `net.*` belongs to the network namespace;
//! `kernel.sem` and the `kernel.shm*`, `kernel.msg*` and `fs.mqueue.*` families to the IPC
//! namespace. The kernel resolves a `/proc/sys` file against the namespaces of the process that
//! opens it, so the helper writes them from inside the pod's new namespaces.
//!
//! Names come in either form of sysctl.d(5): `net.ipv4.conf.eth0/100.forwarding` (dots separate,
//! a slash stands for a dot inside a component) or `net/ipv4/conf/eth0.100/forwarding`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::PodError;

/// A `/proc/sys` file holds at most a page.
const MAX_VALUE: usize = 4096;

/// The namespace a sysctl belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SysctlNamespace {
    Net,
    Ipc,
}

impl fmt::Display for SysctlNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SysctlNamespace::Net => "net",
            SysctlNamespace::Ipc => "ipc",
        })
    }
}

/// A checked sysctl.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// In the dotted form.
    pub name: String,
    /// Relative to `/proc/sys`.
    pub path: PathBuf,
    pub value: String,
    pub namespace: SysctlNamespace,
}

impl Sysctl {
    /// Checks a name (either form) and value and says which namespace it needs.
    pub fn parse(name: &str, value: &str) -> Result<Sysctl, PodError> {
        let bad = |reason: &str| PodError::BadSysctl { name: name.to_string(), reason: reason.to_string() };
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("the name may hold only printable ASCII without spaces"));
        }
        let dotted = dotted(name);
        let namespace = namespace_of(&dotted).ok_or_else(|| PodError::SysctlNotNamespaced { name: dotted.clone() })?;
        // Path components are the dotted ones with '/' read back as '.': "net.ipv4.//" would
        // reach out of /proc/sys/net.
        let components: Vec<String> = dotted.split('.').map(|c| c.replace('/', ".")).collect();
        if components.iter().any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(bad("every component must be a plain non-empty name"));
        }
        if components.len() < 2 {
            return Err(bad("the name needs a family and a key"));
        }
        if value.len() > MAX_VALUE {
            return Err(bad(&format!("the value is longer than {MAX_VALUE} bytes")));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("the value may not hold control characters such as a newline"));
        }
        Ok(Sysctl { path: components.iter().collect(), name: dotted, value: value.to_string(), namespace })
    }
}

/// The dotted form: a name whose first separator is '/' has its dots and slashes swapped.
fn dotted(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name.chars().map(|c| if c == '/' { '.' } else if c == '.' { '/' } else { c }).collect(),
        _ => name.to_string(),
    }
}

/// The namespace of a dotted name, or None when it is not namespaced.
fn namespace_of(dotted: &str) -> Option<SysctlNamespace> {
    if dotted.starts_with("net.") {
        return Some(SysctlNamespace::Net);
    }
    let ipc = dotted == "kernel.sem" || ["kernel.shm", "kernel.msg", "fs.mqueue."].iter().any(|p| dotted.starts_with(p));
    ipc.then_some(SysctlNamespace::Ipc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str) -> Result<SysctlNamespace, PodError> {
        Sysctl::parse(name, "1").map(|s| s.namespace)
    }

    #[test]
    fn net_and_ipc_families_are_namespaced() {
        for name in ["net.ipv4.ip_unprivileged_port_start", "net.core.somaxconn", "net/ipv4/ping_group_range"] {
            assert_eq!(ns(name).ok(), Some(SysctlNamespace::Net), "{name}");
        }
        for name in ["kernel.shmmni", "kernel.shmmax", "kernel.shm_rmid_forced", "kernel.msgmax", "kernel.msgmnb", "kernel.sem", "fs.mqueue.queues_max", "kernel/shmall"] {
            assert_eq!(ns(name).ok(), Some(SysctlNamespace::Ipc), "{name}");
        }
    }

    #[test]
    fn host_wide_sysctls_are_refused_by_name() {
        for name in ["vm.swappiness", "kernel.hostname", "kernel.domainname", "kernel.pid_max", "kernel.semaphore", "fs.file-max", "fs.mqueue", "netfilter.x", "kernel.sem.x.y"] {
            match ns(name) {
                Err(PodError::SysctlNotNamespaced { name: got }) => assert_eq!(got, name),
                other => panic!("{name} should be refused as not namespaced, got {other:?}"),
            }
        }
    }

    #[test]
    fn slash_form_swaps_dots_and_slashes() {
        let s = Sysctl::parse("net/ipv4/conf/eth0.100/forwarding", "1").expect("valid");
        assert_eq!(s.name, "net.ipv4.conf.eth0/100.forwarding");
        assert_eq!(s.path, PathBuf::from("net/ipv4/conf/eth0.100/forwarding"));
        let s = Sysctl::parse("net.ipv4.conf.eth0/100.forwarding", "1").expect("valid");
        assert_eq!(s.path, PathBuf::from("net/ipv4/conf/eth0.100/forwarding"));
        let s = Sysctl::parse("kernel.shmmni", "4096").expect("valid");
        assert_eq!(s.path, PathBuf::from("kernel/shmmni"));
    }

    #[test]
    fn names_that_leave_their_directory_are_refused() {
        for name in ["net.ipv4.//", "net.ipv4./", "net..ipv4", "net.", "net/../vm/swappiness", "net.ipv4.x y", "net.ipv4.\u{e9}", ""] {
            assert!(matches!(Sysctl::parse(name, "1"), Err(PodError::BadSysctl { .. })), "{name:?} should be refused as malformed");
        }
    }

    #[test]
    fn values_with_newlines_or_too_long_are_refused() {
        assert!(Sysctl::parse("net.ipv4.ping_group_range", "0 2147483647").is_ok());
        assert!(Sysctl::parse("kernel.sem", "250\t32000 32 128").is_ok());
        for value in ["1\n2".to_string(), "1\0".to_string(), "9".repeat(MAX_VALUE + 1)] {
            let e = Sysctl::parse("net.core.somaxconn", &value).expect_err("refused");
            assert!(matches!(e, PodError::BadSysctl { .. }), "{e}");
        }
    }
}
