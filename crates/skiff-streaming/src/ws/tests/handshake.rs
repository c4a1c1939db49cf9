//! The opening handshake: RFC 6455 vectors, request checks, subprotocol negotiation, and the
//! client's response check against what the server side produces.

use http::{Request, Response, StatusCode};

use crate::ws::handshake::{accept, accept_key, is_websocket_request, select_protocol, Accepted, ClientHandshake};
use crate::ws::{HandshakeError, Kind, Protocol};

const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(protocols: &[&str]) -> http::request::Builder {
    let mut builder = Request::get("/exec/token")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", RFC_KEY);
    for p in protocols {
        builder = builder.header("Sec-WebSocket-Protocol", *p);
    }
    builder
}

fn accept_with(kind: Kind, protocols: &[&str]) -> Result<Accepted, HandshakeError> {
    accept(kind, &request(protocols).body(()).expect("request"))
}

#[test]
fn accept_key_matches_the_rfc_6455_example() {
    // RFC 6455 section 1.3: this key's accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=.
    assert_eq!(accept_key(RFC_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let accepted = accept_with(Kind::RemoteCommand, &["v5.channel.k8s.io"]).expect("accepted");
    assert_eq!(accepted.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn the_client_order_decides_among_supported_protocols() {
    let v4_first = accept_with(Kind::RemoteCommand, &["v4.channel.k8s.io, v5.channel.k8s.io"]).expect("accepted");
    assert_eq!(v4_first.protocol, Protocol::V4);
    let v5_first = accept_with(Kind::RemoteCommand, &["v5.channel.k8s.io,v4.channel.k8s.io"]).expect("accepted");
    assert_eq!(v5_first.protocol, Protocol::V5);
    // Unknown tokens are skipped, and tokens from repeated headers count in order.
    let repeated =
        accept_with(Kind::RemoteCommand, &["SPDY/3.1+portforward.k8s.io, v3.channel.k8s.io", " v4.base64.channel.k8s.io "]).expect("accepted");
    assert_eq!(repeated.protocol, Protocol::V4Base64);
}

#[test]
fn each_kind_accepts_the_protocols_kubernetes_serves_it_with() {
    let remote: Vec<_> = ["channel.k8s.io", "base64.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "v5.channel.k8s.io"]
        .iter()
        .map(|name| select_protocol(Kind::RemoteCommand, &[name]).expect("remotecommand protocol"))
        .collect();
    assert_eq!(remote, [Protocol::V1, Protocol::V1Base64, Protocol::V4, Protocol::V4Base64, Protocol::V5]);
    assert_eq!(select_protocol(Kind::PortForward, &["v4.channel.k8s.io"]), Ok(Protocol::V4));
    assert_eq!(select_protocol(Kind::PortForward, &["v4.base64.channel.k8s.io"]), Ok(Protocol::V4Base64));
    // Port-forward has no v5 and no unversioned named protocol; v2/v3 are SPDY-only.
    for refused in ["v5.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"] {
        assert!(select_protocol(Kind::PortForward, &[refused]).is_err(), "{refused} is not a port-forward protocol");
    }
    for refused in ["v2.channel.k8s.io", "v3.channel.k8s.io", "V5.CHANNEL.K8S.IO"] {
        assert!(select_protocol(Kind::RemoteCommand, &[refused]).is_err(), "{refused} is not a websocket remotecommand protocol");
    }
}

#[test]
fn no_requested_protocol_means_the_unnamed_binary_protocol() {
    let accepted = accept_with(Kind::PortForward, &[]).expect("accepted");
    assert_eq!(accepted.protocol, Protocol::Unnamed);
    let headers = accepted.response_headers();
    assert!(headers.get("Sec-WebSocket-Protocol").is_none());
    assert_eq!(headers.get("Upgrade").map(|v| v.as_bytes()), Some(&b"websocket"[..]));
    assert_eq!(headers.get("Connection").map(|v| v.as_bytes()), Some(&b"Upgrade"[..]));
    assert_eq!(headers.get("Sec-WebSocket-Accept").map(|v| v.as_bytes()), Some(&b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..]));
}

#[test]
fn the_response_names_the_chosen_protocol() {
    let accepted = accept_with(Kind::RemoteCommand, &["v5.channel.k8s.io"]).expect("accepted");
    assert_eq!(accepted.response_headers().get("Sec-WebSocket-Protocol").map(|v| v.as_bytes()), Some(&b"v5.channel.k8s.io"[..]));
}

#[test]
fn an_unsupported_protocol_is_a_400_that_lists_both_sides() {
    let err = accept_with(Kind::PortForward, &["v5.channel.k8s.io, v3.channel.k8s.io"]).expect_err("refused");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        err.to_string(),
        "none of the requested subprotocols (v5.channel.k8s.io, v3.channel.k8s.io) is supported; this endpoint speaks v4.channel.k8s.io, v4.base64.channel.k8s.io"
    );
}

#[test]
fn malformed_requests_get_typed_errors() {
    let build =
        |f: fn(http::request::Builder) -> http::request::Builder| accept(Kind::RemoteCommand, &f(Request::get("/exec/t")).body(()).expect("request"));
    let good = |b: http::request::Builder| {
        b.header("Upgrade", "WebSocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", RFC_KEY)
    };
    assert!(build(good).is_ok(), "case-insensitive Upgrade and a Connection list are fine");
    assert_eq!(build(|b| b.header("Connection", "Upgrade")), Err(HandshakeError::NotWebSocket));
    assert_eq!(build(|b| b.header("Upgrade", "websocket").header("Connection", "keep-alive")), Err(HandshakeError::NoConnectionUpgrade));
    assert_eq!(
        build(|b| b.header("Upgrade", "websocket").header("Connection", "upgrade").header("Sec-WebSocket-Key", RFC_KEY)),
        Err(HandshakeError::MissingVersion)
    );
    assert_eq!(
        build(|b| b
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header("Sec-WebSocket-Version", "8")
            .header("Sec-WebSocket-Key", RFC_KEY)),
        Err(HandshakeError::UnsupportedVersion("8".into()))
    );
    assert_eq!(
        build(|b| b.header("Upgrade", "websocket").header("Connection", "upgrade").header("Sec-WebSocket-Version", "13")),
        Err(HandshakeError::MissingKey)
    );
    for bad in ["not base64!", "c2hvcnQ=", "dGhlIHNhbXBsZSBub25jZXh4eA=="] {
        let req = Request::get("/")
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", bad)
            .body(())
            .expect("request");
        assert_eq!(accept(Kind::RemoteCommand, &req), Err(HandshakeError::InvalidKey(bad.into())), "key {bad:?}");
    }
    let post = request(&[]).method("POST").body(()).expect("request");
    let err = accept(Kind::RemoteCommand, &post).expect_err("refused");
    assert_eq!(err, HandshakeError::Method("POST".into()));
    assert_eq!(err.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn websocket_requests_are_told_apart_from_spdy_ones() {
    assert!(is_websocket_request(request(&[]).body(()).expect("request").headers()));
    let spdy = Request::get("/exec/t").header("Upgrade", "SPDY/3.1").header("Connection", "Upgrade").body(()).expect("request");
    assert!(!is_websocket_request(spdy.headers()));
}

/// What a server built from `accepted` answers.
fn response(accepted: &Accepted) -> Response<()> {
    let mut response = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS).body(()).expect("response");
    *response.headers_mut() = accepted.response_headers();
    response
}

#[test]
fn the_client_handshake_round_trips_through_the_server_side() {
    let client = ClientHandshake::new(Kind::RemoteCommand.client_offer());
    let mut req = Request::get("/exec/t").body(()).expect("request");
    *req.headers_mut() = client.request_headers();
    assert_eq!(req.headers().get("Sec-WebSocket-Protocol").map(|v| v.as_bytes()), Some(&b"v5.channel.k8s.io, v4.channel.k8s.io"[..]));
    let accepted = accept(Kind::RemoteCommand, &req).expect("accepted");
    assert_eq!(accepted.protocol, Protocol::V5);
    assert_eq!(client.verify(&response(&accepted)), Ok(Protocol::V5));
    // Each handshake has its own key.
    assert_ne!(client.key(), ClientHandshake::new(&[]).key());
}

#[test]
fn the_client_rejects_a_wrong_accept_key_status_or_protocol() {
    let client = ClientHandshake::new(&[Protocol::V4]);
    let wrong_key = Accepted { accept_key: accept_key(RFC_KEY), protocol: Protocol::V4 };
    assert!(matches!(client.verify(&response(&wrong_key)), Err(HandshakeError::AcceptMismatch { .. })));
    let not_offered = Accepted { accept_key: accept_key(client.key()), protocol: Protocol::V5 };
    assert_eq!(client.verify(&response(&not_offered)), Err(HandshakeError::UnexpectedProtocol("v5.channel.k8s.io".into())));
    let unnamed = Accepted { accept_key: accept_key(client.key()), protocol: Protocol::Unnamed };
    assert_eq!(client.verify(&response(&unnamed)), Ok(Protocol::Unnamed));
    let refused = Response::builder().status(StatusCode::BAD_REQUEST).body(()).expect("response");
    assert_eq!(client.verify(&refused), Err(HandshakeError::NotSwitching(StatusCode::BAD_REQUEST)));
}
