//! Following containers until they exit, and finding them again after a restart.
//!
//! A follower is a future on the async runtime waiting on the shim's socket for the init's exit,
//! not a thread: a node with hundreds of running containers costs hundreds of sockets. When the
//! answer comes (or the shim is gone), the exit is recorded on the blocking pool, published, and
//! an `--rm` container is deleted.

use std::sync::Arc;

use skiff_runtime::shim::{self, ExitStatus, Request, ShimError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::record::ContainerRecord;
use super::state::Status;
use super::{cgroups, ids, sweeper, Manager, SNAPSHOT_PREFIX};
use crate::error::Result;

/// Asks the shim for the init's exit and waits for the answer, however long it takes.
async fn wait_for_exit(client: &shim::ShimClient) -> Result<ExitStatus, ShimError> {
    let request = Request::Wait { exec_id: None };
    let (_dir, path) = client.socket_via()?;
    let unreachable = |source| ShimError::Unreachable { dir: client.state_dir().to_path_buf(), source };
    let mut stream = tokio::net::UnixStream::connect(&path).await.map_err(unreachable)?;
    let io = |source| ShimError::Io { op: "wait", source };
    stream.write_all(&shim::request_line(&request)).await.map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).await.map_err(io)?;
    match shim::parse_answer(&request, &answer)? {
        shim::Response::Exited(exit) => Ok(exit),
        other => Err(ShimError::Protocol { op: "wait", message: format!("unexpected answer {other:?}") }),
    }
}

