//! The side-effecting steps of a create, in order, and their undo. The record is written (as
//! `creating`, its name reserved) before anything is made, so a failure here is cleaned up by
//! [`Manager::cleanup`]; it reaches the disk with the create's last write (one flush), and what
//! a crash before that leaves without a record is swept on start like a removal's leftovers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use skiff_image::model::Desc;
use skiff_image::resolve::Resolved;
use skiff_runtime::shim::{self, ShimConfig};
use skiff_snapshot::{chain_ids, mount};

pub use super::plan::CreateSpec;
use super::plan::{build_spec, plan, Facts};
use super::record::ContainerRecord;
use super::state::Status;
use super::{cgroups, ids, rootfs, snapshot_key, volumes, Manager};
use crate::config::HandlerConfig;
use crate::error::{EngineError, Result};
use crate::events::EventType;
use crate::images::{lookup, platform_to_run};

/// Writes a file only root may read (0600), whatever the umask.
pub(super) fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let context = || format!("writing {}", path.display());
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(EngineError::io(context()))?;
    file.write_all(bytes).map_err(EngineError::io(context()))
}

impl Manager {
    /// Makes the container: its rootfs, spec and record; `start` brings up its process. NotFound
    /// means the image (or its platform) is not stored, and nothing else.
    pub fn create(&self, req: CreateSpec) -> Result<ContainerRecord> {
        // Its start most likely follows.
        self.attach_warmer.expect_start();
        if !req.name.is_empty() {
            ids::check_name(&req.name)?;
        }
        if req.run.annotations.keys().any(String::is_empty) {
            return Err(EngineError::InvalidArgument("annotation key is empty".into()));
        }
        let (handler_name, handler) = self.config.handler(&req.runtime)?;
        let image = lookup(&self.store, &req.image)?;
        let platform = platform_to_run(&image, &req.platform, &self.platform)?;
        let resolved = self.resolved.resolve(self.store.content(), &Desc::from_store(&image.target), &platform).map_err(|e| match e {
            // Not stored for this platform: pulling it would help.
            e @ skiff_image::ImageError::NoMatchingPlatform { .. } => EngineError::Image(e),
            e => EngineError::Damaged { image: image.name.clone(), source: e },
        })?;
        // Lazily unpack: a --no-unpack import or pull is unpacked by its first container.
        self.unpacker.unpack(&self.store, &resolved).map_err(|e| EngineError::Unpack { image: image.name.clone(), source: e })?;

        let id = match &req.id {
            Some(id) => {
                ids::check_id(id)?;
                if self.records.get(id)?.is_some() {
                    return Err(EngineError::InvalidArgument(format!("container id {id} is taken")));
                }
                id.clone()
            }
            None => ids::random_id()?,
        };
        let name = if req.name.is_empty() { ids::default_name(&image.name, &id) } else { req.name.clone() };
        let record = ContainerRecord {
            id: id.clone(),
            name,
            image: image.name.clone(),
            image_digest: image.target.digest.to_string(),
            runtime: handler_name,
            snapshot_key: snapshot_key(&id),
            status: Status::Creating,
            pid: 0,
            exit: None,
            created_at: ids::now(),
            started_at: String::new(),
            command: Vec::new(),
            labels: req.labels.clone(),
            auto_remove: req.auto_remove,
            open_stdin: req.stdin,
            stdin_once: req.stdin_once,
            stop_signal: None,
            annotations: Default::default(),
            log_path: req.log_path.clone().unwrap_or_else(|| self.state_dir(&id).join("container.log")).display().to_string(),
            cgroup_path: cgroups::path(req.cgroup_parent.as_deref(), &id),
            owner: req.owner.clone(),
        };
        // Held before anything is made: what a crash from here on leaves is cleaned up on start.
        self.records.create(&record)?;
        match self.build(record.clone(), &req, &handler, &resolved) {
            Ok(r) => {
                self.publish(EventType::Created, &r);
                Ok(r)
            }
            Err(e) => {
                self.cleanup(&record);
                Err(e)
            }
        }
    }

