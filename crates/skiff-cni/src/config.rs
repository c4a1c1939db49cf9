//! The node's network config: the first file by name in the conf dir among `*.conflist`, `*.conf`
//! and `*.json` (containerd's and CRI-O's rule). A `.conflist` is a list of plugins run in order; a
//! `.conf` or `.json` is a single plugin, turned into a one-plugin list as libcni does. Plugins are
//! inline (spec 1.0); the list's JSON is kept as bytes because the cache stores it and a DEL after a
//! restart runs from it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{CniError, Result};

/// The spec versions whose results this crate reads (0.1.0 and 0.2.0 had another result shape).
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A network: its plugins, run in order on ADD and in reverse on DEL.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    /// The version injected into every plugin's config.
    pub cni_version: String,
    pub plugins: Vec<PluginConfig>,
    /// The list as JSON (the file's bytes for a `.conflist`, the upconverted list otherwise).
    pub bytes: Vec<u8>,
    /// Where it was read from, for errors.
    pub source: PathBuf,
}

/// One plugin of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginConfig {
    /// `type`: the executable's name.
    pub plugin_type: String,
    /// The capabilities the plugin declares as `true`; only these reach its `runtimeConfig`.
    pub capabilities: BTreeSet<String>,
    /// The plugin's object as written, key order kept.
    pub raw: Map<String, Value>,
}

/// The config the conf dir selects, or `NoConfig` when it holds none (a missing dir holds none).
pub fn load_dir(dir: &Path) -> Result<NetworkConfigList> {
    match config_files(dir)?.into_iter().next() {
        Some(path) => load_file(&path),
        None => Err(CniError::NoConfig { dir: dir.to_path_buf() }),
    }
}

/// The candidate files of `dir`, sorted by name.
pub fn config_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CniError::io(format!("read cni conf dir {}", dir.display()))(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(CniError::io(format!("read cni conf dir {}", dir.display())))?;
        let path = entry.path();
        // A symlink to a file counts (config managers link their files in); a directory does not.
        if !path.is_file() {
            continue;
        }
        if matches!(path.extension().and_then(|e| e.to_str()), Some("conflist" | "conf" | "json")) {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// One file, read by its extension.
pub fn load_file(path: &Path) -> Result<NetworkConfigList> {
    let bytes = std::fs::read(path).map_err(CniError::io(format!("read network config {}", path.display())))?;
    if path.extension().and_then(|e| e.to_str()) == Some("conflist") {
        NetworkConfigList::from_list_bytes(&bytes, path)
    } else {
        NetworkConfigList::from_plugin_bytes(&bytes, path)
    }
}

impl NetworkConfigList {
    /// A config list (`{"cniVersion", "name", "plugins": [...]}`).
    pub fn from_list_bytes(bytes: &[u8], source: &Path) -> Result<NetworkConfigList> {
        let bad = |reason: String| CniError::bad_config(source, reason);
        let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(obj) = value else { return Err(bad("not a JSON object".into())) };
        let name = network_name(&obj).map_err(bad)?;
        let cni_version = list_version(&obj).map_err(bad)?;
        let plugins = match obj.get("plugins") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) => return Err(bad("\"plugins\" is empty".into())),
            Some(_) => return Err(bad("\"plugins\" is not an array".into())),
            None => return Err(bad("no \"plugins\" (a single plugin belongs in a .conf file)".into())),
        };
        let plugins = plugins.iter().enumerate().map(|(i, p)| PluginConfig::from_value(p).map_err(|r| bad(format!("plugin {i}: {r}")))).collect::<Result<Vec<_>>>()?;
        Ok(NetworkConfigList { name, cni_version, plugins, bytes: bytes.to_vec(), source: source.to_path_buf() })
    }

    /// A single plugin's config, made a list of one as libcni does.
    pub fn from_plugin_bytes(bytes: &[u8], source: &Path) -> Result<NetworkConfigList> {
        let bad = |reason: String| CniError::bad_config(source, reason);
        let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(obj) = &value else { return Err(bad("not a JSON object".into())) };
        if obj.contains_key("plugins") {
            return Err(bad("has \"plugins\": a config list must be named *.conflist".into()));
        }
        let name = network_name(obj).map_err(bad)?;
        let version = list_version(obj).map_err(bad)?;
        let plugin = PluginConfig::from_value(&value).map_err(bad)?;
        let list = serde_json::json!({ "cniVersion": version, "name": name, "plugins": [value] });
        let bytes = serde_json::to_vec(&list).map_err(|e| bad(format!("cannot encode as a list: {e}")))?;
        Ok(NetworkConfigList { name, cni_version: version, plugins: vec![plugin], bytes, source: source.to_path_buf() })
    }
}

