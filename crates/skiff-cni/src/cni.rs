//! `Cni`, the real `NetworkPlugin`: the node's config from the conf dir, plugins from the plugin
//! dirs, results in libcni's cache. The config is read on every operation, so a config written
//! after the daemon started (a network add-on installing itself) is used at once.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use serde_json::Value;

use crate::args::{capability_args, cni_args, join_cni_args, parse_cidr, validate};
use crate::cache::{Cache, CacheEntry, CACHE_KIND};
use crate::chain::{Attachment, Runner};
use crate::config::{load_dir, NetworkConfigList};
use crate::error::{CniError, Result};
use crate::netns::{probe, NetnsState};
use crate::pod::{NetworkStatus, NotReady, PluginTiming, PodNetwork};
use crate::result::CniResult;
use crate::NetworkPlugin;

/// Where `Cni` finds things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniOptions {
    /// The network configs (default `/etc/cni/net.d`).
    pub conf_dir: PathBuf,
    /// Where plugins are looked for, in order (default `/usr/lib/cni`, `/opt/cni/bin`).
    pub plugin_dirs: Vec<PathBuf>,
    /// The result cache (default `/var/lib/cni`, libcni's).
    pub cache_dir: PathBuf,
    /// How long one plugin invocation may take before it is killed (default 60 s).
    pub plugin_timeout: Duration,
}

impl Default for CniOptions {
    fn default() -> CniOptions {
        CniOptions {
            conf_dir: PathBuf::from("/etc/cni/net.d"),
            plugin_dirs: vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")],
            cache_dir: PathBuf::from("/var/lib/cni"),
            plugin_timeout: Duration::from_secs(60),
        }
    }
}

pub struct Cni {
    opts: CniOptions,
    cni_path: String,
    cache: Cache,
    locks: crate::lock::KeyedLocks,
    /// The node's pod CIDRs, from the CRI's UpdateRuntimeConfig.
    node_cidrs: RwLock<Vec<String>>,
}

