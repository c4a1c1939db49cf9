//! The conformance suite every `Snapshotter` implementation runs (behind the `testing` feature).
//!
//! Each case gets a fresh temp root and the snapshotter the caller's `open` makes there; cases that
//! check persistence drop it and call `open` again on the same root. Mounts are made for real with
//! [`crate::mount`], so the suite needs root (CAP_SYS_ADMIN). After every case the records are
//! checked for consistency: each parent exists and is committed.
//!
//! ```no_run
//! # use std::path::Path;
//! # use skiff_snapshot::{Backend, FsSnapshotter, Snapshotter};
//! let open = |root: &Path| -> skiff_snapshot::Result<Box<dyn Snapshotter>> {
//!     let db = skiff_store::Db::open(&root.join("metadata"), 8 << 20)?;
//!     Ok(Box::new(FsSnapshotter::open(root, db, Backend::Native)?))
//! };
//! skiff_snapshot::testsuite::run_all("native", &open);
//! ```

mod filesystem;
mod layers;
mod lifecycle;
mod metadata;
mod persistence;

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::{Kind, Mount, Result, Snapshotter};

/// Opens the snapshotter under test with its data under `root`.
pub type Open<'a> = &'a (dyn Fn(&Path) -> Result<Box<dyn Snapshotter>> + Sync);

/// One case of the suite.
pub struct Case {
    pub name: &'static str,
    pub run: fn(&mut Ctx),
}

/// Every case, in the order `run_all` runs them.
pub const CASES: &[Case] = &[
    Case { name: "prepare_commit_view_chain", run: lifecycle::prepare_commit_view_chain },
    Case { name: "stat_and_list_every_kind", run: lifecycle::stat_and_list_every_kind },
    Case { name: "mounts_by_kind", run: lifecycle::mounts_by_kind },
    Case { name: "errors_are_typed_and_change_nothing", run: lifecycle::errors_are_typed_and_change_nothing },
    Case { name: "remove_refuses_parents_and_frees_keys", run: lifecycle::remove_refuses_parents_and_frees_keys },
    Case { name: "racing_prepares_and_commits_have_one_winner", run: lifecycle::racing_prepares_and_commits_have_one_winner },
    Case { name: "removing_a_parent_never_orphans_a_child", run: lifecycle::removing_a_parent_never_orphans_a_child },
    Case { name: "writes_pass_down_a_chain_and_never_up", run: filesystem::writes_pass_down_a_chain_and_never_up },
    Case { name: "deletions_in_an_upper_layer_hide_lower_files", run: filesystem::deletions_in_an_upper_layer_hide_lower_files },
    Case { name: "views_are_read_only", run: filesystem::views_are_read_only },
    Case { name: "layers_apply_onto_active_snapshots", run: filesystem::layers_apply_onto_active_snapshots },
    Case { name: "a_chain_of_130_layers_mounts", run: filesystem::a_chain_of_130_layers_mounts },
    Case { name: "usage_counts_bytes_and_inodes", run: filesystem::usage_counts_bytes_and_inodes },
    Case { name: "capabilities_and_setuid_survive_apply_and_copies", run: metadata::capabilities_and_setuid_survive_apply_and_copies },
    Case { name: "a_layer_s_directory_replaces_a_lower_symlink_or_file", run: layers::a_layer_s_directory_replaces_a_lower_symlink_or_file },
    Case {
        name: "a_layer_cannot_write_through_its_own_symlink_nor_hide_every_lower_layer",
        run: layers::a_layer_cannot_write_through_its_own_symlink_nor_hide_every_lower_layer,
    },
    Case { name: "labels_are_kept", run: persistence::labels_are_kept },
    Case { name: "records_and_data_survive_reopen", run: persistence::records_and_data_survive_reopen },
];

/// Runs every case, each on a fresh root, and panics naming the cases that failed.
pub fn run_all(name: &str, open: Open) {
    let mut failed = Vec::new();
    for case in CASES {
        eprintln!("snapshotter suite [{name}] {} ...", case.name);
        if catch_unwind(AssertUnwindSafe(|| run_case(case, open))).is_err() {
            eprintln!("snapshotter suite [{name}] {} FAILED", case.name);
            failed.push(case.name);
        }
    }
    assert!(failed.is_empty(), "snapshotter suite [{name}]: {} of {} cases failed: {failed:?}", failed.len(), CASES.len());
}

