//! Data on the channels: round trips per encoding, the v5 close signal, and what the server
//! makes of odd messages.

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::tungstenite::Message;

use super::{stays_pending, within, RawPeer};
use crate::ws::{Channels, Direction, Protocol, Role};

const SERVER: [Direction; 3] = [Direction::Read, Direction::Write, Direction::Read];
const CLIENT: [Direction; 3] = [Direction::Write, Direction::Read, Direction::Write];

fn pair(protocol: Protocol) -> (Channels, Channels) {
    let (a, b) = duplex(64 * 1024);
    let server = Channels::open(a, Role::Server, protocol, &SERVER).expect("server channels");
    let client = Channels::open(b, Role::Client, protocol, &CLIENT).expect("client channels");
    (server, client)
}

/// Our server with the `SERVER` layout against a bare tungstenite client.
async fn server_with_raw_client(protocol: Protocol) -> (Channels, RawPeer) {
    let (a, b) = duplex(64 * 1024);
    (Channels::open(a, Role::Server, protocol, &SERVER).expect("server channels"), RawPeer::new(b, WsRole::Client).await)
}

async fn round_trip(protocol: Protocol) {
    let (mut server, mut client) = pair(protocol);
    let all_bytes: Vec<u8> = (0..=255).collect();
    let mut stdin = client.take_writer(0).expect("client stdin");
    let mut server_stdin = server.take_reader(0).expect("server stdin");
    within(stdin.write_all(&all_bytes)).await.expect("write stdin");
    let mut got = vec![0; all_bytes.len()];
    within(server_stdin.read_exact(&mut got)).await.expect("read stdin");
    assert_eq!(got, all_bytes, "{protocol}: client to server");

    let mut stdout = server.take_writer(1).expect("server stdout");
    let mut client_stdout = client.take_reader(1).expect("client stdout");
    within(stdout.write_all(b"hello from the server")).await.expect("write stdout");
    let mut got = [0; 21];
    within(client_stdout.read_exact(&mut got)).await.expect("read stdout");
    assert_eq!(&got, b"hello from the server", "{protocol}: server to client");
}

#[tokio::test]
async fn every_protocol_round_trips_all_byte_values_both_ways() {
    for protocol in crate::ws::Protocol::ALL {
        round_trip(protocol).await;
    }
}

#[tokio::test]
async fn base64_protocols_send_text_messages() {
    let (mut server, mut peer) = server_with_raw_client(Protocol::V4Base64).await;
    let mut stdout = server.take_writer(1).expect("stdout");
    within(stdout.write_all(b"foo\n")).await.expect("write");
    assert_eq!(peer.next().await, Some(Message::text("1Zm9vCg==")));
    peer.send(Message::text("0YmFy")).await;
    let mut got = [0; 3];
    within(server.take_reader(0).expect("stdin").read_exact(&mut got)).await.expect("read");
    assert_eq!(&got, b"bar");
}

#[tokio::test]
async fn v5_shutdown_half_closes_one_channel_and_leaves_the_rest_open() {
    let (mut server, mut client) = pair(Protocol::V5);
    let mut stdin = client.take_writer(0).expect("client stdin");
    within(stdin.write_all(b"last line\n")).await.expect("write");
    within(stdin.shutdown()).await.expect("shutdown");
    assert!(stdin.write_all(b"more").await.is_err(), "a shut down channel refuses writes");

    let mut server_stdin = server.take_reader(0).expect("server stdin");
    let mut all = String::new();
    within(server_stdin.read_to_string(&mut all)).await.expect("stdin reads to EOF");
    assert_eq!(all, "last line\n");

    // The rest of the session goes on: stdout still flows, resize still arrives.
    let mut stdout = server.take_writer(1).expect("server stdout");
    within(stdout.write_all(b"after stdin ended")).await.expect("write stdout");
    let mut got = [0; 17];
    within(client.take_reader(1).expect("client stdout").read_exact(&mut got)).await.expect("read stdout");
    assert_eq!(&got, b"after stdin ended");
    within(client.take_writer(2).expect("client resize").write_all(b"{}")).await.expect("write resize");
    let mut got = [0; 2];
    within(server.take_reader(2).expect("server resize").read_exact(&mut got)).await.expect("read resize");
}

