//! What can be done to a made container: start, signal, stop, exec, attach, resize, wait, delete. Each
//! asks the state machine first ([`Status::allows`]) and names the state when it refuses.

use std::sync::Arc;
use std::time::Duration;

use skiff_runtime::shim::{self, ExitStatus, Stdio};
use skiff_runtime::spec;

use super::record::ContainerRecord;
use super::state::{Action, Status};
use super::{ids, rootfs, Manager};
use crate::error::{EngineError, Result};
use crate::events::EventType;

/// What an exec asks for.
#[derive(Clone, Debug, Default)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub stdio: Stdio,
}

fn check(record: &ContainerRecord, action: Action) -> Result<()> {
    if record.status.allows(action) {
        Ok(())
    } else {
        Err(EngineError::InvalidState { name: record.name.clone(), state: record.status, action })
    }
}

impl Manager {
    /// Starts a created container: brings up its supervisor and init (`launch`), lets the init
    /// run, and follows it until it exits. A failed launch is recorded as the container's end
    /// (StartError) and answered as the error.
    pub fn start(self: &Arc<Self>, id_or_name: &str) -> Result<ContainerRecord> {
        self.attach_warmer.expect_start();
        let record = self.records.find(id_or_name)?;
        check(&record, Action::Start)?;
        let turn = self.starting.take(&record.id);
        // Read again under the turn: a start that held it may have just run this container.
        let record = self.records.find(&record.id)?;
        check(&record, Action::Start)?;
        let launched = self.launch(&record);
        // The init is in its cgroup (or the launch failed): nothing more to keep warm for it.
        self.attach_warmer.moved();
        let launched = launched?;
        let begun = std::time::Instant::now();
        self.shim(&record.id).start()?;
        let record = self
            .update(&record.id, |r| {
                // The init may already have exited and been recorded; never go back from exited.
                if !r.status.can_become(Status::Running) {
                    return Ok(false);
                }
                r.status = Status::Running;
                r.pid = launched.pid;
                r.started_at = ids::now();
                Ok(true)
            })?
            .ok_or_else(|| EngineError::NoContainer(id_or_name.to_string()))?;
        tracing::info!(id = %record.id, pid = launched.pid, launch = ?launched.took, start = ?begun.elapsed(), "container started");
        // Before following: a `--rm` container that ends at once is deleted by its follower,
        // which takes the turn too.
        drop(turn);
        self.publish(EventType::Started, &record);
        self.follow(record.id.clone());
        Ok(record)
    }

    /// Blocks until the init (or an exec'd process) exited; records the init's exit.
    pub fn wait(&self, id_or_name: &str, exec_id: Option<&str>) -> Result<ExitStatus> {
        let record = self.records.find(id_or_name)?;
        if exec_id.is_none() {
            if let Some(exit) = &record.exit {
                return Ok(exit.clone());
            }
        }
        let client = self.shim(&record.id);
        let exit = match client.wait(exec_id, None) {
            Ok(exit) => exit,
            Err(e) if exec_id.is_none() => shim::read_exit_file(client.state_dir()).ok_or(e)?,
            Err(e) => return Err(e.into()),
        };
        if exec_id.is_none() {
            self.record_exit(&record.id, &exit)?;
        }
        Ok(exit)
    }

    /// Stores an exit in the record, once; publishes `oom` (when the OOM killer ended it) and
    /// `exited` the first time.
    pub fn record_exit(&self, id: &str, exit: &ExitStatus) -> Result<()> {
        let mut first = false;
        let record = self.update(id, |r| {
            if r.exit.is_some() || !r.status.can_become(Status::Exited) {
                return Ok(false);
            }
            r.exit = Some(exit.clone());
            r.status = Status::Exited;
            first = true;
            Ok(true)
        })?;
        if let (Some(record), true) = (record, first) {
            tracing::info!(id = %record.id, code = exit.code, reason = exit.reason().as_str(), "container exited");
            if exit.oom_killed {
                self.publish(EventType::Oom, &record);
            }
            self.publish(EventType::Exited, &record);
        }
        Ok(())
    }

    pub fn kill(&self, id_or_name: &str, signal: i32, all: bool) -> Result<()> {
        let record = self.records.find(id_or_name)?;
        check(&record, Action::Signal)?;
        Ok(self.shim(&record.id).kill(signal, all)?)
    }

