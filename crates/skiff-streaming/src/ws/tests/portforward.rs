//! Port-forward: the `port` query parameters, channel numbering, the preambles on the wire,
//! and forwarding to real TCP listeners through our client and server.

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::tungstenite::Message;

use super::{within, RawPeer};
use crate::ws::portforward::{connect, data_channel, error_channel, parse_ports, serve};
use crate::ws::{PortError, Protocol};

#[test]
fn ports_come_from_every_port_parameter_in_order() {
    assert_eq!(parse_ports(Some("port=80&port=8080"), Protocol::V4), Ok(vec![80, 8080]));
    assert_eq!(parse_ports(Some("other=1&port=443,80&port=65535"), Protocol::V4), Ok(vec![443, 80, 65535]));
    assert_eq!(parse_ports(Some("port=%38%30%2C81"), Protocol::V4), Ok(vec![80, 81]));
    assert_eq!(parse_ports(Some("port=0080"), Protocol::V4), Ok(vec![80]));
}

#[test]
fn bad_port_parameters_get_typed_errors() {
    assert_eq!(parse_ports(None, Protocol::V4), Err(PortError::Missing));
    assert_eq!(parse_ports(Some("ports=80"), Protocol::V4), Err(PortError::Missing));
    assert_eq!(parse_ports(Some("port="), Protocol::V4), Err(PortError::Empty));
    assert_eq!(parse_ports(Some("port"), Protocol::V4), Err(PortError::Empty));
    assert_eq!(parse_ports(Some("port=0"), Protocol::V4), Err(PortError::Zero("0".into())));
    for bad in ["http", "80,", "65536", "+80", "-1", "8 0", "%zz"] {
        assert!(matches!(parse_ports(Some(&format!("port={bad}")), Protocol::V4), Err(PortError::Invalid(_))), "{bad:?}");
    }
    assert_eq!(PortError::Zero("0".into()).to_string(), "port \"0\" must be > 0");
    let forty_one = vec!["port=1"; 41].join("&");
    assert_eq!(parse_ports(Some(&forty_one), Protocol::V4Base64), Err(PortError::TooMany { count: 41, max: 40, protocol: Protocol::V4Base64 }));
    assert!(parse_ports(Some(&forty_one), Protocol::V4).is_ok());
}

#[test]
fn port_i_has_data_channel_2i_and_error_channel_2i_plus_1() {
    assert_eq!((data_channel(0), error_channel(0)), (Some(0), Some(1)));
    assert_eq!((data_channel(3), error_channel(3)), (Some(6), Some(7)));
    assert_eq!((data_channel(127), error_channel(127)), (Some(254), None));
}

#[tokio::test]
async fn the_server_opens_with_a_little_endian_port_preamble_on_every_channel() {
    let (a, b) = duplex(64 * 1024);
    let (served, mut peer) = tokio::join!(serve(a, Protocol::V4, &[80, 8080]), RawPeer::new(b, WsRole::Client));
    let (_channels, ports) = served.expect("serve");
    assert_eq!(ports.iter().map(|p| p.port).collect::<Vec<_>>(), [80, 8080]);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(peer.next_binary().await);
    }
    assert_eq!(seen, [vec![0, 80, 0], vec![1, 80, 0], vec![2, 0x90, 0x1f], vec![3, 0x90, 0x1f]]);
}

#[tokio::test]
async fn the_base64_preamble_is_a_text_message() {
    let (a, b) = duplex(64 * 1024);
    let (served, mut peer) = tokio::join!(serve(a, Protocol::V4Base64, &[80]), RawPeer::new(b, WsRole::Client));
    let _served = served.expect("serve");
    assert_eq!(peer.next().await, Some(Message::text("0UAA=")));
    assert_eq!(peer.next().await, Some(Message::text("1UAA=")));
}

#[tokio::test]
async fn a_preamble_for_another_port_is_an_error() {
    let (a, b) = duplex(64 * 1024);
    let (channels, mut ports) = connect(a, Protocol::V4, &[80]).expect("connect");
    let mut peer = RawPeer::new(b, WsRole::Server).await;
    peer.send_binary(&[0, 81, 0]).await;
    peer.send_binary(&[0, b'x']).await;
    let mut reader = ports.remove(0).reader;
    for _ in 0..2 {
        let err = within(reader.read(&mut [0; 4])).await.expect_err("wrong port");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
    drop(channels);
}

/// An echo server standing in for the pod's port.
async fn echo_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

#[tokio::test]
async fn two_ports_forward_through_client_and_server_to_tcp_listeners() {
    let (first, first_port) = echo_listener().await;
    let (second, second_port) = echo_listener().await;
    for listener in [first, second] {
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let (mut r, mut w) = conn.split();
            tokio::io::copy(&mut r, &mut w).await.expect("echo");
        });
    }
    let (a, b) = duplex(64 * 1024);
    let wanted = [first_port, second_port];
    let server = tokio::spawn(async move {
        let (channels, ports) = serve(a, Protocol::V4, &wanted).await.expect("serve");
        let mut forwards = Vec::new();
        for mut port in ports {
            forwards.push(tokio::spawn(async move {
                let mut pod = TcpStream::connect(("127.0.0.1", port.port)).await.expect("dial the pod's port");
                let (mut pod_r, mut pod_w) = pod.split();
                // Copy both ways until the pod side ends; the client closing ends the other way.
                tokio::select! {
                    _ = tokio::io::copy(&mut port.reader, &mut pod_w) => {}
                    _ = tokio::io::copy(&mut pod_r, &mut port.writer) => {}
                }
            }));
        }
        for forward in forwards {
            forward.await.expect("forward");
        }
        channels.close().await;
    });
    let (channels, ports) = connect(b, Protocol::V4, &wanted).expect("connect");
    for (i, mut port) in ports.into_iter().enumerate() {
        let message = format!("through port number {i}").repeat(2000);
        within(port.writer.write_all(message.as_bytes())).await.expect("send");
        let mut echoed = vec![0; message.len()];
        within(port.reader.read_exact(&mut echoed)).await.expect("echo back");
        assert_eq!(echoed, message.as_bytes());
    }
    within(channels.close()).await;
    within(server).await.expect("server");
}

#[tokio::test]
async fn the_error_channel_carries_the_servers_failure_text() {
    let (a, b) = duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let (channels, mut ports) = serve(a, Protocol::V4, &[9]).await.expect("serve");
        let mut port = ports.remove(0);
        port.error.write_all(b"error forwarding port 9: connection refused").await.expect("error text");
        drop(port);
        channels.close().await;
    });
    let (_channels, mut ports) = connect(b, Protocol::V4, &[9]).expect("connect");
    let mut text = String::new();
    within(ports[0].error.read_to_string(&mut text)).await.expect("error to EOF");
    assert_eq!(text, "error forwarding port 9: connection refused");
    let mut data = Vec::new();
    within(ports[0].reader.read_to_end(&mut data)).await.expect("data to EOF");
    assert!(data.is_empty(), "the preamble is not data");
    within(server).await.expect("server");
}
