//! The result cache, in libcni's layout and format so that a DEL after a restart (ours, or another
//! tool's: cnitool, containerd, CRI-O) finds the config, arguments and result of the ADD:
//!
//! ```text
//! <cache dir>/                                   default /var/lib/cni
//! └── results/                                   0700
//!     └── <network>-<containerId>-<ifName>       0600, one per attachment, written on ADD,
//!                                                removed after a successful DEL
//!         {
//!           "kind": "cniCacheV1",
//!           "containerId": "<sandbox id>",
//!           "config": "<base64 of the network config list as run>",
//!           "ifName": "eth0",
//!           "networkName": "<network>",
//!           "netns": "/var/lib/skiff/pods/<id>/ns/net",        (omitted when empty)
//!           "cniArgs": [["IgnoreUnknown","1"], ["K8S_POD_NAME","…"], …],  (omitted when empty)
//!           "capabilityArgs": {"portMappings": […], …},        (omitted when empty)
//!           "result": { the chain's final result }              (omitted when none)
//!         }
//! ```
//!
//! `config` is base64 because libcni's field is a Go `[]byte`. Entries are written whole (temp
//! file, then rename) so a daemon killed mid-write leaves the old entry or the new one, never half
//! of one; temp files start with `.` and are never read as entries. They are not fsynced (nor are
//! libcni's): what an entry describes, a veth in a pinned namespace, does not outlive the reboot
//! that would lose an unsynced file, and a DEL without its entry runs on the current config.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{CniError, Result};

/// libcni's marker of the format.
pub const CACHE_KIND: &str = "cniCacheV1";

/// One attachment's entry, field for field libcni's `cachedInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub kind: String,
    #[serde(rename = "containerId")]
    pub container_id: String,
    #[serde(with = "go_bytes")]
    pub config: Vec<u8>,
    #[serde(rename = "ifName")]
    pub if_name: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub cni_args: Vec<[String; 2]>,
    #[serde(rename = "capabilityArgs", default, skip_serializing_if = "Map::is_empty", deserialize_with = "null_as_default")]
    pub capability_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// An entry found for an attachment, read or not.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub entry: std::result::Result<CacheEntry, String>,
}

/// The cache dir.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    fn results(&self) -> PathBuf {
        self.dir.join("results")
    }

    /// The entry's path. The three names are validated before they get here (no `/`).
    pub fn path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        self.results().join(format!("{network}-{container_id}-{ifname}"))
    }

    /// Writes an entry whole, replacing one there.
    pub fn write(&self, entry: &CacheEntry) -> Result<PathBuf> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let results = self.results();
        create_private_dir(&results)?;
        let path = self.path(&entry.network_name, &entry.container_id, &entry.if_name);
        let bytes = serde_json::to_vec(entry).map_err(|e| CniError::Cache { path: path.clone(), reason: format!("cannot encode: {e}") })?;
        let tmp = results.join(format!(".{}-{}-{}.tmp", entry.network_name, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        let written = (|| {
            let mut file = open_private(&tmp)?;
            file.write_all(&bytes)?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(CniError::io(format!("write cni cache entry {}", path.display()))(e));
        }
        Ok(path)
    }

    /// The entry at its exact path, if there is one.
    pub fn read(&self, network: &str, container_id: &str, ifname: &str) -> Result<Option<CacheEntry>> {
        let path = self.path(network, container_id, ifname);
        match std::fs::read(&path) {
            Ok(bytes) => parse(&bytes).map(Some).map_err(|reason| CniError::Cache { path, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CniError::io(format!("read cni cache entry {}", path.display()))(e)),
        }
    }

    /// Every entry for this container and interface, whatever its network: the config may have
    /// been renamed or removed since the ADD. A readable entry counts when its fields say it is
    /// this attachment's; an unreadable one when its name ends as this attachment's would.
    pub fn find(&self, container_id: &str, ifname: &str) -> Result<Vec<Found>> {
        let results = self.results();
        let entries = match std::fs::read_dir(&results) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CniError::io(format!("read cni cache dir {}", results.display()))(e)),
        };
        let suffix = format!("-{container_id}-{ifname}");
        let mut found = Vec::new();
        for dirent in entries {
            let dirent = dirent.map_err(CniError::io(format!("read cni cache dir {}", results.display())))?;
            let name = dirent.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(network) = name.strip_suffix(&suffix) else { continue };
            if network.is_empty() || name.starts_with('.') {
                continue;
            }
            let path = dirent.path();
            let entry = std::fs::read(&path).map_err(|e| e.to_string()).and_then(|bytes| parse(&bytes));
            if let Ok(e) = &entry {
                if e.container_id != container_id || e.if_name != ifname || e.network_name != network {
                    continue;
                }
            }
            found.push(Found { path, entry });
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// Removes an entry; one already gone is fine.
    pub fn remove(&self, path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CniError::io(format!("remove cni cache entry {}", path.display()))(e)),
            _ => Ok(()),
        }
    }
}

fn parse(bytes: &[u8]) -> std::result::Result<CacheEntry, String> {
    let entry: CacheEntry = serde_json::from_slice(bytes).map_err(|e| format!("not a cache entry: {e}"))?;
    if entry.kind != CACHE_KIND {
        return Err(format!("kind {:?} is not {CACHE_KIND:?}", entry.kind));
    }
    Ok(entry)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(CniError::io(format!("create cni cache dir {}", dir.display())))
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> std::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A Go `[]byte` in JSON: standard base64 with padding, `null` for nil.
mod go_bytes {
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    use base64::Engine as _;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(text) => STANDARD.decode(text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
