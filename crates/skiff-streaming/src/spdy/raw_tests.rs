//! A session against a peer that speaks raw frames, to see exactly what goes on the wire and
//! to send what a well-behaved session never would: peer drops, GOAWAY mid-stream, bad ids,
//! RST_STREAM statuses, ignored frame types, garbage.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::codec::{FrameDecoder, FrameEncoder};
use super::frame::*;
use super::session_tests::{WAIT, exec_headers};
use super::{Headers, Session, SessionError};

struct RawPeer {
    io: DuplexStream,
    encoder: FrameEncoder,
    decoder: FrameDecoder,
}

impl RawPeer {
    /// A session in `role` and the raw peer at the other end.
    fn with(make: fn(DuplexStream) -> Session) -> (Session, RawPeer) {
        let (a, b) = tokio::io::duplex(64 << 10);
        (make(a), RawPeer { io: b, encoder: FrameEncoder::new(), decoder: FrameDecoder::new() })
    }

    async fn send(&mut self, frame: Frame) {
        let mut out = Vec::new();
        self.encoder.encode(&frame, &mut out).expect("encodes");
        self.io.write_all(&out).await.expect("sends");
    }

    /// The next frame, `None` at EOF.
    async fn recv(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(frame) = self.decoder.decode().expect("the session sends valid frames") {
                    return Some(frame);
                }
                if self.io.read_buf(self.decoder.buffer_mut()).await.ok()? == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("a frame or EOF in time")
    }

    async fn open(&mut self, stream_id: u32, headers: Headers) {
        self.send(Frame::SynStream(SynStream { stream_id, headers, ..SynStream::default() })).await;
    }
}

fn reply(stream_id: u32) -> Frame {
    Frame::SynReply(SynReply { stream_id, fin: false, headers: Headers::new() })
}

fn data(stream_id: u32, fin: bool, payload: &'static [u8]) -> Frame {
    Frame::Data(Data { stream_id, fin, payload: Bytes::from_static(payload) })
}

fn rst(stream_id: u32, status: RstStatus) -> Frame {
    Frame::RstStream(RstStream { stream_id, status })
}

#[tokio::test]
async fn close_resets_unfinished_streams_then_sends_goaway_like_k8s() {
    let (server, mut peer) = RawPeer::with(Session::server);
    peer.open(1, exec_headers("stdout")).await;
    peer.open(3, exec_headers("stdin")).await;
    assert_eq!(peer.recv().await, Some(reply(1)));
    assert_eq!(peer.recv().await, Some(reply(3)));
    let mut stdout = server.accept().await.expect("stdout");
    let _stdin = server.accept().await.expect("stdin");
    stdout.write_all(b"out").await.expect("writes");
    stdout.shutdown().await.expect("half-closes");
    let closing = tokio::spawn(async move { server.close().await });
    assert_eq!(peer.recv().await, Some(data(1, false, b"out")));
    assert_eq!(peer.recv().await, Some(data(1, true, b"")));
    // stdout was half-closed already: only stdin is reset, as k8s' Close does.
    assert_eq!(peer.recv().await, Some(rst(3, RstStatus::CANCEL)));
    assert_eq!(peer.recv().await, Some(Frame::GoAway(GoAway { last_good_stream_id: 3, status: GoAwayStatus::OK })));
    assert_eq!(peer.recv().await, None);
    drop(peer);
    tokio::time::timeout(WAIT, closing).await.expect("close returns").expect("joins");
}

#[tokio::test]
async fn goaway_lets_covered_streams_finish_and_fails_the_rest() {
    let (client, mut peer) = RawPeer::with(Session::client);
    let opening = {
        let client = client.clone();
        tokio::spawn(async move { client.open(exec_headers("stdout")).await })
    };
    assert!(matches!(peer.recv().await, Some(Frame::SynStream(SynStream { stream_id: 1, .. }))));
    peer.send(reply(1)).await;
    let mut stream = opening.await.expect("joins").expect("opens");
    let late = {
        let client = client.clone();
        tokio::spawn(async move { client.open(exec_headers("stderr")).await })
    };
    assert!(matches!(peer.recv().await, Some(Frame::SynStream(SynStream { stream_id: 3, .. }))));
    // The peer goes away having seen only stream 1.
    peer.send(Frame::GoAway(GoAway { last_good_stream_id: 1, status: GoAwayStatus::OK })).await;
    assert!(matches!(late.await.expect("joins"), Err(SessionError::GoneAway)));
    assert!(matches!(client.open(exec_headers("x")).await, Err(SessionError::GoneAway)));
    // No new streams the other way either, and accept says so at once.
    assert!(tokio::time::timeout(WAIT, client.accept()).await.expect("no hang").is_none());
    peer.open(2, exec_headers("late push")).await;
    assert_eq!(peer.recv().await, Some(rst(2, RstStatus::REFUSED_STREAM)));
    // Stream 1 goes on both ways until it is done.
    peer.send(data(1, true, b"last words")).await;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("reads");
    assert_eq!(text, "last words");
    stream.write_all(b"bye").await.expect("writes after the GOAWAY");
    stream.shutdown().await.expect("half-closes");
    assert_eq!(peer.recv().await, Some(data(1, false, b"bye")));
    assert_eq!(peer.recv().await, Some(data(1, true, b"")));
    // Its last stream done, the session ends with its own GOAWAY.
    assert!(matches!(peer.recv().await, Some(Frame::GoAway(_))));
    assert_eq!(peer.recv().await, None);
    tokio::time::timeout(WAIT, client.closed()).await.expect("the session ends");
    assert!(client.error().is_none());
}

