//! CNI errors.

use std::path::PathBuf;
use std::time::Duration;

use crate::invoke::Command;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// The conf dir holds no `*.conflist`, `*.conf` or `*.json` file.
    #[error("no network config in {dir} (looked for *.conflist, *.conf, *.json)")]
    NoConfig { dir: PathBuf },

    /// A config file (or a cached config) that cannot be used.
    #[error("network config {path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },

    /// A plugin named by the config is not in any plugin dir.
    #[error("cni plugin {plugin:?} (network {network:?}) not found in {dirs}")]
    PluginNotFound { plugin: String, network: String, dirs: String },

    /// The plugin reported an error in the spec's `{code, msg, details}` shape.
    #[error("cni plugin {plugin:?} (network {network:?}) failed on {command}: code {code}: {msg}{}", details_suffix(details))]
    Plugin { plugin: String, network: String, command: Command, code: u32, msg: String, details: String },

    /// The plugin failed without a parseable error on stdout.
    #[error("cni plugin {plugin:?} (network {network:?}) failed on {command}: {status}: {output}")]
    PluginFailed { plugin: String, network: String, command: Command, status: String, output: String },

    /// The plugin succeeded but printed something that is not a result of a version we read.
    #[error("cni plugin {plugin:?} (network {network:?}) on {command}: bad result: {reason}")]
    BadResult { plugin: String, network: String, command: Command, reason: String },

    #[error("cni plugin {plugin:?} (network {network:?}) did not finish {command} within {timeout:?}; killed")]
    Timeout { plugin: String, network: String, command: Command, timeout: Duration },

    #[error("cannot run cni plugin {path}: {source}")]
    Exec { path: PathBuf, #[source] source: std::io::Error },

    /// The pod's network is set up already (a cache entry exists): tear it down first.
    #[error("network {network:?} is already set up for sandbox {sandbox:?} on {ifname} (cache entry {path})")]
    AlreadySetUp { network: String, sandbox: String, ifname: String, path: PathBuf },

    #[error("network namespace {path}: {reason}")]
    Netns { path: PathBuf, reason: String },

    /// A cache entry that cannot be read back.
    #[error("cni cache entry {path}: {reason}")]
    Cache { path: PathBuf, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("{context}: {source}")]
    Io { context: String, #[source] source: std::io::Error },
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

impl CniError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CniError {
        let context = context.into();
        move |source| CniError::Io { context, source }
    }

    pub(crate) fn bad_config(path: impl Into<PathBuf>, reason: impl Into<String>) -> CniError {
        CniError::BadConfig { path: path.into(), reason: reason.into() }
    }
}

impl skiff_types::HasKind for CniError {
    fn kind(&self) -> skiff_types::ErrorKind {
        use skiff_types::ErrorKind as K;
        match self {
            CniError::NoConfig { .. } | CniError::BadConfig { .. } | CniError::PluginNotFound { .. } => K::FailedPrecondition,
            CniError::Plugin { code, .. } => kind_of_code(*code),
            CniError::PluginFailed { .. } | CniError::BadResult { .. } => K::Internal,
            CniError::Timeout { .. } => K::Unavailable,
            CniError::Exec { source, .. } => K::of_io(source),
            CniError::AlreadySetUp { .. } => K::AlreadyExists,
            CniError::Netns { .. } | CniError::InvalidArgument(_) => K::InvalidArgument,
            CniError::Cache { .. } => K::DataLoss,
            CniError::Io { source, .. } => K::of_io(source),
        }
    }
}

/// The spec's well-known error codes: the ones about the node's config or the plugin's version are
/// preconditions of the node, the one about the runtime's variables the request's fault, "try again
/// later" a passing state; codes 100 and up are the plugin's own and say nothing we can rely on.
fn kind_of_code(code: u32) -> skiff_types::ErrorKind {
    use skiff_types::ErrorKind as K;
    match code {
        1 | 2 | 6 | 7 => K::FailedPrecondition,
        3 => K::NotFound,
        4 => K::InvalidArgument,
        11 => K::Unavailable,
        _ => K::Internal,
    }
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_types::{ErrorKind, HasKind};

    #[test]
    fn plugin_error_names_plugin_code_and_message() {
        let e = CniError::Plugin { plugin: "bridge".into(), network: "pods".into(), command: Command::Add, code: 7, msg: "boom".into(), details: "no bridge".into() };
        assert_eq!(e.to_string(), r#"cni plugin "bridge" (network "pods") failed on ADD: code 7: boom (no bridge)"#);
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        let e = CniError::Plugin { plugin: "x".into(), network: "n".into(), command: Command::Del, code: 11, msg: "busy".into(), details: String::new() };
        assert_eq!(e.to_string(), r#"cni plugin "x" (network "n") failed on DEL: code 11: busy"#);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
