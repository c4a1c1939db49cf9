//! One upgraded connection, served to its end: the request its token named, over the transport
//! the client chose.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Backend, BackendError, Gone, Pending, ProcessIo};
use crate::remotecommand::{self, Outcome, Version, Wanted};
use crate::spdy::Session;
use crate::ws;

/// Runs the exec or attach of `pending` with `io`; its outcome for the error stream.
async fn run(pending: Pending, io: ProcessIo, backend: &Arc<dyn Backend>) -> Outcome {
    let result: Result<Outcome, BackendError> = match pending {
        Pending::Exec(req) => backend.exec(req, io).await.map(Outcome::of_exit),
        Pending::Attach(req) => backend.attach(req, io).await.map(|()| Outcome::Success),
        Pending::PortForward(_) => Err(BackendError("a port-forward token cannot run a command".into())),
    };
    result.unwrap_or_else(|e| Outcome::Failed(e.0))
}

/// The streams an exec's or attach's cached request asked for.
fn wanted(pending: &Pending) -> Wanted {
    match pending {
        Pending::Exec(r) => Wanted { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr && !r.tty, tty: r.tty },
        Pending::Attach(r) => Wanted { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr && !r.tty, tty: r.tty },
        Pending::PortForward(_) => Wanted::default(),
    }
}

pub(super) async fn spdy<IO>(io: IO, pending: Pending, version: Option<Version>, backend: Arc<dyn Backend>)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let session = Arc::new(Session::server(io));
    if let Pending::PortForward(req) = pending {
        return crate::portforward::spdy::serve(session, req, backend).await;
    }
    // The subprotocol was negotiated from the remotecommand list: it has a version.
    let version = version.unwrap_or(Version::V1);
    let Some(streams) = remotecommand::spdy::gather(&session, wanted(&pending), version).await else {
        session.close().await;
        return;
    };
    let (connected, gone) = Gone::pair();
    remotecommand::spdy::watch(session.clone(), connected);
    let (io, error) = remotecommand::spdy::process_io(streams, gone);
    let outcome = run(pending, io, &backend).await;
    remotecommand::spdy::finish(error, version, &outcome).await;
    session.close().await;
}

pub(super) async fn websocket<IO>(io: IO, pending: Pending, accepted: ws::handshake::Accepted, ports: Option<Vec<u16>>, backend: Arc<dyn Backend>)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let protocol = accepted.protocol;
    if let Pending::PortForward(req) = pending {
        return crate::portforward::ws::serve(io, protocol, req, ports.unwrap_or_default(), backend).await;
    }
    let version = Version::of_protocol(protocol.name().unwrap_or_default()).unwrap_or(Version::V1);
    let w = wanted(&pending);
    let streams = match ws::remotecommand::serve(io, protocol, w.into()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "starting a WebSocket exec");
            return;
        }
    };
    remotecommand::ws::serve(streams, version, w, |io| run(pending, io, &backend)).await;
}
