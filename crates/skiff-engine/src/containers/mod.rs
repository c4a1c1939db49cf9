//! The container manager: turns a request into a rootfs snapshot and a runtime spec, and a start
//! into a running shim; keeps the records, follows every started container until it exits, and publishes each
//! lifecycle change on the event bus. It never calls libcontainer itself: every runtime call
//! happens in the container's skiff-shim, which outlives skiffd; on start the manager reconnects
//! to live shims and reads the exit files of those that are gone.
//!
//! ```text
//! <root>/containers/<id>/                the shim's state dir (see skiff_runtime::shim)
//! <root>/containers/<id>/bundle/         config.json and rootfs/ (the snapshot, mounted)
//! <root>/containers/<id>/container.log   the CRI-format log
//! <root>/containers/<id>/volumes/        the container's anonymous volumes
//! ```
//! Where each part lives: the states and transitions in [`state`], the records and the name
//! index in [`record`], the pure create plan in [`plan`], the side-effecting create steps and
//! their undo in `create`, bringing up a container's supervisor and init at its start in
//! `launch`, the operations on a made container in `lifecycle`, following exits
//! and recovery after a restart in `watch`, cgroups in `cgroups`, and what a removal leaves on
//! disk (the rootfs mount, the snapshot, the state dir), swept after it answered, in [`sweeper`].
//!
//! Every method but [`Manager::follow`] blocks (sled writes, shim requests); callers on an async
//! runtime run them on its blocking pool. Following a container's exit is asynchronous: a
//! running container costs a socket and a future, not a thread.

mod cgroups;
mod create;
mod ids;
mod launch;
mod lifecycle;
pub mod logs;
pub mod plan;
pub mod record;
pub mod rootfs;
pub mod state;
pub mod sweeper;
pub mod update;
mod volumes;
mod watch;

#[cfg(test)]
mod fake_shim;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_image::Platform;
use skiff_runtime::shim::ShimClient;
use skiff_snapshot::Unpacker;
use skiff_store::Store;

pub use create::CreateSpec;
pub use plan::Owner;
pub use ids::{parse_signal, random_hex, random_id};
pub use lifecycle::ExecSpec;
pub use update::ResourceUpdate;
pub use record::{ContainerRecord, Records};
pub use state::{Action, Status};

use crate::config::RuntimeConfig;
use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus, EventType};
use crate::launcher::Launcher;

pub struct Manager {
    store: Arc<Store>,
    unpacker: Arc<Unpacker>,
    platform: Platform,
    config: RuntimeConfig,
    records: Records,
    dir: PathBuf,
    /// Supervisor group dirs: the containers of one pod share one shim.
    groups: PathBuf,
    launcher: Arc<dyn Launcher>,
    events: EventBus,
    /// Serialises read-modify-write of records (an exit recorded while a start writes).
    updates: Mutex<()>,
    /// Bounds how many exits are recorded at once on the blocking pool: when hundreds of
    /// containers end together, their followers queue here instead of each taking a thread.
    exit_workers: Arc<tokio::sync::Semaphore>,
    /// Takes away what removed containers leave on disk, after their removal answered.
    sweeper: Arc<sweeper::Sweeper>,
    /// The containers a start or delete is working on, one call each.
    starting: launch::Starting,
    /// State dirs (`bundle/rootfs` made) ready to be renamed into place by a create.
    spare_dirs: skiff_store::SpareDirs,
    /// Told of each coming start, so the init's cgroup move finds the kernel's lock warm.
    attach_warmer: crate::attach_warmer::AttachWarmer,
    /// Images resolved for earlier creates, by descriptor and platform.
    resolved: skiff_image::resolve_cache::ResolveCache,
}

/// Container `id`'s writable snapshot is `container/<id>`.
const SNAPSHOT_PREFIX: &str = "container/";

fn snapshot_key(id: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{id}")
}

/// Exits recorded at once (each a few sled writes and, for `--rm`, a delete).
const EXIT_WORKERS: usize = 4;

/// What the manager is built from; skiffd wires each part explicitly.
pub struct ManagerParts {
    pub store: Arc<Store>,
    pub unpacker: Arc<Unpacker>,
    /// The platform images are used for when a request names none.
    pub platform: Platform,
    pub config: RuntimeConfig,
    /// The store root; containers live in `<root>/containers`, the supervisors that pods'
    /// containers share in `<root>/supervisors`.
    pub root: PathBuf,
    pub launcher: Arc<dyn Launcher>,
    pub events: EventBus,
}

