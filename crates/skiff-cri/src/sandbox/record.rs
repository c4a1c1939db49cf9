//! A pod sandbox's record: what the kubelet asked for (kept byte for byte: it reads its own labels
//! and annotations back) and what Skiff made for it.

use std::path::PathBuf;

use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};
use skiff_runtime::pod::Pinned;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    /// Written before anything is made; a sandbox found so at start was cut short and is undone.
    Creating,
    /// Namespaces pinned, network attached: containers may join.
    Ready,
    /// Stopped: its containers stopped, its network detached; namespaces kept until removal.
    NotReady,
}

impl SandboxState {
    pub fn as_cri(self) -> cri::PodSandboxState {
        match self {
            SandboxState::Ready => cri::PodSandboxState::SandboxReady,
            SandboxState::Creating | SandboxState::NotReady => cri::PodSandboxState::SandboxNotready,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    /// `<name>_<namespace>_<uid>_<attempt>`: unique among sandboxes, as the kubelet expects.
    pub name: String,
    pub state: SandboxState,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub runtime_handler: String,
    pub config: cri::PodSandboxConfig,
    pub dir: PathBuf,
    /// What `skiff-shim pin` made; None until it did.
    pub pinned: Option<Pinned>,
    /// Whether CNI ADD ran or may have (so DEL must): true from the sandbox's first record for
    /// a pod with a network namespace of its own. And the IPs the ADD gave (the first the primary).
    pub network_attached: bool,
    pub ips: Vec<String>,
    /// The pod's /etc files and /dev/shm; None until made.
    #[serde(default)]
    pub files: Option<super::files::PodFiles>,
}

/// The parts of the namespace options the sandbox acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes {
    pub host_network: bool,
    pub host_ipc: bool,
    pub host_pid: bool,
    /// The pod's containers share one PID namespace (NamespaceMode POD).
    pub shared_pid: bool,
}

impl SandboxRecord {
    pub fn namespace_options(&self) -> Option<&cri::NamespaceOption> {
        self.config.linux.as_ref()?.security_context.as_ref()?.namespace_options.as_ref()
    }

    pub fn modes(&self) -> Modes {
        modes(self.namespace_options())
    }

    pub fn metadata(&self) -> cri::PodSandboxMetadata {
        self.config.metadata.clone().unwrap_or_default()
    }
}

pub fn modes(options: Option<&cri::NamespaceOption>) -> Modes {
    let node = cri::NamespaceMode::Node as i32;
    let default = cri::NamespaceOption::default();
    let o = options.unwrap_or(&default);
    Modes { host_network: o.network == node, host_ipc: o.ipc == node, host_pid: o.pid == node, shared_pid: o.pid == cri::NamespaceMode::Pod as i32 }
}

/// The kubelet's sandbox name: unique per pod and attempt.
pub fn sandbox_name(m: &cri::PodSandboxMetadata) -> String {
    format!("{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
}
