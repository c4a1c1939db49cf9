//! Frames recorded from Go's spdystream framer (testdata/spdy/go-*.bin, written by record.go)
//! decoded here, and frames encoded here checked against Go's bytes or against the fixture Go
//! verified (rust-frames.bin).

use bytes::Bytes;

use super::codec::{FrameDecoder, FrameEncoder};
use super::dictionary::{DICTIONARY, DICTIONARY_ID};
use super::frame::*;
use super::headers::Headers;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/spdy/", $name)).as_slice()
    };
}

/// Decodes a whole fixture, fed `step` bytes at a time, checking nothing is left over.
fn decode_all(bytes: &[u8], step: usize) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for chunk in bytes.chunks(step) {
        decoder.push(chunk);
        while let Some(frame) = decoder.decode().expect("fixture decodes") {
            frames.push(frame);
        }
    }
    assert_eq!(decoder.buffered(), 0, "bytes left after the last frame");
    frames
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().map(|&(n, v)| (n, v)).collect()
}

#[test]
fn dictionary_is_the_one_go_names_in_its_zlib_header() {
    assert_eq!(DICTIONARY.len(), 1423);
    let mut zlib = flate2::Compress::new(flate2::Compression::best(), true);
    assert_eq!(zlib.set_dictionary(DICTIONARY).expect("dictionary"), DICTIONARY_ID);
    // The first header block of a session: zlib header 78 f9 (FDICT set), then the dictionary id.
    let go = fixture!("go-syn-stream.bin");
    assert_eq!(&go[18..20], &[0x78, 0xf9]);
    assert_eq!(u32::from_be_bytes([go[20], go[21], go[22], go[23]]), DICTIONARY_ID);
}

#[test]
fn go_syn_streams_share_one_compression_context_and_decode_in_any_chunking() {
    let bytes = fixture!("go-syn-stream.bin");
    for step in [bytes.len(), 7, 1] {
        let frames = decode_all(bytes, step);
        let streams: Vec<&SynStream> = frames.iter().map(|f| if let Frame::SynStream(s) = f { s } else { panic!("not SYN_STREAM: {f:?}") }).collect();
        let ids: Vec<u32> = streams.iter().map(|s| s.stream_id).collect();
        assert_eq!(ids, [1, 3, 5, 7, 9, 11]);
        let types: Vec<&str> = streams.iter().map(|s| s.headers.get("streamtype").expect("streamtype")).collect();
        assert_eq!(types, ["error", "stdin", "stdout", "stderr", "resize", "data"]);
        assert_eq!(streams[0], &SynStream { stream_id: 1, headers: headers(&[("streamtype", "error")]), ..SynStream::default() });
        assert_eq!(streams[2].headers.get_all("x-multi"), ["one", "two"]);
        assert_eq!(streams[2].headers.len(), 2);
        let last = streams[5];
        assert_eq!((last.associated_to, last.priority, last.slot, last.fin, last.unidirectional), (9, 5, 0, true, true));
        assert_eq!(last.headers, headers(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]));
    }
}

#[test]
fn go_syn_stream_after_the_first_does_not_inflate_without_its_context() {
    let bytes = fixture!("go-syn-stream.bin");
    let first_len = 8 + u32::from_be_bytes([0, bytes[5], bytes[6], bytes[7]]) as usize;
    let mut decoder = FrameDecoder::new();
    decoder.push(&bytes[first_len..]);
    assert!(decoder.decode().is_err(), "a later block inflated without the earlier ones");
}

#[test]
fn go_syn_reply_and_headers() {
    let frames = decode_all(fixture!("go-syn-reply.bin"), 3);
    assert_eq!(frames, [Frame::SynReply(SynReply { stream_id: 1, fin: false, headers: Headers::new() }), Frame::SynReply(SynReply { stream_id: 3, fin: true, headers: headers(&[("x-reply", "yes")]) })]);
    let frames = decode_all(fixture!("go-headers.bin"), 5);
    assert_eq!(frames, [Frame::Headers(HeadersFrame { stream_id: 5, fin: true, headers: headers(&[("x-trailer", "done")]) })]);
}

/// The frames of the fixtures without header blocks, as Rust builds them.
fn plain_fixtures() -> Vec<(&'static [u8], Vec<Frame>)> {
    let data = |fin, payload: &'static [u8]| Frame::Data(Data { stream_id: 3, fin, payload: Bytes::from_static(payload) });
    vec![
        (fixture!("go-data.bin"), vec![data(false, b"hello from go\n"), data(true, b"")]),
        (fixture!("go-rst-stream.bin"), vec![Frame::RstStream(RstStream { stream_id: 5, status: RstStatus::CANCEL }), Frame::RstStream(RstStream { stream_id: 7, status: RstStatus::REFUSED_STREAM })]),
        (fixture!("go-ping.bin"), vec![Frame::Ping(Ping { id: 1 }), Frame::Ping(Ping { id: 2 })]),
        (fixture!("go-goaway.bin"), vec![Frame::GoAway(GoAway { last_good_stream_id: 7, status: GoAwayStatus::OK })]),
        (
            fixture!("go-settings.bin"),
            vec![Frame::Settings(Settings {
                clear_persisted: false,
                entries: vec![Setting { flags: Setting::FLAG_PERSIST_VALUE, id: Setting::MAX_CONCURRENT_STREAMS, value: 100 }, Setting { flags: 0, id: Setting::INITIAL_WINDOW_SIZE, value: 65536 }],
            })],
        ),
        (fixture!("go-window-update.bin"), vec![Frame::WindowUpdate(WindowUpdate { stream_id: 3, delta: 65536 })]),
    ]
}

