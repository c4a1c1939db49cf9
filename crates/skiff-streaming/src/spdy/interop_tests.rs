//! Interop with Go's spdystream over a unix socket. Ignored by default: they need the Go side,
//! testdata/spdy/record.go, which CI does not have. Run by hand (see record.go's header):
//!
//! ```text
//! # Rust server, Go client (kubectl exec's part):
//! SKIFF_SPDY_SOCKET=/tmp/spdy.sock cargo test -p skiff-streaming go_client_against_rust_server -- --ignored &
//! sleep 1; go run record.go client /tmp/spdy.sock
//! # Go server, Rust client:
//! go run record.go server /tmp/spdy.sock &
//! sleep 1; SKIFF_SPDY_SOCKET=/tmp/spdy.sock cargo test -p skiff-streaming rust_client_against_go_server -- --ignored
//! ```

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::session_tests::exec_headers;
use super::{Session, Stream};

fn socket() -> String {
    std::env::var("SKIFF_SPDY_SOCKET").unwrap_or_else(|_| "/tmp/skiff-spdy-interop.sock".into())
}

/// Plays the kubelet's part of an exec: stdin echoed to stdout, a line on stderr, a v4 status
/// on the error stream, one stream of its own, then k8s' close (RST_STREAM, GOAWAY).
#[tokio::test]
#[ignore = "needs the Go client of testdata/spdy/record.go"]
async fn go_client_against_rust_server() {
    let path = socket();
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("binds the socket");
    eprintln!("rust server: listening on {path}");
    let (io, _) = listener.accept().await.expect("accepts");
    let session = Session::server(io);
    let mut streams: HashMap<String, Stream> = HashMap::new();
    while streams.len() < 4 {
        let stream = session.accept().await.expect("the client opens error, stdin, stdout, stderr");
        let kind = stream.headers().get("streamtype").expect("streamtype header").to_owned();
        eprintln!("rust server: accepted stream {} ({kind})", stream.id());
        streams.insert(kind, stream);
    }
    let take = |streams: &mut HashMap<String, Stream>, kind: &str| streams.remove(kind).expect("stream present");
    let (mut stdin, _stdin_writer) = take(&mut streams, "stdin").into_split();
    let mut stdout = take(&mut streams, "stdout");
    let copied = tokio::io::copy(&mut stdin, &mut stdout).await.expect("copies stdin to stdout");
    stdout.shutdown().await.expect("half-closes stdout");
    eprintln!("rust server: echoed {copied} bytes");
    let mut stderr = take(&mut streams, "stderr");
    stderr.write_all(b"stderr line\n").await.expect("writes stderr");
    stderr.shutdown().await.expect("half-closes stderr");
    let mut error = take(&mut streams, "error");
    error.write_all(br#"{"status":"Success"}"#).await.expect("writes the status");
    error.shutdown().await.expect("half-closes error");
    let mut pushed = session.open(exec_headers("push")).await.expect("the client accepts a server stream");
    pushed.write_all(b"pushed by rust").await.expect("writes");
    pushed.shutdown().await.expect("half-closes");
    eprintln!("rust server: ping {:?}", session.ping().await.expect("the client answers pings"));
    session.close().await;
    assert!(session.error().is_none(), "{:?}", session.error());
    eprintln!("rust server: closed cleanly");
}

/// Opens streams against the Go server, which echoes each; checks the echoes, pings, closes.
#[tokio::test]
#[ignore = "needs the Go server of testdata/spdy/record.go"]
async fn rust_client_against_go_server() {
    let io = UnixStream::connect(socket()).await.expect("connects to the Go server");
    let session = Session::client(io);
    let mut tasks = Vec::new();
    for (i, size) in [1usize, 70_000, 5 << 20].into_iter().enumerate() {
        let stream = session.open(exec_headers(&format!("echo-{i}"))).await.expect("the Go server replies");
        tasks.push(tokio::spawn(async move {
            let input: Vec<u8> = (0..size).map(|n| (n * 31 + i) as u8).collect();
            let (mut rd, mut wr) = stream.into_split();
            let sent = input.clone();
            let writer = tokio::spawn(async move {
                wr.write_all(&sent).await.expect("writes");
                wr.shutdown().await.expect("half-closes");
            });
            let mut echoed = Vec::new();
            rd.read_to_end(&mut echoed).await.expect("reads the echo");
            writer.await.expect("writer");
            assert!(echoed == input, "stream {i}: {} bytes back of {size}", echoed.len());
            eprintln!("rust client: stream {i} echoed {size} bytes");
        }));
    }
    for task in tasks {
        task.await.expect("stream task");
    }
    eprintln!("rust client: ping {:?}", session.ping().await.expect("the Go server answers pings"));
    session.close().await;
    assert!(session.error().is_none(), "{:?}", session.error());
    eprintln!("rust client: closed cleanly");
}
