//! The transports of the CRI streaming server: what `kubectl exec`, `attach` and `port-forward`
//! reach through the kubelet, and `crictl exec -it` reaches directly.
//!
//! `Exec`, `Attach` and `PortForward` answer a URL on skiffd's streaming server; the client then
//! upgrades that HTTP connection to one of two multiplexed transports:
//!
//! ```text
//!  client ──HTTP upgrade──► streaming server
//!     Upgrade: SPDY/3.1     ──► spdy::Session   streams named by a `streamtype` header
//!     Upgrade: websocket    ──► ws::Channels    messages prefixed by a channel byte
//! ```
//!
//! Both carry the same remotecommand streams (stdin, stdout, stderr, error, resize) or, for
//! port-forward, a data and an error stream per forwarded connection. The modules here are the
//! transports alone, for both roles: the server uses the server side, the integration tests and
//! `skiff` the client side.

pub mod client;
pub mod portforward;
pub mod remotecommand;
pub mod server;
pub mod spdy;
pub mod ws;
