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
//! What the peer may do, as Kubernetes' `wsstream` accepts it: an empty message, or a channel
//! byte with no payload (the server's "ready" message), carries nothing and is skipped; data
//! for a channel outside the layout, or one this side does not read, is discarded; a
//! malformed close signal, or one for a channel outside the layout, breaks the protocol and
//! ends the connection. Only v5 can half-close a channel: on v4 and older the client ends stdin
//! by closing the connection.
//!
//! The pieces:
//! - [`handshake`]: check an upgrade request, choose the subprotocol, compute
//!   `Sec-WebSocket-Accept`; and the client's request headers and response check.
//! - [`Channels`]: the channels over the upgraded connection, in either role, as tokio
//!   `AsyncRead` ([`ChannelReader`]) and `AsyncWrite` ([`ChannelWriter`]) halves that
//!   `tokio::io::copy` can move a process's pipes through. Each channel buffers a bounded
//!   amount, so a slow reader slows the peer down instead of growing memory.
//! - [`remotecommand`] and [`portforward`]: the channel layouts of exec/attach and
//!   port-forward, for the server and for the client.

mod channels;
mod error;
mod frame;
pub mod handshake;
mod inbound;
mod outbound;
pub mod portforward;
mod protocol;
pub mod remotecommand;
mod task;

pub use channels::{Channels, Direction, Role, MAX_INCOMING_MESSAGE};
pub use error::{ChannelsError, HandshakeError, PortError};
pub use inbound::ChannelReader;
pub use outbound::{ChannelWriter, MAX_MESSAGE_PAYLOAD};
pub use protocol::{Encoding, Kind, Protocol};
pub use task::{CLOSE_GRACE, CLOSE_TIMEOUT};

#[cfg(test)]
mod tests;