#[tokio::test]
async fn a_peer_that_vanishes_fails_reads_writes_and_opens_and_frees_the_tasks() {
    let (client, mut peer) = RawPeer::with(Session::client);
    let opening = {
        let client = client.clone();
        tokio::spawn(async move { client.open(exec_headers("stdin")).await })
    };
    peer.recv().await;
    peer.send(reply(1)).await;
    let mut stream = opening.await.expect("joins").expect("opens");
    peer.send(data(1, false, b"partial")).await;
    drop(peer);
    let mut buf = Vec::new();
    let err = tokio::time::timeout(WAIT, stream.read_to_end(&mut buf)).await.expect("no hang").expect_err("a lost connection is an error");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(buf, b"partial", "data before the loss is still delivered");
    assert!(stream.write_all(b"x").await.is_err());
    assert!(matches!(client.open(exec_headers("x")).await, Err(SessionError::Io(_))));
    assert!(client.accept().await.is_none());
    tokio::time::timeout(WAIT, client.closed()).await.expect("the tasks end");
    assert!(matches!(client.error(), Some(SessionError::Io(_))));
    super::session_tests::tasks_gone().await;
}

#[tokio::test]
async fn stream_ids_must_be_the_peers_and_must_grow() {
    let (server, mut peer) = RawPeer::with(Session::server);
    peer.open(2, exec_headers("even")).await;
    assert_eq!(peer.recv().await, Some(rst(2, RstStatus::PROTOCOL_ERROR)));
    peer.open(5, exec_headers("five")).await;
    assert_eq!(peer.recv().await, Some(reply(5)));
    peer.open(3, exec_headers("three")).await;
    assert_eq!(peer.recv().await, Some(rst(3, RstStatus::PROTOCOL_ERROR)));
    assert_eq!(server.accept().await.expect("five").headers().get("streamtype"), Some("five"));
}

#[tokio::test]
async fn rst_stream_statuses_other_than_cancel_are_errors_and_refusals_fail_open() {
    let (client, mut peer) = RawPeer::with(Session::client);
    let opening = {
        let client = client.clone();
        tokio::spawn(async move { client.open(exec_headers("stdin")).await })
    };
    peer.recv().await;
    peer.send(rst(1, RstStatus::REFUSED_STREAM)).await;
    assert!(matches!(opening.await.expect("joins"), Err(SessionError::Refused { stream_id: 1, status: RstStatus::REFUSED_STREAM })));
    peer.open(2, exec_headers("push")).await;
    assert_eq!(peer.recv().await, Some(reply(2)));
    let mut pushed = client.accept().await.expect("a stream");
    peer.send(data(2, false, b"abc")).await;
    peer.send(rst(2, RstStatus::INTERNAL_ERROR)).await;
    let mut buf = Vec::new();
    let err = pushed.read_to_end(&mut buf).await.expect_err("INTERNAL_ERROR is an error");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(buf, b"abc");
}

#[tokio::test]
async fn settings_window_updates_and_unknown_frames_are_ignored() {
    let (server, mut peer) = RawPeer::with(Session::server);
    peer.send(Frame::Settings(Settings { clear_persisted: false, entries: vec![Setting { flags: 0, id: Setting::INITIAL_WINDOW_SIZE, value: 1 }] })).await;
    peer.send(Frame::WindowUpdate(WindowUpdate { stream_id: 0, delta: 1 })).await;
    peer.io.write_all(&[0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x02, 0xde, 0xad]).await.expect("sends CREDENTIAL");
    peer.open(1, exec_headers("stdin")).await;
    assert_eq!(peer.recv().await, Some(reply(1)));
    let mut stream = server.accept().await.expect("a stream");
    // A window of 1 byte is not honoured: spdystream never grants more.
    stream.write_all(&[9u8; 100_000]).await.expect("writes past any window");
    let mut got = 0;
    while got < 100_000 {
        match peer.recv().await {
            Some(Frame::Data(d)) => got += d.payload.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn garbage_ends_the_session_with_goaway_protocol_error() {
    let (server, mut peer) = RawPeer::with(Session::server);
    peer.io.write_all(&[0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]).await.expect("sends a SPDY/2 PING");
    assert_eq!(peer.recv().await, Some(Frame::GoAway(GoAway { last_good_stream_id: 0, status: GoAwayStatus::PROTOCOL_ERROR })));
    assert_eq!(peer.recv().await, None);
    drop(peer);
    tokio::time::timeout(WAIT, server.closed()).await.expect("ends");
    assert!(matches!(server.error(), Some(SessionError::Protocol(super::FrameError::UnsupportedVersion { version: 2 }))));
}

#[tokio::test]
async fn the_peers_pings_are_echoed_and_a_silent_peer_times_open_out() {
    let (client, mut peer) = RawPeer::with(Session::client);
    peer.send(Frame::Ping(Ping { id: 2 })).await;
    assert_eq!(peer.recv().await, Some(Frame::Ping(Ping { id: 2 })));
    tokio::time::pause();
    let result = client.open(exec_headers("stdin")).await;
    assert!(matches!(result, Err(SessionError::ReplyTimeout { stream_id: 1, .. })), "{result:?}");
    tokio::time::resume();
    assert!(matches!(peer.recv().await, Some(Frame::SynStream(_))));
    // Giving up resets the stream, so a late reply finds nothing waiting.
    assert_eq!(peer.recv().await, Some(rst(1, RstStatus::CANCEL)));
}
