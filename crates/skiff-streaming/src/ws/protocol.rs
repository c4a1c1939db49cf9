//! The subprotocols a Kubernetes WebSocket streaming endpoint speaks, and which of them each
//! kind of endpoint accepts.
//!
//! The lists follow what the kubelet's CRI streaming server and the API server accept:
//! remotecommand (exec, attach) takes the unnamed protocol, `channel.k8s.io`,
//! `base64.channel.k8s.io`, `v4.channel.k8s.io`, `v4.base64.channel.k8s.io` and
//! `v5.channel.k8s.io`; port-forward takes the unnamed protocol, `v4.channel.k8s.io` and
//! `v4.base64.channel.k8s.io`. `v2`/`v3.channel.k8s.io` exist only over SPDY, so a WebSocket
//! client asking for just those is refused, as Kubernetes refuses it.

/// How a message carries its channel number and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary messages: the channel as one byte, then the raw payload.
    Binary,
    /// Text messages: the channel as the ASCII digit `'0' + channel`, then the payload in
    /// standard base64 with padding.
    Base64,
}

/// A negotiated WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The client asked for no subprotocol: binary channels with the oldest (v1) semantics, and
    /// a 101 response that names no protocol.
    Unnamed,
    /// `channel.k8s.io`: binary channels, v1 semantics.
    V1,
    /// `base64.channel.k8s.io`: base64 text channels, v1 semantics.
    V1Base64,
    /// `v4.channel.k8s.io`: binary channels; remotecommand reports the exit as a JSON status.
    V4,
    /// `v4.base64.channel.k8s.io`: `V4` in base64 text messages.
    V4Base64,
    /// `v5.channel.k8s.io`: `V4` plus the close signal `[255, channel]`, a half-close of one
    /// channel (the client's way to say "no more stdin").
    V5,
}

impl Protocol {
    /// Every protocol, newest first.
    pub const ALL: [Protocol; 6] = [Protocol::V5, Protocol::V4, Protocol::V4Base64, Protocol::V1, Protocol::V1Base64, Protocol::Unnamed];

    /// The `Sec-WebSocket-Protocol` token, or `None` for [`Protocol::Unnamed`].
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Protocol::Unnamed => None,
            Protocol::V1 => Some("channel.k8s.io"),
            Protocol::V1Base64 => Some("base64.channel.k8s.io"),
            Protocol::V4 => Some("v4.channel.k8s.io"),
            Protocol::V4Base64 => Some("v4.base64.channel.k8s.io"),
            Protocol::V5 => Some("v5.channel.k8s.io"),
        }
    }

    /// The protocol a `Sec-WebSocket-Protocol` token names (exact, case-sensitive match, as
    /// Kubernetes compares them).
    pub fn from_name(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == Some(name))
    }

    /// How messages of this protocol are framed.
    pub const fn encoding(self) -> Encoding {
        match self {
            Protocol::V1Base64 | Protocol::V4Base64 => Encoding::Base64,
            Protocol::Unnamed | Protocol::V1 | Protocol::V4 | Protocol::V5 => Encoding::Binary,
        }
    }

    /// Whether the protocol has the per-channel close signal (only `v5.channel.k8s.io`).
    pub const fn has_close_signal(self) -> bool {
        matches!(self, Protocol::V5)
    }

    /// Whether remotecommand writes the exit status as a JSON `metav1.Status` on the error
    /// channel (v4 and later); older protocols write the bare error message text.
    pub const fn json_status(self) -> bool {
        matches!(self, Protocol::V4 | Protocol::V4Base64 | Protocol::V5)
    }

    /// How many channels (numbered from 0) the framing can address. Binary framing stops short
    /// of 255, the close signal; base64 framing keeps `'0' + channel` within ASCII so that the
    /// text message stays valid UTF-8.
    pub const fn max_channels(self) -> usize {
        match self.encoding() {
            Encoding::Binary => 255,
            Encoding::Base64 => 80,
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name().unwrap_or("(none)"))
    }
}

/// The kind of streaming endpoint, which decides the protocols it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `exec` and `attach`: stdin 0, stdout 1, stderr 2, error 3, resize 4.
    RemoteCommand,
    /// `port-forward`: a data channel `2i` and an error channel `2i + 1` for the i-th port.
    PortForward,
}

impl Kind {
    /// The protocols this kind of endpoint accepts.
    pub const fn supported(self) -> &'static [Protocol] {
        match self {
            Kind::RemoteCommand => &[Protocol::V5, Protocol::V4, Protocol::V4Base64, Protocol::V1, Protocol::V1Base64, Protocol::Unnamed],
            Kind::PortForward => &[Protocol::V4, Protocol::V4Base64, Protocol::Unnamed],
        }
    }

    /// Whether this kind of endpoint accepts `protocol`.
    pub fn supports(self, protocol: Protocol) -> bool {
        self.supported().contains(&protocol)
    }

    /// The protocols a client of this kind offers, in its order of preference.
    pub const fn client_offer(self) -> &'static [Protocol] {
        match self {
            Kind::RemoteCommand => &[Protocol::V5, Protocol::V4],
            Kind::PortForward => &[Protocol::V4],
        }
    }
}