/// Runs one case on a fresh root.
pub fn run_case(case: &Case, open: Open) {
    let dir = tempfile::Builder::new().prefix("snapshot-suite-").tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&root).expect("create root");
    std::fs::create_dir_all(&work).expect("create work dir");
    let snapshotter = open(&root).expect("open the snapshotter");
    let mut ctx = Ctx { root, work, open, snapshotter: Some(snapshotter) };
    (case.run)(&mut ctx);
    check_consistent(ctx.s());
}

/// What a case works with.
pub struct Ctx<'a> {
    /// The snapshotter's root.
    pub root: PathBuf,
    /// Mountpoints and scratch files, outside the snapshotter's root.
    pub work: PathBuf,
    open: Open<'a>,
    snapshotter: Option<Box<dyn Snapshotter>>,
}

impl Ctx<'_> {
    pub fn s(&self) -> &dyn Snapshotter {
        self.snapshotter.as_deref().expect("snapshotter is open")
    }

    /// Closes the snapshotter and opens it again on the same root.
    pub fn reopen(&mut self) {
        drop(self.snapshotter.take());
        self.snapshotter = Some((self.open)(&self.root).expect("reopen the snapshotter"));
    }

    /// Mounts `mounts` at a fresh directory `work/<name>`; unmounted when the guard drops.
    pub fn mount(&self, mounts: &[Mount], name: &str) -> Mounted {
        let at = self.work.join(name);
        std::fs::create_dir_all(&at).expect("create mountpoint");
        crate::mount::mount_all(mounts, &at).unwrap_or_else(|e| panic!("mount {mounts:?} at {}: {e}", at.display()));
        Mounted { at }
    }

    /// Prepares `key` on `parent`, lets `f` change its filesystem through a real mount, commits it as `name`.
    pub fn layer(&self, name: &str, parent: Option<&str>, f: impl FnOnce(&Path)) {
        let key = format!("{name}-active");
        let mounts = self.s().prepare(&key, parent, BTreeMap::new()).expect("prepare");
        {
            let m = self.mount(&mounts, &key);
            f(m.path());
        }
        self.s().commit(name, &key).expect("commit");
    }

    /// The tree a view of committed `name` shows.
    pub fn view_tree(&self, name: &str) -> Vec<String> {
        let key = format!("check-view-{name}");
        let mounts = self.s().view(&key, name).expect("view");
        let listed = tree(self.mount(&mounts, &key).path());
        self.s().remove(&key).expect("remove the view");
        listed
    }
}

/// A mount made by the suite, unmounted when dropped.
pub struct Mounted {
    at: PathBuf,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.at
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if crate::mount::unmount(&self.at).is_err() {
            // A busy mount must not outlive the case's temp dir; detach it.
            let _ = nix::mount::umount2(&self.at, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `path kind` lines for everything under `dir`, sorted: `dir`, `file:<content>`, `link-><target>`.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(dir).expect("under dir").display().to_string();
            let kind = if meta.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!("link->{}", std::fs::read_link(&p).expect("readlink").display())
            } else {
                format!("file:{}", String::from_utf8_lossy(&std::fs::read(&p).expect("read")))
            };
            out.push(format!("{rel} {kind}"));
        }
    }
    out.sort();
    out
}

/// Sorted owned lines, for comparing with `tree`.
pub fn lines(expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn write(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Every record's parent exists and is committed; keys and ids are unique.
fn check_consistent(s: &dyn Snapshotter) {
    let all = s.list().expect("list");
    let by_key: HashMap<&str, Kind> = all.iter().map(|i| (i.key.as_str(), i.kind)).collect();
    assert_eq!(by_key.len(), all.len(), "keys are unique: {all:?}");
    let ids: std::collections::HashSet<u64> = all.iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), all.len(), "ids are unique: {all:?}");
    for info in &all {
        if let Some(p) = &info.parent {
            assert_eq!(by_key.get(p.as_str()), Some(&Kind::Committed), "parent {p:?} of {:?} exists and is committed", info.key);
        }
    }
}

/// Asserts that `$e` failed with an error matching `$p`.
macro_rules! assert_err {
    ($e:expr, $p:pat) => {
        match $e {
            Err($p) => {}
            other => panic!("{}: expected {}, got {:?}", stringify!($e), stringify!($p), other),
        }
    };
}
pub(crate) use assert_err;