impl PluginConfig {
    fn from_value(value: &Value) -> std::result::Result<PluginConfig, String> {
        let Value::Object(raw) = value else { return Err("not a JSON object".into()) };
        let plugin_type = match raw.get("type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            Some(Value::String(_)) | None => return Err("no \"type\"".into()),
            Some(_) => return Err("\"type\" is not a string".into()),
        };
        // The type names an executable inside the plugin dirs, never a path out of them.
        if plugin_type.contains('/') || plugin_type == "." || plugin_type == ".." {
            return Err(format!("\"type\" {plugin_type:?} is not a plugin name"));
        }
        let mut capabilities = BTreeSet::new();
        match raw.get("capabilities") {
            None | Some(Value::Null) => {}
            Some(Value::Object(caps)) => {
                for (cap, on) in caps {
                    match on {
                        Value::Bool(true) => {
                            capabilities.insert(cap.clone());
                        }
                        Value::Bool(false) => {}
                        _ => return Err(format!("capability {cap:?} is not true or false")),
                    }
                }
            }
            Some(_) => return Err("\"capabilities\" is not an object".into()),
        }
        Ok(PluginConfig { plugin_type, capabilities, raw: raw.clone() })
    }
}

fn network_name(obj: &Map<String, Value>) -> std::result::Result<String, String> {
    match obj.get("name") {
        Some(Value::String(n)) if is_valid_name(n) => Ok(n.clone()),
        Some(Value::String(n)) => Err(format!("network name {n:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'")),
        Some(_) => Err("\"name\" is not a string".into()),
        None => Err("no \"name\"".into()),
    }
}

/// `cniVersion`, or with `cniVersions` (spec 1.1) the highest version both sides speak.
fn list_version(obj: &Map<String, Value>) -> std::result::Result<String, String> {
    let mut candidates = Vec::new();
    match obj.get("cniVersion") {
        Some(Value::String(v)) => candidates.push(v.clone()),
        Some(_) => return Err("\"cniVersion\" is not a string".into()),
        None => {}
    }
    match obj.get("cniVersions") {
        Some(Value::Array(vs)) => {
            for v in vs {
                let Value::String(v) = v else { return Err("\"cniVersions\" holds a non-string".into()) };
                candidates.push(v.clone());
            }
        }
        Some(_) => return Err("\"cniVersions\" is not an array".into()),
        None => {}
    }
    if candidates.is_empty() {
        return Err("no \"cniVersion\"".into());
    }
    candidates.iter().filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str())).max_by_key(|v| version_key(v)).cloned().ok_or_else(|| format!("cniVersion {} is not one this runtime reads ({})", candidates.join(", "), SUPPORTED_VERSIONS.join(", ")))
}

/// A version's numbers, for ordering; an unparsable part counts as 0 (only supported versions are compared).
pub(crate) fn version_key(v: &str) -> (u32, u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The spec's rule for container IDs and libcni's for network names: a letter or digit, then
/// letters, digits, `_`, `.`, `-`. Both end up in a cache file's name, so this also keeps paths inside it.
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
