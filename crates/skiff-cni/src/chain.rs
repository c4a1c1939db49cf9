//! Running a network's plugins: ADD in order, each given the previous one's result; DEL in
//! reverse, every plugin tried. An ADD that fails midway deletes what it ran (the failing plugin
//! included: it may have half done its work) before the error returns, so no veth or IP stays.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::args::plugin_stdin;
use crate::config::{version_key, NetworkConfigList, PluginConfig};
use crate::error::{CniError, Result};
use crate::invoke::{find_plugin, run, Command, PluginEnv, PluginRef};
use crate::pod::PluginTiming;
use crate::result::CniResult;

/// One network attachment of a pod, as a single ADD or DEL of the chain sees it.
pub(crate) struct Attachment<'a> {
    pub list: &'a NetworkConfigList,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    /// `CNI_ARGS`, joined.
    pub cni_args: &'a str,
    pub capability_args: &'a Map<String, Value>,
}

pub(crate) struct Runner<'a> {
    pub plugin_dirs: &'a [PathBuf],
    /// `CNI_PATH`.
    pub cni_path: &'a str,
    pub timeout: Duration,
}

impl Runner<'_> {
    /// Every plugin's executable, or the first one missing.
    pub fn resolve(&self, list: &NetworkConfigList) -> Result<Vec<PathBuf>> {
        list.plugins.iter().map(|p| self.find(list, p)).collect()
    }

    fn find(&self, list: &NetworkConfigList, plugin: &PluginConfig) -> Result<PathBuf> {
        find_plugin(self.plugin_dirs, &plugin.plugin_type).ok_or_else(|| CniError::PluginNotFound {
            plugin: plugin.plugin_type.clone(),
            network: list.name.clone(),
            dirs: self.plugin_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        })
    }

    /// ADD through the chain: the last plugin's result and each plugin's time.
    pub fn add(&self, att: &Attachment<'_>) -> Result<(CniResult, Vec<PluginTiming>)> {
        let list = att.list;
        // All binaries first: a missing one fails the ADD before anything is made.
        let exes = self.resolve(list)?;
        let mut last: Option<CniResult> = None;
        let mut timings = Vec::with_capacity(exes.len());
        for (i, (plugin, exe)) in list.plugins.iter().zip(&exes).enumerate() {
            let prev = last.as_ref().map(|r| r.as_version(&list.cni_version));
            let started = Instant::now();
            let out = self.invoke(att, plugin, exe, Command::Add, prev.as_ref());
            timings.push(PluginTiming { plugin: plugin.plugin_type.clone(), command: Command::Add, duration: started.elapsed() });
            let parsed = out.and_then(|stdout| {
                CniResult::parse(&stdout, &list.cni_version).map_err(|reason| CniError::BadResult { plugin: plugin.plugin_type.clone(), network: list.name.clone(), command: Command::Add, reason })
            });
            match parsed {
                Ok(result) => last = Some(result),
                Err(e) => {
                    tracing::warn!(network = %list.name, sandbox = att.container_id, error = %e, "cni add failed; deleting what it ran");
                    if let (_, Some(undo)) = self.del_range(att, i + 1, prev.as_ref()) {
                        tracing::warn!(network = %list.name, sandbox = att.container_id, error = %undo, "cni delete after a failed add failed too");
                    }
                    return Err(e);
                }
            }
        }
        let result = last.ok_or_else(|| CniError::bad_config(&list.source, "no plugins"))?;
        Ok((result, timings))
    }

    /// DEL through the whole chain, in reverse; the first error after every plugin was tried.
    pub fn del(&self, att: &Attachment<'_>, prev: Option<&Value>) -> Result<Vec<PluginTiming>> {
        match self.del_range(att, att.list.plugins.len(), prev) {
            (timings, None) => Ok(timings),
            (_, Some(e)) => Err(e),
        }
    }

    /// DEL of the first `count` plugins, last first.
    fn del_range(&self, att: &Attachment<'_>, count: usize, prev: Option<&Value>) -> (Vec<PluginTiming>, Option<CniError>) {
        // prevResult on DEL came with spec 0.4.0; libcni gives none to older configs.
        let prev = prev.filter(|_| version_key(&att.list.cni_version) >= (0, 4, 0));
        let mut timings = Vec::with_capacity(count);
        let mut first_error = None;
        for plugin in att.list.plugins[..count].iter().rev() {
            let started = Instant::now();
            let done = self.find(att.list, plugin).and_then(|exe| self.invoke(att, plugin, &exe, Command::Del, prev));
            timings.push(PluginTiming { plugin: plugin.plugin_type.clone(), command: Command::Del, duration: started.elapsed() });
            if let Err(e) = done {
                tracing::warn!(network = %att.list.name, sandbox = att.container_id, error = %e, "cni plugin delete failed");
                first_error.get_or_insert(e);
            }
        }
        (timings, first_error)
    }

    fn invoke(&self, att: &Attachment<'_>, plugin: &PluginConfig, exe: &std::path::Path, command: Command, prev: Option<&Value>) -> Result<Vec<u8>> {
        let stdin = plugin_stdin(att.list, plugin, prev, att.capability_args)?;
        let env = PluginEnv { command, container_id: att.container_id, netns: att.netns, ifname: att.ifname, args: att.cni_args, path: self.cni_path };
        run(PluginRef { plugin: &plugin.plugin_type, network: &att.list.name }, exe, &stdin, &env, self.timeout)
    }
}
