//! The server end to end over loopback, with a backend of the tests' own (a process is a task
//! that echoes stdin and reports a code; a pod's port is a listener on the host's loopback).

use std::sync::Arc;
use std::time::Duration;

use k8s_cri::v1 as cri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::spdy::{Headers, Session};

/// Echoes stdin to stdout uppercased, writes "err" on stderr, exits with the length of the
/// command's first word; the size it got first goes on stdout too.
struct Echo;

impl Backend for Echo {
    fn exec(&self, req: cri::ExecRequest, mut io: ProcessIo) -> BoxFuture<Result<i32, BackendError>> {
        Box::pin(async move {
            if req.cmd[0] == "missing" {
                return Err(BackendError("executable file not found".into()));
            }
            let mut input = Vec::new();
            if let Some(mut stdin) = io.stdin.take() {
                stdin.read_to_end(&mut input).await.map_err(|e| BackendError(e.to_string()))?;
            }
            if let Some(mut sizes) = io.resize.take() {
                if let Some(size) = sizes.recv().await {
                    input.extend_from_slice(format!("{}x{}", size.width, size.height).as_bytes());
                }
            }
            if let Some(mut out) = io.stdout.take() {
                out.write_all(&input.to_ascii_uppercase()).await.map_err(|e| BackendError(e.to_string()))?;
                out.shutdown().await.map_err(|e| BackendError(e.to_string()))?;
            }
            if let Some(mut err) = io.stderr.take() {
                err.write_all(b"err").await.map_err(|e| BackendError(e.to_string()))?;
                err.shutdown().await.map_err(|e| BackendError(e.to_string()))?;
            }
            Ok(req.cmd[0].len() as i32 - 4)
        })
    }

    fn attach(&self, _req: cri::AttachRequest, _io: ProcessIo) -> BoxFuture<Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    fn dial(&self, _pod: String, port: u16) -> BoxFuture<Result<TcpStream, BackendError>> {
        Box::pin(async move { TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| BackendError(e.to_string())) })
    }
}

async fn serving() -> UrlMaker {
    let server = StreamServer::bind(&ServerConfig { address: "127.0.0.1".parse().expect("ip"), port: 0, tls: None }).expect("bind");
    let urls = server.urls();
    tokio::spawn(server.serve(Arc::new(Echo), std::future::pending()));
    urls
}

/// Sends the upgrade request; the status code and the connection.
async fn upgrade(url: &str, headers: &[(&str, &str)]) -> (u16, TcpStream) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest.split_once('/').expect("path");
    let mut tcp = TcpStream::connect(authority).await.expect("connect");
    let mut request = format!("POST /{path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.expect("head"));
    }
    let status = String::from_utf8_lossy(&head).split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, tcp)
}

const SPDY: [(&str, &str); 3] = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v4.channel.k8s.io")];

fn exec_req(cmd: &str, stdin: bool, tty: bool) -> cri::ExecRequest {
    cri::ExecRequest { container_id: "c".into(), cmd: vec![cmd.into()], tty, stdin, stdout: true, stderr: !tty }
}

async fn open(session: &Session, kind: &str) -> crate::spdy::Stream {
    session.open([("streamtype", kind)].into_iter().collect::<Headers>()).await.expect("open")
}

async fn read_all(stream: crate::spdy::Stream) -> String {
    let mut text = String::new();
    let (mut reader, _writer) = stream.into_split();
    reader.read_to_string(&mut text).await.expect("read");
    text
}

