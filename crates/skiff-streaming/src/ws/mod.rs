//! The Kubernetes WebSocket channel protocols (`v5.channel.k8s.io`, `v4.channel.k8s.io`, their
//! base64 variants, and port-forward over `v4.channel.k8s.io`).
//!
//! `kubectl`, `crictl exec --transport websocket` and the API server reach exec, attach and
//! port-forward by upgrading `GET /exec/<token>` (etc.) to a WebSocket. Every message then
//! carries one channel's bytes, prefixed by the channel number:
//!
//! ```text
//!  binary protocols (unnamed, channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io)
//!  ┌──────────┬───────────────────────────┐
//!  │ channel  │ payload (raw bytes)       │   one binary message
//!  │  1 byte  │ 0..n bytes                │
//!  └──────────┴───────────────────────────┘
//!
//!  base64 protocols (base64.channel.k8s.io, v4.base64.channel.k8s.io)
//!  ┌──────────┬───────────────────────────┐
//!  │ '0'+chan │ base64(payload), padded   │   one text message
//!  └──────────┴───────────────────────────┘
//!
//!  v5.channel.k8s.io only: the close signal, "nothing more on this channel"
//!  ┌──────────┬──────────┐
//!  │   255    │ channel  │                    exactly two bytes
//!  └──────────┴──────────┘
//!
//!  remotecommand: 0 stdin, 1 stdout, 2 stderr, 3 error (exit status), 4 resize
//!  port-forward:  2i data, 2i+1 error, for the i-th `port` of the query string
//! ```
//!
//! The pieces so far:
//! - [`handshake`]: check an upgrade request, choose the subprotocol, compute
//!   `Sec-WebSocket-Accept`; and the client's request headers and response check.

mod error;
pub mod handshake;
mod protocol;

pub use error::{ChannelsError, HandshakeError, PortError};
pub use protocol::{Encoding, Kind, Protocol};

#[cfg(test)]
mod tests;
