//! Containers in pods. A CRI container is an engine container (the same records, shims, logs and
//! lifecycle as `skiff run`) with an owner naming its sandbox, joined to the pod's pinned
//! namespaces and cgroup parent, with the pod's /etc files and /dev/shm mounted in. What only the
//! CRI knows of it — the kubelet's metadata, labels and annotations exactly as sent, the image as
//! asked and the image id — is kept beside the sandboxes:
//!
//! ```text
//! sled sandboxes/container/<id> -> CriContainer (json)
//! ```
//!
//! served from memory; the state (created, running, exited, the exit) is the engine record's.

mod create;
mod exec_sync;
pub(crate) mod fifos;
mod lifecycle;
mod security;
mod status;
mod store;
mod update;

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};

pub use store::CriContainers;
pub(crate) use fifos::clear_leftovers as clear_exec_leftovers;

/// The CRI's side of a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CriContainer {
    pub id: String,
    pub sandbox_id: String,
    pub metadata: cri::ContainerMetadata,
    /// The image as the kubelet named it, and the id (config digest) it resolved to.
    pub image: cri::ImageSpec,
    pub image_ref: String,
    pub labels: HashMap<String, String>,
    pub annotations: HashMap<String, String>,
    pub mounts: Vec<cri::Mount>,
    /// The full path of its CRI-format log (`log_directory/log_path`), empty when none was asked.
    pub log_path: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// The limits in force: the create's, with every UpdateContainerResources over them.
    #[serde(default)]
    pub resources: Option<cri::LinuxContainerResources>,
}
