//! skiffd's streaming server: the URLs `Exec`, `Attach` and `PortForward` answer, and what a
//! client's connection to one of them runs.
//!
//! ```text
//!  CRI Exec(req) ──► StreamServer::exec_url(req) ──► tokens: req under a random token
//!                 ◄── http://127.0.0.1:PORT/exec/<token>
//!  client GET|POST /exec/<token>, Upgrade: SPDY/3.1 | websocket
//!        ──► http: the token's request, the subprotocol ──► 101 Switching Protocols
//!        ──► remotecommand / portforward over the upgraded connection
//!        ──► Backend::exec | attach | dial   (the CRI runtime: the container's shim, the pod's netns)
//! ```
//!
//! The server knows nothing of containers: a [`Backend`] runs the process or dials the port, and
//! gets the client's streams as plain tokio readers and writers ([`ProcessIo`]).

mod http;
mod session;
mod tls;
pub mod tokens;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

pub use tokens::{TokenCache, TokenError};

use crate::remotecommand::TermSize;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Where the server listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub address: IpAddr,
    /// 0: a free port the kernel picks.
    pub port: u16,
    /// Serve HTTPS with this PEM certificate chain and key.
    pub tls: Option<TlsFiles>,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("binding the streaming server to {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the streaming server's TLS files: {0}")]
    Tls(String),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A streamed process's side of the client's streams: what the request asked for, nothing else.
pub struct ProcessIo {
    pub stdin: Option<BoxRead>,
    pub stdout: Option<BoxWrite>,
    pub stderr: Option<BoxWrite>,
    /// Terminal sizes, the first one as soon as the client sent it (TTY only).
    pub resize: Option<mpsc::Receiver<TermSize>>,
    /// Fires when the client's connection is gone: what runs for it should end.
    pub gone: Gone,
}

/// Resolves once the connection it was made for ended (its [`Connected`] was dropped).
#[derive(Clone, Debug)]
pub struct Gone(watch::Receiver<()>);

/// Held while a connection lives.
#[derive(Debug)]
pub struct Connected(#[allow(dead_code)] watch::Sender<()>);

impl Gone {
    pub fn pair() -> (Connected, Gone) {
        let (tx, rx) = watch::channel(());
        (Connected(tx), Gone(rx))
    }

    /// Waits until the connection is gone.
    pub async fn wait(&mut self) {
        while self.0.changed().await.is_ok() {}
    }

    pub fn is_gone(&self) -> bool {
        self.0.has_changed().is_err()
    }
}

/// Why a backend could not serve a stream; the message reaches the client's error stream.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// What runs behind the streams: skiffd's CRI runtime.
pub trait Backend: Send + Sync + 'static {
    /// Runs the request's command with `io`; answers its exit code once it exited and its output
    /// was written.
    fn exec(&self, req: cri::ExecRequest, io: ProcessIo) -> BoxFuture<Result<i32, BackendError>>;
    /// Joins the container's stdio until it exits or the client leaves.
    fn attach(&self, req: cri::AttachRequest, io: ProcessIo) -> BoxFuture<Result<(), BackendError>>;
    /// A TCP connection to `port` on the pod's loopback (its network namespace).
    fn dial(&self, pod_sandbox_id: String, port: u16) -> BoxFuture<Result<tokio::net::TcpStream, BackendError>>;
}

/// A request waiting for its connection.
#[derive(Clone, Debug)]
pub(crate) enum Pending {
    Exec(cri::ExecRequest),
    Attach(cri::AttachRequest),
    PortForward(cri::PortForwardRequest),
}

/// The bound server: makes URLs while it serves.
pub struct StreamServer {
    listener: std::net::TcpListener,
    base: String,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    tokens: Arc<TokenCache<Pending>>,
}

impl StreamServer {
    /// Binds the listener (so URLs can be made at once) and loads the TLS files.
    pub fn bind(config: &ServerConfig) -> Result<StreamServer, ServerError> {
        let addr = SocketAddr::new(config.address, config.port);
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        listener.set_nonblocking(true).map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // An IPv6 address needs brackets in a URL; SocketAddr's Display has them.
        let base = format!("{scheme}://{local}");
        Ok(StreamServer { listener, base, tls, tokens: Arc::new(TokenCache::new()) })
    }

    /// `scheme://address:port`, what every URL starts with.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A handle that makes URLs, for the CRI service, while `serve` owns the listener.
    pub fn urls(&self) -> UrlMaker {
        UrlMaker { base: self.base.clone(), tokens: self.tokens.clone() }
    }

    /// Serves connections until `shutdown` resolves; streams under way are left to end.
    pub async fn serve(self, backend: Arc<dyn Backend>, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let acceptor = self.tls.map(tokio_rustls::TlsAcceptor::from);
        let state = Arc::new(http::State { tokens: self.tokens, backend });
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a streaming connection");
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let state = state.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => http::serve_connection(tcp, state).await,
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(tls) => http::serve_connection(tls, state).await,
                        Err(e) => tracing::debug!(%peer, error = %e, "a streaming client failed the TLS handshake"),
                    },
                }
            });
        }
    }
}

/// Makes streaming URLs (cheap to clone).
#[derive(Clone)]
pub struct UrlMaker {
    base: String,
    tokens: Arc<TokenCache<Pending>>,
}

impl UrlMaker {
    pub fn exec(&self, req: cri::ExecRequest) -> Result<String, TokenError> {
        self.url("exec", Pending::Exec(req))
    }

    pub fn attach(&self, req: cri::AttachRequest) -> Result<String, TokenError> {
        self.url("attach", Pending::Attach(req))
    }

    pub fn port_forward(&self, req: cri::PortForwardRequest) -> Result<String, TokenError> {
        self.url("portforward", Pending::PortForward(req))
    }

    fn url(&self, kind: &str, pending: Pending) -> Result<String, TokenError> {
        let token = self.tokens.insert(pending)?;
        Ok(format!("{}/{kind}/{token}", self.base))
    }
}

#[cfg(test)]
mod tests;