#[tokio::test]
async fn the_client_sends_the_close_signal_only_on_v5() {
    for (protocol, expected) in [(Protocol::V5, Some(vec![255, 0])), (Protocol::V4, None)] {
        let (a, b) = duplex(64 * 1024);
        let mut client = Channels::open(a, Role::Client, protocol, &CLIENT).expect("client");
        let mut peer = RawPeer::new(b, WsRole::Server).await;
        within(client.take_writer(0).expect("stdin").shutdown()).await.expect("shutdown");
        within(client.take_writer(2).expect("resize").write_all(b"x")).await.expect("write");
        let mut seen = Vec::new();
        while let Some(Message::Binary(bytes)) = peer.next().await {
            seen.push(bytes.to_vec());
            if bytes[0] == 2 {
                break;
            }
        }
        let mut want: Vec<Vec<u8>> = expected.into_iter().collect();
        want.push(vec![2, b'x']);
        assert_eq!(seen, want, "{protocol}");
    }
}

#[tokio::test]
async fn the_server_never_sends_the_close_signal() {
    // client-go treats 255 as an unknown stream and logs an error for it.
    let (mut server, mut peer) = server_with_raw_client(Protocol::V5).await;
    let mut stdout = server.take_writer(1).expect("stdout");
    within(stdout.shutdown()).await.expect("shutdown");
    assert!(stdout.write_all(b"x").await.is_err());
    drop(stdout);
    let ((), first) = within(async { tokio::join!(server.close(), peer.next_then_answer_close()) }).await;
    assert!(matches!(first, Some(Message::Close(_))), "the first message is the close frame, got {first:?}");
}

#[tokio::test]
async fn empty_messages_unknown_channels_and_write_only_channels_are_skipped() {
    let (mut server, mut peer) = server_with_raw_client(Protocol::V5).await;
    peer.send_binary(&[]).await;
    peer.send_binary(&[0]).await;
    peer.send_binary(&[9, b'?']).await;
    peer.send_binary(&[1, b'!']).await;
    peer.send_binary(&[0, b'a']).await;
    // Text messages are read like binary ones on the binary protocols, as the Go server does.
    peer.send(Message::text("\u{0}b")).await;
    let mut stdin = server.take_reader(0).expect("stdin");
    let mut got = [0; 2];
    within(stdin.read_exact(&mut got)).await.expect("read");
    assert_eq!(&got, b"ab");
}

#[tokio::test]
async fn invalid_base64_fails_that_channel_only() {
    let (mut server, mut peer) = server_with_raw_client(Protocol::V4Base64).await;
    peer.send(Message::text("0not*base64")).await;
    peer.send(Message::text("2e30=")).await;
    let err = within(server.take_reader(0).expect("stdin").read(&mut [0; 8])).await.expect_err("bad payload");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let mut got = [0; 2];
    within(server.take_reader(2).expect("resize").read_exact(&mut got)).await.expect("resize still flows");
    assert_eq!(&got, b"{}");
}

#[tokio::test]
async fn a_dropped_reader_discards_its_data_without_stalling_the_others() {
    let (mut server, mut peer) = server_with_raw_client(Protocol::V4).await;
    drop(server.take_reader(2));
    let big = vec![2; 32 * 1024];
    for _ in 0..64 {
        peer.send_binary(&big).await;
    }
    peer.send_binary(&[0, b'k']).await;
    let mut got = [0; 1];
    within(server.take_reader(0).expect("stdin").read_exact(&mut got)).await.expect("stdin after 2 MiB for a dropped reader");
    assert_eq!(&got, b"k");
}

#[tokio::test]
async fn pings_are_answered() {
    let (server, mut peer) = server_with_raw_client(Protocol::V5).await;
    peer.send(Message::Ping(b"are you there".to_vec().into())).await;
    assert_eq!(peer.next().await, Some(Message::Pong(b"are you there".to_vec().into())));
    drop(server);
}

#[tokio::test]
async fn a_reader_waits_for_data_rather_than_reporting_eof() {
    let (mut server, _client) = pair(Protocol::V4);
    let mut stdin = server.take_reader(0).expect("stdin");
    let mut buf = [0; 4];
    assert!(stays_pending(stdin.read(&mut buf)).await);
}
