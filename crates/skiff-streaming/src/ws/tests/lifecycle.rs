//! How a connection ends: a local close, the peer's close frame, a peer that vanishes, a
//! protocol violation, and every half dropped. None of them may leave a reader, a writer or
//! the connection task hanging.

use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::tungstenite::Message;

use futures_util::StreamExt;

use super::{finished, stays_pending, until_set, within, RawPeer, Tracked};
use crate::ws::{Channels, Direction, Protocol, Role, CLOSE_GRACE, CLOSE_TIMEOUT};

const SERVER: [Direction; 2] = [Direction::Read, Direction::Write];
const CLIENT: [Direction; 2] = [Direction::Write, Direction::Read];

async fn tracked_server_with_raw_client(protocol: Protocol) -> (Channels, RawPeer, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let (a, b) = duplex(64 * 1024);
    let (a, dropped) = Tracked::new(a);
    (Channels::open(a, Role::Server, protocol, &SERVER).expect("server"), RawPeer::new(b, WsRole::Client).await, dropped)
}

#[tokio::test]
async fn a_local_close_ends_the_peers_reads_with_eof_and_its_writes_with_an_error() {
    let (a, b) = duplex(64 * 1024);
    let (a, server_dropped) = Tracked::new(a);
    let (b, client_dropped) = Tracked::new(b);
    let mut server = Channels::open(a, Role::Server, Protocol::V5, &SERVER).expect("server");
    let mut client = Channels::open(b, Role::Client, Protocol::V5, &CLIENT).expect("client");
    let (mut stdout, mut client_stdout, mut client_stdin) =
        (server.take_writer(1).expect("stdout"), client.take_reader(1).expect("stdout"), client.take_writer(0).expect("stdin"));
    within(stdout.write_all(b"bye")).await.expect("write");
    drop(stdout);
    within(server.close()).await;
    let mut all = Vec::new();
    within(client_stdout.read_to_end(&mut all)).await.expect("EOF, not an error");
    assert_eq!(all, b"bye", "what was written before the close arrives before the EOF");
    assert_eq!(within(client_stdin.write_all(b"x")).await.expect_err("write after close").kind(), ErrorKind::BrokenPipe);
    until_set(&server_dropped).await;
    until_set(&client_dropped).await;
    finished(&client).await;
}

#[tokio::test]
async fn the_peers_close_frame_ends_reads_with_eof_and_writes_with_an_error() {
    let (mut server, mut peer, dropped) = tracked_server_with_raw_client(Protocol::V4).await;
    let (mut stdin, mut stdout) = (server.take_reader(0).expect("stdin"), server.take_writer(1).expect("stdout"));
    peer.send_binary(&[0, b'z']).await;
    peer.send(Message::Close(None)).await;
    let mut all = Vec::new();
    within(stdin.read_to_end(&mut all)).await.expect("EOF");
    assert_eq!(all, b"z");
    assert!(within(stdout.write_all(b"x")).await.is_err());
    // Our answer to the close frame reaches the peer before the transport goes.
    assert!(matches!(peer.next_then_answer_close().await, Some(Message::Close(_))));
    until_set(&dropped).await;
}

#[tokio::test]
async fn a_vanished_peer_fails_reads_and_writes_and_frees_the_task() {
    let (mut server, peer, dropped) = tracked_server_with_raw_client(Protocol::V5).await;
    let (mut stdin, mut stdout) = (server.take_reader(0).expect("stdin"), server.take_writer(1).expect("stdout"));
    let reading = tokio::spawn(async move { stdin.read(&mut [0; 16]).await });
    // Fill the transport so the writer is blocked on back-pressure when the peer goes.
    let writing = tokio::spawn(async move {
        let chunk = vec![7; 64 * 1024];
        loop {
            if let Err(e) = stdout.write_all(&chunk).await {
                return e;
            }
        }
    });
    assert!(
        stays_pending(async {
            while !writing.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await
            }
        })
        .await,
        "the writer blocks while nobody reads"
    );
    drop(peer);
    let read = within(reading).await.expect("reader task");
    // Whichever loop notices first names the error: the reader's end of input or the writer's
    // broken pipe. Either way it is an error, not an EOF.
    let kind = read.expect_err("an abrupt end is an error, not EOF").kind();
    assert!(matches!(kind, ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe), "{kind:?}");
    within(writing).await.expect("writer task");
    until_set(&dropped).await;
    finished(&server).await;
}

/// A transport whose writes fail while its reads wait forever: a connection that broke in
/// one direction.
struct BrokenWrites;

impl tokio::io::AsyncRead for BrokenWrites {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut tokio::io::ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Poll::Pending
    }
}