impl Manager {
    pub fn new(parts: ManagerParts) -> Result<Arc<Manager>> {
        let dir = parts.root.join("containers");
        skiff_store::private_dir(&dir, skiff_store::PRIVATE_MODE)?;
        let groups = parts.root.join("supervisors");
        skiff_store::private_dir(&groups, skiff_store::PRIVATE_MODE)?;
        let records = Records::new(parts.store.db().clone());
        let sweeper = sweeper::Sweeper::new(parts.unpacker.clone(), parts.launcher.clone(), records.clone());
        let spare_dirs = skiff_store::SpareDirs::open(&parts.root.join("spare/containers"), &["bundle", "bundle/rootfs"], Some(skiff_store::PRIVATE_MODE))?;
        Ok(Arc::new(Manager {
            spare_dirs,
            attach_warmer: crate::attach_warmer::AttachWarmer::for_this_process(),
            resolved: skiff_image::resolve_cache::ResolveCache::new(),
            groups,
            records,
            store: parts.store,
            unpacker: parts.unpacker,
            platform: parts.platform,
            config: parts.config,
            dir,
            launcher: parts.launcher,
            events: parts.events,
            updates: Mutex::new(()),
            exit_workers: Arc::new(tokio::sync::Semaphore::new(EXIT_WORKERS)),
            sweeper,
            starting: launch::Starting::default(),
        }))
    }

    /// A container start is coming soon (a pod is being run for it): the kernel's cgroup lock
    /// is kept warm for its init's move (see `attach_warmer`).
    pub fn expect_start(&self) {
        self.attach_warmer.expect_start();
    }

    /// Waits, at most `timeout`, until the rootfs mounts, snapshots and state dirs of removed
    /// containers are gone (a removal answers before they are); answers whether they are.
    pub fn sweep_removed(&self, timeout: Duration) -> bool {
        self.sweeper.drain(timeout)
    }

    /// The sweeper, for a snapshot collection to wait on first: a removed container's
    /// snapshot still queued keeps its image's layers.
    pub fn sweeper(&self) -> Arc<sweeper::Sweeper> {
        self.sweeper.clone()
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.config.stop_timeout_secs)
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The supervisor a container shares with the other containers of its pod; None for one of
    /// its own (a container of no pod, or of a sandbox id that is no plain file name).
    fn group_dir(&self, record: &ContainerRecord) -> Option<PathBuf> {
        self.group_of(&record.owner.as_ref()?.sandbox_id)
    }

    /// The supervisor group dir of sandbox `sandbox`; None for an id that is no plain file name.
    fn group_of(&self, sandbox: &str) -> Option<PathBuf> {
        let plain = !sandbox.is_empty() && sandbox.len() <= 128 && sandbox.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        plain.then(|| self.groups.join(sandbox))
    }

    fn shim(&self, id: &str) -> ShimClient {
        ShimClient::new(self.state_dir(id))
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("bundle")
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        self.bundle(id).join("rootfs")
    }

    /// What removing `record` leaves to sweep.
    fn leftover(&self, record: &ContainerRecord) -> sweeper::Leftover {
        sweeper::Leftover {
            id: record.id.clone(),
            rootfs: self.rootfs(&record.id),
            snapshot_key: record.snapshot_key.clone(),
            state_dir: self.state_dir(&record.id),
            cgroup_path: Some(record.cgroup_path()),
            group: self.group_dir(record),
        }
    }

    /// What a removal cut short by a crash left of container `id`, whose record is gone: its
    /// cgroup is read from the bundle's spec when that is still there. Its pod's supervisor dir
    /// is released by the recovery once the sweep is done.
    fn orphan_leftover(&self, id: &str) -> sweeper::Leftover {
        let cgroup_path = self.spec(id).ok().and_then(|spec| spec["linux"]["cgroupsPath"].as_str().map(str::to_string));
        sweeper::Leftover { id: id.to_string(), rootfs: self.rootfs(id), snapshot_key: snapshot_key(id), state_dir: self.state_dir(id), cgroup_path, group: None }
    }

    /// The container's runtime spec (its config.json).
    pub fn spec(&self, id: &str) -> Result<serde_json::Value> {
        let path = self.bundle(id).join("config.json");
        let bytes = std::fs::read(&path).map_err(EngineError::io(format!("reading {}", path.display())))?;
        serde_json::from_slice(&bytes).map_err(|e| EngineError::CorruptRecord { key: path.display().to_string(), reason: e.to_string() })
    }

    /// Reads a record, lets `change` edit it, and writes it back when `change` says so; one at a
    /// time, so concurrent transitions of one container do not lose each other's writes.
    fn update(&self, id: &str, change: impl FnOnce(&mut ContainerRecord) -> Result<bool>) -> Result<Option<ContainerRecord>> {
        let _one = self.updates.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut record) = self.records.get(id)? else { return Ok(None) };
        if change(&mut record)? {
            self.records.put(&record)?;
        }
        Ok(Some(record))
    }

    fn publish(&self, kind: EventType, record: &ContainerRecord) {
        let (exit_code, reason) = match (&record.exit, kind) {
            (Some(e), EventType::Exited) => (Some(e.code), Some(e.reason().as_str().to_string())),
            _ => (None, None),
        };
        self.events.publish(Event {
            kind,
            container_id: record.id.clone(),
            container_name: record.name.clone(),
            time: ids::now(),
            exit_code,
            reason,
            sandbox_id: record.owner.as_ref().map(|o| o.sandbox_id.clone()),
        });
    }
}
