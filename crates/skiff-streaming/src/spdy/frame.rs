//! SPDY/3 frames in memory: what [`super::codec`] turns bytes into and back.
//!
//! Every frame starts with 8 bytes; the top bit tells a control frame from a data frame:
//!
//! ```text
//!  control frame                              data frame
//!  +-+-------------+---------------+          +-+-----------------------------+
//!  |1| version (15)|   type (16)   |          |0|       stream id (31)        |
//!  +-+-------------+---------------+          +-+-------------+---------------+
//!  | flags (8) |     length (24)   |          | flags (8) |     length (24)   |
//!  +-----------+-------------------+          +-----------+-------------------+
//!  |  payload, `length` bytes ...  |          |  payload, `length` bytes ...  |
//! ```
//!
//! Control payloads (all integers big-endian, stream ids 31 bits behind a reserved bit):
//!
//! ```text
//!  SYN_STREAM (1)    stream id | associated-to stream id | pri (3) unused (5) | slot (8) | header block
//!  SYN_REPLY (2)     stream id | header block
//!  RST_STREAM (3)    stream id | status (32)
//!  SETTINGS (4)      count (32) | count x [ flags (8) id (24) | value (32) ]
//!  PING (6)          id (32)
//!  GOAWAY (7)        last good stream id | status (32)
//!  HEADERS (8)       stream id | header block
//!  WINDOW_UPDATE (9) stream id | delta window size (1 reserved + 31)
//! ```
//!
//! Header blocks are zlib-compressed, see [`super::headers`]. Flags: FIN (0x01) on SYN_STREAM,
//! SYN_REPLY, HEADERS and DATA ends the sender's half of the stream; UNIDIRECTIONAL (0x02) on
//! SYN_STREAM says the receiver will not send on it; 0x01 on SETTINGS asks to clear persisted
//! settings.

use std::fmt;

use bytes::Bytes;

use super::headers::Headers;

/// The protocol version every control frame carries; SPDY/3.1 changed flow control only, so
/// its frames still say 3.
pub const VERSION: u16 = 3;

/// The largest payload a 24-bit length can describe.
pub const MAX_FRAME_PAYLOAD: usize = 0x00ff_ffff;

/// The largest control frame payload accepted. Kubernetes' header blocks are a few dozen bytes;
/// a peer sending a megabyte of compressed headers is broken or hostile.
pub const MAX_CONTROL_PAYLOAD: usize = 1 << 20;

/// The largest header block accepted once inflated (zlib expands small inputs a thousandfold).
pub const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Stream ids are 31 bits.
pub const MAX_STREAM_ID: u32 = 0x7fff_ffff;

pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
pub const FLAG_SETTINGS_CLEAR: u8 = 0x01;

pub const TYPE_SYN_STREAM: u16 = 1;
pub const TYPE_SYN_REPLY: u16 = 2;
pub const TYPE_RST_STREAM: u16 = 3;
pub const TYPE_SETTINGS: u16 = 4;
pub const TYPE_PING: u16 = 6;
pub const TYPE_GOAWAY: u16 = 7;
pub const TYPE_HEADERS: u16 = 8;
pub const TYPE_WINDOW_UPDATE: u16 = 9;

/// One frame, control or data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream(SynStream),
    SynReply(SynReply),
    RstStream(RstStream),
    Settings(Settings),
    Ping(Ping),
    GoAway(GoAway),
    Headers(HeadersFrame),
    WindowUpdate(WindowUpdate),
    Data(Data),
    /// A control frame of a type SPDY/3 does not define (CREDENTIAL, SPDY/2's NOOP, anything
    /// newer). The draft says to ignore it; its payload was skipped.
    Unknown(UnknownControl),
}

impl Frame {
    /// The frame's name as the draft spells it, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::SynStream(_) => "SYN_STREAM",
            Frame::SynReply(_) => "SYN_REPLY",
            Frame::RstStream(_) => "RST_STREAM",
            Frame::Settings(_) => "SETTINGS",
            Frame::Ping(_) => "PING",
            Frame::GoAway(_) => "GOAWAY",
            Frame::Headers(_) => "HEADERS",
            Frame::WindowUpdate(_) => "WINDOW_UPDATE",
            Frame::Data(_) => "DATA",
            Frame::Unknown(_) => "unknown control",
        }
    }
}

