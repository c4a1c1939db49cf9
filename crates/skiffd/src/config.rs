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
    pub store: StoreConfig,
    pub images: ImagesConfig,
    pub snapshotter: SnapshotterConfig,
    pub runtime: RuntimeConfig,
    pub registry: RegistryConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Image annotation propagation into config.json. Default: enabled, default deny list on.
    #[serde(default)]
    pub image_annotations: skiff_runtime::ImageAnnotationPolicy,
    /// The handler used when a request names none. `builtin` is libcontainer inside skiff-shim.
    #[serde(default = "builtin_handler")]
    pub default_handler: String,
    /// The skiff-shim binary; empty: next to skiffd.
    #[serde(default)]
    pub shim: PathBuf,
    /// Seconds `stop` waits after the stop signal before SIGKILL.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_secs: u64,
    /// What the image's Volumes become.
    #[serde(default)]
    pub image_volumes: ImageVolumes,
    /// Named runtime handlers (`[runtime.handlers.NAME]`).
    #[serde(default)]
    pub handlers: std::collections::BTreeMap<String, HandlerConfig>,
}

/// `[runtime] image_volumes`: what a path in the image config's `Volumes` becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageVolumes {
    /// An anonymous volume seeded from the image, removed with the container.
    #[default]
    Bind,
    /// The directory is made in the container's layer; writes land there.
    Mkdir,
    Ignore,
}

fn builtin_handler() -> String {
    BUILTIN_HANDLER.into()
}

fn default_stop_timeout() -> u64 {
    10
}

/// The handler that needs no configuration: libcontainer, linked into skiff-shim.
pub const BUILTIN_HANDLER: &str = "builtin";

/// `[runtime.handlers.NAME]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerConfig {
    /// A runc-compatible binary (runc, crun, urunc, kata-runtime); empty: libcontainer.
    #[serde(default)]
    pub binary: PathBuf,
    /// This handler's own `[runtime.image_annotations]`; absent: the global one.
    #[serde(default)]
    pub image_annotations: Option<skiff_runtime::ImageAnnotationPolicy>,
}

impl RuntimeConfig {
    /// The named handler (`""`: the default), or an error naming the configured ones.
    pub fn handler(&self, name: &str) -> std::result::Result<(String, HandlerConfig), String> {
        let name = if name.is_empty() { self.default_handler.as_str() } else { name };
        if let Some(h) = self.handlers.get(name) {
            return Ok((name.to_string(), h.clone()));
        }
        if name == BUILTIN_HANDLER {
            return Ok((name.to_string(), HandlerConfig::default()));
        }
        let known: Vec<&str> = std::iter::once(BUILTIN_HANDLER).chain(self.handlers.keys().map(String::as_str)).collect();
        Err(format!("unknown runtime handler {name:?}; configured: {}", known.join(", ")))
    }

    /// The image annotation policy of a handler.
    pub fn policy<'a>(&'a self, handler: &'a HandlerConfig) -> &'a skiff_runtime::ImageAnnotationPolicy {
        handler.image_annotations.as_ref().unwrap_or(&self.image_annotations)
    }
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
}

impl Config {
    /// Parses a configuration file's text.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let cfg: Config = toml::from_str(text).with_context(|| format!("parse config {origin}"))?;
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

    fn validate(&self) -> Result<()> {
        let mode = self.socket_mode_bits()?;
        anyhow::ensure!(mode <= 0o777, "socket_mode {:o} has bits beyond 0777", mode);
        anyhow::ensure!(self.images.import_parallelism >= 1, "images.import_parallelism must be at least 1");
        anyhow::ensure!(self.store.cache_capacity_mib >= 1, "store.cache_capacity_mib must be at least 1");
        anyhow::ensure!(self.registry.max_concurrent_downloads >= 1, "registry.max_concurrent_downloads must be at least 1");
        anyhow::ensure!(
            matches!(self.snapshotter.backend.as_str(), "auto" | "overlayfs" | "native"),
            "snapshotter.backend {:?} must be auto, overlayfs or native",
            self.snapshotter.backend
        );
        self.platform()?;
        // Reject bad globs at start, not at the first container.
        skiff_runtime::merge(&Default::default(), &Default::default(), &Default::default(), &self.runtime.image_annotations)?;
        self.runtime.handler("").map_err(|e| anyhow::anyhow!("runtime.default_handler: {e}"))?;
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
        let err = c.runtime.handler("kata").expect_err("unknown");
        assert!(err.contains("unknown runtime handler \"kata\"") && err.contains("builtin, runc, urunc"), "{err}");
        let bad = DEFAULT_CONFIG.replace("default_handler = \"builtin\"", "default_handler = \"nope\"");
        assert!(Config::parse(&bad, "t").is_err());
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
}