#[test]
fn go_frames_without_headers_decode_to_their_fields() {
    for (bytes, want) in plain_fixtures() {
        assert_eq!(decode_all(bytes, 1), want);
    }
}

#[test]
fn rust_encodes_frames_without_headers_byte_for_byte_as_go() {
    for (bytes, frames) in plain_fixtures() {
        let mut encoder = FrameEncoder::new();
        let mut out = Vec::new();
        for frame in &frames {
            encoder.encode(frame, &mut out).expect("encodes");
        }
        assert_eq!(out, bytes, "{frames:?}");
    }
}

/// What record.go's `verify` mode expects rust-frames.bin to hold.
fn rust_fixture_frames() -> Vec<Frame> {
    let mut multi = headers(&[("Streamtype", "stdin")]);
    multi.append("X-Multi", "one");
    multi.append("x-multi", "two");
    vec![
        Frame::SynStream(SynStream { stream_id: 1, headers: headers(&[("streamtype", "error")]), ..SynStream::default() }),
        Frame::SynStream(SynStream { stream_id: 3, unidirectional: true, headers: multi, ..SynStream::default() }),
        Frame::SynReply(SynReply { stream_id: 2, fin: false, headers: Headers::new() }),
        Frame::SynReply(SynReply { stream_id: 4, fin: true, headers: headers(&[("x-reply", "yes")]) }),
        Frame::Headers(HeadersFrame { stream_id: 3, fin: false, headers: headers(&[("x-trailer", "done")]) }),
        Frame::Data(Data { stream_id: 3, fin: false, payload: Bytes::from_static(b"hello from rust\n") }),
        Frame::Data(Data { stream_id: 3, fin: true, payload: Bytes::new() }),
        Frame::RstStream(RstStream { stream_id: 5, status: RstStatus::CANCEL }),
        Frame::Ping(Ping { id: 2 }),
        Frame::GoAway(GoAway { last_good_stream_id: 7, status: GoAwayStatus::PROTOCOL_ERROR }),
        Frame::Settings(Settings { clear_persisted: false, entries: vec![Setting { flags: Setting::FLAG_PERSISTED, id: Setting::MAX_CONCURRENT_STREAMS, value: 100 }] }),
        Frame::WindowUpdate(WindowUpdate { stream_id: 3, delta: 1024 }),
    ]
}

/// rust-frames.bin was written by this encoder and decoded field by field by Go's framer
/// (`go run record.go verify rust-frames.bin`). The encoder must still produce frames that
/// decode the same, and the file itself must decode here to the same frames. Set
/// SKIFF_SPDY_WRITE_FIXTURES=1 to rewrite it (then re-run the Go check).
#[test]
fn encoded_frames_match_rust_fixture() {
    let frames = rust_fixture_frames();
    let mut encoder = FrameEncoder::new();
    let mut out = Vec::new();
    for frame in &frames {
        encoder.encode(frame, &mut out).expect("encodes");
    }
    if std::env::var_os("SKIFF_SPDY_WRITE_FIXTURES").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/spdy/rust-frames.bin"), &out).expect("writes the fixture");
    }
    assert_eq!(decode_all(&out, 2), frames);
    assert_eq!(decode_all(fixture!("rust-frames.bin"), 1), frames);
}

#[test]
fn header_names_are_lowercased_and_values_nul_joined_on_the_wire() {
    let mut encoder = FrameEncoder::new();
    let mut out = Vec::new();
    let mut h = Headers::new();
    h.append("StreamType", "stdout");
    h.append("X-Multi", "a");
    h.append("x-MULTI", "b");
    encoder.encode(&Frame::SynReply(SynReply { stream_id: 1, fin: false, headers: h }), &mut out).expect("encodes");
    let mut zlib = flate2::Decompress::new(true);
    let mut block = Vec::with_capacity(256);
    assert!(zlib.decompress_vec(&out[12..], &mut block, flate2::FlushDecompress::Sync).is_err(), "needs the dictionary first");
    zlib.set_dictionary(DICTIONARY).expect("dictionary");
    zlib.decompress_vec(&out[12 + zlib.total_in() as usize..], &mut block, flate2::FlushDecompress::Sync).expect("inflates");
    let mut want = vec![0, 0, 0, 2, 0, 0, 0, 10];
    want.extend_from_slice(b"streamtype");
    want.extend_from_slice(&[0, 0, 0, 6]);
    want.extend_from_slice(b"stdout");
    want.extend_from_slice(&[0, 0, 0, 7]);
    want.extend_from_slice(b"x-multi");
    want.extend_from_slice(&[0, 0, 0, 3]);
    want.extend_from_slice(b"a\0b");
    assert_eq!(block, want);
}

#[test]
fn repeated_headers_compress_smaller_through_the_shared_context() {
    let mut encoder = FrameEncoder::new();
    let h = headers(&[("streamtype", "stdout"), ("port", "8080"), ("requestid", "17")]);
    let sizes: Vec<usize> = (0..3)
        .map(|i| {
            let mut out = Vec::new();
            encoder.encode(&Frame::SynStream(SynStream { stream_id: 1 + 2 * i, headers: h.clone(), ..SynStream::default() }), &mut out).expect("encodes");
            out.len()
        })
        .collect();
    assert!(sizes[1] < sizes[0] && sizes[2] <= sizes[1], "{sizes:?}");
}