impl Cni {
    pub fn new(opts: CniOptions) -> Cni {
        let cni_path = opts.plugin_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":");
        let cache = Cache::new(&opts.cache_dir);
        Cni { opts, cni_path, cache, locks: crate::lock::KeyedLocks::new(), node_cidrs: RwLock::new(Vec::new()) }
    }

    pub fn options(&self) -> &CniOptions {
        &self.opts
    }

    /// The config an ADD would run now.
    pub fn load_config(&self) -> Result<NetworkConfigList> {
        load_dir(&self.opts.conf_dir)
    }

    fn runner(&self) -> Runner<'_> {
        Runner { plugin_dirs: &self.opts.plugin_dirs, cni_path: &self.cni_path, timeout: self.opts.plugin_timeout }
    }

    fn node_cidrs(&self) -> Vec<String> {
        self.node_cidrs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// ADD: runs the chain, caches the result, gives the pod's addresses.
    pub fn add(&self, pod: &PodNetwork) -> Result<NetworkStatus> {
        validate(pod)?;
        let _held = self.locks.lock(&pod.sandbox_id);
        let list = self.load_config()?;
        let netns = utf8(&pod.netns)?;
        match probe(&pod.netns) {
            NetnsState::Live => {}
            NetnsState::Missing => return Err(CniError::Netns { path: pod.netns.clone(), reason: "does not exist".into() }),
            NetnsState::NotNetns => return Err(CniError::Netns { path: pod.netns.clone(), reason: "is not a network namespace (nothing mounted on it)".into() }),
            NetnsState::Unreadable(e) => return Err(CniError::Netns { path: pod.netns.clone(), reason: e.desc().to_lowercase() }),
        }
        // The spec forbids a second ADD of an attachment before its DEL; the cache tells.
        if self.cache.read(&list.name, &pod.sandbox_id, &pod.ifname)?.is_some() {
            let path = self.cache.path(&list.name, &pod.sandbox_id, &pod.ifname);
            return Err(CniError::AlreadySetUp { network: list.name.clone(), sandbox: pod.sandbox_id.clone(), ifname: pod.ifname.clone(), path });
        }
        let args = cni_args(pod)?;
        let joined = join_cni_args(&args);
        let caps = capability_args(pod, &self.node_cidrs());
        let att = Attachment { list: &list, container_id: &pod.sandbox_id, netns, ifname: &pod.ifname, cni_args: &joined, capability_args: &caps };
        let runner = self.runner();
        let (result, timings) = runner.add(&att)?;
        let entry = CacheEntry {
            kind: CACHE_KIND.into(),
            container_id: pod.sandbox_id.clone(),
            config: list.bytes.clone(),
            if_name: pod.ifname.clone(),
            network_name: list.name.clone(),
            netns: netns.to_string(),
            cni_args: args,
            capability_args: caps.clone(),
            result: Some(Value::Object(result.raw.clone())),
        };
        // Without the entry a later DEL would lack the result: undo rather than leave that.
        if let Err(e) = self.cache.write(&entry) {
            if let Err(undo) = runner.del(&att, Some(&result.as_version(&list.cni_version))) {
                tracing::warn!(sandbox = %pod.sandbox_id, error = %undo, "cni delete after a failed cache write failed");
            }
            return Err(e);
        }
        let (ips, gateway) = result.pod_ips(&pod.ifname);
        tracing::debug!(sandbox = %pod.sandbox_id, network = %list.name, ?ips, ?timings, "pod network set up");
        Ok(NetworkStatus { interface: pod.ifname.clone(), ips, gateway, result: Value::Object(result.raw), timings })
    }

    /// DEL: with each cached attachment's own config, arguments and result; with the current
    /// config and no result when nothing is cached. Entries go only after their DEL succeeded.
    pub fn del(&self, pod: &PodNetwork) -> Result<Vec<PluginTiming>> {
        validate(pod)?;
        let _held = self.locks.lock(&pod.sandbox_id);
        let netns = match probe(&pod.netns) {
            NetnsState::Live => utf8(&pod.netns)?,
            _ => "",
        };
        let args = join_cni_args(&cni_args(pod)?);
        let caps = capability_args(pod, &self.node_cidrs());
        let runner = self.runner();
        let mut timings = Vec::new();
        let mut first_error: Option<CniError> = None;
        let mut unreadable = Vec::new();
        let mut done_from_cache = false;
        for found in self.cache.find(&pod.sandbox_id, &pod.ifname)? {
            let entry = match found.entry {
                Ok(entry) => entry,
                Err(reason) => {
                    tracing::warn!(path = %found.path.display(), %reason, "unreadable cni cache entry");
                    unreadable.push(found.path);
                    continue;
                }
            };
            let list = match NetworkConfigList::from_list_bytes(&entry.config, &found.path) {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!(error = %e, "cached network config unusable");
                    unreadable.push(found.path);
                    continue;
                }
            };
            let prev = entry.result.as_ref().and_then(|r| prev_result(r, &list, &found.path));
            let cached_args = if entry.cni_args.is_empty() { args.clone() } else { join_cni_args(&entry.cni_args) };
            let att = Attachment { list: &list, container_id: &pod.sandbox_id, netns, ifname: &pod.ifname, cni_args: &cached_args, capability_args: &entry.capability_args };
            done_from_cache = true;
            match runner.del(&att, prev.as_ref()) {
                Ok(t) => {
                    timings.extend(t);
                    if let Err(e) = self.cache.remove(&found.path) {
                        first_error.get_or_insert(e);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Nothing usable cached (or an unreadable entry where the current config's would be):
        // the current config, without a result, which the spec says plugins must cope with.
        if !done_from_cache || !unreadable.is_empty() {
            let list = match self.load_config() {
                Ok(list) => list,
                Err(e) if done_from_cache => {
                    first_error.get_or_insert(e);
                    return finish(timings, first_error);
                }
                Err(e) => return Err(e),
            };
            let own = self.cache.path(&list.name, &pod.sandbox_id, &pod.ifname);
            if !done_from_cache || unreadable.contains(&own) {
                let att = Attachment { list: &list, container_id: &pod.sandbox_id, netns, ifname: &pod.ifname, cni_args: &args, capability_args: &caps };
                match runner.del(&att, None) {
                    Ok(t) => {
                        timings.extend(t);
                        if unreadable.contains(&own) {
                            if let Err(e) = self.cache.remove(&own) {
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        finish(timings, first_error)
    }
}

fn finish(timings: Vec<PluginTiming>, first_error: Option<CniError>) -> Result<Vec<PluginTiming>> {
    match first_error {
        Some(e) => Err(e),
        None => Ok(timings),
    }
}

/// The cached result in the list's version, or none (with a warning) when it cannot be read.
fn prev_result(raw: &Value, list: &NetworkConfigList, path: &Path) -> Option<Value> {
    let bytes = serde_json::to_vec(raw).ok()?;
    match CniResult::parse(&bytes, &list.cni_version) {
        Ok(r) => Some(r.as_version(&list.cni_version)),
        Err(reason) => {
            tracing::warn!(path = %path.display(), %reason, "cached cni result unreadable; deleting without it");
            None
        }
    }
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| CniError::InvalidArgument(format!("network namespace path {} is not UTF-8", path.display())))
}

impl NetworkPlugin for Cni {
    fn setup(&self, pod: &PodNetwork) -> Result<NetworkStatus> {
        self.add(pod)
    }

    fn teardown(&self, pod: &PodNetwork) -> Result<Vec<PluginTiming>> {
        self.del(pod)
    }

    fn status(&self) -> Result<(), NotReady> {
        let list = self.load_config().map_err(|e| {
            let reason = if matches!(e, CniError::NoConfig { .. }) { "NoNetworkConfig" } else { "InvalidNetworkConfig" };
            NotReady { reason: reason.into(), message: e.to_string() }
        })?;
        self.runner().resolve(&list).map_err(|e| NotReady { reason: "PluginNotFound".into(), message: e.to_string() })?;
        Ok(())
    }

    fn set_pod_cidr(&self, cidr: &str) -> Result<()> {
        // The kubelet joins a dual-stack node's CIDRs with commas.
        let cidrs: Vec<String> = cidr.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
        for c in &cidrs {
            parse_cidr(c)?;
        }
        *self.node_cidrs.write().unwrap_or_else(|p| p.into_inner()) = cidrs;
        Ok(())
    }
}

impl Cni {
    /// The node's pod CIDRs as last set.
    pub fn pod_cidrs(&self) -> Vec<String> {
        self.node_cidrs()
    }
}
