//! What can go wrong: malformed frames ([`FrameError`], fatal to a session since the header
//! compression context cannot survive a bad frame) and session failures ([`SessionError`]).

use std::io;
use std::sync::Arc;

use super::frame::RstStatus;

/// A frame that could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unsupported spdy version {version}: only SPDY/3 (3.1) is spoken")]
    UnsupportedVersion { version: u16 },
    #[error("{kind} frame of {length} bytes exceeds the limit of {max} bytes")]
    TooLarge { kind: &'static str, length: usize, max: usize },
    #[error("invalid {kind} frame: {reason}")]
    Invalid { kind: &'static str, reason: &'static str },
    #[error("truncated header block: {reason}")]
    TruncatedHeaderBlock { reason: &'static str },
    #[error("header block has {extra} bytes after its last header")]
    TrailingHeaderBytes { extra: usize },
    #[error("header name {name:?} is not lowercase, as SPDY/3 requires")]
    UppercaseHeaderName { name: String },
    #[error("header {name:?} appears twice in one header block")]
    DuplicateHeader { name: String },
    #[error("header {name:?} is not valid utf-8")]
    NonUtf8Header { name: String },
    #[error("value of header {name:?} contains a NUL byte, which SPDY uses to separate values")]
    NulInHeaderValue { name: String },
    #[error("header block does not inflate: {message}")]
    Decompress { message: String },
    #[error("header block does not deflate: {message}")]
    Compress { message: String },
}

/// A session or stream operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    #[error("the spdy session is closed")]
    Closed,
    #[error("the peer sent GOAWAY: no new streams on this session")]
    GoneAway,
    #[error("the peer reset stream {stream_id} before accepting it ({status})")]
    Refused { stream_id: u32, status: RstStatus },
    #[error("the peer did not accept stream {stream_id} within {seconds} s")]
    ReplyTimeout { stream_id: u32, seconds: u64 },
    #[error("stream ids of this session are used up: open a new connection")]
    StreamIdsExhausted,
    #[error("spdy protocol error: {0}")]
    Protocol(#[from] FrameError),
    #[error("spdy connection failed: {0}")]
    Io(Arc<io::Error>),
}

impl From<io::Error> for SessionError {
    fn from(err: io::Error) -> Self {
        SessionError::Io(Arc::new(err))
    }
}
