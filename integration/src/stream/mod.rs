//! Clients of skiffd's streaming server, as kubectl, the kubelet's proxy and crictl are: the URL
//! an Exec, Attach or PortForward answered, upgraded to SPDY/3.1 or a WebSocket, then the
//! remotecommand or port-forward streams. Built on `skiff_streaming`'s client roles; what the
//! server does is only seen through the wire.

pub mod forward;
pub mod remote;
pub mod upgrade;

pub use forward::{forward, Forwarded, Forwarder};
pub use remote::{Finished, Remote, Transport, Wanted};
