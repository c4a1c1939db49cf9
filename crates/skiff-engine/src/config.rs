//! The engine's part of skiffd's configuration (`[runtime]`): handlers, annotation policy, stop
//! timeout and image volumes. skiffd reads it from its config file; every field has a default.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{EngineError, Result};

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

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            image_annotations: Default::default(),
            default_handler: builtin_handler(),
            shim: PathBuf::new(),
            stop_timeout_secs: default_stop_timeout(),
            image_volumes: ImageVolumes::default(),
            handlers: Default::default(),
        }
    }
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
    pub fn handler(&self, name: &str) -> Result<(String, HandlerConfig)> {
        let name = if name.is_empty() { self.default_handler.as_str() } else { name };
        if let Some(h) = self.handlers.get(name) {
            return Ok((name.to_string(), h.clone()));
        }
        if name == BUILTIN_HANDLER {
            return Ok((name.to_string(), HandlerConfig::default()));
        }
        let known: Vec<&str> = std::iter::once(BUILTIN_HANDLER).chain(self.handlers.keys().map(String::as_str)).collect();
        Err(EngineError::UnknownHandler { name: name.to_string(), configured: known.join(", ") })
    }

    /// Every handler's name, the default first (`builtin` is always there).
    pub fn handler_names(&self) -> Vec<String> {
        let mut names = vec![self.default_handler.clone()];
        for name in std::iter::once(BUILTIN_HANDLER).chain(self.handlers.keys().map(String::as_str)) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// The image annotation policy of a handler.
    pub fn policy<'a>(&'a self, handler: &'a HandlerConfig) -> &'a skiff_runtime::ImageAnnotationPolicy {
        handler.image_annotations.as_ref().unwrap_or(&self.image_annotations)
    }
}