#[tokio::test]
async fn an_exec_over_spdy_gets_its_streams_and_its_exit_code() {
    let urls = serving().await;
    let url = urls.exec(exec_req("exit-three", true, false)).expect("url");
    let (status, tcp) = upgrade(&url, &SPDY).await;
    assert_eq!(status, 101);
    let session = Session::client(tcp);
    let error = open(&session, "error").await;
    let mut stdin = open(&session, "stdin").await;
    let (stdout, stderr) = (open(&session, "stdout").await, open(&session, "stderr").await);
    stdin.write_all(b"hello").await.expect("stdin");
    stdin.shutdown().await.expect("fin");
    assert_eq!(read_all(stdout).await, "HELLO");
    assert_eq!(read_all(stderr).await, "err");
    let status: serde_json::Value = serde_json::from_str(&read_all(error).await).expect("status");
    assert_eq!(crate::remotecommand::status::exit_code_of(&status), Some(6), "{status}");
    session.close().await;

    // The token served once.
    let (status, _) = upgrade(&url, &SPDY).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_tty_exec_gets_the_clients_size_and_failures_reach_the_error_stream() {
    let urls = serving().await;
    let (status, tcp) = upgrade(&urls.exec(exec_req("true", false, true)).expect("url"), &SPDY).await;
    assert_eq!(status, 101);
    let session = Session::client(tcp);
    let (error, stdout, mut resize) = (open(&session, "error").await, open(&session, "stdout").await, open(&session, "resize").await);
    resize.write_all(br#"{"Width":80,"Height":24}"#).await.expect("resize");
    assert_eq!(read_all(stdout).await, "80X24");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&read_all(error).await).expect("status")["status"], "Success");
    session.close().await;

    let (_, tcp) = upgrade(&urls.exec(exec_req("missing", false, false)).expect("url"), &SPDY).await;
    let session = Session::client(tcp);
    let (error, _out, _err) = (open(&session, "error").await, open(&session, "stdout").await, open(&session, "stderr").await);
    let status: serde_json::Value = serde_json::from_str(&read_all(error).await).expect("status");
    assert_eq!(status["message"], "executable file not found", "{status}");
    session.close().await;
}

#[tokio::test]
async fn upgrades_the_server_cannot_serve_are_refused_with_their_reason() {
    let urls = serving().await;
    let url = urls.exec(exec_req("true", false, false)).expect("url");
    assert_eq!(upgrade(&url, &[("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]).await.0, 400, "no protocol offered");
    let url = urls.exec(exec_req("true", false, false)).expect("url");
    assert_eq!(upgrade(&url, &[SPDY[0], SPDY[1], ("X-Stream-Protocol-Version", "v9.channel.k8s.io")]).await.0, 403);
    let url = urls.exec(exec_req("true", false, false)).expect("url");
    assert_eq!(upgrade(&url, &[]).await.0, 400, "no upgrade at all");
    let url = urls.attach(cri::AttachRequest { container_id: "c".into(), stdout: true, ..Default::default() }).expect("url");
    assert_eq!(upgrade(&url.replace("/attach/", "/exec/"), &SPDY).await.0, 404, "a token of another kind");
    let base = url.rsplit_once("/attach/").map(|(b, _)| b.to_string()).expect("base");
    assert_eq!(upgrade(&format!("{base}/logs/x"), &SPDY).await.0, 404);
}

#[tokio::test]
async fn a_spdy_port_forward_pairs_its_streams_and_copies_both_ways() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut asked = Vec::new();
        conn.read_to_end(&mut asked).await.expect("read");
        conn.write_all(&[b"answer to ".as_slice(), &asked].concat()).await.expect("write");
    });
    let urls = serving().await;
    let url = urls.port_forward(cri::PortForwardRequest { pod_sandbox_id: "p".into(), port: vec![] }).expect("url");
    let (status, tcp) = upgrade(&url, &[SPDY[0], SPDY[1], ("X-Stream-Protocol-Version", "portforward.k8s.io")]).await;
    assert_eq!(status, 101);
    let session = Session::client(tcp);
    let headers = |kind: &str, port: u16| -> Headers { [("streamtype", kind.to_string()), ("port", port.to_string()), ("requestid", "0".to_string())].into_iter().collect() };
    let error = session.open(headers("error", port)).await.expect("error stream");
    let mut data = session.open(headers("data", port)).await.expect("data stream");
    data.write_all(b"a question").await.expect("write");
    data.shutdown().await.expect("half-close");
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), read_all(data)).await.expect("in time"), "answer to a question");
    assert_eq!(read_all(error).await, "");

    // A port nobody listens on: the error stream says so.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr").port();
    let headers = |kind: &str| -> Headers { [("streamtype", kind.to_string()), ("port", closed.to_string()), ("requestid", "1".to_string())].into_iter().collect() };
    let error = session.open(headers("error")).await.expect("error stream");
    let _data = session.open(headers("data")).await.expect("data stream");
    let text = read_all(error).await;
    assert!(text.contains(&format!("forwarding {closed} -> {closed}")), "{text}");
    session.close().await;
}
