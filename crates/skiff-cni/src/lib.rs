//! Pod networking through CNI plugins, as the CNI spec 1.0 and libcni define it.
//!
//! A Skiff pod sandbox has no pause container: a helper makes the pod's network namespace and
//! bind-mounts it on a file (`/var/lib/skiff/pods/<id>/ns/net`). [`Cni`] runs the node's network
//! config for that namespace:
//!
//! ```text
//!  setup(pod)                                    teardown(pod)
//!    │ lock sandbox id                              │ lock sandbox id
//!    │ config = first of conf dir by name           │ entries = cache results/*-<id>-<ifname>
//!    │ refuse if results/<net>-<id>-<if> exists     │ each: its cached config, args, result
//!    ▼                                              │ none: current config, no prevResult
//!  plugin 1 ──ADD──► result 1                       ▼
//!  plugin 2 ──ADD (prevResult 1)──► result 2      plugin n ──DEL──► … ──► plugin 1 ──DEL
//!    …   (a failure: DEL of those run, reversed)    (every one tried, first error kept)
//!    ▼                                              ▼
//!  cache results/<net>-<id>-<ifname>              entry removed if every DEL succeeded
//!  → NetworkStatus { ips, gateway, result, timings }
//! ```
//!
//! Each plugin gets the `CNI_*` variables on its own process only ([`invoke`]), its config with
//! `name`, `cniVersion`, `prevResult` and the `runtimeConfig` of the capabilities it declares
//! ([`args`]); results of 0.3.x, 0.4.0 and 1.x are read ([`result`]); the cache is libcni's
//! ([`cache`], whose docs draw the layout), so other CNI tools see Skiff's attachments and a DEL
//! after a daemon restart runs with what the ADD ran.
//!
//! The [`NetworkPlugin`] trait is the seam the CRI server holds; `fake::FakeNetwork` (feature
//! `testing`) plays it in memory.

pub mod args;
pub mod cache;
mod chain;
mod cni;
pub mod config;
mod error;
#[cfg(feature = "testing")]
pub mod fake;
pub mod invoke;
mod lock;
pub mod netns;
mod pod;
pub mod result;

pub use cni::{Cni, CniOptions};
pub use config::{NetworkConfigList, PluginConfig};
pub use error::{CniError, Result};
pub use invoke::Command;
pub use pod::{Bandwidth, Dns, NetworkStatus, NotReady, PluginTiming, PodNetwork, PortMapping, Protocol, DEFAULT_IFNAME};
pub use result::CniResult;

/// A pod's network, as the CRI needs it.
pub trait NetworkPlugin: Send + Sync {
    /// ADD: attaches the pod's namespace to the node's network. On error nothing is left attached.
    fn setup(&self, pod: &PodNetwork) -> Result<NetworkStatus>;
    /// DEL: detaches it. Repeatable, and works once the namespace is gone. Answers what each
    /// plugin took (for the CRI's stage timings).
    fn teardown(&self, pod: &PodNetwork) -> Result<Vec<PluginTiming>>;
    /// Ready when a config is found and all its plugins are; why not otherwise.
    fn status(&self) -> Result<(), NotReady>;
    /// The node's pod CIDRs (comma-separated, as the kubelet sends them; empty clears), passed
    /// to plugins declaring `ipRanges` for pods that name none of their own.
    fn set_pod_cidr(&self, cidr: &str) -> Result<()>;
}
