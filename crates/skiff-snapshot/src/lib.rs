//! Skiff's snapshots: the root filesystems that images unpack into and containers run on.
//!
//! The `Snapshotter` trait follows containerd's lifecycle: `prepare` an active (writable) snapshot
//! on a committed parent, apply a layer or run a container on it, `commit` it under a name (layer
//! snapshots are named by their chain ID), `view` a committed one read-only, `remove` leaves first.
//! `FsSnapshotter` implements it on overlayfs (layers stacked as lowerdirs) or, where overlay is not
//! available, by copying the parent ("native"). Records live in the store's `snapshots` sled tree,
//! data under `<root>/snapshots/<id>/`.

pub mod apply;
pub mod decompress;
mod error;
pub mod mount;
mod fs_snapshotter;
#[cfg(feature = "testing")]
pub mod testsuite;
pub mod unpack;
pub mod view;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use error::{Result, SnapshotError};
pub use fs_snapshotter::{overlay_supported, Backend, FsSnapshotter};
pub use unpack::{chain_ids, needed_by, UnpackReport, Unpacker};

/// A snapshot's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable, not yet committed.
    Active,
    /// Read-only view of a committed snapshot.
    View,
    /// Immutable; may be a parent.
    Committed,
}

/// What a snapshot is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub key: String,
    /// Names the snapshot's directory.
    pub id: u64,
    pub kind: Kind,
    pub parent: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A mount that makes a snapshot's filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// `overlay` or `bind`.
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
    /// When set, the options hold paths relative to this directory, and the mount must be made from
    /// it (a long layer chain would not fit the kernel's one-page limit on mount options otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chdir: Option<String>,
}

/// Disk used by a snapshot's own layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

/// The snapshot seam.
pub trait Snapshotter: Send + Sync {
    /// A new writable snapshot on `parent` (committed), returning its mounts. Like `view`, it is
    /// durable once the store is next flushed (a commit, or the caller's own durable write); a
    /// crash before that loses it whole, never half of it.
    fn prepare(&self, key: &str, parent: Option<&str>, labels: BTreeMap<String, String>) -> Result<Vec<Mount>>;
    /// A read-only snapshot of committed `parent`.
    fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>>;
    /// Makes active `key` immutable under `name`.
    fn commit(&self, name: &str, key: &str) -> Result<Info>;
    /// Removes a snapshot that has no children.
    fn remove(&self, key: &str) -> Result<()>;
    /// The mounts of an active snapshot or view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;
    fn stat(&self, key: &str) -> Result<Info>;
    fn usage(&self, key: &str) -> Result<Usage>;
    fn list(&self) -> Result<Vec<Info>>;
    /// Where a layer is applied onto active `key`, and how.
    fn diff_target(&self, key: &str) -> Result<apply::Target>;
}
