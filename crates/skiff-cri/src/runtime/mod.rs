//! The CRI `RuntimeService`. `status.rs` answers what the kubelet asks before anything else
//! (Version, Status, RuntimeConfig, UpdateRuntimeConfig); the sandbox RPCs live in `sandbox/`;
//! `service.rs` is the trait, each RPC handed to the file of its group.

mod service;
mod status;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use skiff_cni::NetworkPlugin;

use crate::error::Result;
use crate::locks::KeyedLocks;
use crate::sandbox::Sandboxes;

/// What the runtime service is made of; skiffd builds it from its config.
pub struct RuntimeParts {
    /// The configured runtime handlers (`[runtime.handlers.NAME]`), the default first.
    pub handlers: Vec<String>,
    /// The pods' network (CNI).
    pub network: Arc<dyn NetworkPlugin>,
    /// The store's `sandboxes` tree.
    pub sandboxes: sled::Tree,
    /// skiffd's root: pods' state dirs are `<root>/pods/<id>`.
    pub root: PathBuf,
    /// skiff-shim to run in its `pin` mode (skiffd's sealed copy).
    pub shim: PathBuf,
    /// Sysctls every pod gets unless it sets them itself (`[cri] default_sysctls`).
    pub default_sysctls: BTreeMap<String, String>,
    /// Bytes of each pod's /dev/shm tmpfs.
    pub pod_shm_size: u64,
    /// The engine's container manager: CRI containers are its containers.
    pub manager: Arc<skiff_engine::Manager>,
    /// The image service, to find what a container's ImageSpec names.
    pub images: crate::images::CriImages,
    /// Makes the URLs of Exec, Attach and PortForward on skiffd's streaming server (None: that
    /// server is off, and they fail saying so).
    pub streams: Option<skiff_streaming::server::UrlMaker>,
}

#[derive(Clone)]
pub struct CriRuntime {
    pub(crate) parts: Arc<RuntimeParts>,
    pub(crate) sandboxes: Arc<Sandboxes>,
    pub(crate) containers: Arc<crate::container::CriContainers>,
    /// CreateContainer calls of one container name, one at a time (as for pods).
    pub(crate) container_names: Arc<KeyedLocks>,
    /// RunPodSandbox calls of one pod name, one at a time (a kubelet retry waits for the first).
    pub(crate) pod_names: Arc<KeyedLocks>,
    /// Work on one sandbox (stop, remove, a late run), one at a time.
    pub(crate) sandbox_ids: Arc<KeyedLocks>,
    /// The events the CRI layer tells itself (sandboxes', containers' created), for GetContainerEvents.
    pub(crate) cri_events: crate::events::CriEvents,
    /// Where the last lifecycle calls of each sandbox and container spent their time.
    pub(crate) timings: Arc<crate::timings::Timings>,
    /// The pod CIDR the kubelet last gave (UpdateRuntimeConfig), for CNI plugins that take one.
    pod_cidr: Arc<RwLock<String>>,
    /// What the stats calls keep between calls (the previous CPU samples).
    pub(crate) stats: Arc<crate::stats::Stats>,
    /// Runs the pin helpers, one started ahead of the next pod.
    pub(crate) pins: Arc<skiff_runtime::pod::PinHelpers>,
}

impl CriRuntime {
    /// Opens the sandbox records and undoes what a crash left half made.
    pub fn new(parts: RuntimeParts) -> Result<CriRuntime> {
        let sandboxes = Arc::new(Sandboxes::open(parts.sandboxes.clone())?);
        let containers = Arc::new(crate::container::CriContainers::open(parts.sandboxes.clone())?);
        let pins = Arc::new(skiff_runtime::pod::PinHelpers::new(parts.shim.clone()));
        let runtime = CriRuntime {
            pins,
            parts: Arc::new(parts),
            sandboxes,
            containers,
            container_names: Arc::default(),
            pod_names: Arc::default(),
            sandbox_ids: Arc::default(),
            timings: Arc::default(),
            cri_events: Default::default(),
            pod_cidr: Arc::default(),
            stats: Arc::default(),
        };
        runtime.recover()?;
        Ok(runtime)
    }

    /// The pod CIDR the kubelet gave, empty before it gave one.
    pub fn pod_cidr(&self) -> String {
        self.pod_cidr.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
