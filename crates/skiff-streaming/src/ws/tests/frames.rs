//! Message framing per encoding, against the examples in Kubernetes' `wsstream` docs.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

use crate::ws::frame::{decode, decode_payload, encode, encode_close, Frame, FrameError};
use crate::ws::{Encoding, Protocol};

#[test]
fn binary_messages_are_the_channel_byte_then_the_payload() {
    assert_eq!(encode(Encoding::Binary, 0, b"foo\n"), Message::Binary(Bytes::from_static(&[0, 102, 111, 111, 10])));
    assert_eq!(decode(Protocol::V4, Bytes::from_static(&[1, 10])), Ok(Some(Frame::Data { channel: 1, payload: Bytes::from_static(b"\n") })));
}

#[test]
fn base64_messages_are_an_ascii_digit_then_padded_base64() {
    assert_eq!(encode(Encoding::Base64, 0, b"foo\n"), Message::text("0Zm9vCg=="));
    assert_eq!(encode(Encoding::Base64, 1, b""), Message::text("1"));
    let Ok(Some(Frame::Data { channel, payload })) = decode(Protocol::V4Base64, Bytes::from_static(b"1Cg==")) else { panic!("not a data frame") };
    assert_eq!(channel, 1);
    assert_eq!(decode_payload(Encoding::Base64, channel, payload), Ok(Bytes::from_static(b"\n")));
    // Go's decoder skips line breaks inside base64; so does ours.
    assert_eq!(decode_payload(Encoding::Base64, 0, Bytes::from_static(b"Zm9v\r\nCg==")), Ok(Bytes::from_static(b"foo\n")));
    assert_eq!(decode_payload(Encoding::Base64, 0, Bytes::from_static(b"Zm9vCg")), Err(FrameError::Base64(0)));
}

#[test]
fn the_close_signal_exists_only_on_v5_and_is_exactly_two_bytes() {
    assert_eq!(encode_close(0), Message::Binary(Bytes::from_static(&[255, 0])));
    assert_eq!(decode(Protocol::V5, Bytes::from_static(&[255, 0])), Ok(Some(Frame::Close { channel: 0 })));
    assert_eq!(decode(Protocol::V5, Bytes::from_static(&[255])), Err(FrameError::CloseLength(0)));
    assert_eq!(decode(Protocol::V5, Bytes::from_static(&[255, 0, 1])), Err(FrameError::CloseLength(2)));
    // Before v5 the byte is just a channel number (outside every layout).
    assert_eq!(decode(Protocol::V4, Bytes::from_static(&[255, 0])), Ok(Some(Frame::Data { channel: 255, payload: Bytes::from_static(&[0]) })));
}

#[test]
fn empty_messages_carry_nothing() {
    assert_eq!(decode(Protocol::V5, Bytes::new()), Ok(None));
    assert_eq!(decode(Protocol::V4, Bytes::from_static(&[2])), Ok(Some(Frame::Data { channel: 2, payload: Bytes::new() })));
}
