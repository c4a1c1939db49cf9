//! Registry host configuration in the style of containerd's `certs.d/<host>/hosts.toml`:
//!
//! ```toml
//! server = "https://registry.example.com"      # the upstream (default https://<host>)
//! ca = "ca.crt"                                # for the upstream; relative to this file
//! skip_verify = false
//!
//! [host."http://127.0.0.1:5001"]              # mirrors, tried in order before the upstream
//!   capabilities = ["pull", "resolve"]         # default: pull, resolve, push
//!   ca = ["mirror-ca.pem"]
//!   skip_verify = true
//!   [host."http://127.0.0.1:5001".header]
//!     x-custom = "value"
//! ```
//! The file for `host:port` is `<config_path>/host:port/hosts.toml`, else `<config_path>/_default/hosts.toml`.

use std::path::{Path, PathBuf};

use crate::error::{RegistryError, Result};

/// What an endpoint may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub pull: bool,
    pub resolve: bool,
    pub push: bool,
}

impl Capabilities {
    pub(crate) const ALL: Capabilities = Capabilities { pull: true, resolve: true, push: true };
}

/// One place to send requests for a registry host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash.
    pub base: String,
    pub capabilities: Capabilities,
    pub skip_verify: bool,
    pub ca: Vec<PathBuf>,
    pub headers: Vec<(String, String)>,
    pub mirror: bool,
}

/// The host configuration directory.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    pub config_path: Option<PathBuf>,
}

fn upstream_default(host: &str, plain_http: bool) -> String {
    let host = if host == "docker.io" { "registry-1.docker.io" } else { host };
    format!("{}://{host}", if plain_http { "http" } else { "https" })
}

fn strings(v: &toml::Value, path: &Path, key: &str) -> Result<Vec<String>> {
    match v {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| config_err(path, format!("{key} must be strings"))))
            .collect(),
        _ => Err(config_err(path, format!("{key} must be a string or a list of strings"))),
    }
}

fn config_err(path: &Path, message: String) -> RegistryError {
    RegistryError::Config { path: path.display().to_string(), message }
}

fn parse_endpoint(base: &str, table: &toml::Table, file: &Path, mirror: bool) -> Result<Endpoint> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(config_err(file, format!("host {base:?} must start with http:// or https://")));
    }
    let mut ep = Endpoint {
        base: base.trim_end_matches('/').to_string(),
        capabilities: Capabilities::ALL,
        skip_verify: false,
        ca: Vec::new(),
        headers: Vec::new(),
        mirror,
    };
    for (key, value) in table {
        match key.as_str() {
            "capabilities" => {
                let caps = strings(value, file, key)?;
                ep.capabilities = Capabilities { pull: false, resolve: false, push: false };
                for c in caps {
                    match c.as_str() {
                        "pull" => ep.capabilities.pull = true,
                        "resolve" => ep.capabilities.resolve = true,
                        "push" => ep.capabilities.push = true,
                        other => return Err(config_err(file, format!("unknown capability {other:?}"))),
                    }
                }
            }
            "skip_verify" => {
                ep.skip_verify = value.as_bool().ok_or_else(|| config_err(file, "skip_verify must be true or false".into()))?
            }
            "ca" => ep.ca = strings(value, file, key)?.into_iter().map(|p| dir.join(p)).collect(),
            "header" => {
                let t = value.as_table().ok_or_else(|| config_err(file, "header must be a table".into()))?;
                for (k, v) in t {
                    for s in strings(v, file, k)? {
                        ep.headers.push((k.clone(), s));
                    }
                }
            }
            "server" | "host" if !mirror => {}
            other => return Err(config_err(file, format!("unknown key {other:?} for {base}"))),
        }
    }
    Ok(ep)
}

impl Hosts {
    fn file_for(&self, host: &str) -> Option<PathBuf> {
        let dir = self.config_path.as_ref()?;
        [dir.join(host).join("hosts.toml"), dir.join("_default").join("hosts.toml")].into_iter().find(|p| p.is_file())
    }

    /// The endpoints for `host`, mirrors first, upstream last. `plain_http` makes the default
    /// upstream http:// (an explicit `server` in hosts.toml wins).
    pub fn endpoints(&self, host: &str, plain_http: bool) -> Result<Vec<Endpoint>> {
        let Some(file) = self.file_for(host) else {
            return Ok(vec![Endpoint {
                base: upstream_default(host, plain_http),
                capabilities: Capabilities::ALL,
                skip_verify: false,
                ca: Vec::new(),
                headers: Vec::new(),
                mirror: false,
            }]);
        };
        let text = std::fs::read_to_string(&file).map_err(|e| config_err(&file, e.to_string()))?;
        let doc: toml::Table = toml::from_str(&text).map_err(|e| config_err(&file, e.to_string()))?;
        let mut out = Vec::new();
        if let Some(hosts) = doc.get("host") {
            let hosts = hosts.as_table().ok_or_else(|| config_err(&file, "host must be a table of [host.\"URL\"]".into()))?;
            for (base, t) in hosts {
                let t = t.as_table().ok_or_else(|| config_err(&file, format!("host {base:?} must be a table")))?;
                out.push(parse_endpoint(base, t, &file, true)?);
            }
        }
        let server = match doc.get("server") {
            Some(v) => v.as_str().ok_or_else(|| config_err(&file, "server must be a string".into()))?.to_string(),
            None => upstream_default(host, plain_http),
        };
        let mut upstream_table = doc.clone();
        upstream_table.remove("host");
        out.push(parse_endpoint(&server, &upstream_table, &file, false)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_config() {
        let eps = Hosts::default().endpoints("docker.io", false).expect("endpoints");
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].base, "https://registry-1.docker.io");
        let eps = Hosts::default().endpoints("127.0.0.1:5000", true).expect("endpoints");
        assert_eq!(eps[0].base, "http://127.0.0.1:5000");
    }

    #[test]
    fn mirrors_in_order_then_upstream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host_dir = dir.path().join("example.com:5000");
        std::fs::create_dir_all(&host_dir).expect("mkdir");
        std::fs::write(
            host_dir.join("hosts.toml"),
            r#"
server = "https://example.com:5000"
ca = "upstream.pem"
[host."http://127.0.0.1:7001"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  [host."http://127.0.0.1:7001".header]
    x-test = "1"
[host."https://mirror-b"]
  ca = ["/etc/b.pem"]
"#,
        )
        .expect("write");
        let hosts = Hosts { config_path: Some(dir.path().to_path_buf()) };
        let eps = hosts.endpoints("example.com:5000", false).expect("endpoints");
        let bases: Vec<&str> = eps.iter().map(|e| e.base.as_str()).collect();
        assert_eq!(bases, ["http://127.0.0.1:7001", "https://mirror-b", "https://example.com:5000"]);
        assert!(!eps[0].capabilities.push && eps[0].capabilities.pull && eps[0].skip_verify);
        assert_eq!(eps[0].headers, vec![("x-test".to_string(), "1".to_string())]);
        assert_eq!(eps[1].ca, vec![PathBuf::from("/etc/b.pem")]);
        assert_eq!(eps[2].ca, vec![host_dir.join("upstream.pem")]);
        assert!(!eps[2].mirror && eps[0].mirror);
        std::fs::write(host_dir.join("hosts.toml"), "[host.\"ftp://x\"]\n").expect("write");
        assert!(hosts.endpoints("example.com:5000", false).is_err());
        std::fs::write(host_dir.join("hosts.toml"), "bogus = 1\n").expect("write");
        assert!(hosts.endpoints("example.com:5000", false).is_err());
    }
}
