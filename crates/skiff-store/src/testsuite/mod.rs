//! The conformance suite every `ContentStore` implementation runs (behind the `testing` feature).
//!
//! Each case gets a fresh temp root and the store the caller's `open` makes there; cases that check
//! persistence drop it and call `open` again on the same root. Besides the trait, the suite needs
//! one thing only the implementation can do: damage a stored blob's bytes behind the store's back,
//! to check that `verify` and `read_verified` notice.
//!
//! ```no_run
//! # use std::path::Path;
//! use skiff_store::testsuite::{run_all, Subject};
//! use skiff_store::{Store, StoreOptions};
//! let open = |root: &Path| -> skiff_store::Result<Box<dyn Subject>> { Ok(Box::new(Store::open(root, &StoreOptions::default())?.0)) };
//! run_all("local", &open);
//! ```

mod cases;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::{CommitOptions, ContentInfo, ContentStore, Digest, Result, Store};

/// A content store under test.
pub trait Subject: Send + Sync {
    fn content(&self) -> &dyn ContentStore;
    /// Replaces the stored bytes of `digest` with `bytes` without telling the store.
    fn corrupt(&self, digest: &Digest, bytes: &[u8]);
}

impl Subject for Store {
    fn content(&self) -> &dyn ContentStore {
        Store::content(self)
    }

    fn corrupt(&self, digest: &Digest, bytes: &[u8]) {
        let path = Store::content(self).blob_path(digest);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("overwrite {}: {e}", path.display()));
    }
}

/// Opens the store under test with its data under `root`.
pub type Open<'a> = &'a (dyn Fn(&Path) -> Result<Box<dyn Subject>> + Sync);

/// One case of the suite.
pub struct Case {
    pub name: &'static str,
    pub run: fn(&mut Ctx),
}

/// Every case, in the order `run_all` runs them.
pub const CASES: &[Case] = &[
    Case { name: "write_commit_and_read_back", run: cases::write_commit_and_read_back },
    Case { name: "promises_are_checked_at_commit", run: cases::promises_are_checked_at_commit },
    Case { name: "missing_blobs_are_not_found", run: cases::missing_blobs_are_not_found },
    Case { name: "info_labels_and_walk_with_selectors", run: cases::info_labels_and_walk_with_selectors },
    Case { name: "committing_a_stored_blob_merges_labels", run: cases::committing_a_stored_blob_merges_labels },
    Case { name: "delete_removes_blob_and_record", run: cases::delete_removes_blob_and_record },
    Case { name: "verify_detects_on_disk_corruption", run: cases::verify_detects_on_disk_corruption },
    Case { name: "read_verified_enforces_its_size_limit", run: cases::read_verified_enforces_its_size_limit },
    Case { name: "concurrent_writers_of_one_digest", run: cases::concurrent_writers_of_one_digest },
    Case { name: "reopen_keeps_blobs_and_records", run: cases::reopen_keeps_blobs_and_records },
];

/// Runs every case, each on a fresh root, and panics naming the cases that failed.
pub fn run_all(name: &str, open: Open) {
    let mut failed = Vec::new();
    for case in CASES {
        eprintln!("content store suite [{name}] {} ...", case.name);
        if catch_unwind(AssertUnwindSafe(|| run_case(case, open))).is_err() {
            eprintln!("content store suite [{name}] {} FAILED", case.name);
            failed.push(case.name);
        }
    }
    assert!(failed.is_empty(), "content store suite [{name}]: {} of {} cases failed: {failed:?}", failed.len(), CASES.len());
}

/// Runs one case on a fresh root.
pub fn run_case(case: &Case, open: Open) {
    let dir = tempfile::Builder::new().prefix("content-suite-").tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let subject = open(&root).expect("open the store");
    let mut ctx = Ctx { root, open, subject: Some(subject) };
    (case.run)(&mut ctx);
}

/// What a case works with.
pub struct Ctx<'a> {
    pub root: PathBuf,
    open: Open<'a>,
    subject: Option<Box<dyn Subject>>,
}

impl Ctx<'_> {
    pub fn subject(&self) -> &dyn Subject {
        self.subject.as_deref().expect("store is open")
    }

    pub fn c(&self) -> &dyn ContentStore {
        self.subject().content()
    }

    /// Closes the store and opens it again on the same root.
    pub fn reopen(&mut self) {
        drop(self.subject.take());
        self.subject = Some((self.open)(&self.root).expect("reopen the store"));
    }

    /// Ingests `bytes` promising their digest and size, with `labels`.
    pub fn put(&self, bytes: &[u8], labels: &[(&str, &str)]) -> ContentInfo {
        let opts = CommitOptions { labels: label_map(labels), lease: None };
        self.c().ingest(&mut &bytes[..], Some(Digest::of(bytes)), Some(bytes.len() as u64), opts).expect("ingest")
    }
}

pub fn label_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Asserts that `$e` failed with an error matching `$p`.
macro_rules! assert_err {
    ($e:expr, $p:pat) => {
        match $e {
            Err($p) => {}
            Err(other) => panic!("{}: expected {}, got {other:?}", stringify!($e), stringify!($p)),
            Ok(_) => panic!("{}: expected {}, got Ok", stringify!($e), stringify!($p)),
        }
    };
}
pub(crate) use assert_err;
