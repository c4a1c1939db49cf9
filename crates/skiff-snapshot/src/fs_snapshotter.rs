//! The directory-backed snapshotter, on overlayfs or by copying.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use skiff_store::{now, Db};

use crate::apply::{Target, Whiteouts};
use crate::error::{Result, SnapshotError};
use crate::{Info, Kind, Mount, Snapshotter, Usage};

/// How snapshots are stacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Layers are overlay lowerdirs; an active snapshot is an upper directory.
    Overlay,
    /// Each snapshot is a full copy of its parent.
    Native,
}

pub struct FsSnapshotter {
    root: PathBuf,
    db: Db,
    backend: Backend,
    /// Creating a snapshot holds it shared from the parent check to the record; commit and remove
    /// hold it exclusive from their checks to their record change. So a parent cannot be removed
    /// while a child is being made on it, nor two commits both find a name free.
    changes: RwLock<()>,
    /// Empty trees (`fs`, and `work` for overlay) made ahead, renamed into place by a create.
    spares: skiff_store::SpareDirs,
}

fn key_of(key: &str) -> Vec<u8> {
    format!("snapshot/{key}").into_bytes()
}

/// Whether overlayfs can be mounted under `dir` here (tries it).
pub fn overlay_supported(dir: &Path) -> bool {
    let probe = dir.join(format!("overlay-probe-{}", std::process::id()));
    let ok = (|| -> std::io::Result<bool> {
        for d in ["lower", "upper", "work", "merged"] {
            fs::create_dir_all(probe.join(d))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            probe.join("lower").display(),
            probe.join("upper").display(),
            probe.join("work").display()
        );
        let merged = probe.join("merged");
        let mounted = nix::mount::mount(Some("overlay"), &merged, Some("overlay"), nix::mount::MsFlags::empty(), Some(opts.as_str())).is_ok();
        if mounted {
            let _ = nix::mount::umount(&merged);
        }
        Ok(mounted)
    })()
    .unwrap_or(false);
    let _ = fs::remove_dir_all(&probe);
    ok
}

impl FsSnapshotter {
    /// Opens the snapshotter under `<root>/snapshots`, removing what an interrupted operation left.
    pub fn open(root: &Path, db: Db, backend: Backend) -> Result<FsSnapshotter> {
        let layout: &[&str] = if backend == Backend::Overlay { &["fs", "work"] } else { &["fs"] };
        let spares = skiff_store::SpareDirs::open(&root.join("spare/snapshots"), layout, None)?;
        let root = root.join("snapshots");
        skiff_store::private_dir(&root, skiff_store::PRIVATE_MODE)?;
        let s = FsSnapshotter { root, db, backend, changes: RwLock::new(()), spares };
        s.recover()?;
        Ok(s)
    }

