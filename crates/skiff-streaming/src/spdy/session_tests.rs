//! Two sessions over an in-memory duplex: streams, data, half-close, back-pressure, ping,
//! GOAWAY, reset, drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{DATA_CHUNK, Headers, RECV_BUFFER, Session, SessionError};

pub(super) const WAIT: Duration = Duration::from_secs(10);

pub(super) fn pair() -> (Session, Session) {
    let (a, b) = tokio::io::duplex(64 << 10);
    (Session::client(a), Session::server(b))
}

pub(super) fn exec_headers(stream_type: &str) -> Headers {
    [("streamType", stream_type)].into_iter().collect()
}

/// Waits until the runtime runs no task but the test's own: a session's tasks are gone.
pub(super) async fn tasks_gone() {
    within("tasks end", async {
        while tokio::runtime::Handle::current().metrics().num_alive_tasks() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test]
async fn client_opens_five_streams_and_the_server_accepts_them_in_order() {
    let (client, server) = pair();
    let kinds = ["error", "stdin", "stdout", "stderr", "resize"];
    let mut opened = Vec::new();
    for kind in kinds {
        opened.push(within("open", client.open(exec_headers(kind))).await.expect("opens"));
    }
    assert_eq!(opened.iter().map(|s| s.id()).collect::<Vec<_>>(), [1, 3, 5, 7, 9]);
    assert!(opened.iter().all(|s| s.reply_headers() == Some(&Headers::new())), "k8s replies with empty headers");
    for (i, kind) in kinds.iter().enumerate() {
        let stream = within("accept", server.accept()).await.expect("a stream");
        assert_eq!(stream.id(), 1 + 2 * i as u32);
        assert_eq!(stream.headers().get("streamtype"), Some(*kind));
        assert_eq!(stream.reply_headers(), None);
    }
}

#[tokio::test]
async fn concurrent_opens_reach_the_wire_with_growing_ids() {
    let (client, server) = pair();
    let opens: Vec<_> = (0..20).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.open([("n", i.to_string())].into_iter().collect()).await })
    }).collect();
    let mut ids = Vec::new();
    for open in opens {
        ids.push(within("open", open).await.expect("joins").expect("opens").id());
    }
    let mut accepted = Vec::new();
    for _ in 0..20 {
        accepted.push(within("accept", server.accept()).await.expect("a stream").id());
    }
    // The server would have refused any id smaller than one before it.
    assert!(accepted.windows(2).all(|w| w[0] < w[1]), "{accepted:?}");
    ids.sort_unstable();
    assert_eq!(ids, accepted);
}

#[tokio::test]
async fn data_flows_both_ways_with_half_close() {
    let (client, server) = pair();
    let mut stdin = within("open", client.open(exec_headers("stdin"))).await.expect("opens");
    let mut theirs = within("accept", server.accept()).await.expect("a stream");
    stdin.write_all(b"hello ").await.expect("writes");
    stdin.write_all(b"server").await.expect("writes");
    stdin.shutdown().await.expect("half-closes");
    let err = stdin.write_all(b"more").await.expect_err("writes after shutdown fail");
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    let mut got = String::new();
    within("read to FIN", theirs.read_to_string(&mut got)).await.expect("reads");
    assert_eq!(got, "hello server");
    // The other direction is still open after the client's FIN.
    theirs.write_all(b"hello client").await.expect("writes back");
    theirs.shutdown().await.expect("half-closes");
    let mut back = String::new();
    within("read to FIN", stdin.read_to_string(&mut back)).await.expect("reads");
    assert_eq!(back, "hello client");
}

#[tokio::test]
async fn split_halves_work_from_separate_tasks() {
    let (client, server) = pair();
    tokio::spawn(async move {
        while let Some(stream) = server.accept().await {
            let (mut rd, mut wr) = stream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = wr.shutdown().await;
            });
        }
    });
    // The server splits with into_split, the client with tokio::io::split: both must work.
    let (mut rd, mut wr) = tokio::io::split(within("open", client.open(exec_headers("data"))).await.expect("opens"));
    let input: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sent = input.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await.expect("writes");
        wr.shutdown().await.expect("half-closes");
    });
    let mut echoed = Vec::new();
    within("echo", rd.read_to_end(&mut echoed)).await.expect("reads");
    writer.await.expect("writer task");
    assert_eq!(echoed.len(), input.len());
    assert!(echoed == input, "echo differs");
}

