//! The content store cases.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Barrier;

use super::{assert_err, label_map, Ctx};
use crate::{CommitOptions, ContentInfo, Digest, LabelSelector, LeaseId, StoreError};

fn read_all(ctx: &Ctx, d: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    ctx.c().open(d).expect("open").read_to_end(&mut out).expect("read");
    out
}

/// A blob written in pieces with its digest and size promised commits to a record that says so, and
/// reads back whole, verified, and from an offset. Unpromised and empty blobs work too.
pub fn write_commit_and_read_back(ctx: &mut Ctx) {
    let bytes = b"hello, content store".repeat(1000);
    let d = Digest::of(&bytes);
    let mut w = ctx.c().writer(Some(d.clone()), Some(bytes.len() as u64)).expect("writer");
    for chunk in bytes.chunks(4099) {
        w.write_all(chunk).expect("write");
    }
    assert_eq!(w.written(), bytes.len() as u64);
    let info = w.commit(CommitOptions { labels: label_map(&[("k", "v")]), lease: None }).expect("commit");
    assert_eq!((&info.digest, info.size, &info.labels), (&d, bytes.len() as u64, &label_map(&[("k", "v")])));
    assert_eq!(ctx.c().info(&d).expect("info"), info, "info shows what commit returned");
    assert_eq!(ctx.c().read_verified(&d, 1 << 20).expect("read_verified"), bytes);
    assert_eq!(read_all(ctx, &d), bytes);
    let mut r = ctx.c().open(&d).expect("open");
    r.seek(SeekFrom::Start(7)).expect("seek");
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).expect("read from offset");
    assert_eq!(tail, bytes[7..]);
    ctx.c().verify(&d).expect("verify");

    let mut w = ctx.c().writer(None, None).expect("writer without promises");
    w.write_all(b"unpromised").expect("write");
    assert_eq!(w.commit(CommitOptions::default()).expect("commit").digest, Digest::of(b"unpromised"), "the digest is computed");
    let empty = ctx.put(b"", &[]);
    assert_eq!((empty.size, read_all(ctx, &empty.digest)), (0, Vec::new()), "an empty blob is a blob");
    assert_eq!(ctx.c().list(&[]).expect("list").len(), 3);
}

