//! The first half of a start: the container's supervisor comes up (its own skiff-shim, or its
//! pod's) and makes the init through libcontainer, which then waits to be started. A create stops
//! before this, as containerd makes its task only at start: a create answers once the rootfs,
//! the spec and the record exist, and a container created and never started holds no process.
//!
//! One start or delete of a container at a time ([`Starting`]): a second waits for the first. A
//! launch that fails is undone (supervisor, init, cgroup) and recorded as the container's end,
//! code 128 and reason StartError with the error as its message, so the kubelet sees why; the
//! rootfs and record stay until the container is removed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use skiff_runtime::shim::{self, ExitStatus, ShimClient};

use super::record::ContainerRecord;
use super::{cgroups, ids, Manager};
use crate::error::{EngineError, Result};
use crate::launcher::Launcher;

/// The containers whose start or delete is under way.
#[derive(Default)]
pub(super) struct Starting {
    ids: Mutex<HashSet<String>>,
    done: Condvar,
}

/// Holds container `id` for one start or delete; dropping it lets the next one in.
pub(super) struct Turn<'a> {
    starting: &'a Starting,
    id: String,
}

impl Starting {
    /// Takes container `id`'s turn, waiting while another start or delete of it runs, so two
    /// calls never bring up two supervisors, nor remove a rootfs under a launch. The caller
    /// reads the record again once it has the turn.
    pub(super) fn take(&self, id: &str) -> Turn<'_> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        while ids.contains(id) {
            ids = self.done.wait(ids).unwrap_or_else(|e| e.into_inner());
        }
        ids.insert(id.to_string());
        Turn { starting: self, id: id.to_string() }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.starting.ids.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        self.starting.done.notify_all();
    }
}

/// What a launch made, for the start's record and log line.
pub(super) struct Launched {
    pub pid: i32,
    pub took: Duration,
}

impl Manager {
    /// Brings up the created container's supervisor and init; answers the init's pid. A
    /// supervisor that already holds it (a start cut short by a crash) is used as it is.
    pub(super) fn launch(&self, record: &ContainerRecord) -> Result<Launched> {
        let started = Instant::now();
        if let Err(e) = self.mount_rootfs(record) {
            self.launch_failed(record, &e);
            return Err(e);
        }
        let client = self.shim(&record.id);
        if !client.alive() {
            if let Err(e) = self.launcher.spawn(&self.state_dir(&record.id), self.group_dir(record).as_deref()) {
                self.launch_failed(record, &e);
                return Err(e);
            }
        }
        match client.state() {
            Ok(state) => Ok(Launched { pid: state.pid, took: started.elapsed() }),
            Err(e) => {
                let e = EngineError::from(e);
                self.launch_failed(record, &e);
                Err(e)
            }
        }
    }

    /// Mounts the container's rootfs, unless its create (or a start cut short) did.
    fn mount_rootfs(&self, record: &ContainerRecord) -> Result<()> {
        let rootfs = self.rootfs(&record.id);
        if super::rootfs::is_mounted(&rootfs) {
            return Ok(());
        }
        let mounts = self.unpacker.snapshotter().mounts(&record.snapshot_key)?;
        skiff_snapshot::mount::mount_all(&mounts, &rootfs)?;
        Ok(())
    }

    /// Undoes a launch that failed and records the container's end with the error.
    fn launch_failed(&self, record: &ContainerRecord, error: &EngineError) {
        self.undo_launch(record);
        let exit = ExitStatus::start_failed(ids::now(), error.to_string());
        if let Err(e) = self.record_exit(&record.id, &exit) {
            tracing::error!(id = %record.id, error = %e, "recording a failed start");
        }
    }

    /// Ends what a launch brought up: the container's supervisor (or its place in the pod's),
    /// its init, its cgroup, and the pod's supervisor dir once none serves it; best effort.
    pub(super) fn undo_launch(&self, record: &ContainerRecord) {
        end_runtime(&*self.launcher, &self.state_dir(&record.id), Some(&record.cgroup_path()), self.group_dir(record).as_deref());
    }

    /// Starts the supervisor of sandbox `sandbox_id`'s containers ahead of them, for a
    /// RunPodSandbox to do while the pod's network is set up: its first container's start then
    /// finds it (and a libcontainer helper it started) waiting. Best effort: a start that finds
    /// none starts one.
    pub fn prepare_pod_supervisor(&self, sandbox_id: &str) {
        let Some(group) = self.group_of(sandbox_id) else { return };
        if let Err(e) = self.launcher.prepare(&group) {
            tracing::warn!(sandbox = %sandbox_id, error = %e, "starting the pod's supervisor ahead of its containers");
        }
    }

    /// Ends the pod's supervisor if no container of it is left (it was started ahead of
    /// containers that never came), for a pod being stopped or removed.
    pub fn end_pod_supervisor(&self, sandbox_id: &str) {
        if let Some(group) = self.group_of(sandbox_id) {
            self.launcher.release(&group);
        }
    }

    /// Whether a start ever brought up this container's supervisor (it writes its pid file).
    pub(super) fn launched(&self, id: &str) -> bool {
        self.state_dir(id).join(shim::PID_FILE).exists()
    }
}

/// Ends what the runtime holds of the container whose state dir is `state_dir`: its supervisor
/// (or its place in its pod's, which the runtime's delete frees), its init, what is left in its
/// cgroup (`cgroup_path`), and the pod's supervisor `group` dir once none serves it; best effort.
pub(super) fn end_runtime(launcher: &dyn Launcher, state_dir: &Path, cgroup_path: Option<&str>, group: Option<&Path>) {
    let client = ShimClient::new(state_dir);
    if client.alive() {
        let _ = client.kill_all();
        if let Err(e) = client.delete() {
            tracing::warn!(dir = %state_dir.display(), error = %e, "the runtime's delete of a removed container");
        }
    } else if let Some(pid) = std::fs::read_to_string(state_dir.join(shim::PID_FILE)).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
        // A shim that no longer answers (killed mid-request): make sure it is gone.
        if std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with("skiff-shim")) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    if let Some(cgroup_path) = cgroup_path {
        cgroups::remove(cgroup_path);
    }
    if let Some(group) = group {
        // Gone with the pod's last container, whose Delete ended the group's shim.
        launcher.release(group);
    }
}
