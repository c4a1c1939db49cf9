//! One WebSocket message to and from a channel message, per encoding.
//!
//! Decoding mirrors Kubernetes' `wsstream` reader: an empty message is skipped; on
//! `v5.channel.k8s.io` a message starting with 255 is the close signal and must be exactly
//! `[255, channel]`; otherwise the first byte (or, in base64, the first byte minus `'0'`) is
//! the channel and the rest its payload. Text and binary messages are read alike, as the Go
//! server reads them. A payload is base64-decoded only once it is known to go to a channel
//! that is read, so a malformed payload for an ignored channel costs nothing.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{Encoding, Protocol};

/// The close signal's first byte (`remotecommand.StreamClose` in Kubernetes).
pub(crate) const CLOSE_SIGNAL: u8 = 255;

/// A decoded message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Data for `channel`, still in the protocol's encoding (see [`decode_payload`]).
    Data { channel: u8, payload: Bytes },
    /// The v5 close signal: the peer will send nothing more on `channel`.
    Close { channel: u8 },
}

/// A message that breaks the protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FrameError {
    #[error("the close signal must be followed by exactly one channel byte, got {0} bytes")]
    CloseLength(usize),
    #[error("the payload for channel {0} is not valid base64")]
    Base64(u8),
}

/// Decodes one data message's bytes; `None` for an empty message.
pub(crate) fn decode(protocol: Protocol, message: Bytes) -> Result<Option<Frame>, FrameError> {
    let Some(&first) = message.first() else { return Ok(None) };
    if protocol.has_close_signal() && first == CLOSE_SIGNAL {
        return match *message {
            [_, channel] => Ok(Some(Frame::Close { channel })),
            _ => Err(FrameError::CloseLength(message.len() - 1)),
        };
    }
    let channel = match protocol.encoding() {
        Encoding::Binary => first,
        Encoding::Base64 => first.wrapping_sub(b'0'),
    };
    Ok(Some(Frame::Data { channel, payload: message.slice(1..) }))
}

/// The raw bytes of a payload that [`decode`] returned for `channel`. Line breaks inside
/// base64 are skipped, as Go's decoder skips them.
pub(crate) fn decode_payload(encoding: Encoding, channel: u8, payload: Bytes) -> Result<Bytes, FrameError> {
    match encoding {
        Encoding::Binary => Ok(payload),
        Encoding::Base64 => {
            let text: Vec<u8> = payload.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
            base64::engine::general_purpose::STANDARD.decode(text).map(Bytes::from).map_err(|_| FrameError::Base64(channel))
        }
    }
}

/// The message carrying `data` on `channel`. The caller keeps `channel` within the protocol's
/// [`max_channels`](Protocol::max_channels).
pub(crate) fn encode(encoding: Encoding, channel: u8, data: &[u8]) -> Message {
    match encoding {
        Encoding::Binary => {
            let mut frame = BytesMut::with_capacity(data.len() + 1);
            frame.put_u8(channel);
            frame.put_slice(data);
            Message::Binary(frame.freeze())
        }
        Encoding::Base64 => {
            let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
            text.push(char::from(b'0'.wrapping_add(channel)));
            base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
            Message::text(text)
        }
    }
}

/// The v5 close signal for `channel`.
pub(crate) fn encode_close(channel: u8) -> Message {
    Message::Binary(Bytes::from(vec![CLOSE_SIGNAL, channel]))
}
