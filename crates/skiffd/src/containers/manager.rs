//! The container manager: turns a request into a rootfs snapshot, a runtime spec and a running
//! shim, and keeps the records. It never calls libcontainer itself: every runtime call happens in
//! the container's skiff-shim, which outlives skiffd; on start the manager reconnects to live
//! shims and reads the exit files of those that are gone.
//!
//! ```text
//! <root>/containers/<id>/            the shim's state dir (see skiff_runtime::shim)
//! <root>/containers/<id>/bundle/     config.json and rootfs/ (the snapshot, mounted)
//! <root>/containers/<id>/container.log   the CRI-format log
//! ```
//! All methods block; the gRPC service runs them on the blocking pool.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use skiff_image::model::Desc;
use skiff_image::resolve::resolve;
use skiff_image::Platform;
use skiff_runtime::shim::{self, ExitStatus, Request, Response, RuntimeKind, ShimClient, ShimConfig, Stdio};
use skiff_runtime::spec::{self, RunRequest, SpecInputs};
use skiff_snapshot::{chain_ids, mount, Unpacker};
use skiff_store::Store;

use super::record::{ContainerRecord, Records, Status};
use super::{rootfs, volumes};
use crate::config::RuntimeConfig;
use crate::images::lookup;
use crate::status::ApiError;

/// What a create asks for (the gRPC request, decoded).
#[derive(Clone, Debug, Default)]
pub struct CreateSpec {
    pub image: String,
    pub name: String,
    pub run: RunRequest,
    pub runtime: String,
    pub stdio: Stdio,
    pub labels: BTreeMap<String, String>,
    pub auto_remove: bool,
    pub host_network: bool,
}

/// What an exec asks for.
#[derive(Clone, Debug, Default)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub stdio: Stdio,
}

pub struct Manager {
    store: Arc<Store>,
    unpacker: Arc<Unpacker>,
    platform: Platform,
    config: RuntimeConfig,
    records: Records,
    dir: PathBuf,
    /// skiff-shim, copied once into a sealed memfd: every shim runs from it, so replacing the
    /// binary on disk (or a container writing to it) cannot change a running supervisor.
    shim_binary: File,
    /// Serialises name reservation between concurrent creates.
    names: Mutex<()>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn random_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ApiError::Internal(format!("reading /dev/urandom: {e}")))?;
    Ok(hex::encode(bytes))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128
}

/// `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(text: &str) -> Result<i32, ApiError> {
    if text.is_empty() {
        return Ok(libc::SIGKILL);
    }
    if let Ok(n) = text.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map(|s| s as i32)
            .map_err(|_| ApiError::BadRequest(format!("unknown signal {text:?}")));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| ApiError::BadRequest(format!("unknown signal {text:?}")))
}

/// The container's cgroup (cgroupfs), as `linux.cgroupsPath`.
fn cgroup_path(id: &str) -> String {
    format!("/skiff/{id}")
}

/// Kills what still runs in the container's cgroups and removes them; logs what stays.
fn remove_cgroups(id: &str) {
    for left in rootfs::remove_cgroups(&cgroup_path(id)) {
        tracing::warn!(cgroup = %left.display(), "cgroup still busy; left in place");
    }
}

/// The rootfs's /etc/passwd and /etc/group, for user resolution.
fn account_files(rootfs: &Path) -> (String, String) {
    (rootfs::read_account_file(rootfs, "/etc/passwd"), rootfs::read_account_file(rootfs, "/etc/group"))
}

fn unexpected(answer: Response) -> ApiError {
    ApiError::Internal(format!("unexpected shim answer {answer:?}"))
}

fn shim_state(client: &ShimClient) -> Result<shim::State, ApiError> {
    match client.call(&Request::State, Some(Duration::from_secs(10)))? {
        Response::State(s) => Ok(s),
        other => Err(unexpected(other)),
    }
}

/// Waits (up to `timeout`, None: as long as it takes) for the init's exit.
fn shim_wait(client: &ShimClient, timeout: Option<Duration>) -> Result<ExitStatus, ApiError> {
    match client.call(&Request::Wait { exec_id: None }, timeout)? {
        Response::Exited(exit) => Ok(exit),
        other => Err(unexpected(other)),
    }
}

/// SIGKILL to every process of the container, then its init's exit.
fn shim_kill_all(client: &ShimClient) -> Result<ExitStatus, ApiError> {
    client.call(&Request::Kill { signal: libc::SIGKILL, all: true }, Some(Duration::from_secs(10)))?;
    shim_wait(client, Some(Duration::from_secs(30)))
}

fn own_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

