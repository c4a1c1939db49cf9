//! Request checks, made by the client before it runs the helper (so a bad request is an
//! InvalidArgument naming the field) and again by the helper, which trusts no caller.

use super::{PinRequest, PodError, Sysctl, SysctlNamespace};

/// HOST_NAME_MAX.
const MAX_HOSTNAME: usize = 64;

/// Checks `req`; answers its sysctls in the order they are written.
pub fn validate(req: &PinRequest) -> Result<Vec<Sysctl>, PodError> {
    let ns = req.namespaces;
    if !ns.net && !ns.ipc && !ns.uts && !req.pid_holder {
        return Err(PodError::NothingToPin);
    }
    check_dir(req)?;
    if let Some(hostname) = &req.hostname {
        if !ns.uts {
            return Err(PodError::HostnameWithoutUts);
        }
        check_hostname(hostname)?;
    }
    let mut sysctls = Vec::with_capacity(req.sysctls.len());
    for (name, value) in &req.sysctls {
        let sysctl = Sysctl::parse(name, value)?;
        let own = match sysctl.namespace {
            SysctlNamespace::Net => ns.net,
            SysctlNamespace::Ipc => ns.ipc,
        };
        if !own {
            return Err(PodError::SysctlNeedsNamespace { name: sysctl.name, ns: sysctl.namespace });
        }
        sysctls.push(sysctl);
    }
    Ok(sysctls)
}

fn check_dir(req: &PinRequest) -> Result<(), PodError> {
    let bad = |reason| PodError::BadDir { dir: req.dir.clone(), reason };
    if !req.dir.is_absolute() {
        return Err(bad("is not absolute"));
    }
    // Raw components: Path::components drops inner "." ones.
    if req.dir.as_os_str().as_encoded_bytes().split(|b| *b == b'/').any(|c| c == b"." || c == b"..") {
        return Err(bad("has . or .. components"));
    }
    if req.dir.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(bad("holds a NUL byte"));
    }
    if req.dir.parent().is_none() {
        return Err(bad("is the root directory"));
    }
    Ok(())
}

fn check_hostname(hostname: &str) -> Result<(), PodError> {
    let bad = |reason| PodError::BadHostname { hostname: hostname.to_string(), reason };
    if hostname.is_empty() {
        return Err(bad("is empty"));
    }
    if hostname.len() > MAX_HOSTNAME {
        return Err(bad("is longer than 64 bytes"));
    }
    if !hostname.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
        return Err(bad("may hold only letters, digits, '-', '.' and '_'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Namespaces;

    fn req(net: bool, ipc: bool, uts: bool) -> PinRequest {
        PinRequest { dir: "/run/skiff/pods/p1".into(), namespaces: Namespaces { net, ipc, uts }, ..Default::default() }
    }

    #[test]
    fn a_full_request_passes_with_its_sysctls_in_order() {
        let mut r = req(true, true, true);
        r.hostname = Some("web-0.example".into());
        r.sysctls.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
        r.sysctls.insert("kernel.shmmni".into(), "8192".into());
        let sysctls = validate(&r).expect("valid");
        let names: Vec<_> = sysctls.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["kernel.shmmni", "net.ipv4.ping_group_range"]);
    }

    #[test]
    fn nothing_asked_is_refused_but_a_lone_pid_holder_is_not() {
        assert!(matches!(validate(&req(false, false, false)), Err(PodError::NothingToPin)));
        let mut r = req(false, false, false);
        r.pid_holder = true;
        assert!(validate(&r).is_ok());
    }

    #[test]
    fn sysctls_need_the_pods_own_namespace() {
        let mut r = req(false, true, true);
        r.sysctls.insert("net.core.somaxconn".into(), "1024".into());
        match validate(&r) {
            Err(e @ PodError::SysctlNeedsNamespace { .. }) => assert_eq!(e.to_string(), "sysctl \"net.core.somaxconn\" needs the pod's own net namespace; the pod shares the host's"),
            other => panic!("{other:?}"),
        }
        let mut r = req(true, false, true);
        r.sysctls.insert("fs.mqueue.msg_max".into(), "20".into());
        assert!(matches!(validate(&r), Err(PodError::SysctlNeedsNamespace { ns: SysctlNamespace::Ipc, .. })));
    }

    #[test]
    fn a_host_wide_sysctl_is_refused_naming_it() {
        let mut r = req(true, true, true);
        r.sysctls.insert("vm.swappiness".into(), "10".into());
        let e = validate(&r).expect_err("refused");
        assert!(e.to_string().contains("\"vm.swappiness\" is not namespaced"), "{e}");
        assert_eq!(skiff_types::HasKind::kind(&e), skiff_types::ErrorKind::InvalidArgument);
    }

    #[test]
    fn hostname_needs_uts_and_a_sane_name() {
        let mut r = req(true, true, false);
        r.hostname = Some("web".into());
        assert!(matches!(validate(&r), Err(PodError::HostnameWithoutUts)));
        for bad in ["", "a b", "a/b", "x\0", &"h".repeat(65)] {
            let mut r = req(true, true, true);
            r.hostname = Some(bad.to_string());
            assert!(matches!(validate(&r), Err(PodError::BadHostname { .. })), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_dir_must_be_absolute_and_plain() {
        for bad in ["run/pods/p1", "/run/../etc", "/run/./p", "/", "/run/p\0x"] {
            let mut r = req(true, false, false);
            r.dir = bad.into();
            assert!(matches!(validate(&r), Err(PodError::BadDir { .. })), "{bad:?} should be refused");
        }
    }

    #[test]
    fn unknown_request_fields_are_refused() {
        let e = serde_json::from_str::<PinRequest>(r#"{"dir":"/p","namespaces":{"net":true,"pid":true}}"#).expect_err("unknown field");
        assert!(e.to_string().contains("pid"), "{e}");
        let r: PinRequest = serde_json::from_str(r#"{"dir":"/p","namespaces":{"ipc":true}}"#).expect("defaults");
        assert_eq!(r.namespaces, Namespaces { net: false, ipc: true, uts: false });
    }
}
