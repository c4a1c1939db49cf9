//! The CRI `RuntimeService`. `status.rs` answers what the kubelet asks before anything else
//! (Version, Status, RuntimeConfig, UpdateRuntimeConfig); `service.rs` is the trait, each RPC
//! handed to the file of its group.

mod service;
mod status;

use std::sync::{Arc, RwLock};

pub use status::{NetworkCheck, NotReady};

/// What the runtime service is made of; skiffd builds it from its config.
pub struct RuntimeParts {
    /// The configured runtime handlers (`[runtime.handlers.NAME]`), the default first.
    pub handlers: Vec<String>,
    /// Whether pod networking can be set up now (a CNI config and its plugins are found).
    pub network: NetworkCheck,
}

#[derive(Clone)]
pub struct CriRuntime {
    parts: Arc<RuntimeParts>,
    /// The pod CIDR the kubelet last gave (UpdateRuntimeConfig), for CNI plugins that take one.
    pod_cidr: Arc<RwLock<String>>,
}

impl CriRuntime {
    pub fn new(parts: RuntimeParts) -> CriRuntime {
        CriRuntime { parts: Arc::new(parts), pod_cidr: Arc::default() }
    }

    /// The pod CIDR the kubelet gave, empty before it gave one.
    pub fn pod_cidr(&self) -> String {
        self.pod_cidr.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