impl Manager {
    pub fn new(store: Arc<Store>, unpacker: Arc<Unpacker>, platform: Platform, config: RuntimeConfig, root: &Path) -> anyhow::Result<Manager> {
        use anyhow::Context;
        let shim_path = if config.shim.as_os_str().is_empty() {
            std::env::current_exe().context("locating skiffd")?.with_file_name("skiff-shim")
        } else {
            config.shim.clone()
        };
        let mut source = File::open(&shim_path).with_context(|| format!("opening the shim binary {}", shim_path.display()))?;
        let shim_binary = pentacle::SealOptions::new()
            .executable(true)
            .close_on_exec(true)
            .copy_and_seal(&mut source)
            .with_context(|| format!("sealing {}", shim_path.display()))?;
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let records = Records::new(store.db().clone());
        Ok(Manager { store, unpacker, platform, config, records, dir, shim_binary, names: Mutex::new(()) })
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.config.stop_timeout_secs)
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn shim(&self, id: &str) -> ShimClient {
        ShimClient::new(self.state_dir(id))
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("bundle")
    }

    /// The container's runtime spec (its config.json).
    pub fn spec(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let bytes = std::fs::read(self.bundle(id).join("config.json")).map_err(|e| ApiError::Internal(format!("reading config.json: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(format!("config.json: {e}")))
    }

    /// Makes the container; its process waits for `start`.
    pub fn create(&self, req: CreateSpec) -> Result<ContainerRecord, ApiError> {
        if !req.name.is_empty() && !valid_name(&req.name) {
            return Err(ApiError::BadRequest(format!(
                "container name {:?} must start with a letter or digit and hold only letters, digits, '_', '.', '-'",
                req.name
            )));
        }
        for key in req.run.annotations.keys() {
            if key.is_empty() {
                return Err(ApiError::BadRequest("annotation key is empty".into()));
            }
        }
        let (handler_name, handler) = self.config.handler(&req.runtime).map_err(ApiError::BadRequest)?;
        let image = lookup(&self.store, &req.image)?;
        let platform = crate::unpack::platform_of(&image, &self.platform)?;
        let resolved = resolve(self.store.content(), &Desc::from_store(&image.target), &platform)?;
        // Lazily unpack: a --no-unpack import or pull is unpacked by its first container.
        self.unpacker.unpack(&self.store, &resolved).map_err(|e| ApiError::Unpack { image: image.name.clone(), source: e })?;
        let parent = chain_ids(resolved.config.rootfs().diff_ids()).pop();

        let id = random_id()?;
        let record = {
            let _names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let existing = self.records.list()?;
            let name = if req.name.is_empty() {
                let base = image.name.rsplit('/').next().unwrap_or("container").split([':', '@']).next().unwrap_or("container");
                format!("{base}-{}", &id[..8])
            } else {
                req.name.clone()
            };
            if existing.iter().any(|r| r.name == name) {
                return Err(ApiError::AlreadyExists(format!("container name {name:?} is in use")));
            }
            let record = ContainerRecord {
                id: id.clone(),
                name,
                image: image.name.clone(),
                image_digest: image.target.digest.to_string(),
                runtime: handler_name.clone(),
                snapshot_key: format!("container/{id}"),
                status: Status::Creating,
                pid: 0,
                exit: None,
                created_at: now(),
                started_at: String::new(),
                command: Vec::new(),
                labels: req.labels.clone(),
                auto_remove: req.auto_remove,
                stop_signal: None,
                annotations: Default::default(),
                log_path: self.state_dir(&id).join("container.log").display().to_string(),
            };
            // Written before anything is made, so a crash from here on is cleaned up on start.
            self.records.put(&record)?;
            record
        };
        match self.build(record.clone(), &req, &handler, parent.as_deref(), &resolved) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.cleanup(&record);
                Err(e)
            }
        }
    }

    fn build(
        &self,
        mut record: ContainerRecord,
        req: &CreateSpec,
        handler: &crate::config::HandlerConfig,
        parent: Option<&str>,
        resolved: &skiff_image::resolve::Resolved,
    ) -> Result<ContainerRecord, ApiError> {
        let started = std::time::Instant::now();
        let state_dir = self.state_dir(&record.id);
        let bundle = self.bundle(&record.id);
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|e| ApiError::Internal(format!("creating {}: {e}", rootfs.display())))?;
        let snapshot_error = |e| ApiError::Snapshot(Box::new(e));
        let labels = BTreeMap::from([("io.skiff.container".to_string(), record.id.clone())]);
        let mounts = self.unpacker.snapshotter().prepare(&record.snapshot_key, parent, labels).map_err(snapshot_error)?;
        mount::mount_all(&mounts, &rootfs).map_err(snapshot_error)?;
        let rootfs_ready = started.elapsed();

        let mut run = req.run.clone();
        let image_volumes = resolved.config.config().as_ref().and_then(|c| c.volumes().clone()).unwrap_or_default();
        let volume_mounts = volumes::prepare(self.config.image_volumes, &image_volumes, &run.mounts, &rootfs, &state_dir)?;
        run.mounts.extend(volume_mounts);
        volumes::sort_by_depth(&mut run.mounts);
        run.cgroups_path = Some(cgroup_path(&record.id));
        if let Some(adj) = run.oom_score_adj {
            // The runtime cannot lower a score below its parent's here: clamp rather than fail.
            let floor = own_oom_score_adj();
            if adj < floor {
                tracing::warn!(requested = adj, used = floor, "oom_score_adj clamped to skiffd's own");
                run.oom_score_adj = Some(floor);
            }
        }
        if req.host_network {
            run.host_network = true;
        } else if run.hostname.is_none() {
            // As docker and nerdctl do: the short id names the container's UTS namespace.
            run.hostname = Some(record.id[..12].to_string());
        }
        let manager_annotations = BTreeMap::from([
            ("io.skiff.container.id".to_string(), record.id.clone()),
            ("io.skiff.container.name".to_string(), record.name.clone()),
            ("io.skiff.image.name".to_string(), record.image.clone()),
            ("io.skiff.image.digest".to_string(), record.image_digest.clone()),
            ("io.skiff.runtime.handler".to_string(), record.runtime.clone()),
        ]);
        let (passwd, group) = account_files(&rootfs);
        let built = spec::build(&SpecInputs {
            image: &resolved.config,
            image_annotations: &resolved.annotations,
            passwd: &passwd,
            group: &group,
            request: &run,
            manager_annotations: &manager_annotations,
            policy: self.config.policy(handler),
            rootfs: "rootfs",
        })?;
        let config_json = spec::to_json(&built.spec)?;
        std::fs::write(bundle.join("config.json"), config_json).map_err(|e| ApiError::Internal(format!("writing config.json: {e}")))?;
        record.command = built.spec.process().as_ref().and_then(|p| p.args().clone()).unwrap_or_default();
        record.stop_signal = built.stop_signal.clone();
        record.annotations = built.annotations;

        let runtime = if handler.binary.as_os_str().is_empty() {
            RuntimeKind::Builtin
        } else {
            RuntimeKind::Binary { path: handler.binary.clone() }
        };
        // runc brings loopback up itself; libcontainer leaves it down.
        let new_netns = !run.host_network && !run.join_namespaces.iter().any(|(kind, _)| kind == "network");
        let shim_config = ShimConfig {
            id: record.id.clone(),
            bundle,
            log_path: PathBuf::from(&record.log_path),
            runtime: runtime.clone(),
            stdio: req.stdio.clone(),
            cgroup_path: run.cgroups_path.clone(),
            loopback_up: new_netns && runtime == RuntimeKind::Builtin,
        };
        let bytes = serde_json::to_vec_pretty(&shim_config).map_err(|e| ApiError::Internal(e.to_string()))?;
        std::fs::write(state_dir.join(shim::CONFIG_FILE), bytes).map_err(|e| ApiError::Internal(format!("writing the shim config: {e}")))?;
        let spec_ready = started.elapsed();
        self.spawn_shim(&state_dir)?;
        let shim_ready = started.elapsed();
        record.pid = shim_state(&self.shim(&record.id))?.pid;
        record.status = Status::Created;
        self.records.put(&record)?;
        tracing::info!(
            id = %record.id, name = %record.name, image = %record.image, runtime = %record.runtime, pid = record.pid,
            ?rootfs_ready, ?spec_ready, ?shim_ready, total = ?started.elapsed(), "container created"
        );
        Ok(record)
    }

