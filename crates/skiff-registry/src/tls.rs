//! Recognising a registry that speaks plain HTTP where HTTPS was asked for. Without this, the TLS
//! handshake failure reads "error sending request" and is retried like a broken connection.

use std::error::Error;

/// What the user is told instead.
pub const PLAIN_HTTP_ANSWER: &str = "the registry answered HTTP to an HTTPS request: use --plain-http or a hosts.toml entry";

/// Whether `e` is a TLS handshake that got an HTTP response. rustls reads the first bytes of
/// `HTTP/1.1 400 …` as a TLS record of an invalid content type and fails with
/// `InvalidMessage(InvalidContentType)` ("received corrupt message of type InvalidContentType"),
/// which reqwest wraps in its connect error. Without rustls as a direct dependency to downcast to,
/// the variant is recognised by name; the test below holds it to the real handshake.
pub fn answered_plain_http(e: &reqwest::Error) -> bool {
    if !e.is_connect() {
        return false;
    }
    let mut cur: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("InvalidContentType") {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use skiff_image::Reference;

    use super::*;
    use crate::client::{Access, Client, ClientOptions};
    use crate::{AuthConfig, Hosts, RegistryError};

    const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request";

    /// A server answering every connection as an HTTP server answers a TLS ClientHello.
    fn http_server(reply: &'static [u8]) -> std::net::SocketAddr {
        counting_http_server(reply, Arc::new(AtomicUsize::new(0)))
    }

    fn counting_http_server(reply: &'static [u8], connections: Arc<AtomicUsize>) -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                connections.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply);
            }
        });
        addr
    }

    #[test]
    fn a_tls_handshake_answered_in_http_is_recognised() {
        let addr = http_server(BAD_REQUEST);
        let http = reqwest::blocking::Client::new();
        let e = http.get(format!("https://{addr}/v2/")).send().expect_err("https to an http server");
        assert!(answered_plain_http(&e), "{e:?}");
        // A server that closes the connection is a broken connection, not plain HTTP.
        let closed = http_server(b"");
        let e = http.get(format!("https://{closed}/v2/")).send().expect_err("closed");
        assert!(!answered_plain_http(&e), "{e:?}");
    }

    #[test]
    fn a_client_says_so_at_once_instead_of_retrying() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = counting_http_server(BAD_REQUEST, connections.clone());
        let reference: Reference = format!("{addr}/demo/x:1").parse().expect("reference");
        let opts = ClientOptions { retries: 4, backoff: Duration::from_millis(1), ..ClientOptions::new(Hosts::default(), AuthConfig::default()) };
        let client = Client::new(&reference, &opts, Access::Pull).expect("client");
        let e = client.resolve(&reference).expect_err("plain http registry");
        assert!(matches!(e, RegistryError::Protocol { .. }), "{e:?}");
        assert!(!e.is_transient());
        let msg = e.to_string();
        assert!(msg.contains(PLAIN_HTTP_ANSWER) && msg.contains(&format!("https://{addr}")) && msg.contains("demo/x"), "{msg}");
        assert_eq!(connections.load(Ordering::SeqCst), 1, "no retries");
    }
}
