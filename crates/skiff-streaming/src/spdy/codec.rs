//! Frames to bytes and back. The layout is drawn in [`super::frame`].
//!
//! [`FrameDecoder`] takes bytes in whatever pieces the connection delivers them and yields a
//! frame once all of it is there; [`FrameEncoder`] appends frames to a buffer. Each owns one
//! direction's header compression context, so one session needs exactly one of each, used in
//! wire order.
//!
//! Checks follow spdystream where it rejects a frame (zero stream ids, RST_STREAM status 0,
//! flags on PING/GOAWAY/WINDOW_UPDATE, fixed-size frames of another size, non-lowercase or
//! repeated header names) and add what it does not check: the version must be 3, and control
//! frames and inflated header blocks are capped. Control frames of unknown types are skipped,
//! as the SPDY/3 draft requires (spdystream instead fails the connection on them; it never
//! sends one, so this only matters for other peers).

use bytes::{Buf, Bytes, BytesMut};

use super::error::FrameError;
use super::frame::*;
use super::headers::{HeaderCompressor, HeaderDecompressor, Headers};

const HEADER_LEN: usize = 8;

/// Encodes frames, compressing header blocks through one session-long zlib stream.
#[derive(Default)]
pub struct FrameEncoder {
    headers: HeaderCompressor,
}

impl FrameEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `frame` to `out`. On error `out` is left as it was and the compression context
    /// is untouched, so the session can go on.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let start = out.len();
        let result = self.encode_inner(frame, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_inner(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let kind = frame.kind();
        match frame {
            Frame::SynStream(f) => {
                if f.priority > 7 {
                    return Err(FrameError::Invalid { kind, reason: "priority is 0 to 7" });
                }
                let flags = flag(f.fin, FLAG_FIN) | flag(f.unidirectional, FLAG_UNIDIRECTIONAL);
                self.header_frame(out, TYPE_SYN_STREAM, flags, &f.headers, |out| {
                    put_stream_id(out, kind, f.stream_id)?;
                    out.extend_from_slice(&(f.associated_to & MAX_STREAM_ID).to_be_bytes());
                    out.extend_from_slice(&[f.priority << 5, f.slot]);
                    Ok(())
                })
            }
            Frame::SynReply(f) => self.header_frame(out, TYPE_SYN_REPLY, flag(f.fin, FLAG_FIN), &f.headers, |out| put_stream_id(out, kind, f.stream_id)),
            Frame::Headers(f) => self.header_frame(out, TYPE_HEADERS, flag(f.fin, FLAG_FIN), &f.headers, |out| put_stream_id(out, kind, f.stream_id)),
            Frame::RstStream(f) => {
                if f.status.0 == 0 {
                    return Err(FrameError::Invalid { kind, reason: "status 0 is not a status" });
                }
                put_control_header(out, TYPE_RST_STREAM, 0, 8);
                put_stream_id(out, kind, f.stream_id)?;
                out.extend_from_slice(&f.status.0.to_be_bytes());
                Ok(())
            }
            Frame::Settings(f) => {
                let length = 4 + 8 * f.entries.len();
                if length > MAX_CONTROL_PAYLOAD {
                    return Err(FrameError::TooLarge { kind, length, max: MAX_CONTROL_PAYLOAD });
                }
                put_control_header(out, TYPE_SETTINGS, flag(f.clear_persisted, FLAG_SETTINGS_CLEAR), length);
                out.extend_from_slice(&(f.entries.len() as u32).to_be_bytes());
                for e in &f.entries {
                    out.extend_from_slice(&((u32::from(e.flags) << 24) | (e.id & 0x00ff_ffff)).to_be_bytes());
                    out.extend_from_slice(&e.value.to_be_bytes());
                }
                Ok(())
            }
            Frame::Ping(f) => {
                put_control_header(out, TYPE_PING, 0, 4);
                out.extend_from_slice(&f.id.to_be_bytes());
                Ok(())
            }
            Frame::GoAway(f) => {
                put_control_header(out, TYPE_GOAWAY, 0, 8);
                out.extend_from_slice(&(f.last_good_stream_id & MAX_STREAM_ID).to_be_bytes());
                out.extend_from_slice(&f.status.0.to_be_bytes());
                Ok(())
            }
            Frame::WindowUpdate(f) => {
                put_control_header(out, TYPE_WINDOW_UPDATE, 0, 8);
                out.extend_from_slice(&(f.stream_id & MAX_STREAM_ID).to_be_bytes());
                out.extend_from_slice(&(f.delta & 0x7fff_ffff).to_be_bytes());
                Ok(())
            }
            Frame::Data(f) => {
                if f.payload.len() > MAX_FRAME_PAYLOAD {
                    return Err(FrameError::TooLarge { kind, length: f.payload.len(), max: MAX_FRAME_PAYLOAD });
                }
                put_stream_id(out, kind, f.stream_id)?;
                put_flags_length(out, flag(f.fin, FLAG_FIN), f.payload.len());
                out.extend_from_slice(&f.payload);
                Ok(())
            }
            Frame::Unknown(_) => Err(FrameError::Invalid { kind, reason: "a frame of unknown type has no encoding" }),
        }
    }

    /// Writes a control frame whose payload is `fixed` fields and then a header block, patching
    /// the length in once the compressed block's size is known.
    fn header_frame(&mut self, out: &mut Vec<u8>, frame_type: u16, flags: u8, headers: &Headers, fixed: impl FnOnce(&mut Vec<u8>) -> Result<(), FrameError>) -> Result<(), FrameError> {
        let start = out.len();
        put_control_header(out, frame_type, flags, 0);
        fixed(out)?;
        self.headers.compress(headers, out)?;
        let length = out.len() - start - HEADER_LEN;
        if length > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::TooLarge { kind: "header", length, max: MAX_CONTROL_PAYLOAD });
        }
        out[start + 5..start + 8].copy_from_slice(&(length as u32).to_be_bytes()[1..]);
        Ok(())
    }
}

