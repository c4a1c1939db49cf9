use std::collections::BTreeMap;
use std::fs;

use super::*;

fn open(dir: &Path) -> Store {
    Store::open(dir, &StoreOptions::default()).expect("open store").0
}

fn put(store: &Store, bytes: &[u8], labels: &[(&str, &str)], lease: Option<&LeaseId>) -> ContentInfo {
    let opts = CommitOptions {
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        lease: lease.cloned(),
    };
    store.content().ingest(&mut &bytes[..], Some(Digest::of(bytes)), Some(bytes.len() as u64), opts).expect("ingest")
}

fn files_in(dir: &Path) -> usize {
    fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

#[test]
fn ingest_read_list_and_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let info = put(&store, b"hello", &[("kind", "greeting")], None);
    assert_eq!(info.size, 5);
    assert_eq!(store.content().read_verified(&info.digest, 100).expect("read"), b"hello");
    assert!(store.content().read_verified(&info.digest, 4).is_err(), "size limit enforced");
    put(&store, b"other", &[], None);
    let sel: LabelSelector = "kind=greeting".parse().expect("selector");
    let listed = store.content().list(&[sel]).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(store.content().list(&[]).expect("list").len(), 2);
    let changes = BTreeMap::from([("kind".to_string(), None), ("new".to_string(), Some("1".to_string()))]);
    let updated = store.content().update_labels(&info.digest, &changes).expect("labels");
    assert_eq!(updated.labels, BTreeMap::from([("new".to_string(), "1".to_string())]));
}

#[test]
fn wrong_digest_or_size_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let wrong = Digest::of(b"something else");
    match store.content().ingest(&mut &b"hello"[..], Some(wrong.clone()), None, CommitOptions::default()) {
        Err(StoreError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Digest::of(b"hello"));
        }
        other => panic!("expected digest mismatch, got {other:?}"),
    }
    let too_long = store.content().ingest(&mut &b"hello"[..], None, Some(3), CommitOptions::default());
    assert!(matches!(too_long, Err(StoreError::SizeMismatch { .. })), "{too_long:?}");
    let too_short = store.content().ingest(&mut &b"hello"[..], None, Some(9), CommitOptions::default());
    assert!(matches!(too_short, Err(StoreError::SizeMismatch { .. })), "{too_short:?}");
    assert_eq!(files_in(&dir.path().join("content/blobs/sha256")), 0);
    assert_eq!(files_in(&dir.path().join("content/ingest")), 0);
    assert!(store.content().list(&[]).expect("list").is_empty());
}

#[test]
fn verify_detects_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let info = put(&store, b"precious bytes", &[], None);
    store.content().verify(&info.digest).expect("verify ok");
    fs::write(store.content().blob_path(&info.digest), b"precious bytez").expect("corrupt");
    assert!(matches!(store.content().verify(&info.digest), Err(StoreError::DigestMismatch { .. })));
    fs::write(store.content().blob_path(&info.digest), b"short").expect("truncate");
    assert!(matches!(store.content().verify(&info.digest), Err(StoreError::SizeMismatch { .. })));
}

#[test]
fn gc_follows_images_labels_leases_and_roots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let layer = put(&store, b"layer", &[], None);
    let config = put(&store, b"config", &[], None);
    let manifest_labels = [
        ("io.skiff.gc.ref.content.config", config.digest.as_str()),
        ("io.skiff.gc.ref.content.l.0", layer.digest.as_str()),
    ];
    let manifest = put(&store, b"manifest", &manifest_labels, None);
    let orphan = put(&store, b"orphan", &[], None);
    let rooted = put(&store, b"rooted", &[(LABEL_GC_ROOT, "now")], None);
    let lease = store.leases().create(false, None, BTreeMap::new()).expect("lease");
    let leased = put(&store, b"leased", &[], Some(&lease.id));
    store
        .images()
        .put(
            ImageRecord {
                name: "example.com/a:1".into(),
                target: Descriptor {
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    digest: manifest.digest.clone(),
                    size: manifest.size,
                    annotations: BTreeMap::new(),
                },
                created_at: String::new(),
                updated_at: String::new(),
                labels: BTreeMap::new(),
                platform: "linux/amd64".into(),
                platforms: ["linux/amd64".to_string()].into(),
                annotations: ImageAnnotations::default(),
            },
            None,
        )
        .expect("image");
    let report = store.collect_garbage().expect("gc");
    assert_eq!(report.removed.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), vec![orphan.digest.clone()]);
    for kept in [&layer, &config, &manifest, &rooted, &leased] {
        store.content().info(&kept.digest).expect("kept");
    }
    store.leases().delete(&lease.id).expect("delete lease");
    store.images().delete("example.com/a:1").expect("delete image");
    let report = store.collect_garbage().expect("gc");
    assert_eq!(report.removed.len(), 4);
    assert_eq!(store.content().list(&[]).expect("list").len(), 1, "only the rooted blob stays");
}