/// Opens a stream. `priority` is 0 (highest) to 7; `slot` names a client certificate and is 0
/// everywhere Kubernetes is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SynStream {
    pub stream_id: u32,
    pub associated_to: u32,
    pub priority: u8,
    pub slot: u8,
    pub fin: bool,
    pub unidirectional: bool,
    pub headers: Headers,
}

/// Accepts a stream the peer opened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SynReply {
    pub stream_id: u32,
    pub fin: bool,
    pub headers: Headers,
}

/// Ends a stream abnormally, both directions at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStream {
    pub stream_id: u32,
    pub status: RstStatus,
}

/// A RST_STREAM status code; 0 is invalid, codes past 11 are kept as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: RstStatus = RstStatus(1);
    pub const INVALID_STREAM: RstStatus = RstStatus(2);
    pub const REFUSED_STREAM: RstStatus = RstStatus(3);
    pub const UNSUPPORTED_VERSION: RstStatus = RstStatus(4);
    pub const CANCEL: RstStatus = RstStatus(5);
    pub const INTERNAL_ERROR: RstStatus = RstStatus(6);
    pub const FLOW_CONTROL_ERROR: RstStatus = RstStatus(7);
    pub const STREAM_IN_USE: RstStatus = RstStatus(8);
    pub const STREAM_ALREADY_CLOSED: RstStatus = RstStatus(9);
    pub const INVALID_CREDENTIALS: RstStatus = RstStatus(10);
    pub const FRAME_TOO_LARGE: RstStatus = RstStatus(11);
}

impl fmt::Display for RstStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 11] = [
            "PROTOCOL_ERROR",
            "INVALID_STREAM",
            "REFUSED_STREAM",
            "UNSUPPORTED_VERSION",
            "CANCEL",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "STREAM_IN_USE",
            "STREAM_ALREADY_CLOSED",
            "INVALID_CREDENTIALS",
            "FRAME_TOO_LARGE",
        ];
        match self.0.checked_sub(1).and_then(|i| NAMES.get(i as usize)) {
            Some(name) => f.write_str(name),
            None => write!(f, "status {}", self.0),
        }
    }
}

/// Connection settings. spdystream parses and ignores them, and so does the session here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub clear_persisted: bool,
    pub entries: Vec<Setting>,
}

/// One SETTINGS entry: flags (PERSIST_VALUE 0x1, PERSISTED 0x2), a 24-bit id, a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

impl Setting {
    pub const FLAG_PERSIST_VALUE: u8 = 0x1;
    pub const FLAG_PERSISTED: u8 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u32 = 4;
    pub const INITIAL_WINDOW_SIZE: u32 = 7;
}

/// A ping; the peer echoes ids it did not start. Clients use odd ids, servers even ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    pub id: u32,
}

/// The sender accepts no new streams; streams up to `last_good_stream_id` it will finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAway {
    pub last_good_stream_id: u32,
    pub status: GoAwayStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: GoAwayStatus = GoAwayStatus(0);
    pub const PROTOCOL_ERROR: GoAwayStatus = GoAwayStatus(1);
    pub const INTERNAL_ERROR: GoAwayStatus = GoAwayStatus(2);
}

/// More headers on an open stream (named so it does not clash with the [`Headers`] map).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeadersFrame {
    pub stream_id: u32,
    pub fin: bool,
    pub headers: Headers,
}

/// SPDY/3.1 flow control credit; stream 0 means the whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    pub stream_id: u32,
    pub delta: u32,
}

/// Stream payload. An empty payload with `fin` is how spdystream half-closes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data {
    pub stream_id: u32,
    pub fin: bool,
    pub payload: Bytes,
}

/// A control frame of an unknown type, as it was announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownControl {
    pub frame_type: u16,
    pub flags: u8,
    pub length: usize,
}
