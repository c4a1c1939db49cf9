//! skiffd's configuration: `config/skiffd.toml` is embedded as the default and documents every key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// The documented default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/skiffd.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Store root. Default `/var/lib/skiff`.
    pub root: PathBuf,
    /// API socket. Default `/run/skiff/skiff.sock`.
    pub socket: PathBuf,
    /// Socket permission bits, octal. Default `0660`.
    pub socket_mode: String,
    /// Log filter. Default `info`.
    pub log_level: String,
    /// Seconds shutdown waits for requests under way. Default 5.
    pub shutdown_timeout_secs: u64,
    pub store: StoreConfig,
    pub images: ImagesConfig,
    pub snapshotter: SnapshotterConfig,
    pub runtime: skiff_engine::RuntimeConfig,
    pub registry: RegistryConfig,
    pub cri: CriConfig,
}

/// The kubelet's CRI: pod networking and what every pod gets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriConfig {
    /// CNI network configs; the first `*.conflist`, `*.conf` or `*.json` by name. Default `/etc/cni/net.d`.
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugins are looked for, in order. Default `/usr/lib/cni`, `/opt/cni/bin`.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// CNI result cache (libcni's layout, shared with other tools). Default `/var/lib/cni`.
    pub cni_cache_dir: PathBuf,
    /// Seconds one CNI plugin may run before it is killed. Default 60.
    pub cni_plugin_timeout_secs: u64,
    /// MiB of each pod's /dev/shm tmpfs. Default 64.
    pub pod_shm_size_mib: u64,
    /// The streaming server's address. Default `127.0.0.1`.
    pub stream_address: String,
    /// Its port; 0 picks a free one. Default 0.
    pub stream_port: u16,
    /// PEM certificate chain and key for HTTPS; empty: plain HTTP. Default empty.
    pub stream_tls_cert: PathBuf,
    pub stream_tls_key: PathBuf,
    /// Sysctls every pod gets unless it sets them itself. Default none.
    #[serde(default)]
    pub default_sysctls: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotterConfig {
    /// `auto`, `overlayfs` or `native`. Default `auto`.
    pub backend: String,
    /// Uncompressed MiB any layer may reach. Default 4096.
    pub layer_expansion_floor_mib: u64,
    /// Past the floor, uncompressed bytes per compressed byte. Default 100.
    pub layer_expansion_ratio: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// certs.d-style host configuration directory. Default `/etc/skiff/certs.d`.
    pub config_path: PathBuf,
    /// Docker config.json for credentials; empty to look in the usual places. Default empty.
    pub docker_config: String,
    /// Layers fetched at once during a pull. Default 4.
    pub max_concurrent_downloads: usize,
    /// Retries of transient registry failures. Default 4.
    pub retries: u32,
    /// Credentials per host. Default none.
    #[serde(default)]
    pub auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthEntry {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// sled page cache in MiB. Default 32.
    pub cache_capacity_mib: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// Platform for multi-platform images; empty for the host's. Default empty.
    pub default_platform: String,
    /// Parallel layer ingests during import. Default 4.
    pub import_parallelism: usize,
    /// Most layers an imported or pulled image may have. Default 500.
    pub max_layers: usize,
}

/// Lays `top` over `base`: tables merge key by key, any other value replaces the base's.
fn overlay(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => overlay(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Config {
    /// Parses a configuration file's text. The file names only what it changes: it is laid over
    /// the embedded default, table by table, so every key it leaves out keeps its default (as
    /// containerd's and CRI-O's configs do). Unknown keys are still refused.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let mut merged: toml::Table = toml::from_str(DEFAULT_CONFIG).context("parse the embedded default config")?;
        let given: toml::Table = toml::from_str(text).with_context(|| format!("parse config {origin}"))?;
        overlay(&mut merged, given);
        let cfg: Config = toml::Value::Table(merged).try_into().with_context(|| format!("parse config {origin}"))?;
        cfg.validate().with_context(|| format!("config {origin}"))?;
        Ok(cfg)
    }

    /// Loads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        match path {
            None => Config::parse(DEFAULT_CONFIG, "(embedded default)"),
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("read config {}", p.display()))?;
                Config::parse(&text, &p.display().to_string())
            }
        }
    }

    pub fn socket_mode_bits(&self) -> Result<u32> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .with_context(|| format!("socket_mode {:?} is not an octal mode like \"0660\"", self.socket_mode))
    }

    pub fn platform(&self) -> Result<skiff_image::Platform> {
        if self.images.default_platform.is_empty() {
            Ok(skiff_image::Platform::host())
        } else {
            Ok(self.images.default_platform.parse()?)
        }
    }

    /// Where the CRI streaming server listens, and its TLS files.
    pub fn stream_server(&self) -> Result<skiff_streaming::server::ServerConfig> {
        let cri = &self.cri;
        let address = cri.stream_address.parse().with_context(|| format!("cri.stream_address {:?} is not an IP address", cri.stream_address))?;
        let (cert, key) = (&cri.stream_tls_cert, &cri.stream_tls_key);
        let tls = match (cert.as_os_str().is_empty(), key.as_os_str().is_empty()) {
            (true, true) => None,
            (false, false) => Some(skiff_streaming::server::TlsFiles { cert: cert.clone(), key: key.clone() }),
            _ => anyhow::bail!("cri.stream_tls_cert and cri.stream_tls_key go together: set both for HTTPS, or neither"),
        };
        Ok(skiff_streaming::server::ServerConfig { address, port: cri.stream_port, tls })
    }

    fn validate(&self) -> Result<()> {
        let mode = self.socket_mode_bits()?;
        anyhow::ensure!(mode <= 0o777, "socket_mode {:o} has bits beyond 0777", mode);
        anyhow::ensure!(self.images.import_parallelism >= 1, "images.import_parallelism must be at least 1");
        anyhow::ensure!(self.images.max_layers >= 1, "images.max_layers must be at least 1");
        anyhow::ensure!(self.store.cache_capacity_mib >= 1, "store.cache_capacity_mib must be at least 1");
        anyhow::ensure!(self.registry.max_concurrent_downloads >= 1, "registry.max_concurrent_downloads must be at least 1");
        anyhow::ensure!(
            matches!(self.snapshotter.backend.as_str(), "auto" | "overlayfs" | "native"),
            "snapshotter.backend {:?} must be auto, overlayfs or native",
            self.snapshotter.backend
        );
        self.platform()?;
        anyhow::ensure!(self.cri.pod_shm_size_mib >= 1, "cri.pod_shm_size_mib must be at least 1");
        anyhow::ensure!(self.cri.cni_plugin_timeout_secs >= 1, "cri.cni_plugin_timeout_secs must be at least 1");
        anyhow::ensure!(!self.cri.cni_bin_dirs.is_empty(), "cri.cni_bin_dirs must name at least one directory");
        self.stream_server()?;
        // Reject bad globs at start, not at the first container.
        skiff_runtime::merge(&Default::default(), &Default::default(), &Default::default(), &self.runtime.image_annotations)?;
        self.runtime.handler("").context("runtime.default_handler")?;
        for (name, handler) in &self.runtime.handlers {
            if let Some(policy) = &handler.image_annotations {
                skiff_runtime::merge(&Default::default(), &Default::default(), &Default::default(), policy)
                    .with_context(|| format!("runtime.handlers.{name}.image_annotations"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = Config::load(None).expect("default config");
        assert_eq!(c.socket, PathBuf::from("/run/skiff/skiff.sock"));
        assert_eq!(c.socket_mode_bits().expect("mode"), 0o660);
    }

    #[test]
    fn runtime_handlers_resolve_with_their_policies() {
        let text = format!(
            "{DEFAULT_CONFIG}\n[runtime.handlers.urunc]\nbinary = \"/usr/bin/urunc\"\n[runtime.handlers.urunc.image_annotations]\nallow = [\"com.urunc.*\"]\n"
        );
        let c = Config::parse(&text, "t").expect("config");
        let (name, builtin) = c.runtime.handler("").expect("default handler");
        assert_eq!((name.as_str(), builtin.binary.as_os_str().is_empty()), ("builtin", true));
        let (_, runc) = c.runtime.handler("runc").expect("runc");
        assert_eq!(runc.binary, PathBuf::from("/usr/sbin/runc"));
        assert!(c.runtime.policy(&runc).allow.is_empty(), "runc uses the global policy");
        let (_, urunc) = c.runtime.handler("urunc").expect("urunc");
        assert_eq!(c.runtime.policy(&urunc).allow, vec!["com.urunc.*".to_string()]);
        let err = c.runtime.handler("kata").expect_err("unknown").to_string();
        assert!(err.contains("unknown runtime handler \"kata\"") && err.contains("builtin, runc, urunc"), "{err}");
        let bad = DEFAULT_CONFIG.replace("default_handler = \"builtin\"", "default_handler = \"nope\"");
        assert!(Config::parse(&bad, "t").is_err());
    }

    #[test]
    fn a_partial_file_keeps_the_defaults_of_what_it_leaves_out() {
        let c = Config::parse("[registry]\nconfig_path = \"/etc/mine/certs.d\"\n", "t").expect("partial config");
        assert_eq!(c.registry.config_path, PathBuf::from("/etc/mine/certs.d"));
        assert_eq!(c.registry.max_concurrent_downloads, 4, "a sibling key keeps its default");
        assert_eq!(c.socket, PathBuf::from("/run/skiff/skiff.sock"), "a top-level key keeps its default");
        assert_eq!(c.runtime.handler("runc").expect("runc").1.binary, PathBuf::from("/usr/sbin/runc"));
        let c = Config::parse("root = \"/data/skiff\"\n[runtime.handlers.crun]\nbinary = \"/usr/bin/crun\"\n", "t").expect("config");
        assert_eq!(c.root, PathBuf::from("/data/skiff"));
        assert!(c.runtime.handler("crun").is_ok() && c.runtime.handler("runc").is_ok(), "handlers add to the default ones");
        assert!(Config::parse("", "t").is_ok(), "an empty file is the default");
        let err = format!("{:#}", Config::parse("[registry]\nconfig_pth = \"/x\"\n", "t").expect_err("typo"));
        assert!(err.contains("config_pth"), "{err}");
    }

    #[test]
    fn the_streaming_server_is_on_loopback_by_default_and_its_tls_files_go_together() {
        let cfg = Config::parse(DEFAULT_CONFIG, "t").expect("default");
        let server = cfg.stream_server().expect("stream server");
        assert_eq!((server.address.to_string(), server.port, server.tls.is_none()), ("127.0.0.1".to_string(), 0, true));
        let bad = DEFAULT_CONFIG.replace("stream_address = \"127.0.0.1\"", "stream_address = \"localhost\"");
        let err = Config::parse(&bad, "t").expect_err("not an address");
        assert!(format!("{err:#}").contains("cri.stream_address"), "{err:#}");
        let half = DEFAULT_CONFIG.replace("stream_tls_cert = \"\"", "stream_tls_cert = \"/etc/skiff/stream.crt\"");
        let err = Config::parse(&half, "t").expect_err("a cert without a key");
        assert!(format!("{err:#}").contains("go together"), "{err:#}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let extra = format!("{DEFAULT_CONFIG}\nbogus = 1\n");
        assert!(Config::parse(&extra, "t").is_err());
        let bad_mode = DEFAULT_CONFIG.replace("\"0660\"", "\"rw\"");
        assert!(Config::parse(&bad_mode, "t").is_err());
        let bad_platform = DEFAULT_CONFIG.replace("default_platform = \"\"", "default_platform = \"linux\"");
        assert!(Config::parse(&bad_platform, "t").is_err());
        let bad_glob = DEFAULT_CONFIG.replace("deny = []", "deny = [\"[\"]");
        assert!(Config::parse(&bad_glob, "t").is_err());
    }

    #[test]
    fn max_layers_defaults_to_500_and_must_be_at_least_1() {
        assert_eq!(Config::load(None).expect("default config").images.max_layers, 500);
        assert_eq!(Config::parse("[images]\nmax_layers = 3\n", "t").expect("config").images.max_layers, 3);
        let err = format!("{:#}", Config::parse("[images]\nmax_layers = 0\n", "t").expect_err("zero layers"));
        assert!(err.contains("images.max_layers must be at least 1"), "{err}");
    }
}
