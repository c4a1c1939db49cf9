//! Setting a harness up: its temp dir, its CNI network, skiffd's config, then skiffd.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::SkiffdConfig;
use crate::error::{Error, Result};
use crate::{bins, cni, Harness};

type Edit = Box<dyn FnOnce(&mut SkiffdConfig)>;

/// A harness to start: `Harness::builder()…start()`.
#[derive(Default)]
pub struct Builder {
    skiffd: Option<PathBuf>,
    skiff: Option<PathBuf>,
    shim: Option<PathBuf>,
    cni: Option<(String, String)>,
    edits: Vec<Edit>,
}

impl Builder {
    /// The skiffd binary to run (default: see the crate doc).
    pub fn skiffd(mut self, path: impl Into<PathBuf>) -> Builder {
        self.skiffd = Some(path.into());
        self
    }

    /// The skiff CLI binary `cli()` runs.
    pub fn skiff(mut self, path: impl Into<PathBuf>) -> Builder {
        self.skiff = Some(path.into());
        self
    }

    /// The skiff-shim binary (skiffd's `runtime.shim`; default: the one next to skiffd).
    pub fn shim(mut self, path: impl Into<PathBuf>) -> Builder {
        self.shim = Some(path.into());
        self
    }

    /// Edits skiffd's config after the harness's own keys are set; may be called more than once.
    pub fn config(mut self, edit: impl FnOnce(&mut SkiffdConfig) + 'static) -> Builder {
        self.edits.push(Box::new(edit));
        self
    }

    /// The CNI bridge name (at most 15 characters) and /24 subnet (`10.220.3.0/24`) to use
    /// instead of a random free pair. The bridge must not exist: teardown deletes it.
    pub fn cni(mut self, bridge: impl Into<String>, subnet: impl Into<String>) -> Builder {
        self.cni = Some((bridge.into(), subnet.into()));
        self
    }

    /// Makes the harness's dir and network, writes the config, starts skiffd and waits until it
    /// answers (at most 20 s).
    pub fn start(self) -> Result<Harness> {
        let skiffd = bins::find("skiffd", self.skiffd.as_deref())?;
        let skiff = bins::find("skiff", self.skiff.as_deref())?;
        let default = default_config(&skiffd)?;
        let temp = tempfile::Builder::new().prefix("skiff-harness-").tempdir().map_err(Error::io("create the harness's temp dir"))?;
        // Canonical, so that it compares equal to what /proc shows (TMPDIR may be a symlink).
        let dir = temp.path().canonicalize().map_err(Error::io(format!("resolve {}", temp.path().display())))?;
        let certs = dir.join("certs.d");
        std::fs::create_dir_all(&certs).map_err(Error::io(format!("create {}", certs.display())))?;
        let network = cni::setup(&dir, self.cni.as_ref().map(|(b, s)| (b.as_str(), s.as_str())))?;

        let mut config = harness_config(default, &dir, &network, self.shim.as_deref());
        for edit in self.edits {
            edit(&mut config);
        }
        let config_path = dir.join("skiffd.toml");
        let mut harness = Harness {
            root: dir.join("root"),
            socket: dir.join("skiff.sock"),
            log: dir.join("skiffd.log"),
            config: config_path.clone(),
            certs,
            skiffd,
            skiff,
            cni: network,
            child: None,
            containers: BTreeSet::new(),
            seen: Default::default(),
            cgroup_paths: BTreeSet::new(),
            torn_down: false,
            dir,
        };
        // From here the harness's teardown owns the dir (and the subnet claim).
        let _ = temp.keep();
        let started = std::fs::write(&config_path, config.text()).map_err(Error::io(format!("write {}", config_path.display()))).and_then(|()| harness.spawn());
        if let Err(e) = started {
            harness.discard();
            return Err(e);
        }
        Ok(harness)
    }
}

/// skiffd's default config with the harness's keys: its root, socket and registry config in the
/// harness's dir, the shim asked for, and the CNI network when this skiffd has a `[cri]` table
/// (today's has none and refuses unknown keys: it must not get them).
fn harness_config(default: String, dir: &Path, network: &cni::CniNetwork, shim: Option<&Path>) -> SkiffdConfig {
    let mut config = SkiffdConfig::new(default, dir);
    config.set("", "root", dir.join("root")).set("", "socket", dir.join("skiff.sock")).set("registry", "config_path", dir.join("certs.d"));
    if let Some(shim) = shim {
        config.set("runtime", "shim", shim);
    }
    if config.has_table("cri") {
        config
            .set("cri", "cni_conf_dir", network.conf_dir())
            .set("cri", "cni_bin_dirs", bin_dirs(network))
            .set("cri", "cni_cache_dir", network.cache_dir());
    }
    config
}

/// The network's own plugin dir, then the system's.
fn bin_dirs(network: &cni::CniNetwork) -> Vec<String> {
    std::iter::once(network.bin_dir().display().to_string()).chain(cni::BIN_DIRS.iter().map(|d| d.to_string())).collect()
}

/// `skiffd --print-default-config`.
fn default_config(skiffd: &Path) -> Result<String> {
    let out = Command::new(skiffd).arg("--print-default-config").output().map_err(Error::io(format!("run {}", skiffd.display())))?;
    if !out.status.success() {
        return Err(Error::DefaultConfig { skiffd: skiffd.into(), status: out.status.to_string(), stderr: String::from_utf8_lossy(&out.stderr).trim().into() });
    }
    String::from_utf8(out.stdout).map_err(|_| Error::DefaultConfig { skiffd: skiffd.into(), status: "ok".into(), stderr: "the config it printed is not UTF-8".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "root = \"/var/lib/skiff\"\nsocket = \"/run/skiff/skiff.sock\"\n\n[runtime]\nshim = \"\"\n\n[registry]\nconfig_path = \"/etc/skiff/certs.d\"\n";

    fn network(dir: &Path) -> cni::CniNetwork {
        cni::CniNetwork::for_test(dir)
    }

    #[test]
    fn todays_skiffd_gets_no_cri_keys() {
        let dir = Path::new("/tmp/h");
        let config = harness_config(TODAY.into(), dir, &network(dir), Some(Path::new("/opt/skiff-shim")));
        assert_eq!(
            config.text(),
            "root = \"/tmp/h/root\"\nsocket = \"/tmp/h/skiff.sock\"\n\n[runtime]\nshim = \"/opt/skiff-shim\"\n\n[registry]\nconfig_path = \"/tmp/h/certs.d\"\n"
        );
    }

    #[test]
    fn a_skiffd_with_a_cri_table_gets_the_harness_network() {
        let dir = Path::new("/tmp/h");
        let default = format!("{TODAY}\n[cri]\n# where the conflists are\ncni_conf_dir = \"/etc/cni/net.d\"\ncni_bin_dirs = [\n  \"/opt/cni/bin\",\n]\nsandbox_image = \"pause\"\n");
        let config = harness_config(default, dir, &network(dir), None);
        assert!(config.text().ends_with(
            "[cri]\ncni_cache_dir = \"/tmp/h/cni/cache\"\n# where the conflists are\ncni_conf_dir = \"/tmp/h/cni/net.d\"\ncni_bin_dirs = [\"/tmp/h/cni/bin\", \"/usr/lib/cni\", \"/opt/cni/bin\"]\nsandbox_image = \"pause\"\n"
        ), "{}", config.text());
        assert!(config.text().contains("shim = \"\"\n"), "{}", config.text());
    }
}
