//! The streaming RPCs: `Exec`, `Attach` and `PortForward` check their request and answer a URL
//! on skiffd's streaming server (`skiff_streaming::server`); the connection to that URL is served
//! by [`StreamingBackend`], which runs the exec (`exec.rs`), joins the container's stdio
//! (`attach.rs`) or dials into the pod (`dial.rs`).

mod attach;
mod dial;
mod exec;
mod pump;

use k8s_cri::v1 as cri;
use skiff_streaming::server::{Backend, BackendError, BoxFuture, ProcessIo, UrlMaker};

use crate::error::{text, CriError, Result};
use crate::runtime::CriRuntime;

/// What the streaming server runs its connections with: the CRI runtime.
pub struct StreamingBackend(pub CriRuntime);

impl Backend for StreamingBackend {
    fn exec(&self, req: cri::ExecRequest, io: ProcessIo) -> BoxFuture<Result<i32, BackendError>> {
        let runtime = self.0.clone();
        Box::pin(async move { runtime.stream_exec(req, io).await })
    }

    fn attach(&self, req: cri::AttachRequest, io: ProcessIo) -> BoxFuture<Result<(), BackendError>> {
        let runtime = self.0.clone();
        Box::pin(async move { runtime.stream_attach(req, io).await })
    }

    fn dial(&self, pod_sandbox_id: String, port: u16) -> BoxFuture<Result<tokio::net::TcpStream, BackendError>> {
        let runtime = self.0.clone();
        Box::pin(async move { runtime.dial(&pod_sandbox_id, port).await })
    }
}

/// The reference server's rules for the streams of an exec or attach.
fn check_streams(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> Result<()> {
    if tty && stderr {
        return Err(CriError::InvalidArgument("tty and stderr cannot both be true: a terminal carries stderr on stdout".into()));
    }
    if !stdin && !stdout && !stderr {
        return Err(CriError::InvalidArgument("one of stdin, stdout and stderr must be true: a stream with none carries nothing".into()));
    }
    Ok(())
}

impl CriRuntime {
    fn urls(&self) -> Result<&UrlMaker> {
        self.parts.streams.as_ref().ok_or_else(|| CriError::FailedPrecondition("this skiffd runs without a streaming server: Exec, Attach and PortForward need one ([cri] stream_address)".into()))
    }

    /// The container `id` names, which must be running; its full id.
    pub(crate) fn running(&self, id: &str, what: &str) -> Result<String> {
        let c = self.containers.find(id)?.ok_or_else(|| CriError::NotFound(format!("container {id:?} not found")))?;
        let record = self.parts.manager.records().get(&c.id)?.ok_or_else(|| CriError::NotFound(format!("container {id:?} not found")))?;
        if record.status != skiff_engine::Status::Running {
            return Err(CriError::FailedPrecondition(format!("container {} is {}, not running: {what} needs a running container", c.id, record.status.as_str())));
        }
        Ok(c.id)
    }

    pub async fn exec(&self, mut req: cri::ExecRequest) -> Result<cri::ExecResponse> {
        if req.cmd.is_empty() {
            return Err(CriError::InvalidArgument("cmd is empty: name the command to run".into()));
        }
        for arg in &req.cmd {
            text("cmd", arg)?;
        }
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        req.container_id = self.running(&req.container_id, "Exec")?;
        Ok(cri::ExecResponse { url: self.urls()?.exec(req)? })
    }

    pub async fn attach(&self, mut req: cri::AttachRequest) -> Result<cri::AttachResponse> {
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        req.container_id = self.running(&req.container_id, "Attach")?;
        Ok(cri::AttachResponse { url: self.urls()?.attach(req)? })
    }

    pub async fn port_forward(&self, mut req: cri::PortForwardRequest) -> Result<cri::PortForwardResponse> {
        let sandbox = self.sandboxes.find(&req.pod_sandbox_id)?.ok_or_else(|| CriError::NotFound(format!("pod sandbox {:?} not found", req.pod_sandbox_id)))?;
        if sandbox.state != crate::sandbox::SandboxState::Ready {
            return Err(CriError::FailedPrecondition(format!("pod sandbox {} is not ready: PortForward needs a ready pod", sandbox.id)));
        }
        if let Some(bad) = req.port.iter().find(|p| !(1..=65535).contains(*p)) {
            return Err(CriError::InvalidArgument(format!("port {bad} is not a TCP port (1 to 65535)")));
        }
        req.pod_sandbox_id = sandbox.id;
        Ok(cri::PortForwardResponse { url: self.urls()?.port_forward(req)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_servers_stream_rules() {
        assert!(check_streams(true, true, true, false).is_ok());
        assert!(check_streams(false, false, true, true).is_ok());
        let both = check_streams(true, false, true, true).expect_err("tty with stderr");
        assert!(both.to_string().contains("tty and stderr"), "{both}");
        assert!(check_streams(false, false, false, false).is_err());
    }
}
