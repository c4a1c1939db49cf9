//! The client side, as kubectl, the kubelet's proxy and crictl are: the URL an Exec, Attach or
//! PortForward answered, upgraded to SPDY/3.1 or a WebSocket, then the remotecommand or
//! port-forward streams. `skiff pods exec|attach|port-forward` and the integration tests use it;
//! it sees the server only through the wire.

pub mod error;
pub mod forward;
pub mod remote;
pub mod tls;
pub mod upgrade;

pub use error::ClientError;
pub use forward::{forward, Forwarded, Forwarder};
pub use remote::{Finished, Protocols, Remote, Transport, Wanted};
pub use tls::Trust;