fn flag(set: bool, value: u8) -> u8 {
    if set { value } else { 0 }
}

fn put_control_header(out: &mut Vec<u8>, frame_type: u16, flags: u8, length: usize) {
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    put_flags_length(out, flags, length);
}

fn put_flags_length(out: &mut Vec<u8>, flags: u8, length: usize) {
    out.extend_from_slice(&((u32::from(flags) << 24) | (length as u32 & 0x00ff_ffff)).to_be_bytes());
}

fn put_stream_id(out: &mut Vec<u8>, kind: &'static str, id: u32) -> Result<(), FrameError> {
    if id == 0 || id > MAX_STREAM_ID {
        return Err(FrameError::Invalid { kind, reason: "stream id must be 1 to 2^31-1" });
    }
    out.extend_from_slice(&id.to_be_bytes());
    Ok(())
}

/// Decodes frames from bytes as they arrive.
#[derive(Default)]
pub struct FrameDecoder {
    buf: BytesMut,
    headers: HeaderDecompressor,
    /// Payload bytes of an unknown control frame still to be thrown away.
    skip: usize,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The buffer to read into (`AsyncReadExt::read_buf`); bytes appended there are decoded by
    /// the next [`decode`](Self::decode).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame if all of it has arrived, `None` if more bytes are needed. After an
    /// error the stream is not decodable any further (the header context is lost).
    pub fn decode(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len());
            self.buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let Some(head) = self.buf.first_chunk::<HEADER_LEN>() else { return Ok(None) };
        let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let flags = head[4];
        let length = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if word & 0x8000_0000 == 0 {
            if self.buf.len() < HEADER_LEN + length {
                return Ok(None);
            }
            let mut frame = self.buf.split_to(HEADER_LEN + length);
            frame.advance(HEADER_LEN);
            let stream_id = word & MAX_STREAM_ID;
            if stream_id == 0 {
                return Err(FrameError::Invalid { kind: "DATA", reason: "stream id 0" });
            }
            return Ok(Some(Frame::Data(Data { stream_id, fin: flags & FLAG_FIN != 0, payload: frame.freeze() })));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion { version });
        }
        let frame_type = (word & 0xffff) as u16;
        if !(TYPE_SYN_STREAM..=TYPE_WINDOW_UPDATE).contains(&frame_type) || frame_type == 5 {
            self.buf.advance(HEADER_LEN);
            self.skip = length;
            return Ok(Some(Frame::Unknown(UnknownControl { frame_type, flags, length })));
        }
        if length > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::TooLarge { kind: control_kind(frame_type), length, max: MAX_CONTROL_PAYLOAD });
        }
        if self.buf.len() < HEADER_LEN + length {
            return Ok(None);
        }
        let frame = self.buf.split_to(HEADER_LEN + length).freeze();
        self.control(frame_type, flags, frame.slice(HEADER_LEN..)).map(Some)
    }

    fn control(&mut self, frame_type: u16, flags: u8, p: Bytes) -> Result<Frame, FrameError> {
        let kind = control_kind(frame_type);
        let invalid = |reason| FrameError::Invalid { kind, reason };
        let word = |at: usize| u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
        let fixed = |len: usize| if p.len() == len { Ok(()) } else { Err(invalid("wrong length for its type")) };
        let at_least = |len: usize| if p.len() >= len { Ok(()) } else { Err(invalid("too short for its type")) };
        let stream_id = |id: u32| match id & MAX_STREAM_ID {
            0 => Err(invalid("stream id 0")),
            id => Ok(id),
        };
        let fin = flags & FLAG_FIN != 0;
        Ok(match frame_type {
            TYPE_SYN_STREAM => {
                at_least(10)?;
                // Inflate before checking anything else: the block is part of the zlib stream.
                let headers = self.headers.decompress(&p[10..])?;
                Frame::SynStream(SynStream { stream_id: stream_id(word(0))?, associated_to: word(4) & MAX_STREAM_ID, priority: p[8] >> 5, slot: p[9], fin, unidirectional: flags & FLAG_UNIDIRECTIONAL != 0, headers })
            }
            TYPE_SYN_REPLY => {
                at_least(4)?;
                let headers = self.headers.decompress(&p[4..])?;
                Frame::SynReply(SynReply { stream_id: stream_id(word(0))?, fin, headers })
            }
            TYPE_HEADERS => {
                at_least(4)?;
                let headers = self.headers.decompress(&p[4..])?;
                Frame::Headers(HeadersFrame { stream_id: stream_id(word(0))?, fin, headers })
            }
            TYPE_RST_STREAM => {
                fixed(8)?;
                let status = RstStatus(word(4));
                if status.0 == 0 {
                    return Err(invalid("status 0 is not a status"));
                }
                Frame::RstStream(RstStream { stream_id: stream_id(word(0))?, status })
            }
            TYPE_SETTINGS => {
                at_least(4)?;
                let count = word(0) as usize;
                if (p.len() - 4) / 8 != count || !(p.len() - 4).is_multiple_of(8) {
                    return Err(invalid("entry count does not match the length"));
                }
                let entries = (0..count).map(|i| (word(4 + 8 * i), word(8 + 8 * i))).map(|(w, value)| Setting { flags: (w >> 24) as u8, id: w & 0x00ff_ffff, value }).collect();
                Frame::Settings(Settings { clear_persisted: flags & FLAG_SETTINGS_CLEAR != 0, entries })
            }
            TYPE_PING => {
                fixed(4)?;
                if flags != 0 {
                    return Err(invalid("PING has no flags"));
                }
                match word(0) {
                    0 => return Err(invalid("ping id 0")),
                    id => Frame::Ping(Ping { id }),
                }
            }
            TYPE_GOAWAY => {
                fixed(8)?;
                if flags != 0 {
                    return Err(invalid("GOAWAY has no flags"));
                }
                Frame::GoAway(GoAway { last_good_stream_id: word(0) & MAX_STREAM_ID, status: GoAwayStatus(word(4)) })
            }
            _ => {
                fixed(8)?;
                if flags != 0 {
                    return Err(invalid("WINDOW_UPDATE has no flags"));
                }
                Frame::WindowUpdate(WindowUpdate { stream_id: word(0) & MAX_STREAM_ID, delta: word(4) & 0x7fff_ffff })
            }
        })
    }
}

fn control_kind(frame_type: u16) -> &'static str {
    match frame_type {
        TYPE_SYN_STREAM => "SYN_STREAM",
        TYPE_SYN_REPLY => "SYN_REPLY",
        TYPE_RST_STREAM => "RST_STREAM",
        TYPE_SETTINGS => "SETTINGS",
        TYPE_PING => "PING",
        TYPE_GOAWAY => "GOAWAY",
        TYPE_HEADERS => "HEADERS",
        TYPE_WINDOW_UPDATE => "WINDOW_UPDATE",
        _ => "unknown control",
    }
}