    /// The stop signal, then SIGKILL to every process after `timeout`. A container that is not
    /// running (a created one has no process yet) is left as it is.
    pub fn stop(&self, id_or_name: &str, timeout: Duration) -> Result<()> {
        let record = self.records.find(id_or_name)?;
        if !record.status.can_signal() {
            return Ok(());
        }
        let signal = record.stop_signal.as_deref().and_then(|s| ids::parse_signal(s).ok()).unwrap_or(libc::SIGTERM);
        let client = self.shim(&record.id);
        client.kill(signal, false)?;
        let exit = match client.wait(None, Some(timeout)) {
            Ok(exit) => exit,
            Err(_) => client.kill_all()?,
        };
        self.record_exit(&record.id, &exit)
    }

    /// Deletes a container that is not running (with `force`, kills a running one first).
    pub fn delete(&self, id_or_name: &str, force: bool) -> Result<ContainerRecord> {
        let record = self.records.find(id_or_name)?;
        let _turn = self.starting.take(&record.id);
        // Read again under the turn: a start may have just run it, or a delete removed it.
        let record = self.records.find(&record.id)?;
        check(&record, if force { Action::ForceDelete } else { Action::Delete })?;
        // An exit recorded is final; otherwise the record may lag the shim (an exit not yet
        // recorded, a start cut short after the shim ran the init): the shim has the last word.
        let client = self.shim(&record.id);
        if record.status != Status::Exited && client.alive() && client.state()?.status == shim::Status::Running {
            if !force {
                return Err(EngineError::InvalidState { name: record.name.clone(), state: Status::Running, action: Action::Delete });
            }
            let exit = client.kill_all()?;
            self.record_exit(&record.id, &exit)?;
        }
        // The runtime's delete is swept with the rest, after the answer.
        self.cleanup(&record);
        self.publish(EventType::Deleted, &record);
        tracing::info!(id = %record.id, name = %record.name, "container deleted");
        Ok(record)
    }

    /// Runs a process in a running container; returns its exec id and pid.
    pub fn exec(&self, id_or_name: &str, req: ExecSpec) -> Result<(String, i32)> {
        // The exec'd process is moved into the container's cgroup too.
        self.attach_warmer.expect_start();
        let record = self.records.find(id_or_name)?;
        check(&record, Action::Exec)?;
        if req.args.is_empty() {
            return Err(EngineError::InvalidArgument("exec needs a command".into()));
        }
        let spec = self.spec(&record.id)?;
        let user = match &req.user {
            Some(u) => {
                let (passwd, group) = rootfs::account_files(&self.rootfs(&record.id));
                Some(skiff_runtime::user::resolve(u, &passwd, &group)?)
            }
            None => None,
        };
        let process = spec::exec_process(&spec["process"], &req.args, &req.env, req.workdir.as_deref(), user.as_ref(), req.stdio.tty)?;
        let exec_id = ids::random_id()?[..16].to_string();
        let pid = self.shim(&record.id).exec(&exec_id, process, req.stdio);
        self.attach_warmer.moved();
        Ok((exec_id, pid?))
    }

    /// Attaches a client's FIFOs to the running container's stdio: its output (and, when the
    /// container keeps stdin open and no other client holds it, its stdin) until the container
    /// exits. `stdio.tty` must be the container's.
    pub fn attach(&self, id_or_name: &str, stdio: Stdio) -> Result<()> {
        let record = self.records.find(id_or_name)?;
        check(&record, Action::Attach)?;
        Ok(self.shim(&record.id).attach(stdio)?)
    }

    /// Waits up to `timeout` for an exec'd process; None when it is still running then.
    pub fn wait_exec(&self, id_or_name: &str, exec_id: &str, timeout: Duration) -> Result<Option<ExitStatus>> {
        let record = self.records.find(id_or_name)?;
        match self.shim(&record.id).wait(Some(exec_id), Some(timeout)) {
            Ok(exit) => Ok(Some(exit)),
            Err(shim::ShimError::Timeout { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Signals one exec'd process, never the container's init or its other processes.
    pub fn kill_exec(&self, id_or_name: &str, exec_id: &str, signal: i32) -> Result<()> {
        let record = self.records.find(id_or_name)?;
        Ok(self.shim(&record.id).kill_exec(exec_id, signal)?)
    }

    /// Has the shim reopen the container's log file (the kubelet renamed it to rotate it).
    pub fn reopen_log(&self, id_or_name: &str) -> Result<()> {
        let record = self.records.find(id_or_name)?;
        check(&record, Action::ReopenLog)?;
        Ok(self.shim(&record.id).reopen_log()?)
    }

    pub fn resize(&self, id_or_name: &str, exec_id: Option<&str>, rows: u16, columns: u16) -> Result<()> {
        let record = self.records.find(id_or_name)?;
        check(&record, Action::Resize)?;
        Ok(self.shim(&record.id).resize(exec_id, rows, columns)?)
    }
}
