//! The HTTP side of the streaming server: `GET|POST /{exec,attach,portforward}/{token}`, the
//! upgrade to SPDY/3.1 or WebSocket with its subprotocol, and the hand-off of the upgraded
//! connection to the protocol that serves it.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Backend, Pending, TokenCache};
use crate::remotecommand::{Version, SPDY_PROTOCOLS};
use super::session;
use crate::spdy::upgrade;
use crate::ws;

/// The SPDY subprotocol of port-forward.
pub const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";

pub(super) struct State {
    pub tokens: Arc<TokenCache<Pending>>,
    pub backend: Arc<dyn Backend>,
}

pub(super) async fn serve_connection<IO>(io: IO, state: Arc<State>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(req, &state)) }
    });
    if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(io), service).with_upgrades().await {
        tracing::debug!(error = %e, "a streaming connection ended with an error");
    }
}

fn answer(code: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    let mut body = message.into();
    body.push('\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The two upgrades a client may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upgrade {
    Spdy,
    WebSocket,
}

pub(crate) fn upgrade_of(headers: &HeaderMap) -> Option<Upgrade> {
    let connection_upgrade = headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return None;
    }
    headers.get_all(header::UPGRADE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(|t| {
        let t = t.trim();
        if t.eq_ignore_ascii_case("spdy/3.1") {
            Some(Upgrade::Spdy)
        } else if t.eq_ignore_ascii_case("websocket") {
            Some(Upgrade::WebSocket)
        } else {
            None
        }
    })
}

/// The values of a header that may repeat and hold comma-separated lists.
pub(crate) fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
}

fn kind_of(pending: &Pending) -> &'static str {
    match pending {
        Pending::Exec(_) => "exec",
        Pending::Attach(_) => "attach",
        Pending::PortForward(_) => "portforward",
    }
}

fn handle(mut req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "a streaming URL takes GET or POST");
    }
    let mut parts = req.uri().path().trim_start_matches('/').splitn(2, '/');
    let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !matches!(kind, "exec" | "attach" | "portforward") || token.is_empty() || token.contains('/') {
        return answer(StatusCode::NOT_FOUND, format!("{} is not a streaming URL: they are /exec/TOKEN, /attach/TOKEN and /portforward/TOKEN", req.uri().path()));
    }
    let Some(pending) = state.tokens.take(token) else {
        return answer(StatusCode::NOT_FOUND, "this streaming URL is unknown, was used already or expired (a URL serves once, within a minute): ask for a new one");
    };
    if kind_of(&pending) != kind {
        return answer(StatusCode::NOT_FOUND, format!("this token was made for /{}, not /{kind}", kind_of(&pending)));
    }
    let Some(upgrade) = upgrade_of(req.headers()) else {
        return answer(StatusCode::BAD_REQUEST, "unable to upgrade: the request asks for neither SPDY/3.1 nor websocket (Connection: Upgrade and Upgrade headers)");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let backend = state.backend.clone();
    match upgrade {
        Upgrade::Spdy => {
            let offered_values = header_list(req.headers(), upgrade::HEADER_PROTOCOL_VERSION);
            let offered: Vec<&str> = offered_values.iter().map(String::as_str).collect();
            let supported: &[&str] = if matches!(pending, Pending::PortForward(_)) { &[PORT_FORWARD_PROTOCOL] } else { &SPDY_PROTOCOLS };
            if offered.is_empty() {
                return answer(StatusCode::BAD_REQUEST, format!("unable to upgrade: {} is required (this server speaks {})", upgrade::HEADER_PROTOCOL_VERSION, supported.join(", ")));
            }
            // The client's order decides, as k8s' httpstream.Handshake has it.
            let Some(chosen) = upgrade::negotiate(&offered, supported) else {
                let mut refusal = answer(StatusCode::FORBIDDEN, format!("unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"));
                if let Ok(v) = HeaderValue::from_str(&supported.join(", ")) {
                    refusal.headers_mut().insert(upgrade::HEADER_ACCEPTED_PROTOCOL_VERSIONS, v);
                }
                return refusal;
            };
            let mut response = answer(StatusCode::SWITCHING_PROTOCOLS, "");
            let headers = response.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static(upgrade::CONNECTION_UPGRADE));
            headers.insert(header::UPGRADE, HeaderValue::from_static(upgrade::UPGRADE_SPDY_31));
            if let Ok(v) = HeaderValue::from_str(chosen) {
                headers.insert(upgrade::HEADER_PROTOCOL_VERSION, v);
            }
            let version = Version::of_protocol(chosen);
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => session::spdy(TokioIo::new(upgraded), pending, version, backend).await,
                    Err(e) => tracing::debug!(error = %e, "a SPDY upgrade failed"),
                }
            });
            response
        }
        Upgrade::WebSocket => {
            let kind = if matches!(pending, Pending::PortForward(_)) { ws::Kind::PortForward } else { ws::Kind::RemoteCommand };
            let accepted = match ws::handshake::accept(kind, &req) {
                Ok(a) => a,
                Err(e) => return answer(e.status(), format!("unable to upgrade: {e}")),
            };
            let ports = match &pending {
                Pending::PortForward(pf) => match ws_ports(req.uri().query(), accepted.protocol, pf) {
                    Ok(ports) => Some(ports),
                    Err(e) => return answer(StatusCode::BAD_REQUEST, e),
                },
                _ => None,
            };
            let mut response = answer(StatusCode::SWITCHING_PROTOCOLS, "");
            response.headers_mut().extend(accepted.response_headers());
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => session::websocket(TokioIo::new(upgraded), pending, accepted, ports, backend).await,
                    Err(e) => tracing::debug!(error = %e, "a WebSocket upgrade failed"),
                }
            });
            response
        }
    }
}

/// A WebSocket port-forward's ports: the URL's `port` parameters, each one the cached request
/// lets through.
fn ws_ports(query: Option<&str>, protocol: ws::Protocol, req: &k8s_cri::v1::PortForwardRequest) -> Result<Vec<u16>, String> {
    let ports = ws::portforward::parse_ports(query, protocol).map_err(|e| e.to_string())?;
    for port in &ports {
        crate::portforward::allowed(req, *port)?;
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn upgrades_are_told_apart() {
        assert_eq!(upgrade_of(&headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")])), Some(Upgrade::Spdy));
        assert_eq!(upgrade_of(&headers(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")])), Some(Upgrade::WebSocket));
        assert_eq!(upgrade_of(&headers(&[("upgrade", "websocket")])), None, "no Connection: Upgrade");
        assert_eq!(upgrade_of(&headers(&[("connection", "upgrade"), ("upgrade", "h2c")])), None);
    }

    #[test]
    fn repeated_and_listed_values_are_all_read() {
        let offered = header_list(&headers(&[("x-stream-protocol-version", "v4.channel.k8s.io"), ("x-stream-protocol-version", "v3.channel.k8s.io, channel.k8s.io")]), "x-stream-protocol-version");
        assert_eq!(offered, ["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"]);
    }
}
