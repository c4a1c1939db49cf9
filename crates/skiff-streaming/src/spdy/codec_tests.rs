//! Malformed input: every rejection the decoder and encoder make, with its typed error.

use bytes::Bytes;

use super::codec::{FrameDecoder, FrameEncoder};
use super::dictionary::DICTIONARY;
use super::error::FrameError;
use super::frame::*;
use super::headers::Headers;

fn decode(bytes: &[u8]) -> Result<Option<Frame>, FrameError> {
    let mut decoder = FrameDecoder::new();
    decoder.push(bytes);
    decoder.decode()
}

fn control(frame_type: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 0x03];
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    out
}

/// A SYN_REPLY for stream 1 whose header block is `block`, deflated against `dictionary`.
fn syn_reply_with_block(block: &[u8], dictionary: &[u8]) -> Vec<u8> {
    let mut zlib = flate2::Compress::new(flate2::Compression::default(), true);
    zlib.set_dictionary(dictionary).expect("dictionary");
    let mut compressed = Vec::with_capacity(block.len() + 64);
    zlib.compress_vec(block, &mut compressed, flate2::FlushCompress::Sync).expect("deflates");
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&compressed);
    control(TYPE_SYN_REPLY, 0, &payload)
}

fn block(pairs: &[(&[u8], &[u8])], count: u32) -> Vec<u8> {
    let mut out = count.to_be_bytes().to_vec();
    for (name, value) in pairs {
        for part in [name, value] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    let ping = control(TYPE_PING, 0, &[0, 0, 0, 9]);
    let mut decoder = FrameDecoder::new();
    for &byte in &ping[..ping.len() - 1] {
        decoder.push(&[byte]);
        assert_eq!(decoder.decode(), Ok(None));
    }
    decoder.push(&ping[ping.len() - 1..]);
    assert_eq!(decoder.decode(), Ok(Some(Frame::Ping(Ping { id: 9 }))));
    assert_eq!(decoder.decode(), Ok(None));
}

#[test]
fn other_versions_are_rejected() {
    let mut frame = control(TYPE_PING, 0, &[0, 0, 0, 1]);
    frame[1] = 2;
    assert_eq!(decode(&frame), Err(FrameError::UnsupportedVersion { version: 2 }));
}

#[test]
fn oversized_control_frames_are_rejected_from_their_header_alone() {
    let mut header = control(TYPE_SYN_STREAM, 0, &[]);
    header[5..8].copy_from_slice(&((MAX_CONTROL_PAYLOAD + 1) as u32).to_be_bytes()[1..]);
    assert_eq!(decode(&header), Err(FrameError::TooLarge { kind: "SYN_STREAM", length: MAX_CONTROL_PAYLOAD + 1, max: MAX_CONTROL_PAYLOAD }));
}

#[test]
fn unknown_control_frames_are_skipped_even_when_split() {
    let mut bytes = control(10, 0, &[7; 300]);
    bytes.extend_from_slice(&control(TYPE_PING, 0, &[0, 0, 0, 3]));
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for chunk in bytes.chunks(64) {
        decoder.push(chunk);
        while let Some(frame) = decoder.decode().expect("decodes") {
            frames.push(frame);
        }
    }
    assert_eq!(frames, [Frame::Unknown(UnknownControl { frame_type: 10, flags: 0, length: 300 }), Frame::Ping(Ping { id: 3 })]);
}

#[test]
fn fixed_size_frames_of_another_size_and_bad_fields_are_invalid() {
    let invalid = |kind, reason| Err(FrameError::Invalid { kind, reason });
    assert_eq!(decode(&control(TYPE_RST_STREAM, 0, &[0, 0, 0, 1])), invalid("RST_STREAM", "wrong length for its type"));
    assert_eq!(decode(&control(TYPE_RST_STREAM, 0, &[0, 0, 0, 1, 0, 0, 0, 0])), invalid("RST_STREAM", "status 0 is not a status"));
    assert_eq!(decode(&control(TYPE_RST_STREAM, 0, &[0, 0, 0, 0, 0, 0, 0, 5])), invalid("RST_STREAM", "stream id 0"));
    assert_eq!(decode(&control(TYPE_PING, 1, &[0, 0, 0, 1])), invalid("PING", "PING has no flags"));
    assert_eq!(decode(&control(TYPE_PING, 0, &[0, 0, 0, 0])), invalid("PING", "ping id 0"));
    // SPDY/2's 4-byte GOAWAY.
    assert_eq!(decode(&control(TYPE_GOAWAY, 0, &[0, 0, 0, 1])), invalid("GOAWAY", "wrong length for its type"));
    assert_eq!(decode(&control(TYPE_WINDOW_UPDATE, 0, &[0; 4])), invalid("WINDOW_UPDATE", "wrong length for its type"));
    assert_eq!(decode(&control(TYPE_SETTINGS, 0, &[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1])), invalid("SETTINGS", "entry count does not match the length"));
    assert_eq!(decode(&control(TYPE_SYN_STREAM, 0, &[0; 9])), invalid("SYN_STREAM", "too short for its type"));
    assert_eq!(decode(&[0, 0, 0, 0, 0, 0, 0, 1, 42]), invalid("DATA", "stream id 0"));
}

#[test]
fn truncated_header_blocks_are_rejected() {
    let lying_count = block(&[(b"streamtype", b"stdin")], 2);
    assert_eq!(decode(&syn_reply_with_block(&lying_count, DICTIONARY)), Err(FrameError::TruncatedHeaderBlock { reason: "name cut short" }));
    let mut cut_value = block(&[(b"streamtype", b"stdin")], 1);
    cut_value.truncate(cut_value.len() - 2);
    assert_eq!(decode(&syn_reply_with_block(&cut_value, DICTIONARY)), Err(FrameError::TruncatedHeaderBlock { reason: "value cut short" }));
    let huge_count = block(&[], u32::MAX);
    assert_eq!(decode(&syn_reply_with_block(&huge_count, DICTIONARY)), Err(FrameError::TruncatedHeaderBlock { reason: "fewer bytes than the pair count needs" }));
    let mut trailing = block(&[(b"a", b"b")], 1);
    trailing.push(0);
    assert_eq!(decode(&syn_reply_with_block(&trailing, DICTIONARY)), Err(FrameError::TrailingHeaderBytes { extra: 1 }));
    // A SYN_REPLY whose compressed block is cut: inflate runs dry before the block is whole.
    let mut cut = syn_reply_with_block(&block(&[(b"streamtype", b"stdin")], 1), DICTIONARY);
    cut.truncate(cut.len() - 6);
    let len = (cut.len() - 8) as u32;
    cut[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
    assert!(matches!(decode(&cut), Err(FrameError::TruncatedHeaderBlock { .. })), "{:?}", decode(&cut));
}

#[test]
fn header_names_must_be_lowercase_and_unique() {
    let upper = block(&[(b"StreamType", b"stdin")], 1);
    assert_eq!(decode(&syn_reply_with_block(&upper, DICTIONARY)), Err(FrameError::UppercaseHeaderName { name: "StreamType".into() }));
    let twice = block(&[(b"port", b"1"), (b"port", b"2")], 2);
    assert_eq!(decode(&syn_reply_with_block(&twice, DICTIONARY)), Err(FrameError::DuplicateHeader { name: "port".into() }));
}

#[test]
fn blocks_compressed_against_another_dictionary_are_rejected() {
    let frame = syn_reply_with_block(&block(&[(b"a", b"b")], 1), b"not the spdy dictionary");
    assert!(matches!(decode(&frame), Err(FrameError::Decompress { .. })), "{:?}", decode(&frame));
}

#[test]
fn inflated_blocks_are_capped() {
    let value = vec![b'x'; MAX_HEADER_BLOCK];
    let bomb = block(&[(b"x", &value)], 1);
    let result = decode(&syn_reply_with_block(&bomb, DICTIONARY));
    assert!(matches!(result, Err(FrameError::TooLarge { kind: "inflated header block", max: MAX_HEADER_BLOCK, .. })), "{result:?}");
}

#[test]
fn encoder_rejects_what_it_cannot_send_and_stays_usable() {
    let mut encoder = FrameEncoder::new();
    let mut out = vec![1, 2, 3];
    let mut nul = Headers::new();
    nul.insert("x", "a\0b");
    assert_eq!(encoder.encode(&Frame::SynReply(SynReply { stream_id: 1, fin: false, headers: nul }), &mut out), Err(FrameError::NulInHeaderValue { name: "x".into() }));
    assert_eq!(encoder.encode(&Frame::Data(Data { stream_id: 0, fin: false, payload: Bytes::new() }), &mut out), Err(FrameError::Invalid { kind: "DATA", reason: "stream id must be 1 to 2^31-1" }));
    assert_eq!(encoder.encode(&Frame::RstStream(RstStream { stream_id: 1, status: RstStatus(0) }), &mut out), Err(FrameError::Invalid { kind: "RST_STREAM", reason: "status 0 is not a status" }));
    assert_eq!(out, [1, 2, 3], "a failed encode left bytes behind");
    // The compression context is intact: a following header frame decodes.
    let reply = Frame::SynReply(SynReply { stream_id: 1, fin: false, headers: [("streamtype", "stdout")].into_iter().collect() });
    out.clear();
    encoder.encode(&reply, &mut out).expect("encodes");
    assert_eq!(decode(&out), Ok(Some(reply)));
}