impl tokio::io::AsyncWrite for BrokenWrites {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(ErrorKind::BrokenPipe.into()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Err(ErrorKind::BrokenPipe.into()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_fails_the_readers_too_rather_than_faking_an_eof() {
    let mut server = Channels::open(BrokenWrites, Role::Server, Protocol::V5, &SERVER).expect("server");
    let (mut stdin, mut stdout) = (server.take_reader(0).expect("stdin"), server.take_writer(1).expect("stdout"));
    stdout.write_all(b"lost").await.expect("queued");
    let err = stdin.read(&mut [0; 4]).await.expect_err("the connection broke");
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    assert!(stdout.write_all(b"more").await.is_err());
}

#[tokio::test]
async fn dropping_every_half_and_the_handle_closes_the_connection() {
    let (mut server, mut peer, dropped) = tracked_server_with_raw_client(Protocol::V5).await;
    let stdin = server.take_reader(0).expect("stdin");
    let mut stdout = server.take_writer(1).expect("stdout");
    within(stdout.write_all(b"out")).await.expect("write");
    drop((server, stdout));
    assert_eq!(peer.next_binary().await, b"\x01out");
    // A reader still held keeps the connection open for the data it waits for.
    assert!(stays_pending(peer.ws.next()).await, "no close while a half is alive");
    drop(stdin);
    assert!(matches!(peer.next_then_answer_close().await, Some(Message::Close(_))));
    until_set(&dropped).await;
}

#[tokio::test]
async fn a_malformed_close_signal_ends_the_connection_with_an_error() {
    for signal in [&[255][..], &[255, 0, 0], &[255, 9]] {
        let (mut server, mut peer, dropped) = tracked_server_with_raw_client(Protocol::V5).await;
        let mut stdin = server.take_reader(0).expect("stdin");
        peer.send_binary(signal).await;
        let err = within(stdin.read(&mut [0; 4])).await.expect_err("protocol error");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{signal:?}: {err}");
        until_set(&dropped).await;
    }
}

#[tokio::test]
async fn after_a_local_close_a_full_unread_channel_does_not_hold_back_the_answer() {
    let (mut server, mut peer, dropped) = tracked_server_with_raw_client(Protocol::V5).await;
    let _stdin = server.take_reader(0).expect("stdin, held and never read");
    let chunk = [&[0u8][..], &[b'.'; 32 * 1024]].concat();
    for _ in 0..10 {
        peer.send_binary(&chunk).await;
    }
    let started = std::time::Instant::now();
    let ((), answer) = within(async { tokio::join!(server.close(), peer.next_then_answer_close()) }).await;
    assert!(matches!(answer, Some(Message::Close(_))), "{answer:?}");
    assert!(started.elapsed() < CLOSE_GRACE, "the close waited {:?} for a reader nobody drains", started.elapsed());
    until_set(&dropped).await;
}

/// Waits for `flag` in paused time, past the close timeouts.
async fn until_set_paused(flag: &std::sync::atomic::AtomicBool) {
    tokio::time::timeout(CLOSE_TIMEOUT * 2, async {
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the transport was never dropped");
}

#[tokio::test(start_paused = true)]
async fn a_close_nobody_answers_ends_after_the_grace_period() {
    let (server, _peer, dropped) = tracked_server_with_raw_client(Protocol::V4).await;
    let started = tokio::time::Instant::now();
    server.close().await;
    assert!(started.elapsed() >= CLOSE_GRACE && started.elapsed() < CLOSE_TIMEOUT, "{:?}", started.elapsed());
    until_set_paused(&dropped).await;
}

/// A server whose peer neither reads nor closes, with its writer stuck behind a full transport.
async fn stuck_server() -> (Channels, RawPeer, std::sync::Arc<std::sync::atomic::AtomicBool>, tokio::task::JoinHandle<()>) {
    let (mut server, peer, dropped) = tracked_server_with_raw_client(Protocol::V5).await;
    let mut stdout = server.take_writer(1).expect("stdout");
    let writer = tokio::spawn(async move {
        let chunk = vec![1; 64 * 1024];
        while stdout.write_all(&chunk).await.is_ok() {}
    });
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!writer.is_finished(), "the writer is blocked");
    (server, peer, dropped, writer)
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_cannot_stretch_a_close_past_the_timeout() {
    let (server, _peer, dropped, writer) = stuck_server().await;
    let started = tokio::time::Instant::now();
    server.close().await;
    assert!(started.elapsed() <= CLOSE_TIMEOUT + std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    until_set_paused(&dropped).await;
    tokio::time::timeout(CLOSE_TIMEOUT, writer).await.expect("the writer is released").expect("writer task");
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_connection_to_a_stuck_peer_is_dropped_after_the_timeout() {
    let (server, _peer, dropped, writer) = stuck_server().await;
    writer.abort();
    let _ = writer.await;
    drop(server);
    let started = tokio::time::Instant::now();
    until_set_paused(&dropped).await;
    assert!(started.elapsed() >= CLOSE_TIMEOUT - std::time::Duration::from_secs(1), "not before the timeout: {:?}", started.elapsed());
}
