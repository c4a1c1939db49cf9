//! Registry authentication: credentials from skiffd's config or a Docker `config.json`, and the
//! challenge flow — Basic, or Bearer with a token from the realm the `WWW-Authenticate` header names.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;

use crate::error::{RegistryError, Result};

/// A user name and password (or token) for one registry host.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// Parses `user:password`.
    pub fn parse(s: &str) -> Option<Credentials> {
        let (u, p) = s.split_once(':')?;
        Some(Credentials { username: u.to_string(), password: p.to_string() })
    }

    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// Normalises the host keys Docker writes (`https://index.docker.io/v1/`) to reference domains.
fn host_key(key: &str) -> String {
    let k = key.split_once("://").map_or(key, |(_, rest)| rest);
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Credentials by registry host.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    hosts: HashMap<String, Credentials>,
}

impl AuthConfig {
    pub fn insert(&mut self, host: &str, creds: Credentials) {
        self.hosts.insert(host_key(host), creds);
    }

    pub fn get(&self, host: &str) -> Option<&Credentials> {
        self.hosts.get(&host_key(host))
    }

    /// Adds the entries of a Docker `config.json` (`auths.<host>.auth` = base64 of `user:password`,
    /// or `username`/`password`); entries already present win.
    pub fn load_docker_config(&mut self, path: &Path) -> Result<()> {
        let err = |message: String| RegistryError::Config { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else { return Ok(()) };
        for (host, entry) in auths {
            let creds = if let Some(b64) = entry.get("auth").and_then(|a| a.as_str()).filter(|s| !s.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| err(format!("auths.{host}.auth: {e}")))?;
                Credentials::parse(&String::from_utf8_lossy(&raw)).ok_or_else(|| err(format!("auths.{host}.auth is not user:password")))?
            } else {
                match (entry.get("username").and_then(|u| u.as_str()), entry.get("password").and_then(|p| p.as_str())) {
                    (Some(u), Some(p)) => Credentials { username: u.into(), password: p.into() },
                    _ => continue,
                }
            };
            self.hosts.entry(host_key(host)).or_insert(creds);
        }
        Ok(())
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses `Scheme key="value", key2=value2` (quoted values may hold commas and escaped quotes).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#)
            .expect("challenge");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example.com/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).expect("basic");
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
        let e = parse_challenge(r#"Bearer realm="a\"b", error=invalid_token"#).expect("escaped");
        assert_eq!(e.params["realm"], "a\"b");
        assert_eq!(e.params["error"], "invalid_token");
    }

    #[test]
    fn docker_config_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .expect("write");
        let mut cfg = AuthConfig::default();
        cfg.insert("127.0.0.1:5000", Credentials { username: "configured".into(), password: "x".into() });
        cfg.load_docker_config(&path).expect("load");
        assert_eq!(cfg.get("docker.io").map(|c| c.username.as_str()), Some("alice"));
        assert_eq!(cfg.get("127.0.0.1:5000").map(|c| c.username.as_str()), Some("configured"), "config wins");
        assert!(Credentials { username: "u".into(), password: "p".into() }.basic_header().starts_with("Basic dTpw"));
    }
}
