//! SPDY/3.1 as Kubernetes speaks it: the transport `kubectl exec`, `attach` and `port-forward`
//! (through the kubelet) and `crictl exec` open on a CRI runtime's streaming server.
//!
//! The peer is always Go's `github.com/moby/spdystream` under k8s' `httpstream/spdy`, and no
//! usable Rust implementation exists, so this module is a SPDY/3.1 written to match that one:
//! its fixtures were recorded from spdystream's framer and its session was run against
//! spdystream both ways (testdata/spdy/record.go).
//!
//! ```text
//!  HTTP/1.1 upgrade (upgrade.rs) ─► Session (session.rs) ─┬─ reader task (reader.rs) ◄── FrameDecoder ◄─ bytes
//!                                      │                   └─ writer task (writer.rs) ──► FrameEncoder ──► bytes
//!                                      └─ Stream: AsyncRead + AsyncWrite (stream.rs)   codec.rs, headers.rs
//! ```
//!
//! - [`frame`] draws the wire layout; [`codec`] encodes and incrementally decodes frames;
//!   [`headers`] is the header map and its session-long zlib compression ([`dictionary`]).
//! - [`Session`] runs a connection in either [`Role`]: [`Session::accept`] yields streams the
//!   peer opened (already answered with SYN_REPLY, as k8s does), [`Session::open`] opens one and
//!   waits for the reply. k8s' clients open every stream of exec, attach and port-forward; a
//!   server may open streams too.
//! - Flow control: spdystream has none (no WINDOW_UPDATE, no SETTINGS), so neither does this;
//!   back-pressure is a bounded buffer per stream plus TCP, as in spdystream. The details are
//!   in the `session` module's documentation.
//!
//! ```
//! use skiff_streaming::spdy::{Headers, Session};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (a, b) = tokio::io::duplex(64 << 10);
//! let (client, server) = (Session::client(a), Session::server(b));
//! let mut stdin = client.open([("streamtype", "stdin")].into_iter().collect::<Headers>()).await?;
//! stdin.write_all(b"echo hi\n").await?;
//! stdin.shutdown().await?; // FIN: the server reads EOF
//! let mut theirs = server.accept().await.expect("a stream");
//! assert_eq!(theirs.headers().get("streamtype"), Some("stdin"));
//! let mut line = String::new();
//! theirs.read_to_string(&mut line).await?;
//! assert_eq!(line, "echo hi\n");
//! server.close().await; // RST_STREAM for unfinished streams, GOAWAY, shutdown
//! # Ok(())
//! # }
//! ```

pub mod codec;
mod conn;
pub mod dictionary;
pub mod error;
pub mod frame;
pub mod headers;
mod reader;
mod session;
mod stream;
mod stream_state;
pub mod upgrade;
mod writer;

pub use conn::Role;
pub use error::{FrameError, SessionError};
pub use headers::Headers;
pub use session::{CLOSE_TIMEOUT, DATA_CHUNK, RECV_BUFFER, REPLY_TIMEOUT, Session};
pub use stream::{Stream, StreamReader, StreamWriter};

#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod frame_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod raw_tests;
#[cfg(test)]
mod interop_tests;
