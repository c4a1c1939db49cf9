//! Directory trees made ahead of time. A container's create makes two trees (its state dir with
//! `bundle/rootfs`, its snapshot with `fs` and `work`), and ext4 spends 60–150 µs on each mkdir
//! here; a tree made beforehand is put in place with one rename instead. The next spares are
//! made on a thread of its own a moment after one is taken, off the caller's path.
//!
//! Spares live in a directory of their own on the same filesystem, never among the trees in use,
//! so that nothing that lists those ever sees one. What a crash leaves there is removed when the
//! pool opens.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Result, StoreError};

/// Spares kept ready: one create takes one, and a burst of creates outruns any number.
const KEEP: usize = 2;

/// How long the next spares wait to be made: the mkdirs compete with the rest of the create
/// that took one (its mount, its writes, its flush, on the same filesystem) when made at once.
const REFILL_AFTER: std::time::Duration = std::time::Duration::from_millis(30);

/// A pool of directory trees of one layout, made under one directory.
#[derive(Clone)]
pub struct SpareDirs {
    pool: Arc<Pool>,
}

struct Pool {
    dir: PathBuf,
    /// Made below each tree's top, in order (`bundle`, then `bundle/rootfs`).
    subdirs: Vec<PathBuf>,
    /// The top's mode; the subdirs get the process's default.
    mode: Option<u32>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ready: Vec<PathBuf>,
    filling: bool,
    next: u64,
}

impl SpareDirs {
    /// A pool under `dir` (made, emptied of what an earlier run left) of trees holding `subdirs`,
    /// their top chmod-ed to `mode` when given. Nothing is made until a first [`SpareDirs::make`].
    pub fn open(dir: &Path, subdirs: &[&str], mode: Option<u32>) -> Result<SpareDirs> {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(StoreError::io(format!("removing the spare dirs of an earlier run in {}", dir.display())))?;
        }
        fs::create_dir_all(dir).map_err(StoreError::io(format!("create {}", dir.display())))?;
        let pool = Pool { dir: dir.to_path_buf(), subdirs: subdirs.iter().map(PathBuf::from).collect(), mode, state: Mutex::default() };
        Ok(SpareDirs { pool: Arc::new(pool) })
    }

    /// Puts a tree at `dest`, which must not exist (its parent must): a spare renamed there, or
    /// one made in place when none is ready. Then starts making the next spares.
    pub fn make(&self, dest: &Path) -> std::io::Result<()> {
        let spare = self.pool.lock().ready.pop();
        let placed = match spare {
            Some(spare) => match fs::rename(&spare, dest) {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Removed from under us (the pool's dir cleared): made in place instead.
                    tracing::debug!(spare = %spare.display(), error = %e, "taking a spare dir");
                    let _ = fs::remove_dir_all(&spare);
                    self.pool.make_tree(dest)
                }
            },
            None => self.pool.make_tree(dest),
        };
        self.refill();
        placed
    }

    /// Starts a thread that makes spares up to [`KEEP`], unless one is at it.
    fn refill(&self) {
        {
            let mut state = self.pool.lock();
            if state.filling || state.ready.len() >= KEEP {
                return;
            }
            state.filling = true;
        }
        let pool = self.pool.clone();
        let started = std::thread::Builder::new().name("spare-dirs".into()).spawn(move || pool.fill());
        if let Err(e) = started {
            tracing::debug!(error = %e, "starting the spare dirs thread; trees are made in place");
            self.pool.lock().filling = false;
        }
    }

    /// How many spares are ready (for tests).
    pub fn ready(&self) -> usize {
        self.pool.lock().ready.len()
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn make_tree(&self, top: &Path) -> std::io::Result<()> {
        fs::create_dir(top)?;
        if let Some(mode) = self.mode {
            fs::set_permissions(top, fs::Permissions::from_mode(mode))?;
        }
        for sub in &self.subdirs {
            fs::create_dir(top.join(sub))?;
        }
        Ok(())
    }

    fn fill(&self) {
        std::thread::sleep(REFILL_AFTER);
        loop {
            let path = {
                let mut state = self.lock();
                if state.ready.len() >= KEEP {
                    state.filling = false;
                    return;
                }
                state.next += 1;
                self.dir.join(format!("spare-{}", state.next))
            };
            if let Err(e) = self.make_tree(&path) {
                // The pool's dir is gone (its owner's root removed) or full: callers make their
                // own trees, as before any spare existed.
                tracing::debug!(dir = %path.display(), error = %e, "making a spare dir");
                let _ = fs::remove_dir_all(&path);
                self.lock().filling = false;
                return;
            }
            self.lock().ready.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_ready(pool: &SpareDirs, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while pool.ready() < n {
            assert!(std::time::Instant::now() < deadline, "no spare made");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn trees_come_with_their_layout_and_mode_and_the_next_is_made_ahead() {
        let root = tempfile::tempdir().expect("tempdir");
        let pool = SpareDirs::open(&root.path().join("spare"), &["bundle", "bundle/rootfs"], Some(0o700)).expect("open");
        assert_eq!(pool.ready(), 0, "nothing made before a first use");
        for (i, wait) in [(0, false), (1, true), (2, true), (3, false)] {
            if wait {
                wait_ready(&pool, 1);
            }
            let dest = root.path().join(format!("c{i}"));
            pool.make(&dest).expect("make");
            assert!(dest.join("bundle/rootfs").is_dir(), "{i}: the layout");
            assert_eq!(fs::metadata(&dest).expect("stat").permissions().mode() & 0o777, 0o700, "{i}: the top's mode");
            assert_eq!(fs::read_dir(&dest).expect("read").count(), 1, "{i}: nothing else");
        }
        wait_ready(&pool, KEEP);
        assert_eq!(fs::read_dir(root.path().join("spare")).expect("read").count(), KEEP, "only the spares kept");
    }

    #[test]
    fn an_existing_dest_is_an_error_and_a_reopened_pool_starts_empty() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("spare");
        let pool = SpareDirs::open(&dir, &["fs", "work"], None).expect("open");
        let dest = root.path().join("taken");
        fs::create_dir(&dest).expect("mkdir");
        fs::write(dest.join("file"), b"x").expect("write");
        wait_ready(&pool, 0);
        assert!(pool.make(&dest).is_err(), "a tree is never put over one in use");
        wait_ready(&pool, KEEP);
        let again = SpareDirs::open(&dir, &["fs", "work"], None).expect("reopen");
        assert_eq!(again.ready(), 0);
        assert_eq!(fs::read_dir(&dir).expect("read").count(), 0, "what an earlier run left is removed");
    }
}
