//! The Kubernetes CRI v1 API over Skiff's engine: the `RuntimeService` and `ImageService` that
//! the kubelet and crictl drive, served by skiffd on its socket beside Skiff's own API.
//!
//! One file per RPC group, as containerd's `internal/cri/server` is split: `images/` (list,
//! status, pull, remove, filesystem info), `runtime/` (version, status, runtime config, and the
//! service trait), `sandbox/` (run, stop and remove, status and list), `container/` (create,
//! lifecycle, status and list, ExecSync), `stats/` (container and pod stats), `events.rs` (GetContainerEvents), `timings.rs` (the
//! stage timings shown in verbose status). Every
//! failure carries an error kind, turned into a gRPC code by `skiff_api::status`, the one map
//! Skiff's own API uses too.

mod blocking;
pub mod container;
mod error;
mod events;
pub mod images;
mod kept;
mod locks;
pub mod runtime;
pub mod sandbox;
mod stats;
pub mod streaming;
mod timings;

pub use error::{CriError, Result};
pub use images::{CriImages, ImageParts};
pub use stats::StatsError;
pub use k8s_cri::v1 as cri;

/// An RFC 3339 time (the engine's records and events) as the CRI gives times; None when unset
/// or unreadable.
pub(crate) fn rfc3339_ns(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time).ok().and_then(|t| t.timestamp_nanos_opt())
}

/// Now, as the CRI gives times: nanoseconds since the epoch.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// The largest message the kubelet sends or accepts; skiffd's CRI services use the same both ways.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;
pub use runtime::{CriRuntime, RuntimeParts};