    fn creating(&self) -> RwLockReadGuard<'_, ()> {
        self.changes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn changing(&self) -> RwLockWriteGuard<'_, ()> {
        self.changes.write().unwrap_or_else(|p| p.into_inner())
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join(id.to_string())
    }

    fn get(&self, key: &str) -> Result<Option<Info>> {
        match self.db.snapshots.get(key_of(key)).map_err(skiff_store::StoreError::from)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| SnapshotError::InvalidArgument(format!("corrupt snapshot record {key}: {e}"))),
        }
    }

    /// Directories whose records are gone, temp and half-removed directories: all removed.
    fn recover(&self) -> Result<()> {
        let ids: std::collections::HashSet<u64> = self.list()?.iter().map(|i| i.id).collect();
        for entry in fs::read_dir(&self.root).map_err(SnapshotError::io("read snapshots dir"))? {
            let entry = entry.map_err(SnapshotError::io("read snapshots dir"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = name.parse::<u64>().is_ok_and(|id| ids.contains(&id));
            if !keep {
                tracing::warn!(dir = %entry.path().display(), "removing snapshot directory without a record");
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        for info in self.list()? {
            if !self.dir(info.id).is_dir() {
                tracing::warn!(key = %info.key, "dropping snapshot record whose directory is missing");
                self.db.snapshots.remove(key_of(&info.key)).map_err(skiff_store::StoreError::from)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// The `fs` directories of `key` and its ancestors, `key` first.
    fn chain(&self, key: &str) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut next = Some(key.to_string());
        while let Some(k) = next {
            let info = self.get(&k)?.ok_or_else(|| SnapshotError::NotFound(k.clone()))?;
            out.push(self.dir(info.id).join("fs"));
            next = info.parent;
        }
        Ok(out)
    }

    fn create(&self, key: &str, parent: Option<&str>, kind: Kind, labels: BTreeMap<String, String>) -> Result<Info> {
        if key.is_empty() {
            return Err(SnapshotError::InvalidArgument(format!("bad snapshot key {key:?}")));
        }
        let _creating = self.creating();
        if self.get(key)?.is_some() {
            return Err(SnapshotError::AlreadyExists(key.to_string()));
        }
        if let Some(p) = parent {
            let pinfo = self.get(p)?.ok_or_else(|| SnapshotError::NotFound(p.to_string()))?;
            if pinfo.kind != Kind::Committed {
                return Err(SnapshotError::FailedPrecondition { key: p.to_string(), reason: "parent is not committed".into() });
            }
        }
        let id = self.db.generate_id()?;
        // Built in a temp directory and renamed into place before the record is written: a crash
        // leaves only a directory without a record, which `recover` removes. An empty one comes
        // from the spares, made ahead of time; it too is whole when it appears under its name.
        let tmp = self.root.join(format!("new-{id}"));
        let made = (|| -> Result<()> {
            // Only a native snapshot on a parent starts with content: a copy of the parent's.
            let (Backend::Native, Some(p)) = (self.backend, parent) else {
                return self.spares.make(&self.dir(id)).map_err(SnapshotError::io(format!("create {}", self.dir(id).display())));
            };
            fs::create_dir_all(tmp.join("fs")).map_err(SnapshotError::io(format!("create {}", tmp.display())))?;
            let src = self.chain(p)?.remove(0);
            let status = Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", src.display()))
                .arg(tmp.join("fs"))
                .status()
                .map_err(SnapshotError::io("run cp -a"))?;
            if !status.success() {
                return Err(SnapshotError::Io { context: format!("copy {}", src.display()), source: std::io::Error::other(status.to_string()) });
            }
            fs::rename(&tmp, self.dir(id)).map_err(SnapshotError::io("rename snapshot into place"))
        })();
        if let Err(e) = made {
            // A tree made in place that failed halfway is under its name: the id is new, so the
            // directory is this call's.
            let _ = fs::remove_dir_all(&tmp);
            let _ = fs::remove_dir_all(self.dir(id));
            return Err(e);
        }
        let info = Info { key: key.to_string(), id, kind, parent: parent.map(str::to_string), created_at: now(), labels };
        let bytes = serde_json::to_vec(&info).map_err(|e| SnapshotError::InvalidArgument(e.to_string()))?;
        let swapped = self
            .db
            .snapshots
            .compare_and_swap(key_of(key), None as Option<&[u8]>, Some(bytes))
            .map_err(skiff_store::StoreError::from)?;
        if swapped.is_err() {
            let _ = fs::remove_dir_all(self.dir(id));
            return Err(SnapshotError::AlreadyExists(key.to_string()));
        }
        // Not flushed on its own: the record reaches the disk with the store's next flush (the
        // caller's commit, or its own record's write). A crash before it leaves a directory
        // without a record, which `recover` removes.
        Ok(info)
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// The kernel takes at most one page of mount options.
const MOUNT_OPTIONS_LIMIT: usize = 4096;

impl FsSnapshotter {
    /// The overlay mount of `chain` (the snapshot's own dir first): lowerdirs are the ancestors, the
    /// snapshot is the upper unless `ro`. Paths are made relative to the snapshots directory when
    /// the absolute ones would not fit in a page.
    fn overlay(&self, chain: &[PathBuf], ro: bool, work: &Path) -> Mount {
        let build = |path: &dyn Fn(&Path) -> String| {
            let lower: Vec<String> = chain[1..].iter().map(|p| path(p)).collect();
            let mut options = vec!["index=off".to_string(), format!("lowerdir={}", lower.join(":"))];
            if ro {
                options.insert(0, "ro".into());
            } else {
                options.push(format!("upperdir={}", path(&chain[0])));
                options.push(format!("workdir={}", path(work)));
            }
            options
        };
        let absolute = build(&|p| path_str(p));
        if absolute.join(",").len() < MOUNT_OPTIONS_LIMIT {
            return Mount { kind: "overlay".into(), source: "overlay".into(), options: absolute, chdir: None };
        }
        let relative = build(&|p| p.strip_prefix(&self.root).map_or_else(|_| path_str(p), path_str));
        Mount { kind: "overlay".into(), source: "overlay".into(), options: relative, chdir: Some(path_str(&self.root)) }
    }
}

impl Snapshotter for FsSnapshotter {
    fn prepare(&self, key: &str, parent: Option<&str>, labels: BTreeMap<String, String>) -> Result<Vec<Mount>> {
        self.create(key, parent, Kind::Active, labels)?;
        self.mounts(key)
    }

    fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>> {
        self.create(key, Some(parent), Kind::View, BTreeMap::new())?;
        self.mounts(key)
    }

    fn commit(&self, name: &str, key: &str) -> Result<Info> {
        let _changing = self.changing();
        let mut info = self.get(key)?.ok_or_else(|| SnapshotError::NotFound(key.to_string()))?;
        if info.kind != Kind::Active {
            return Err(SnapshotError::FailedPrecondition { key: key.to_string(), reason: "only an active snapshot can be committed".into() });
        }
        if self.get(name)?.is_some() {
            return Err(SnapshotError::AlreadyExists(name.to_string()));
        }
        info.key = name.to_string();
        info.kind = Kind::Committed;
        let bytes = serde_json::to_vec(&info).map_err(|e| SnapshotError::InvalidArgument(e.to_string()))?;
        let mut batch = sled::Batch::default();
        batch.remove(key_of(key));
        batch.insert(key_of(name), bytes);
        self.db.snapshots.apply_batch(batch).map_err(skiff_store::StoreError::from)?;
        self.db.flush()?;
        Ok(info)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let changing = self.changing();
        let info = self.get(key)?.ok_or_else(|| SnapshotError::NotFound(key.to_string()))?;
        if let Some(child) = self.list()?.into_iter().find(|i| i.parent.as_deref() == Some(key)) {
            return Err(SnapshotError::FailedPrecondition { key: key.to_string(), reason: format!("snapshot {:?} is built on it", child.key) });
        }
        self.db.snapshots.remove(key_of(key)).map_err(skiff_store::StoreError::from)?;
        self.db.flush()?;
        drop(changing);
        // Record first, then data: a crash in between leaves a directory `recover` removes.
        let doomed = self.root.join(format!("{}-removing", info.id));
        fs::rename(self.dir(info.id), &doomed).map_err(SnapshotError::io("rename snapshot for removal"))?;
        fs::remove_dir_all(&doomed).map_err(SnapshotError::io(format!("remove {}", doomed.display())))
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let info = self.get(key)?.ok_or_else(|| SnapshotError::NotFound(key.to_string()))?;
        let chain = self.chain(key)?;
        let ro = info.kind == Kind::View;
        let bind = |dir: &Path, ro: bool| Mount {
            kind: "bind".into(),
            source: path_str(dir),
            options: vec![if ro { "ro".into() } else { "rw".into() }, "rbind".into()],
            chdir: None,
        };
        let work = self.dir(info.id).join("work");
        Ok(match (self.backend, info.kind) {
            (_, Kind::Committed) => {
                return Err(SnapshotError::FailedPrecondition { key: key.to_string(), reason: "a committed snapshot has no mounts; use a view".into() })
            }
            (Backend::Native, _) => vec![bind(&chain[0], ro)],
            (Backend::Overlay, Kind::Active) if chain.len() == 1 => vec![bind(&chain[0], false)],
            (Backend::Overlay, _) if !ro || chain.len() > 2 => vec![self.overlay(&chain, ro, &work)],
            (Backend::Overlay, _) => vec![bind(&chain[1], true)],
        })
    }

    fn stat(&self, key: &str) -> Result<Info> {
        self.get(key)?.ok_or_else(|| SnapshotError::NotFound(key.to_string()))
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let info = self.stat(key)?;
        let mut usage = Usage::default();
        let mut stack = vec![self.dir(info.id).join("fs")];
        let mut seen = std::collections::HashSet::new();
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).map_err(SnapshotError::io(format!("read {}", dir.display())))? {
                let entry = entry.map_err(SnapshotError::io("read dir"))?;
                let m = entry.metadata().map_err(SnapshotError::io("stat"))?;
                use std::os::unix::fs::MetadataExt;
                if seen.insert(m.ino()) {
                    usage.inodes += 1;
                    usage.bytes += m.blocks() * 512;
                }
                if m.is_dir() {
                    stack.push(entry.path());
                }
            }
        }
        Ok(usage)
    }

    fn list(&self) -> Result<Vec<Info>> {
        let mut out = Vec::new();
        for kv in self.db.snapshots.scan_prefix("snapshot/") {
            let (k, v) = kv.map_err(skiff_store::StoreError::from)?;
            out.push(serde_json::from_slice(&v).map_err(|e| {
                SnapshotError::InvalidArgument(format!("corrupt snapshot record {}: {e}", String::from_utf8_lossy(&k)))
            })?);
        }
        Ok(out)
    }

    fn diff_target(&self, key: &str) -> Result<Target> {
        let info = self.stat(key)?;
        if info.kind != Kind::Active {
            return Err(SnapshotError::FailedPrecondition { key: key.to_string(), reason: "layers apply only to active snapshots".into() });
        }
        let mut chain = self.chain(key)?;
        let dir = chain.remove(0);
        Ok(match self.backend {
            Backend::Overlay => Target { dir, whiteouts: Whiteouts::Overlay, lowers: chain },
            Backend::Native => Target { dir, whiteouts: Whiteouts::Delete, lowers: Vec::new() },
        })
    }
}
