//! The exec/attach layout: the server's ready message, and whole sessions of our client
//! against our server with the streams copied the way the remotecommand layer copies them.

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;

use super::{within, RawPeer};
use crate::ws::remotecommand::{connect, serve, StreamOptions, ERROR, RESIZE, STDERR, STDIN, STDOUT};
use crate::ws::Protocol;

#[tokio::test]
async fn the_server_announces_itself_on_its_lowest_writable_channel() {
    let cases = [
        (StreamOptions { stdout: true, stderr: true, ..Default::default() }, STDOUT),
        (StreamOptions { stderr: true, ..Default::default() }, STDERR),
        (StreamOptions { stdin: true, ..Default::default() }, ERROR),
    ];
    for (options, channel) in cases {
        let (a, b) = duplex(64 * 1024);
        let (streams, mut peer) = tokio::join!(serve(a, Protocol::V5, options), RawPeer::new(b, WsRole::Client));
        let streams = streams.expect("serve");
        assert_eq!(peer.next_binary().await, [channel], "{options:?}");
        assert_eq!((streams.stdin.is_some(), streams.stdout.is_some(), streams.stderr.is_some()), (options.stdin, options.stdout, options.stderr));
    }
}

#[tokio::test]
async fn the_ready_message_in_base64_is_the_bare_channel_digit() {
    let (a, b) = duplex(64 * 1024);
    let (streams, mut peer) =
        tokio::join!(serve(a, Protocol::V1Base64, StreamOptions { stdout: true, ..Default::default() }), RawPeer::new(b, WsRole::Client));
    let _streams = streams.expect("serve");
    assert_eq!(peer.next().await, Some(tokio_tungstenite::tungstenite::Message::text("1")));
}

#[tokio::test]
async fn a_v5_session_half_closes_stdin_and_gets_everything_back() {
    // What the remotecommand layer does with `cat`: stdin to EOF, then output, status, close.
    let options = StreamOptions { stdin: true, stdout: true, stderr: true, tty: false };
    let (a, b) = duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let streams = serve(a, Protocol::V5, options).await.expect("serve");
        let (mut stdin, mut stdout, mut stderr, mut error) =
            (streams.stdin.expect("stdin"), streams.stdout.expect("stdout"), streams.stderr.expect("stderr"), streams.error);
        let mut input = Vec::new();
        stdin.read_to_end(&mut input).await.expect("stdin to EOF");
        stdout.write_all(&input).await.expect("stdout");
        stderr.write_all(b"warning\n").await.expect("stderr");
        error.write_all(br#"{"status":"Success"}"#).await.expect("status");
        streams.channels.close().await;
    });
    let client = connect(b, Protocol::V5, options).expect("connect");
    let (mut stdin, mut stdout, mut stderr, mut error) =
        (client.stdin.expect("stdin"), client.stdout.expect("stdout"), client.stderr.expect("stderr"), client.error);
    assert!(client.resize.is_none(), "no resize without a tty");
    let input = b"line one\nline two\n".repeat(1000);
    within(stdin.write_all(&input)).await.expect("stdin");
    within(stdin.shutdown()).await.expect("half-close stdin");
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), Vec::new());
    within(stdout.read_to_end(&mut out)).await.expect("stdout");
    within(stderr.read_to_end(&mut err)).await.expect("stderr");
    within(error.read_to_end(&mut status)).await.expect("status");
    assert_eq!(out, input);
    assert_eq!(err, b"warning\n");
    assert_eq!(status, br#"{"status":"Success"}"#);
    within(server).await.expect("server task");
}

/// Before v5 there is no half-close: the client ends stdin by closing the connection, after
/// which nothing more can reach it.
async fn v4_session(protocol: Protocol) {
    let options = StreamOptions { stdin: true, stdout: true, ..Default::default() };
    let (a, b) = duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let streams = serve(a, protocol, options).await.expect("serve");
        let (mut stdin, mut stdout) = (streams.stdin.expect("stdin"), streams.stdout.expect("stdout"));
        let (mut buf, mut copied) = (vec![0; 8192], 0);
        loop {
            let n = stdin.read(&mut buf).await.expect("stdin ends with EOF when the client closes");
            if n == 0 {
                break;
            }
            stdout.write_all(&buf[..n]).await.expect("echo");
            copied += n;
        }
        assert!(stdout.write_all(b"too late").await.is_err(), "the connection is gone");
        copied
    });
    let client = connect(b, protocol, options).expect("connect");
    let (mut stdin, mut stdout) = (client.stdin.expect("stdin"), client.stdout.expect("stdout"));
    let input = b"echo me\n".repeat(5000);
    within(stdin.write_all(&input)).await.expect("stdin");
    within(stdin.shutdown()).await.expect("shutdown is local on v4");
    let mut out = vec![0; input.len()];
    within(stdout.read_exact(&mut out)).await.expect("the echo");
    assert_eq!(out, input, "{protocol}");
    within(client.channels.close()).await;
    assert_eq!(within(server).await.expect("server task"), input.len());
}

#[tokio::test]
async fn a_v4_session_ends_stdin_by_closing_the_connection() {
    v4_session(Protocol::V4).await;
    v4_session(Protocol::V4Base64).await;
    v4_session(Protocol::Unnamed).await;
}

#[tokio::test]
async fn a_tty_client_writes_resize_events() {
    let options = StreamOptions { stdin: true, stdout: true, stderr: false, tty: true };
    let (a, b) = duplex(64 * 1024);
    let (streams, client) = tokio::join!(serve(a, Protocol::V5, options), async { connect(b, Protocol::V5, options) });
    let (mut streams, client) = (streams.expect("serve"), client.expect("connect"));
    assert!(client.stderr.is_none() && streams.stderr.is_none());
    let mut resize = client.resize.expect("resize");
    within(resize.write_all(br#"{"Width":80,"Height":24}"#)).await.expect("resize");
    let mut got = [0; 24];
    within(streams.resize.read_exact(&mut got)).await.expect("resize arrives");
    assert_eq!(&got, br#"{"Width":80,"Height":24}"#);
    assert_eq!((STDIN, RESIZE), (0, 4));
}