#[test]
fn releasing_a_lease_removes_only_what_it_added() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let before = put(&store, b"was here before", &[], None);
    let lease = store.leases().create(true, None, BTreeMap::new()).expect("lease");
    store.content().lease_existing(&before.digest, &lease.id).expect("lease existing");
    let added = put(&store, b"added by the import", &[], Some(&lease.id));
    let report = store.release_lease(&lease.id).expect("release");
    assert_eq!(report.removed.len(), 1);
    assert_eq!(report.removed[0].0, added.digest);
    store.content().info(&before.digest).expect("pre-existing blob kept");
    assert!(store.leases().list().expect("leases").is_empty());
}

#[test]
fn recovery_reconciles_disk_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kept, lost, temp_lease_blob);
    {
        let store = open(dir.path());
        kept = put(&store, b"kept", &[(LABEL_GC_ROOT, "x")], None);
        lost = put(&store, b"file deleted behind our back", &[], None);
        let lease = store.leases().create(true, None, BTreeMap::new()).expect("lease");
        temp_lease_blob = put(&store, b"half an import", &[], Some(&lease.id));
        fs::remove_file(store.content().blob_path(&lost.digest)).expect("rm");
        // A blob file renamed into place whose record never made it, and a writer's temp file.
        fs::write(store.content().blob_path(&Digest::of(b"orphan")), b"orphan").expect("orphan");
        fs::write(dir.path().join("content/ingest/123-0"), b"partial").expect("temp");
    }
    let (store, report) = Store::open(dir.path(), &StoreOptions::default()).expect("reopen");
    assert_eq!(report.temp_files, 1);
    assert_eq!(report.orphan_files, 1);
    assert_eq!(report.dangling_records, 1);
    assert_eq!(report.released_leases, 1);
    assert_eq!(report.collected.removed.len(), 1);
    let left: Vec<Digest> = store.content().list(&[]).expect("list").into_iter().map(|i| i.digest).collect();
    assert_eq!(left, vec![kept.digest.clone()]);
    assert!(store.content().info(&temp_lease_blob.digest).is_err());
    assert_eq!(files_in(&dir.path().join("content/blobs/sha256")), 1);
}

#[test]
fn image_put_keeps_created_and_releases_lease_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let lease = store.leases().create(true, None, BTreeMap::new()).expect("lease");
    let blob = put(&store, b"manifest", &[], Some(&lease.id));
    let rec = ImageRecord {
        name: "x/y:z".into(),
        target: Descriptor { media_type: "m".into(), digest: blob.digest, size: blob.size, annotations: BTreeMap::new() },
        created_at: String::new(),
        updated_at: String::new(),
        labels: BTreeMap::new(),
        platform: String::new(),
        platforms: Default::default(),
        annotations: ImageAnnotations::default(),
    };
    let first = store.images().put(rec.clone(), Some(&lease.id)).expect("put");
    assert!(store.leases().list().expect("leases").is_empty());
    assert!(store.leases().content(&lease.id).expect("content").is_empty());
    let second = store.images().put(rec, None).expect("put again");
    assert_eq!(first.created_at, second.created_at);
    assert!(store.images().delete("nope").is_err());
}

#[test]
fn expired_leases_stop_protecting_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let short = store.leases().create(false, Some(std::time::Duration::from_millis(1)), BTreeMap::new()).expect("lease");
    let long = store.leases().create(false, Some(std::time::Duration::from_secs(3600)), BTreeMap::new()).expect("lease");
    let a = put(&store, b"held briefly", &[], Some(&short.id));
    let b = put(&store, b"held for an hour", &[], Some(&long.id));
    std::thread::sleep(std::time::Duration::from_millis(5));
    let report = store.collect_garbage().expect("gc");
    assert_eq!(report.removed.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), vec![a.digest]);
    store.content().info(&b.digest).expect("still leased");
    assert_eq!(store.leases().list().expect("leases").len(), 1);
}

#[test]
fn one_ingest_claim_per_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = Digest::of(b"x");
    let claim = store.content().claim(&d).expect("first claim");
    assert!(store.content().claim(&d).is_none(), "second claim refused while the first is held");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| store.content().wait_for(&d));
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(claim);
        waiter.join().expect("waiter");
    });
    assert!(store.content().claim(&d).is_some());
}