    fn build(&self, mut record: ContainerRecord, req: &CreateSpec, handler: &HandlerConfig, resolved: &Resolved) -> Result<ContainerRecord> {
        let started = Instant::now();
        let state_dir = self.state_dir(&record.id);
        let bundle = self.bundle(&record.id);
        let rootfs = self.rootfs(&record.id);
        // The state dir (root's alone) with bundle/rootfs in it, made ahead of time when it can be.
        self.spare_dirs.make(&state_dir).map_err(EngineError::io(format!("creating {} with bundle/rootfs", state_dir.display())))?;
        if let Some(dir) = std::path::Path::new(&record.log_path).parent() {
            // The CRI names a log under the pod's log directory, which may not exist yet.
            std::fs::create_dir_all(dir).map_err(EngineError::io(format!("creating {}", dir.display())))?;
        }
        let dirs_made = started.elapsed();
        let parent = chain_ids(resolved.config.rootfs().diff_ids()).pop();
        let labels = BTreeMap::from([("io.skiff.container".to_string(), record.id.clone())]);
        let mounts = self.unpacker.snapshotter().prepare(&record.snapshot_key, parent.as_deref(), labels)?;
        let snapshot_ready = started.elapsed();
        // The start mounts the rootfs, as containerd's shim does at task create: the image's
        // account files, all the create needs of it, are read through the snapshot's layers.
        // Mounts that cannot be read so are mounted now, and so are those of a container with
        // image volumes, which are made inside its rootfs.
        let layers = skiff_snapshot::view::layers(&mounts);
        let (passwd, group) = match &layers {
            Some(layers) => rootfs::account_files_in_layers(layers),
            None => {
                mount::mount_all(&mounts, &rootfs)?;
                rootfs::account_files(&rootfs)
            }
        };
        let accounts_read = started.elapsed();
        let facts = Facts { passwd, group, oom_score_floor: cgroups::own_oom_score_adj() };
        let mut plan = plan(req, &record, handler, &resolved.config, &facts);
        if layers.is_some() && !plan.image_volumes.is_empty() {
            mount::mount_all(&mounts, &rootfs)?;
        }
        let volume_mounts = volumes::prepare(self.config.image_volumes, &plan.image_volumes, &plan.run.mounts, &rootfs, &state_dir)?;
        plan.run.mounts.extend(volume_mounts);
        volumes::sort_by_depth(&mut plan.run.mounts);
        let devices = super::plan::HostDevices::of(&plan.run)?;
        let built = build_spec(&plan, &resolved.config, &resolved.annotations, &facts, self.config.policy(handler), &devices)?;
        let config_json = built.config_json()?;
        // The spec holds the container's environment (secrets among it): root's alone.
        write_private(&bundle.join("config.json"), &config_json)?;
        record.command = built.args();
        record.stop_signal = built.stop_signal.clone();
        record.annotations = built.annotations;

        let shim_config = ShimConfig {
            id: record.id.clone(),
            bundle,
            log_path: PathBuf::from(&record.log_path),
            runtime: plan.runtime,
            stdio: req.stdio.clone(),
            cgroup_path: plan.run.cgroups_path.clone(),
            loopback_up: plan.loopback_up,
            open_stdin: req.stdin,
            stdin_once: req.stdin_once,
        };
        let bytes = serde_json::to_vec_pretty(&shim_config).map_err(|e| EngineError::Io { context: "encoding the shim config".into(), source: e.into() })?;
        write_private(&state_dir.join(shim::CONFIG_FILE), &bytes)?;
        let spec_ready = started.elapsed();
        record.status = Status::Created;
        self.records.put(&record)?;
        tracing::info!(
            id = %record.id, name = %record.name, image = %record.image, runtime = %record.runtime,
            ?dirs_made, ?snapshot_ready, ?accounts_read, ?spec_ready, total = ?started.elapsed(), "container created"
        );
        Ok(record)
    }

    /// Removes what a create (and a start) made, in reverse order, then the record; best effort,
    /// logged.
    pub(super) fn cleanup(&self, record: &ContainerRecord) {
        // The record goes first, durably: a removal that has answered stays done after a crash.
        // What is left (the runtime's part too) is swept after the caller is answered, and found
        // again by `recover` when a crash comes in between.
        if let Err(e) = self.records.remove(record).and_then(|()| self.records.flush()) {
            tracing::error!(container = %record.id, error = %e, "removing the container record");
        }
        self.sweeper.push(self.leftover(record));
    }
}