    /// Runs skiff-shim from the sealed copy; returns once the container exists (or failed).
    fn spawn_shim(&self, state_dir: &Path) -> Result<(), ApiError> {
        use std::os::unix::process::CommandExt;
        let output = Command::new(format!("/proc/self/fd/{}", self.shim_binary.as_raw_fd()))
            .arg0("skiff-shim")
            .arg(state_dir)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| ApiError::Internal(format!("running skiff-shim: {e}")))?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(ApiError::FailedPrecondition(format!("creating the container failed: {message}")));
        }
        Ok(())
    }

    /// Removes what a create made, in reverse order; best effort, logged.
    fn cleanup(&self, record: &ContainerRecord) {
        let state_dir = self.state_dir(&record.id);
        let client = self.shim(&record.id);
        if client.alive() {
            let _ = client.call(&Request::Kill { signal: libc::SIGKILL, all: true }, Some(Duration::from_secs(5)));
            let _ = client.call(&Request::Wait { exec_id: None }, Some(Duration::from_secs(10)));
            let _ = client.call(&Request::Delete, Some(Duration::from_secs(10)));
        } else if let Some(pid) = std::fs::read_to_string(state_dir.join(shim::PID_FILE)).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            // A shim that no longer answers (killed mid-request): make sure it is gone.
            if std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with("skiff-shim")) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        remove_cgroups(&record.id);
        let rootfs = self.bundle(&record.id).join("rootfs");
        if let Err(e) = mount::unmount(&rootfs) {
            tracing::warn!(container = %record.id, error = %e, "unmounting the rootfs");
        }
        let snapshots = self.unpacker.snapshotter();
        if snapshots.stat(&record.snapshot_key).is_ok() {
            if let Err(e) = snapshots.remove(&record.snapshot_key) {
                tracing::warn!(container = %record.id, error = %e, "removing the container's snapshot");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&state_dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %state_dir.display(), error = %e, "removing the container's state");
            }
        }
        if let Err(e) = self.records.remove(&record.id) {
            tracing::error!(container = %record.id, error = %e, "removing the container record");
        }
    }

    pub fn start(&self, id_or_name: &str) -> Result<ContainerRecord, ApiError> {
        let mut record = self.records.find(id_or_name)?;
        if record.status != Status::Created {
            return Err(ApiError::FailedPrecondition(format!("container {} is {}, not created", record.name, record.status.as_str())));
        }
        self.shim(&record.id).call(&Request::Start, Some(Duration::from_secs(30)))?;
        record.status = Status::Running;
        record.started_at = now();
        self.records.put(&record)?;
        Ok(record)
    }

    /// Blocks until the init (or an exec'd process) exited; records the init's exit.
    pub fn wait(&self, id_or_name: &str, exec_id: Option<String>) -> Result<ExitStatus, ApiError> {
        let record = self.records.find(id_or_name)?;
        if exec_id.is_none() {
            if let Some(exit) = &record.exit {
                return Ok(exit.clone());
            }
        }
        let client = self.shim(&record.id);
        let exit = match client.call(&Request::Wait { exec_id: exec_id.clone() }, None) {
            Ok(Response::Exited(exit)) => exit,
            Ok(other) => return Err(unexpected(other)),
            Err(e) if exec_id.is_none() => match shim::read_exit_file(client.state_dir()) {
                Some(exit) => exit,
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        if exec_id.is_none() {
            self.record_exit(&record.id, &exit)?;
        }
        Ok(exit)
    }

    /// Stores an exit in the record (once).
    pub fn record_exit(&self, id: &str, exit: &ExitStatus) -> Result<(), ApiError> {
        let _names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let mut record = match self.records.find(id) {
            Ok(r) => r,
            Err(ApiError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if record.exit.is_none() {
            record.exit = Some(exit.clone());
            record.status = Status::Exited;
            self.records.put(&record)?;
            tracing::info!(id = %record.id, code = exit.code, reason = exit.reason(), "container exited");
        }
        Ok(())
    }

    pub fn kill(&self, id_or_name: &str, signal: i32, all: bool) -> Result<(), ApiError> {
        let record = self.records.find(id_or_name)?;
        if !record.status.is_live() {
            return Err(ApiError::FailedPrecondition(format!("container {} is {}", record.name, record.status.as_str())));
        }
        self.shim(&record.id).call(&Request::Kill { signal, all }, Some(Duration::from_secs(10)))?;
        Ok(())
    }

    /// The stop signal, then SIGKILL to every process after `timeout`.
    pub fn stop(&self, id_or_name: &str, timeout: Duration) -> Result<(), ApiError> {
        let record = self.records.find(id_or_name)?;
        if !record.status.is_live() {
            return Ok(());
        }
        let signal = match &record.stop_signal {
            Some(s) => parse_signal(s).unwrap_or(libc::SIGTERM),
            None => libc::SIGTERM,
        };
        let client = self.shim(&record.id);
        client.call(&Request::Kill { signal, all: false }, Some(Duration::from_secs(10)))?;
        let exit = match shim_wait(&client, Some(timeout)) {
            Ok(exit) => exit,
            Err(_) => shim_kill_all(&client)?,
        };
        self.record_exit(&record.id, &exit)
    }

    /// Deletes a stopped container (with `force`, kills a running one first).
    pub fn delete(&self, id_or_name: &str, force: bool) -> Result<ContainerRecord, ApiError> {
        let record = self.records.find(id_or_name)?;
        let client = self.shim(&record.id);
        if client.alive() {
            if shim_state(&client)?.status == shim::Status::Running {
                if !force {
                    return Err(ApiError::FailedPrecondition(format!("container {} is running: stop it first, or force", record.name)));
                }
                let exit = shim_kill_all(&client)?;
                self.record_exit(&record.id, &exit)?;
            }
            client.call(&Request::Delete, Some(Duration::from_secs(30)))?;
        }
        self.cleanup(&record);
        tracing::info!(id = %record.id, name = %record.name, "container deleted");
        Ok(record)
    }

    pub fn exec(&self, id_or_name: &str, req: ExecSpec) -> Result<(String, i32), ApiError> {
        let record = self.records.find(id_or_name)?;
        if record.status != Status::Running {
            return Err(ApiError::FailedPrecondition(format!("container {} is {}, not running", record.name, record.status.as_str())));
        }
        if req.args.is_empty() {
            return Err(ApiError::BadRequest("exec needs a command".into()));
        }
        let spec = self.spec(&record.id)?;
        let user = match &req.user {
            Some(u) => {
                let (passwd, group) = account_files(&self.bundle(&record.id).join("rootfs"));
                Some(skiff_runtime::user::resolve(u, &passwd, &group)?)
            }
            None => None,
        };
        let process = spec::exec_process(&spec["process"], &req.args, &req.env, req.workdir.as_deref(), user.as_ref(), req.stdio.tty)?;
        let exec_id = random_id()?[..16].to_string();
        match self.shim(&record.id).call(&Request::Exec { exec_id: exec_id.clone(), process, stdio: req.stdio }, Some(Duration::from_secs(30)))? {
            Response::Exec { pid } => Ok((exec_id, pid)),
            other => Err(unexpected(other)),
        }
    }

    pub fn resize(&self, id_or_name: &str, exec_id: Option<String>, rows: u16, columns: u16) -> Result<(), ApiError> {
        let record = self.records.find(id_or_name)?;
        self.shim(&record.id).call(&Request::ResizePty { exec_id, rows, columns }, Some(Duration::from_secs(5)))?;
        Ok(())
    }

    /// On start: containers a crash left half-made are removed; live shims are kept (the caller
    /// watches them again); the exits of shims that are gone are read from their exit files.
    /// Returns the ids to watch.
    pub fn recover(&self) -> Result<Vec<String>, ApiError> {
        let mut watch = Vec::new();
        for record in self.records.list()? {
            match record.status {
                Status::Creating => {
                    tracing::warn!(id = %record.id, "removing a container whose create was interrupted");
                    self.cleanup(&record);
                }
                Status::Created | Status::Running => {
                    let client = self.shim(&record.id);
                    if client.alive() {
                        tracing::info!(id = %record.id, name = %record.name, "reconnected to shim");
                        watch.push(record.id.clone());
                    } else {
                        let exit = shim::read_exit_file(client.state_dir()).unwrap_or_else(|| self.lost(&record.id));
                        tracing::warn!(id = %record.id, code = exit.code, "shim is gone; container recorded as exited");
                        self.record_exit(&record.id, &exit)?;
                        if record.auto_remove {
                            self.cleanup(&record);
                        }
                    }
                }
                Status::Exited => {
                    if record.auto_remove {
                        self.cleanup(&record);
                    }
                }
            }
        }
        Ok(watch)
    }

    /// The exit of a container whose shim died without writing one: nothing supervises what may
    /// still run in its cgroup, so that is killed; the exit is recorded as 255, reason Unknown.
    fn lost(&self, id: &str) -> ExitStatus {
        remove_cgroups(id);
        ExitStatus { pid: 0, code: 255, signal: None, oom_killed: false, exited_at: now() }
    }

    /// Follows a started container until it exits: records the exit, and removes it if asked.
    pub fn watch(&self, id: &str) {
        let client = self.shim(id);
        let exit = shim_wait(&client, None).ok().or_else(|| shim::read_exit_file(client.state_dir()));
        let exit = exit.unwrap_or_else(|| {
            tracing::warn!(id, "lost the shim before the container exited");
            self.lost(id)
        });
        if let Err(e) = self.record_exit(id, &exit) {
            tracing::error!(id, error = %e, "recording an exit");
        }
        if let Ok(record) = self.records.find(id) {
            if record.auto_remove {
                if let Err(e) = self.delete(id, true) {
                    tracing::error!(id, error = %e, "removing an --rm container");
                }
            }
        }
    }
}
