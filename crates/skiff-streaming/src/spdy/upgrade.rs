//! The HTTP/1.1 upgrade that precedes SPDY, as Kubernetes' `httpstream` does it. The HTTP
//! server answers with these; the bytes after its 101 response are the SPDY session.
//!
//! ```text
//!  client                                         server
//!  GET /exec/<token> HTTP/1.1
//!  Connection: Upgrade
//!  Upgrade: SPDY/3.1
//!  X-Stream-Protocol-Version: v4.channel.k8s.io   (one header per offer, or comma-separated,
//!  X-Stream-Protocol-Version: v3.channel.k8s.io    most preferred first)
//!                                                 HTTP/1.1 101 Switching Protocols
//!                                                 Connection: Upgrade
//!                                                 Upgrade: SPDY/3.1
//!                                                 X-Stream-Protocol-Version: v4.channel.k8s.io
//!  ... SPDY frames both ways ...
//! ```
//!
//! When nothing matches, k8s answers 403 Forbidden with one `X-Accepted-Stream-Protocol-Versions`
//! header per protocol it supports; when the client offers nothing, 400 Bad Request.

pub const HEADER_CONNECTION: &str = "Connection";
pub const HEADER_UPGRADE: &str = "Upgrade";
pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
pub const HEADER_ACCEPTED_PROTOCOL_VERSIONS: &str = "X-Accepted-Stream-Protocol-Versions";

/// The `Upgrade` token, request and response.
pub const UPGRADE_SPDY_31: &str = "SPDY/3.1";
/// The `Connection` value of the 101 response.
pub const CONNECTION_UPGRADE: &str = "Upgrade";

/// Whether a request asks for the SPDY upgrade. Like k8s, a substring test on the lowercased
/// values, so `Connection: keep-alive, Upgrade` and `Upgrade: SPDY/3.1, websocket` count.
pub fn is_spdy_upgrade<'a>(connection: impl IntoIterator<Item = &'a str>, upgrade: impl IntoIterator<Item = &'a str>) -> bool {
    let has = |value: &str, token: &str| value.to_ascii_lowercase().contains(token);
    connection.into_iter().any(|v| has(v, "upgrade")) && upgrade.into_iter().any(|v| has(v, "spdy/3.1"))
}

/// Splits the `X-Stream-Protocol-Version` header values into offers, in the client's order:
/// each value may hold several, comma-separated.
pub fn offered_protocols<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    values.into_iter().flat_map(|v| v.split(',')).map(|p| p.trim_matches(' ')).filter(|p| !p.is_empty()).collect()
}

/// Picks the protocol to answer with: the first of the client's `offered` (most preferred
/// first) that the server `supported`. This is k8s' order — the client's preference wins,
/// the server's list only filters.
pub fn negotiate<'a>(offered: &[&'a str], supported: &[&str]) -> Option<&'a str> {
    offered.iter().copied().find(|offer| supported.contains(offer))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: [&str; 4] = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"];

    #[test]
    fn the_clients_first_supported_offer_wins() {
        let offered = offered_protocols(["v4.channel.k8s.io", "v5.channel.k8s.io"]);
        assert_eq!(negotiate(&offered, &SERVER), Some("v4.channel.k8s.io"));
        let offered = offered_protocols(["v9.example, v3.channel.k8s.io ,v2.channel.k8s.io"]);
        assert_eq!(offered, ["v9.example", "v3.channel.k8s.io", "v2.channel.k8s.io"]);
        assert_eq!(negotiate(&offered, &SERVER), Some("v3.channel.k8s.io"));
    }

    #[test]
    fn nothing_in_common_or_nothing_offered_negotiates_nothing() {
        assert_eq!(negotiate(&offered_protocols(["v1.channel.k8s.io"]), &SERVER), None);
        assert_eq!(negotiate(&offered_protocols([" , "]), &SERVER), None);
        assert!(offered_protocols(std::iter::empty()).is_empty());
    }

    #[test]
    fn upgrade_requests_are_recognised_like_k8s_does() {
        assert!(is_spdy_upgrade(["keep-alive, Upgrade"], ["SPDY/3.1"]));
        assert!(is_spdy_upgrade(["upgrade"], ["spdy/3.1"]));
        assert!(!is_spdy_upgrade(["Upgrade"], ["websocket"]));
        assert!(!is_spdy_upgrade(["close"], ["SPDY/3.1"]));
        assert!(!is_spdy_upgrade([], ["SPDY/3.1"]));
    }
}
