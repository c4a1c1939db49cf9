use super::*;

fn captured(len: usize, byte: u8) -> Captured {
    Captured { bytes: vec![byte; len], cut: false }
}

#[test]
fn short_output_passes_unchanged() {
    let (out, err) = fit(Captured { bytes: b"hello\n".to_vec(), cut: false }, Captured::default());
    assert_eq!(out, b"hello\n");
    assert!(err.is_empty());
}

#[test]
fn a_stream_past_its_cap_is_cut_and_marked() {
    let (out, err) = fit(Captured { bytes: vec![b'x'; 100], cut: true }, captured(3, b'e'));
    assert_eq!(&out[..100], &[b'x'; 100][..]);
    assert!(out.ends_with(TRUNCATED), "a cut stream ends with the marker");
    assert_eq!(err, b"eee");
}

#[test]
fn both_streams_together_fit_the_answer_budget() {
    let (out, err) = fit(captured(STREAM_CAP, b'o'), captured(STREAM_CAP, b'e'));
    assert!(out.len() <= STREAM_CAP && err.len() <= STREAM_CAP);
    assert!(out.len() + err.len() <= ANSWER_BUDGET, "{} + {} bytes exceed the budget", out.len(), err.len());
    assert!(out.ends_with(TRUNCATED) && err.ends_with(TRUNCATED));
    // The budget is used, not wasted: within a marker's length of it.
    assert!(out.len() + err.len() + TRUNCATED.len() >= ANSWER_BUDGET);
}

#[test]
fn a_long_stream_beside_a_short_one_gives_way_alone() {
    let (out, err) = fit(captured(STREAM_CAP - 1000, b'o'), captured(8 << 10, b'e'));
    assert_eq!(err, vec![b'e'; 8 << 10], "the short stream is kept whole");
    assert!(out.ends_with(TRUNCATED));
    assert!(out.len() + err.len() <= ANSWER_BUDGET);
}

#[test]
fn capture_keeps_the_cap_and_reads_to_the_end() {
    let data = vec![7u8; 300_000];
    let c = capture(&data[..], 100_000);
    assert_eq!(c.bytes.len(), 100_000);
    assert!(c.cut);
    let c = capture(&data[..], 300_000);
    assert_eq!(c.bytes.len(), 300_000);
    assert!(!c.cut, "exactly the cap is not a cut");
}