/// A wrong digest or size is refused with its own error naming both values, and leaves nothing stored.
pub fn promises_are_checked_at_commit(ctx: &mut Ctx) {
    let c = ctx.c();
    let wrong = Digest::of(b"something else");
    match c.ingest(&mut &b"hello"[..], Some(wrong.clone()), None, CommitOptions::default()) {
        Err(StoreError::DigestMismatch { expected, actual }) => assert_eq!((expected, actual), (wrong.clone(), Digest::of(b"hello"))),
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    match c.ingest(&mut &b"hello"[..], Some(Digest::of(b"hello")), Some(9), CommitOptions::default()) {
        Err(StoreError::SizeMismatch { expected: 9, actual: 5, .. }) => {}
        other => panic!("expected a size mismatch 9 vs 5, got {other:?}"),
    }
    assert_err!(c.ingest(&mut &b"hello"[..], None, Some(3), CommitOptions::default()), StoreError::SizeMismatch { expected: 3, .. });
    // A writer fed more than it was promised fails at commit, whatever ingest would do.
    let mut w = c.writer(None, Some(2)).expect("writer");
    w.write_all(b"three").expect("write");
    assert_err!(w.commit(CommitOptions::default()), StoreError::SizeMismatch { expected: 2, actual: 5, .. });
    let mut w = c.writer(Some(Digest::of(b"abandoned")), None).expect("writer");
    w.write_all(b"abandoned").expect("write");
    drop(w);
    assert!(c.list(&[]).expect("list").is_empty(), "no record for a refused or abandoned blob");
    for d in [wrong, Digest::of(b"hello"), Digest::of(b"three"), Digest::of(b"abandoned")] {
        assert_err!(c.info(&d), StoreError::NotFound { .. });
    }
}

/// Every operation on an unknown digest says not found.
pub fn missing_blobs_are_not_found(ctx: &mut Ctx) {
    let c = ctx.c();
    let d = Digest::of(b"never stored");
    assert_err!(c.info(&d), StoreError::NotFound { .. });
    assert_err!(c.open(&d), StoreError::NotFound { .. });
    assert_err!(c.read_verified(&d, 1 << 20), StoreError::NotFound { .. });
    assert_err!(c.verify(&d), StoreError::NotFound { .. });
    assert_err!(c.delete(&d), StoreError::NotFound { .. });
    assert_err!(c.update_labels(&d, &BTreeMap::from([("k".to_string(), Some("v".to_string()))])), StoreError::NotFound { .. });
    let lease = LeaseId("suite-lease".to_string());
    assert_err!(c.lease_existing(&d, &lease), StoreError::NotFound { .. });
    assert!(c.list(&[]).expect("list").is_empty(), "asking creates nothing");
}

/// Labels are set and removed on a record; walk and list filter by selectors (all must match) in digest order.
pub fn info_labels_and_walk_with_selectors(ctx: &mut Ctx) {
    let a = ctx.put(b"a", &[("kind", "layer"), ("team", "x")]);
    let b = ctx.put(b"b", &[("kind", "config")]);
    let n = ctx.put(b"n", &[]);
    let c = ctx.c();
    let sel = |s: &str| s.parse::<LabelSelector>().expect("selector");
    let digests = |found: Vec<ContentInfo>| found.into_iter().map(|i| i.digest).collect::<Vec<_>>();
    let mut all = vec![a.digest.clone(), b.digest.clone(), n.digest.clone()];
    all.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(digests(c.list(&[]).expect("list")), all, "every record, in digest order");
    assert_eq!(digests(c.list(&[sel("kind")]).expect("list")).len(), 2, "a key-only selector matches any value");
    assert_eq!(digests(c.list(&[sel("kind=layer")]).expect("list")), vec![a.digest.clone()]);
    assert_eq!(digests(c.list(&[sel("kind=layer"), sel("team=x")]).expect("list")), vec![a.digest.clone()]);
    assert!(c.list(&[sel("kind=layer"), sel("team=y")]).expect("list").is_empty(), "every selector must match");
    assert!(c.list(&[sel("absent")]).expect("list").is_empty());

    let changes = BTreeMap::from([("kind".to_string(), None), ("new".to_string(), Some("1".to_string())), ("team".to_string(), Some("z".to_string()))]);
    let updated = c.update_labels(&a.digest, &changes).expect("update labels");
    assert_eq!(updated.labels, label_map(&[("new", "1"), ("team", "z")]));
    assert_eq!(c.info(&a.digest).expect("info"), updated, "info shows the update");
    assert_eq!((updated.size, &updated.created_at), (a.size, &a.created_at), "labels change nothing else");
    assert!(updated.updated_at >= a.updated_at);
    assert_eq!(digests(c.list(&[sel("kind")]).expect("list")), vec![b.digest.clone()]);

    let mut seen = 0;
    let stopped = c.walk(&[], &mut |_| {
        seen += 1;
        Err(StoreError::InvalidArgument("stop here".into()))
    });
    assert_err!(stopped, StoreError::InvalidArgument(_));
    assert_eq!(seen, 1, "walk stops at the first error of its callback");
}

/// Committing bytes already stored keeps one record, its creation time, and merges the new labels.
pub fn committing_a_stored_blob_merges_labels(ctx: &mut Ctx) {
    let first = ctx.put(b"same bytes", &[("a", "1"), ("shared", "first")]);
    let second = ctx.put(b"same bytes", &[("b", "2"), ("shared", "second")]);
    assert_eq!(second.digest, first.digest);
    assert_eq!(second.created_at, first.created_at, "the blob was not created again");
    assert_eq!(second.labels, label_map(&[("a", "1"), ("b", "2"), ("shared", "second")]));
    assert_eq!(ctx.c().info(&first.digest).expect("info"), second);
    assert_eq!(ctx.c().list(&[]).expect("list").len(), 1);
    ctx.c().verify(&first.digest).expect("verify");
}

/// Delete drops the record and the bytes; the same bytes can be stored again afterwards.
pub fn delete_removes_blob_and_record(ctx: &mut Ctx) {
    let kept = ctx.put(b"kept", &[]);
    let gone = ctx.put(b"gone", &[("x", "y")]);
    let c = ctx.c();
    c.delete(&gone.digest).expect("delete");
    assert_err!(c.info(&gone.digest), StoreError::NotFound { .. });
    assert_err!(c.open(&gone.digest), StoreError::NotFound { .. });
    assert_err!(c.read_verified(&gone.digest, 100), StoreError::NotFound { .. });
    assert_err!(c.delete(&gone.digest), StoreError::NotFound { .. });
    assert_eq!(c.list(&[]).expect("list"), vec![kept.clone()], "the other blob stays");
    c.verify(&kept.digest).expect("the other blob is intact");
    let again = ctx.put(b"gone", &[]);
    assert!(again.labels.is_empty(), "a stored-again blob does not inherit the deleted record's labels");
    assert_eq!(ctx.c().read_verified(&again.digest, 100).expect("read"), b"gone");
}

/// Bytes changed, cut or grown behind the store's back are caught by verify and by read_verified.
pub fn verify_detects_on_disk_corruption(ctx: &mut Ctx) {
    let info = ctx.put(b"precious bytes", &[]);
    let d = &info.digest;
    ctx.c().verify(d).expect("verify intact");
    ctx.subject().corrupt(d, b"precious bytez");
    assert_err!(ctx.c().verify(d), StoreError::DigestMismatch { .. });
    assert_err!(ctx.c().read_verified(d, 100), StoreError::DigestMismatch { .. });
    ctx.subject().corrupt(d, b"short");
    assert_err!(ctx.c().verify(d), StoreError::SizeMismatch { expected: 14, actual: 5, .. });
    assert_err!(ctx.c().read_verified(d, 100), StoreError::DigestMismatch { .. });
    ctx.subject().corrupt(d, b"precious bytes and more");
    assert_err!(ctx.c().verify(d), StoreError::SizeMismatch { expected: 14, actual: 23, .. });
    assert_err!(ctx.c().read_verified(d, 100), StoreError::DigestMismatch { .. });
    ctx.subject().corrupt(d, b"precious bytes");
    ctx.c().verify(d).expect("verify once restored");
}

/// read_verified refuses a blob over its limit before reading it; a blob exactly at the limit is fine.
pub fn read_verified_enforces_its_size_limit(ctx: &mut Ctx) {
    let info = ctx.put(b"0123456789", &[]);
    assert_eq!(ctx.c().read_verified(&info.digest, 10).expect("at the limit"), b"0123456789");
    match ctx.c().read_verified(&info.digest, 9) {
        Err(e @ StoreError::InvalidArgument(_)) => assert!(e.to_string().contains("10 bytes"), "the message gives the size: {e}"),
        Err(e) => panic!("expected a size-limit refusal, got {e:?}"),
        Ok(_) => panic!("a blob over the limit was read"),
    }
    // A blob grown on disk past the limit is not read past it either: the digest check fails.
    ctx.subject().corrupt(&info.digest, &[b'x'; 4096]);
    assert_err!(ctx.c().read_verified(&info.digest, 10), StoreError::DigestMismatch { .. });
}

/// Writers of one digest committing at once all succeed, leave one intact blob and one record,
/// and every writer's labels are on it.
pub fn concurrent_writers_of_one_digest(ctx: &mut Ctx) {
    const N: usize = 8;
    let bytes = vec![0x5au8; 256 << 10];
    let d = Digest::of(&bytes);
    let c = ctx.c();
    for round in 0..5 {
        let barrier = Barrier::new(N);
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let (barrier, bytes, d) = (&barrier, &bytes, &d);
                    scope.spawn(move || {
                        let mut w = c.writer(Some(d.clone()), Some(bytes.len() as u64))?;
                        w.write_all(bytes).map_err(|e| StoreError::Io { context: "write".into(), source: e })?;
                        barrier.wait();
                        w.commit(CommitOptions { labels: label_map(&[(&format!("round{round}-writer{i}"), "yes")]), lease: None })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
        });
        for r in &results {
            assert_eq!(r.as_ref().expect("every writer commits").digest, d);
        }
        let listed = c.list(&[]).expect("list");
        assert_eq!(listed.len(), 1, "one record for one digest");
        let missing: Vec<String> =
            (0..N).map(|i| format!("round{round}-writer{i}")).filter(|k| !listed[0].labels.contains_key(k)).collect();
        assert!(missing.is_empty(), "round {round}: labels of concurrent commits were lost: {missing:?}");
        c.verify(&d).expect("the blob is intact");
    }
}

/// Closing and reopening keeps every blob, record and label change, and forgets deleted blobs.
pub fn reopen_keeps_blobs_and_records(ctx: &mut Ctx) {
    let a = ctx.put(b"blob a", &[("k", "v")]);
    let b = ctx.put(b"blob b", &[]);
    let gone = ctx.put(b"deleted", &[]);
    let a = ctx.c().update_labels(&a.digest, &BTreeMap::from([("k".to_string(), Some("changed".to_string()))])).expect("labels");
    ctx.c().delete(&gone.digest).expect("delete");
    let before = ctx.c().list(&[]).expect("list");
    ctx.reopen();
    assert_eq!(ctx.c().list(&[]).expect("list after reopen"), before, "records survive unchanged");
    assert_eq!(ctx.c().info(&a.digest).expect("info").labels, label_map(&[("k", "changed")]));
    assert_eq!(ctx.c().read_verified(&b.digest, 100).expect("read"), b"blob b");
    ctx.c().verify(&a.digest).expect("verify after reopen");
    assert_err!(ctx.c().info(&gone.digest), StoreError::NotFound { .. });
    let c2 = ctx.put(b"after reopen", &[]);
    ctx.reopen();
    assert_eq!(ctx.c().info(&c2.digest).expect("written after a reopen, kept after another"), c2);
}
