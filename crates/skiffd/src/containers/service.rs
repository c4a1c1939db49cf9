//! The `skiff.v1.Containers` gRPC service: decodes requests, runs the engine's manager on the
//! blocking pool, encodes the answers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::v1;
use skiff_runtime::shim::Stdio;
use skiff_runtime::spec::{MountRequest, Resources, RunRequest};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use skiff_engine::containers::{logs, parse_signal};
use skiff_engine::{ContainerRecord, CreateSpec, ExecSpec, Manager};

use super::fifos::{Claim, Owner, StdioFifos, Wanted};
use crate::blocking::blocking;
use crate::status::{json_bytes, ApiError};
use crate::validate;

#[derive(Clone)]
pub struct ContainersService {
    pub manager: Arc<Manager>,
    pub fifos: Arc<StdioFifos>,
    /// Turns true when skiffd shuts down: followed logs end then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// A terminal dimension from the wire (u32) as the kernel takes it.
fn cells(n: u32) -> u16 {
    n.min(u16::MAX as u32) as u16
}

/// The request's stdio: a claimed set of skiffd's FIFOs (held until the shim opened them) and the
/// terminal settings.
fn stdio(fifos: &StdioFifos, paths: Option<v1::StdioPaths>) -> Result<(Stdio, Claim), ApiError> {
    let p = paths.unwrap_or_default();
    let claim = fifos.claim(&p)?;
    let stdio = Stdio {
        stdin: claim.stdin.clone(),
        stdout: claim.stdout.clone(),
        stderr: claim.stderr.clone(),
        tty: p.tty,
        size: (p.rows > 0 && p.columns > 0).then(|| (cells(p.rows), cells(p.columns))),
    };
    Ok((stdio, claim))
}

/// The caller's uid and gid, from the unix socket's peer credentials.
fn caller<T>(req: &Request<T>) -> Owner {
    req.extensions()
        .get::<tonic::transport::server::UdsConnectInfo>()
        .and_then(|info| info.peer_cred)
        .map(|cred| Owner { uid: cred.uid(), gid: cred.gid() })
        .unwrap_or_default()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn mount(m: v1::BindMount) -> Result<MountRequest, ApiError> {
    validate::text("mount source", &m.source)?;
    validate::text("mount destination", &m.destination)?;
    if !m.source.starts_with('/') || !m.destination.starts_with('/') {
        return Err(ApiError::BadRequest(format!("mount {}:{}: source and destination must be absolute paths", m.source, m.destination)));
    }
    if !std::path::Path::new(&m.source).exists() {
        return Err(ApiError::BadRequest(format!("mount source {} does not exist", m.source)));
    }
    Ok(MountRequest { source: m.source, destination: m.destination, readonly: m.readonly, ..Default::default() })
}

fn create_spec(req: v1::CreateContainerRequest, stdio: Stdio) -> Result<CreateSpec, ApiError> {
    if req.image.is_empty() {
        return Err(ApiError::BadRequest("an image is required".into()));
    }
    for (field, value) in [
        ("image", &req.image),
        ("name", &req.name),
        ("runtime", &req.runtime),
        ("user", &req.user),
        ("workdir", &req.workdir),
        ("hostname", &req.hostname),
        ("network", &req.network),
        ("platform", &req.platform),
    ] {
        validate::text(field, value)?;
    }
    validate::texts("argument", &req.args)?;
    validate::texts("entrypoint", &req.entrypoint)?;
    validate::texts("environment entry", &req.env)?;
    validate::pairs("annotation", &req.annotations)?;
    validate::pairs("label", &req.labels)?;
    let host_network = match req.network.as_str() {
        "" | "none" => false,
        "host" => true,
        other => return Err(ApiError::BadRequest(format!("network {other:?} must be none or host"))),
    };
    if req.memory_limit < 0 {
        return Err(ApiError::BadRequest("memory limit must be positive".into()));
    }
    if req.stdin_once && !req.open_stdin {
        return Err(ApiError::BadRequest("stdin_once needs open_stdin: only an open stdin can be closed after its first client".into()));
    }
    let run = RunRequest {
        args: req.args,
        entrypoint: req.has_entrypoint.then_some(req.entrypoint),
        env: req.env,
        user: non_empty(req.user),
        workdir: non_empty(req.workdir),
        hostname: non_empty(req.hostname),
        tty: stdio.tty,
        mounts: req.mounts.into_iter().map(mount).collect::<Result<_, _>>()?,
        annotations: req.annotations.into_iter().collect(),
        resources: Resources { memory_limit: (req.memory_limit > 0).then_some(req.memory_limit), ..Default::default() },
        readonly_rootfs: req.readonly_rootfs,
        ..Default::default()
    };
    Ok(CreateSpec {
        image: req.image,
        platform: req.platform,
        name: req.name,
        run,
        runtime: req.runtime,
        stdio,
        labels: req.labels.into_iter().collect::<BTreeMap<_, _>>(),
        auto_remove: req.auto_remove,
        host_network,
        stdin: req.open_stdin,
        stdin_once: req.stdin_once,
        ..Default::default()
    })
}

pub fn container(r: &ContainerRecord) -> v1::Container {
    let (exit_code, reason, finished_at) = r.exit_summary();
    v1::Container {
        id: r.id.clone(),
        name: r.name.clone(),
        image: r.image.clone(),
        runtime: r.runtime.clone(),
        status: r.status.as_str().into(),
        pid: r.pid,
        exit_code,
        reason,
        created_at: r.created_at.clone(),
        started_at: r.started_at.clone(),
        finished_at,
        command: r.command.clone(),
        labels: r.labels.clone().into_iter().collect(),
        pod: r.owner.as_ref().map(|o| o.pod.clone()).unwrap_or_default(),
        pod_sandbox_id: r.owner.as_ref().map(|o| o.sandbox_id.clone()).unwrap_or_default(),
    }
}

type LogStream = Pin<Box<dyn Stream<Item = Result<v1::ContainerLogChunk, Status>> + Send>>;

#[tonic::async_trait]
impl v1::containers_server::Containers for ContainersService {
    async fn create(&self, req: Request<v1::CreateContainerRequest>) -> Result<Response<v1::CreateContainerResponse>, Status> {
        let mut req = req.into_inner();
        let (stdio, claim) = stdio(&self.fifos, req.stdio.take())?;
        let spec = create_spec(req, stdio).map_err(Status::from)?;
        let manager = self.manager.clone();
        let record = match blocking(move || Ok(manager.create(spec)?)).await {
            Ok(record) => record,
            Err(e) => {
                self.fifos.give_back(claim);
                return Err(e);
            }
        };
        // The shim opens them at the start.
        self.fifos.hold(&record.id, claim);
        Ok(Response::new(v1::CreateContainerResponse { container: Some(container(&record)) }))
    }

    async fn start(&self, req: Request<v1::StartContainerRequest>) -> Result<Response<v1::StartContainerResponse>, Status> {
        let manager = self.manager.clone();
        let fifos = self.fifos.clone();
        blocking(move || {
            let id = manager.records().find(&req.into_inner().id)?.id;
            let started = manager.start(&id);
            fifos.release(&id);
            Ok(started?)
        })
        .await?;
        Ok(Response::new(v1::StartContainerResponse {}))
    }

    async fn wait(&self, req: Request<v1::WaitContainerRequest>) -> Result<Response<v1::WaitContainerResponse>, Status> {
        let req = req.into_inner();
        let manager = self.manager.clone();
        let exit = blocking(move || Ok(manager.wait(&req.id, non_empty(req.exec_id).as_deref())?)).await?;
        let reason = exit.reason().as_str().into();
        Ok(Response::new(v1::WaitContainerResponse { exit_code: exit.code, reason, finished_at: exit.exited_at }))
    }

    async fn kill(&self, req: Request<v1::KillContainerRequest>) -> Result<Response<v1::KillContainerResponse>, Status> {
        let req = req.into_inner();
        let signal = parse_signal(&req.signal).map_err(ApiError::from)?;
        let manager = self.manager.clone();
        blocking(move || Ok(manager.kill(&req.id, signal, req.all)?)).await?;
        Ok(Response::new(v1::KillContainerResponse {}))
    }

    async fn stop(&self, req: Request<v1::StopContainerRequest>) -> Result<Response<v1::StopContainerResponse>, Status> {
        let req = req.into_inner();
        let manager = self.manager.clone();
        let timeout = if req.timeout < 0 { manager.stop_timeout() } else { Duration::from_secs(req.timeout as u64) };
        blocking(move || Ok(manager.stop(&req.id, timeout)?)).await?;
        Ok(Response::new(v1::StopContainerResponse {}))
    }

    async fn delete(&self, req: Request<v1::DeleteContainerRequest>) -> Result<Response<v1::DeleteContainerResponse>, Status> {
        let req = req.into_inner();
        let manager = self.manager.clone();
        let fifos = self.fifos.clone();
        blocking(move || {
            let record = manager.records().find(&req.id)?;
            if let Some(owner) = &record.owner {
                // The kubelet owns it: removed behind its back, the pod would be remade in a loop.
                return Err(ApiError::Owned(format!(
                    "container {} belongs to pod {} (sandbox {}): remove it through the CRI (RemoveContainer or RemovePodSandbox)",
                    record.name, owner.pod, owner.sandbox_id
                )));
            }
            let deleted = manager.delete(&record.id, req.force)?;
            fifos.release(&record.id);
            Ok(deleted)
        })
        .await?;
        Ok(Response::new(v1::DeleteContainerResponse {}))
    }

    async fn list(&self, req: Request<v1::ListContainersRequest>) -> Result<Response<v1::ListContainersResponse>, Status> {
        let all = req.into_inner().all;
        let manager = self.manager.clone();
        let records = blocking(move || Ok(manager.records().list()?)).await?;
        let containers = records
            .iter()
            .filter(|r| all || r.status == skiff_engine::Status::Running)
            .map(container)
            .collect();
        Ok(Response::new(v1::ListContainersResponse { containers }))
    }

    async fn inspect(&self, req: Request<v1::InspectContainerRequest>) -> Result<Response<v1::InspectContainerResponse>, Status> {
        let id = req.into_inner().id;
        let manager = self.manager.clone();
        let json = blocking(move || {
            let record = manager.records().find(&id)?;
            let spec = manager.spec(&record.id).unwrap_or(serde_json::Value::Null);
            let (exit_code, reason, finished_at) = record.exit_summary();
            let (annotations, dropped) = crate::convert::annotation_docs(&record.annotations);
            let doc = serde_json::json!({
                "Id": record.id,
                "Name": record.name,
                "Image": record.image,
                "ImageDigest": record.image_digest,
                "Runtime": record.runtime,
                "Status": record.status.as_str(),
                "Pid": record.pid,
                "ExitCode": exit_code,
                "Reason": reason,
                "CreatedAt": record.created_at,
                "StartedAt": record.started_at,
                "FinishedAt": finished_at,
                "Command": record.command,
                "Labels": record.labels,
                "LogPath": record.log_path,
                "OpenStdin": record.open_stdin,
                "StdinOnce": record.stdin_once,
                "Snapshot": record.snapshot_key,
                "Annotations": annotations,
                "DroppedAnnotations": dropped,
                "Spec": spec,
            });
            json_bytes("the container document", &doc)
        })
        .await?;
        Ok(Response::new(v1::InspectContainerResponse { json }))
    }

    async fn exec(&self, req: Request<v1::ExecContainerRequest>) -> Result<Response<v1::ExecContainerResponse>, Status> {
        let req = req.into_inner();
        validate::texts("argument", &req.args)?;
        validate::texts("environment entry", &req.env)?;
        validate::text("user", &req.user)?;
        validate::text("workdir", &req.workdir)?;
        let (stdio, claim) = stdio(&self.fifos, req.stdio)?;
        let spec = ExecSpec { args: req.args, env: req.env, user: non_empty(req.user), workdir: non_empty(req.workdir), stdio };
        let manager = self.manager.clone();
        let (exec_id, pid) = match blocking(move || Ok(manager.exec(&req.id, spec)?)).await {
            Ok(answer) => answer,
            Err(e) => {
                self.fifos.give_back(claim);
                return Err(e);
            }
        };
        drop(claim);
        Ok(Response::new(v1::ExecContainerResponse { exec_id, pid }))
    }

    async fn resize(&self, req: Request<v1::ResizeContainerRequest>) -> Result<Response<v1::ResizeContainerResponse>, Status> {
        let req = req.into_inner();
        let manager = self.manager.clone();
        let (rows, columns) = (cells(req.rows), cells(req.columns));
        blocking(move || Ok(manager.resize(&req.id, non_empty(req.exec_id).as_deref(), rows, columns)?)).await?;
        Ok(Response::new(v1::ResizeContainerResponse {}))
    }

    async fn attach(&self, req: Request<v1::AttachContainerRequest>) -> Result<Response<v1::AttachContainerResponse>, Status> {
        let req = req.into_inner();
        let (stdio, claim) = stdio(&self.fifos, req.stdio)?;
        let manager = self.manager.clone();
        if let Err(e) = blocking(move || Ok(manager.attach(&req.id, stdio)?)).await {
            self.fifos.give_back(claim);
            return Err(e);
        }
        // The shim holds its ends now: the set's names can go.
        drop(claim);
        Ok(Response::new(v1::AttachContainerResponse {}))
    }

    async fn prepare_stdio(&self, req: Request<v1::PrepareStdioRequest>) -> Result<Response<v1::StdioPaths>, Status> {
        let owner = caller(&req);
        let req = req.into_inner();
        let wanted = Wanted { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr };
        let fifos = self.fifos.clone();
        Ok(Response::new(fifos.prepare(owner, wanted)?))
    }

    type LogsStream = LogStream;

    async fn logs(&self, req: Request<v1::ContainerLogsRequest>) -> Result<Response<Self::LogsStream>, Status> {
        let req = req.into_inner();
        let manager = self.manager.clone();
        let id = req.id.clone();
        let record = blocking(move || Ok(manager.records().find(&id)?)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let manager = self.manager.clone();
        let stopping = self.stopping.clone();
        tokio::task::spawn_blocking(move || {
            let path = PathBuf::from(&record.log_path);
            let mut offset = 0;
            let mut first = true;
            loop {
                // Looked at before reading: once the container had exited, this read holds the
                // rest of what it wrote, and following ends after sending it.
                let last = !req.follow || !manager.records().get(&record.id).ok().flatten().is_some_and(|r| r.status.is_live());
                let (mut entries, next) = match logs::read_from(&path, offset) {
                    Ok(r) => r,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), offset),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(format!("reading {}: {e}", path.display()))));
                        return;
                    }
                };
                if first && req.tail > 0 {
                    entries = logs::tail(entries, req.tail as usize);
                }
                first = false;
                offset = next;
                for e in entries {
                    if tx.blocking_send(Ok(v1::ContainerLogChunk { stream: e.stream, data: e.data })).is_err() {
                        return;
                    }
                }
                // Ended cleanly when skiffd shuts down: the follower sees the end of the stream.
                if last || tx.is_closed() || *stopping.borrow() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