impl Manager {
    /// Follows a started container until it exits (a task on the current async runtime).
    pub fn follow(self: &Arc<Self>, id: String) {
        let manager = self.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(id, "no async runtime to follow the container on; its exit is read when asked");
            return;
        };
        runtime.spawn(async move {
            let client = manager.shim(&id);
            let answer = wait_for_exit(&client).await;
            // Never closed: acquiring only fails on a closed semaphore.
            let Ok(permit) = manager.exit_workers.clone().acquire_owned().await else { return };
            let done = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                // Deleted meanwhile (rm -f, run --rm): its shim is gone on purpose; nothing to record.
                if manager.records.get(&id)?.is_none() {
                    return Ok(());
                }
                let exit = answer.ok().or_else(|| shim::read_exit_file(client.state_dir())).unwrap_or_else(|| {
                    tracing::warn!(id, "lost the shim before the container exited");
                    manager.lost(&id)
                });
                manager.exited(&id, &exit)
            });
            if let Ok(Err(e)) = done.await {
                tracing::error!(error = %e, "recording an exit");
            }
        });
    }

    /// Records an exit; deletes the container if it asked to be removed.
    fn exited(&self, id: &str, exit: &ExitStatus) -> Result<()> {
        self.record_exit(id, exit)?;
        if self.records.get(id)?.is_some_and(|r| r.auto_remove) {
            self.delete(id, true)?;
        }
        Ok(())
    }

    /// The exit of a container whose shim died without writing one: nothing supervises what may
    /// still run in its cgroup, so that is killed; the exit is recorded as lost (255, Unknown).
    fn lost(&self, id: &str) -> ExitStatus {
        let path = self.records.get(id).ok().flatten().map(|r| r.cgroup_path()).unwrap_or_else(|| cgroups::path(None, id));
        cgroups::remove(&path);
        ExitStatus::lost(ids::now())
    }

    /// On start: containers a crash left half-made are removed; live shims are followed again;
    /// the exits of shims that are gone are read from their exit files.
    pub fn recover(self: &Arc<Self>) -> Result<()> {
        for record in self.records.list()? {
            match record.status {
                Status::Creating => {
                    tracing::warn!(id = %record.id, "removing a container whose create was interrupted");
                    self.cleanup(&record);
                }
                // Never started: nothing runs it, and nothing should.
                Status::Created if !self.launched(&record.id) => {}
                Status::Created | Status::Running => self.reconnect(&record)?,
                Status::Exited => {
                    if record.auto_remove {
                        self.cleanup(&record);
                    }
                }
            }
        }
        if self.sweep_orphans() > 0 {
            // An orphan's supervisor may be its pod's: the release below finds it idle once the
            // orphan is deleted from it.
            self.sweeper.drain(sweeper::BEFORE_COLLECT);
        }
        // A pod's supervisor that died (or ended while skiffd was down) leaves its group dir.
        if let Ok(dirs) = std::fs::read_dir(&self.groups) {
            for dir in dirs.flatten() {
                self.launcher.release(&dir.path());
            }
        }
        Ok(())
    }

    /// Queues what removals a crash cut short left without a record: state dirs (and what the
    /// runtime still holds of them), and the `container/<id>` snapshots they name. Answers how
    /// many were queued.
    fn sweep_orphans(&self) -> usize {
        let known = |id: &str| self.records.status(id).is_some();
        let mut orphans: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|dirs| dirs.flatten().filter_map(|d| d.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        match self.unpacker.snapshotter().list() {
            Ok(snapshots) => orphans.extend(snapshots.into_iter().filter_map(|s| s.key.strip_prefix(SNAPSHOT_PREFIX).map(str::to_string))),
            Err(e) => tracing::warn!(error = %e, "listing snapshots for removed containers' leftovers"),
        }
        orphans.sort();
        orphans.dedup();
        let orphans: Vec<String> = orphans.into_iter().filter(|id| !known(id)).collect();
        for id in &orphans {
            tracing::warn!(id = %id, "sweeping what a removed container left (its removal was cut short)");
            self.sweeper.push(self.orphan_leftover(id));
        }
        orphans.len()
    }

    /// A running container after a restart, or a created one whose start was cut short: the
    /// shim, when it answers, has the last word on its state (a crash between the shim starting
    /// the init and the record saying so left `created` on a running container).
    fn reconnect(self: &Arc<Self>, record: &ContainerRecord) -> Result<()> {
        let client = self.shim(&record.id);
        if let Ok(state) = client.state() {
            tracing::info!(id = %record.id, name = %record.name, shim = ?state.status, "reconnected to shim");
            match state.status {
                shim::Status::Running => {
                    self.update(&record.id, |r| {
                        if r.status != Status::Created {
                            return Ok(false);
                        }
                        tracing::warn!(id = %r.id, "recorded as created, but its shim runs it: recorded as running");
                        r.status = Status::Running;
                        r.started_at = ids::now();
                        Ok(true)
                    })?;
                    self.follow(record.id.clone());
                }
                shim::Status::Created => self.follow(record.id.clone()),
                shim::Status::Stopped => {
                    let exit = state.exit.or_else(|| shim::read_exit_file(client.state_dir())).unwrap_or_else(|| ExitStatus::lost(ids::now()));
                    self.record_exit(&record.id, &exit)?;
                    if record.auto_remove {
                        self.delete(&record.id, true)?;
                    }
                }
            }
            return Ok(());
        }
        let exit_file = shim::read_exit_file(client.state_dir());
        if record.status == Status::Created && exit_file.is_none() {
            // Its start was cut short before the supervisor answered (it may still hang in the
            // runtime's create): that launch is undone and the start counted as failed.
            tracing::warn!(id = %record.id, name = %record.name, "the container's start was cut short; its supervisor is ended and the start recorded as failed");
            self.undo_launch(record);
            let exit = ExitStatus::start_failed(ids::now(), "its start was cut short: skiffd stopped before the container's supervisor answered".into());
            return self.record_exit(&record.id, &exit);
        }
        let exit = exit_file.unwrap_or_else(|| self.lost(&record.id));
        tracing::warn!(id = %record.id, code = exit.code, "shim is gone; container recorded as exited");
        self.record_exit(&record.id, &exit)?;
        if record.auto_remove {
            self.cleanup(record);
        }
        Ok(())
    }
}
