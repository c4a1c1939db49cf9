//! Port-forward's connections: TCP to a port on the pod's loopback. The connect happens on a
//! thread of its own that enters the pod's network namespace and ends right after (setns changes
//! the calling thread only, and no thread of the async runtime may change namespace); the
//! connected socket stays in the pod's namespace and is handed to tokio. A host-network pod's
//! port is dialled on the host.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_streaming::server::BackendError;

use super::exec::failed;
use crate::runtime::CriRuntime;
use crate::sandbox::SandboxState;

/// How long one connect may take (a pod's loopback answers at once or refuses).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `port` on loopback, IPv4 first, then IPv6 (as the kubelet's reference does).
fn connect_loopback(port: u16) -> std::io::Result<TcpStream> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e4) => TcpStream::connect_timeout(&SocketAddr::from((Ipv6Addr::LOCALHOST, port)), CONNECT_TIMEOUT).map_err(|e6| std::io::Error::new(e4.kind(), format!("{e4} (IPv6: {e6})"))),
    }
}

/// `connect_loopback` from inside the network namespace pinned at `netns`.
pub fn connect_in(netns: &Path, port: u16) -> Result<TcpStream, String> {
    let file = std::fs::File::open(netns).map_err(|e| format!("opening the pod's network namespace {}: {e}", netns.display()))?;
    let thread = std::thread::Builder::new()
        .name("skiff-portforward".into())
        .spawn(move || -> Result<TcpStream, String> {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering the pod's network namespace: {e}"))?;
            connect_loopback(port).map_err(|e| format!("connecting to port {port} in the pod: {e}"))
        })
        .map_err(|e| format!("starting a thread to enter the pod's network namespace: {e}"))?;
    thread.join().map_err(|_| "the thread dialling into the pod panicked".to_string())?
}

impl CriRuntime {
    pub(crate) async fn dial(&self, sandbox_id: &str, port: u16) -> Result<tokio::net::TcpStream, BackendError> {
        let sandbox = self.sandboxes.find(sandbox_id).map_err(failed)?.ok_or_else(|| failed(format!("pod sandbox {sandbox_id:?} not found")))?;
        if sandbox.state != SandboxState::Ready {
            return Err(failed(format!("pod sandbox {} is not ready: cannot forward a port to it", sandbox.id)));
        }
        let netns: Option<PathBuf> = if sandbox.modes().host_network { None } else { sandbox.pinned.as_ref().and_then(|p| p.net.clone()) };
        if !sandbox.modes().host_network && netns.is_none() {
            return Err(failed(format!("pod sandbox {} has no network namespace pinned", sandbox.id)));
        }
        let stream = tokio::task::spawn_blocking(move || match netns {
            Some(netns) => connect_in(&netns, port),
            None => connect_loopback(port).map_err(|e| format!("connecting to port {port} on the host (a host-network pod): {e}")),
        })
        .await
        .map_err(|_| failed("dialling into the pod was cut short"))?
        .map_err(BackendError)?;
        stream.set_nonblocking(true).map_err(failed)?;
        tokio::net::TcpStream::from_std(stream).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_another_network_namespace_is_reached_from_inside_it() {
        // A namespace of our own with a listener on its loopback, which the host cannot reach.
        let dir = tempfile::tempdir().expect("tempdir");
        let pin = dir.path().join("net");
        std::fs::write(&pin, b"").expect("pin file");
        let (pin2, (tx, rx)) = (pin.clone(), std::sync::mpsc::channel());
        let server = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            nix::mount::mount(Some("/proc/thread-self/ns/net"), &pin2, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).expect("pin");
            let lo = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
            assert!(lo.is_ok_and(|s| s.success()), "ip link set lo up");
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
            tx.send(listener.local_addr().expect("addr").port()).expect("send");
            let (mut conn, _) = listener.accept().expect("accept");
            std::io::Write::write_all(&mut conn, b"from the pod").expect("write");
        });
        let port = rx.recv().expect("port");
        let mut conn = connect_in(&pin, port).expect("connect inside");
        let mut got = String::new();
        std::io::Read::read_to_string(&mut conn, &mut got).expect("read");
        assert_eq!(got, "from the pod");
        server.join().expect("server");
        let err = connect_in(&pin, port).expect_err("nobody listens any more");
        assert!(err.contains(&format!("port {port}")), "{err}");
        nix::mount::umount2(&pin, nix::mount::MntFlags::MNT_DETACH).expect("unpin");
    }
}
