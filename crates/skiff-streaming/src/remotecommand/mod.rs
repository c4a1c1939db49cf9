//! The remotecommand protocol of `kubectl exec` and `attach`, over either transport: which
//! streams a request expects, the terminal resizes, and how the end is reported.
//!
//! ```text
//!  version            transport   streams                              error stream at the end
//!  channel.k8s.io     SPDY, WS    stdin stdout stderr error            the error's text
//!  v2.channel.k8s.io  SPDY, WS    as v1                                the error's text
//!  v3.channel.k8s.io  SPDY, WS    + resize (with a TTY)                the error's text
//!  v4.channel.k8s.io  SPDY, WS    as v3                                a JSON Status (exit code)
//!  v5.channel.k8s.io  WS          as v4, and a channel may be closed   a JSON Status
//! ```

pub mod resize;
pub mod spdy;
pub mod status;
pub mod ws;

pub use resize::{ResizeDecoder, TermSize};
pub use status::{error_stream_bytes, Outcome};

/// A remotecommand protocol version, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
    V3,
    V4,
    V5,
}

/// The SPDY subprotocols this server speaks, most preferred first.
pub const SPDY_PROTOCOLS: [&str; 4] = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

impl Version {
    /// The version a negotiated subprotocol name means (base64 variants included); None: not a
    /// remotecommand protocol. An empty name is a client that did not negotiate: version 1.
    pub fn of_protocol(name: &str) -> Option<Version> {
        Some(match name {
            "" | "channel.k8s.io" | "base64.channel.k8s.io" => Version::V1,
            "v2.channel.k8s.io" | "v2.base64.channel.k8s.io" => Version::V2,
            "v3.channel.k8s.io" | "v3.base64.channel.k8s.io" => Version::V3,
            "v4.channel.k8s.io" | "v4.base64.channel.k8s.io" => Version::V4,
            "v5.channel.k8s.io" => Version::V5,
            _ => return None,
        })
    }

    /// Whether a TTY's size changes come on a resize stream.
    pub fn has_resize(self) -> bool {
        self >= Version::V3
    }
}

/// The streams of one exec or attach, as its cached request asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Wanted {
    /// Whether a resize stream is expected besides the others.
    pub fn resize(self, version: Version) -> bool {
        self.tty && version.has_resize()
    }

    /// How many streams the client opens (SPDY): the error stream and each one asked for.
    pub fn count(self, version: Version) -> usize {
        1 + self.stdin as usize + self.stdout as usize + self.stderr as usize + self.resize(version) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_by_name() {
        assert_eq!(Version::of_protocol("v4.channel.k8s.io"), Some(Version::V4));
        assert_eq!(Version::of_protocol("v4.base64.channel.k8s.io"), Some(Version::V4));
        assert_eq!(Version::of_protocol(""), Some(Version::V1));
        assert_eq!(Version::of_protocol("portforward.k8s.io"), None);
        assert!(Version::V3.has_resize() && !Version::V2.has_resize());
    }

    #[test]
    fn expected_streams() {
        let tty = Wanted { stdin: true, stdout: true, stderr: false, tty: true };
        assert_eq!(tty.count(Version::V4), 4);
        assert_eq!(tty.count(Version::V2), 3);
        assert_eq!(Wanted { stdout: true, stderr: true, ..Default::default() }.count(Version::V4), 3);
    }
}
