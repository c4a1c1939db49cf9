//! The HTTP clients every pull and push of the process share: one per TLS setting (skip_verify
//! and the CA files an endpoint adds).
//!
//! Building a client loads the system's root certificates (every certificate under
//! /etc/ssl/certs is parsed) and starts the blocking client's own runtime thread. Built per pull,
//! that was a third of a small image's pull from a loopback registry. A shared client also keeps
//! its connections to a registry open from one pull to the next, as containerd's does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::blocking::Client as Http;

use crate::error::{RegistryError, Result, Target};
use crate::hosts::Endpoint;

/// What tells two clients apart: skip_verify, and each CA file with its contents (a file that
/// changed gets a client of its own).
type Setting = (bool, Vec<(PathBuf, Vec<u8>)>);

fn clients() -> &'static Mutex<HashMap<Setting, Http>> {
    static CLIENTS: OnceLock<Mutex<HashMap<Setting, Http>>> = OnceLock::new();
    CLIENTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The client for `ep`'s TLS setting, built the first time it is asked for.
pub fn client_for(ep: &Endpoint, target: &Target) -> Result<Http> {
    let mut cas = Vec::with_capacity(ep.ca.len());
    for ca in &ep.ca {
        let pem = std::fs::read(ca).map_err(|e| RegistryError::Config { path: ca.display().to_string(), message: e.to_string() })?;
        cas.push((ca.clone(), pem));
    }
    let mut clients = clients().lock().unwrap_or_else(|e| e.into_inner());
    cached(&mut clients, (ep.skip_verify, cas), |setting| build(setting, target))
}

/// The value kept for `setting`, or what `build` makes of it, kept when it succeeds.
fn cached<V: Clone>(kept: &mut HashMap<Setting, V>, setting: Setting, build: impl FnOnce(&Setting) -> Result<V>) -> Result<V> {
    if let Some(v) = kept.get(&setting) {
        return Ok(v.clone());
    }
    let v = build(&setting)?;
    kept.insert(setting, v.clone());
    Ok(v)
}

fn build((skip_verify, cas): &Setting, target: &Target) -> Result<Http> {
    let mut b = Http::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(None)
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(*skip_verify);
    for (path, pem) in cas {
        let cert = reqwest::Certificate::from_pem(pem).map_err(|e| RegistryError::Config { path: path.display().to_string(), message: e.to_string() })?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| target.transport("build HTTP client", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_built_once_and_a_failed_build_is_not_kept() {
        let mut kept = HashMap::new();
        let mut builds = 0;
        let mut get = |setting: Setting, fail: bool| {
            cached(&mut kept, setting, |_| {
                builds += 1;
                if fail { Err(RegistryError::Config { path: "ca.pem".into(), message: "bad".into() }) } else { Ok(builds) }
            })
        };
        let plain: Setting = (false, Vec::new());
        let with_ca: Setting = (false, vec![(PathBuf::from("/etc/ca.pem"), b"one".to_vec())]);
        let changed_ca: Setting = (false, vec![(PathBuf::from("/etc/ca.pem"), b"two".to_vec())]);
        assert_eq!(get(plain.clone(), false).expect("first"), 1);
        assert_eq!(get(plain.clone(), false).expect("again"), 1, "the same setting shares its client");
        assert_eq!(get((true, Vec::new()), false).expect("skip verify"), 2);
        assert!(get(with_ca.clone(), true).is_err());
        assert_eq!(get(with_ca, false).expect("built after a failure"), 4, "a failure is not kept");
        assert_eq!(get(changed_ca, false).expect("changed CA"), 5, "a CA file that changed gets its own client");
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let ep = Endpoint { base: "https://r.example".into(), capabilities: crate::hosts::Capabilities::ALL, skip_verify: false, ca: vec![PathBuf::from("/nonexistent/ca.pem")], headers: Vec::new(), mirror: false };
        let target = Target { host: "r.example".into(), repository: "a".into(), object: String::new() };
        let err = client_for(&ep, &target).expect_err("missing CA file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