/// The 100 MiB go through one stream while the reader starts late and reads in small pieces:
/// the writer must stall instead of queueing, and the receive buffer never passes its cap by
/// more than one frame.
#[tokio::test]
async fn a_hundred_mib_pass_through_one_stream_with_bounded_buffering() {
    const TOTAL: usize = 100 << 20;
    let (client, server) = pair();
    let mut stream = within("open", client.open(exec_headers("stdin"))).await.expect("opens");
    let written = Arc::new(AtomicUsize::new(0));
    let progress = written.clone();
    let writer = tokio::spawn(async move {
        let mut chunk = vec![0u8; 1 << 20];
        let mut hash = Fnv::default();
        for block in 0..TOTAL / chunk.len() {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = ((block * 7 + i * 13) % 256) as u8;
            }
            hash.update(&chunk);
            stream.write_all(&chunk).await.expect("writes");
            progress.fetch_add(chunk.len(), Ordering::SeqCst);
        }
        stream.shutdown().await.expect("half-closes");
        hash.0
    });
    let mut theirs = within("accept", server.accept()).await.expect("a stream");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stalled_at = written.load(Ordering::SeqCst);
    assert!(stalled_at <= 4 << 20, "the writer ran {stalled_at} bytes ahead of a reader that reads nothing");
    let mut hash = Fnv::default();
    let mut buf = vec![0u8; 16 << 10];
    let mut total = 0;
    loop {
        let n = within("read", theirs.read(&mut buf)).await.expect("reads");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        total += n;
    }
    assert_eq!(total, TOTAL);
    assert_eq!(hash.0, within("writer", writer).await.expect("writer task"));
    let peak = peak_of(&theirs);
    assert!(peak <= RECV_BUFFER + DATA_CHUNK, "buffered {peak} bytes, cap {RECV_BUFFER}");
}

fn peak_of(stream: &super::Stream) -> usize {
    stream.shared().state().peak_buffered
}

#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[tokio::test]
async fn pings_are_answered_both_ways() {
    let (client, server) = pair();
    within("client ping", client.ping()).await.expect("the server echoes");
    within("server ping", server.ping()).await.expect("the client echoes");
    within("second ping", client.ping()).await.expect("ids move on");
}

#[tokio::test]
async fn close_sends_goaway_and_the_peer_honours_it() {
    let (client, server) = pair();
    let mut stream = within("open", client.open(exec_headers("stdout"))).await.expect("opens");
    let _theirs = within("accept", server.accept()).await.expect("a stream");
    within("close", server.close()).await;
    assert!(server.is_closed() && server.error().is_none());
    // The client learns of the GOAWAY: no new streams, its stream (reset by close) ends.
    within("client ends", client.closed()).await;
    let mut rest = Vec::new();
    within("read", stream.read_to_end(&mut rest)).await.expect("RST CANCEL reads as EOF");
    assert!(matches!(client.open(exec_headers("stdin")).await, Err(SessionError::Closed | SessionError::GoneAway)));
    assert!(client.accept().await.is_none());
    assert!(client.error().is_none(), "{:?}", client.error());
}

#[tokio::test]
async fn reset_ends_the_stream_on_both_sides() {
    let (client, server) = pair();
    let stream = within("open", client.open(exec_headers("stdin"))).await.expect("opens");
    let mut theirs = within("accept", server.accept()).await.expect("a stream");
    stream.reset();
    let mut rest = Vec::new();
    within("read", theirs.read_to_end(&mut rest)).await.expect("CANCEL reads as EOF");
    let err = theirs.write_all(b"late").await.expect_err("writes on a reset stream fail");
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    let mut stream = stream;
    assert!(stream.write_all(b"x").await.is_err(), "the resetting side cannot write either");
    // The session itself carries on.
    within("ping", client.ping()).await.expect("still up");
}

#[tokio::test]
async fn server_opens_streams_with_even_ids() {
    let (client, server) = pair();
    let mut pushed = within("server open", server.open(exec_headers("push"))).await.expect("opens");
    assert_eq!(pushed.id(), 2);
    let mut got = within("client accept", client.accept()).await.expect("a stream");
    assert_eq!(got.headers().get("streamtype"), Some("push"));
    pushed.write_all(b"from the server").await.expect("writes");
    pushed.shutdown().await.expect("half-closes");
    let mut text = String::new();
    within("read", got.read_to_string(&mut text)).await.expect("reads");
    assert_eq!(text, "from the server");
}

#[tokio::test]
async fn dropping_every_handle_closes_the_session_and_frees_its_tasks() {
    let (client, server) = pair();
    let stream = within("open", client.open(exec_headers("stdin"))).await.expect("opens");
    let theirs = within("accept", server.accept()).await.expect("a stream");
    drop(client);
    within("ping", server.ping()).await.expect("a live stream keeps the session");
    drop(stream);
    // GOAWAY reached the server: it ends, and so does the stream it still holds.
    within("server ends", server.closed()).await;
    assert!(server.error().is_none(), "{:?}", server.error());
    drop(theirs);
    tasks_gone().await;
}

#[tokio::test]
async fn a_stream_nobody_reads_does_not_hold_up_the_others_once_dropped() {
    let (client, server) = pair();
    let mut ignored = within("open", client.open(exec_headers("stdout"))).await.expect("opens");
    let mut wanted = within("open", client.open(exec_headers("stderr"))).await.expect("opens");
    let (theirs_ignored, _writer_kept) = within("accept", server.accept()).await.expect("a stream").into_split();
    let mut theirs_wanted = within("accept", server.accept()).await.expect("a stream");
    drop(theirs_ignored);
    let flood = tokio::spawn(async move {
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..8 {
            ignored.write_all(&chunk).await.expect("writes");
        }
        ignored
    });
    wanted.write_all(b"still flowing").await.expect("writes");
    wanted.shutdown().await.expect("half-closes");
    let mut text = String::new();
    within("read past the flood", theirs_wanted.read_to_string(&mut text)).await.expect("reads");
    assert_eq!(text, "still flowing");
    within("flood", flood).await.expect("the flood was drained, not buffered");
}
