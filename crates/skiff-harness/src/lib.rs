//! A throwaway Skiff for integration tests, Skiff's own and other projects': a real `skiffd` in a
//! temp dir of its own, driven through the CRI (`cri()`) and the `skiff` CLI (`cli()`), and torn
//! down on drop with a check that nothing leaked.
//!
//! A harness's temp dir holds skiffd's root, socket, config and log, a registry `certs.d` dir,
//! and a CNI network of its own: a conflist (bridge + host-local + portmap, CNI 1.0.0) with a
//! bridge and a /24 (random, from 10.200.0.0 to 10.250.255.0) that no other live harness on the
//! host uses, plugins from a dir of its own (empty: a test's own plugins go there), then
//! `/usr/lib/cni` and `/opt/cni/bin`, and a CNI cache dir. A skiffd whose
//! default config has a `[cri]` table is pointed at them.
//!
//! Teardown (`shutdown()`, or drop) removes every pod and container through the CRI and the CLI,
//! stops skiffd, then looks for what is left: mounts and nsfs mounts under the dir, interfaces on
//! the bridge, cgroups of the containers it saw (every container created while it ran, followed
//! through skiffd's event stream, at its own `linux.cgroupsPath`, whatever its pod's parent), shims
//! and other processes running from the dir,
//! host-local reservations and CNI cache entries of its network. It reports them
//! ([`LeakReport`]), cleans them up, and removes the dir. Drop panics with the report when
//! anything leaked (unless the test is already panicking: then it prints it).
//!
//! The binaries are found at the path given to the builder, else in `$SKIFF_BIN_DIR`, else in the
//! target dir the running test was built into (`target/debug/` for `target/debug/deps/<test>`),
//! else on `PATH`. Build them before the tests: `cargo build -p skiffd -p skiff -p skiff-shim`.
//! The harness needs root (mounts, cgroups, network).
//!
//! ```no_run
//! use skiff_harness::{Harness, LeakKind};
//! use skiff_harness::k8s_cri::v1::VersionRequest;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut skiff = Harness::builder().config(|c| { c.set("runtime", "stop_timeout_secs", 2u32); }).start()?;
//! let mut cri = skiff.cri().await?;
//! let version = cri.runtime.version(VersionRequest::default()).await?.into_inner();
//! assert_eq!(version.runtime_name, "skiff");
//! assert!(skiff.cli(["images", "ls"])?.status.success());
//! skiff.restart()?; // the same root
//! let report = skiff.shutdown()?;
//! assert!(report.is_clean(), "{report}");
//! assert_eq!(report.of_kind(LeakKind::Shim).count(), 0);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod bins;
mod builder;
mod cleanup;
mod cni;
mod config;
mod cri;
mod daemon;
mod error;
mod leaks;
mod procfs;
mod teardown;
mod watch;

pub use builder::Builder;
pub use cni::{CniNetwork, BIN_DIRS as CNI_BIN_DIRS, HOST_LOCAL_DIR};
pub use config::{SkiffdConfig, Value};
pub use cri::{connect as connect_cri, CriClients, MAX_MESSAGE};
pub use error::{Error, Result};
pub use k8s_cri;
pub use leaks::{Leak, LeakKind, LeakReport};

/// A running skiffd in a temp dir of its own. See the crate doc.
pub struct Harness {
    dir: PathBuf,
    root: PathBuf,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    certs: PathBuf,
    skiffd: PathBuf,
    skiff: PathBuf,
    cni: CniNetwork,
    child: Option<Child>,
    /// Ids of every container the harness saw, whose cgroups the leak checks look for.
    containers: BTreeSet<String>,
    /// Every container created while the harness ran, with its cgroup (see `watch`).
    seen: watch::Seen,
    /// Their `linux.cgroupsPath`s, gathered at teardown.
    cgroup_paths: BTreeSet<String>,
    torn_down: bool,
}

impl Harness {
    /// Starts a harness with the defaults.
    pub fn start() -> Result<Harness> {
        Builder::default().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// CRI clients connected to skiffd's socket (16 MiB message limits, as the kubelet's).
    pub async fn cri(&self) -> Result<CriClients> {
        cri::connect(&self.socket).await
    }

    /// Runs the skiff CLI against this skiffd.
    pub fn cli<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new(&self.skiff)
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(Error::io(format!("run {}", self.skiff.display())))
    }

    /// Runs the skiff CLI and returns its stdout; a failure is an error carrying its stderr.
    pub fn cli_ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let out = self.cli(&args)?;
        if !out.status.success() {
            let args = args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
            return Err(Error::CliFailed { args, status: out.status, stderr: String::from_utf8_lossy(&out.stderr).trim().into() });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The harness's temp dir (removed at teardown).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// skiffd's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// skiffd's socket (the CLI's `--address`, `SKIFF_ADDRESS`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The config file skiffd runs with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The registry host config dir (`registry.config_path`): `<host>/hosts.toml` goes there.
    pub fn certs_dir(&self) -> &Path {
        &self.certs
    }

    /// The harness's CNI network.
    pub fn cni(&self) -> &CniNetwork {
        &self.cni
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// skiffd's log so far (every run of it on this harness).
    pub fn log(&self) -> String {
        std::fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
}
