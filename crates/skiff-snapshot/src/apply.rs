//! Applying a layer (a tar stream, already decompressed) onto a directory.
//!
//! Every entry path is cleaned lexically (`..` and absolute paths refused) and every parent on the
//! way to it is checked with lstat: an entry is never written through a symlink, so nothing lands
//! outside the directory however the layer arranges its links. Whiteouts become overlay whiteouts
//! (char device 0/0, `trusted.overlay.opaque=y`) for an overlay upper directory, or deletions for a
//! native copy. The uncompressed stream is hashed as it is read: that is the layer's diffID.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use skiff_store::Digest;

use crate::error::{Result, SnapshotError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// How deletions in a layer are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Overlay upper directory: whiteout devices and opaque xattrs.
    Overlay,
    /// A full copy of the parent: delete.
    Delete,
}

/// Where and how to apply a layer.
#[derive(Clone, Debug)]
pub struct Target {
    pub dir: PathBuf,
    pub whiteouts: Whiteouts,
    /// Lower layers' directories, top first: where hard-link targets from older layers are found.
    pub lowers: Vec<PathBuf>,
}

/// Limits against layers that expand without end.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Uncompressed bytes allowed regardless of the compressed size.
    pub floor: u64,
    /// Beyond the floor, at most this many uncompressed bytes per compressed byte.
    pub ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { floor: 1 << 30, ratio: 100 }
    }
}

/// What applying a layer found.
#[derive(Clone, Debug)]
pub struct Applied {
    pub diff_id: Digest,
    pub uncompressed: u64,
    pub entries: u64,
}

/// Hashes and counts the uncompressed stream, refusing to go past `limit`.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expands past {} bytes (a decompression bomb?)", self.limit)));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

struct Applier<'a> {
    target: &'a Target,
    layer: &'a str,
    /// Paths this layer has written, which an opaque marker in native mode must keep.
    written: HashSet<PathBuf>,
    /// Directories whose times are set once their contents are in.
    dir_times: Vec<(PathBuf, i64, i64)>,
    /// One copy buffer for every file of the layer (not one allocation per file).
    copy_buf: Vec<u8>,
}

impl Applier<'_> {
    fn err(&self, entry: &str, reason: impl Into<String>) -> SnapshotError {
        SnapshotError::Layer { layer: self.layer.to_string(), entry: entry.to_string(), reason: reason.into() }
    }

    /// The entry's path split into checked components.
    fn clean(&self, raw: &str) -> Result<Vec<PathBuf>> {
        let mut parts = Vec::new();
        for c in Path::new(raw).components() {
            match c {
                Component::Normal(s) => parts.push(PathBuf::from(s)),
                Component::CurDir => {}
                Component::ParentDir => return Err(self.err(raw, "path contains '..'")),
                Component::RootDir | Component::Prefix(_) => return Err(self.err(raw, "absolute path")),
            }
        }
        Ok(parts)
    }

    /// Creates (or checks) the parent directories of `parts` under the target, never following a
    /// symlink. A parent that is not a directory is, by the layer's own paths, a directory now: one
    /// from a lower layer (a symlink or file in the copied parent) is replaced by a directory, as an
    /// overlay upper directory hides it, so both backends give the same tree; one this layer wrote
    /// itself is refused (the layer would write through its own symlink, or under its own file).
    fn parent(&self, raw: &str, parts: &[PathBuf]) -> Result<PathBuf> {
        let mut cur = self.target.dir.clone();
        for c in &parts[..parts.len().saturating_sub(1)] {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if self.written.contains(&cur) && m.file_type().is_symlink() => {
                    return Err(self.err(raw, format!("would be written through the symlink {}", c.display())))
                }
                Ok(_) if self.written.contains(&cur) => return Err(self.err(raw, format!("{} is not a directory", c.display()))),
                Ok(_) => {
                    self.clear(&cur, false)?;
                    fs::create_dir(&cur).map_err(SnapshotError::io(format!("create {}", cur.display())))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(SnapshotError::io(format!("create {}", cur.display())))?;
                }
                Err(e) => return Err(SnapshotError::io(format!("stat {}", cur.display()))(e)),
            }
        }
        Ok(cur)
    }

    /// Removes whatever is at `path` (not following links), unless it is a directory and `keep_dir`.
    fn clear(&self, path: &Path, keep_dir: bool) -> Result<()> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() && keep_dir => Ok(()),
            Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(SnapshotError::io(format!("remove {}", path.display()))),
            Ok(_) => fs::remove_file(path).map_err(SnapshotError::io(format!("remove {}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SnapshotError::io(format!("stat {}", path.display()))(e)),
        }
    }

    fn whiteout(&mut self, raw: &str, dir: &Path, name: &OsStr) -> Result<()> {
        if name == OsStr::new(OPAQUE) && dir == self.target.dir {
            // It would hide every lower layer: a copy could do it, an overlay upper root cannot
            // (the kernel ignores the marker there), so the backends would disagree. Refused on both.
            return Err(self.err(raw, "an opaque marker at the layer's root would hide every lower layer"));
        }
        if name == OsStr::new(OPAQUE) {
            match self.target.whiteouts {
                Whiteouts::Overlay => {
                    xattr::set(dir, "trusted.overlay.opaque", b"y").map_err(|e| self.err(raw, format!("set opaque xattr: {e}")))?
                }
                Whiteouts::Delete => {
                    for entry in fs::read_dir(dir).map_err(SnapshotError::io(format!("read {}", dir.display())))? {
                        let p = entry.map_err(SnapshotError::io("read dir"))?.path();
                        if !self.written.contains(&p) {
                            self.clear(&p, false)?;
                        }
                    }
                }
            }
            return Ok(());
        }
        let hidden = &name.as_bytes()[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(self.err(raw, "malformed whiteout"));
        }
        let path = dir.join(OsStr::from_bytes(hidden));
        self.clear(&path, false)?;
        // Only where the lower layers show a directory is there anything to hide: in a directory
        // that is this layer's alone, overlayfs would list the whiteout device as a broken entry.
        if self.target.whiteouts == Whiteouts::Overlay && self.lowers_show_dir(dir) {
            mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| self.err(raw, format!("create whiteout: {e}")))?;
        }
        Ok(())
    }

    /// Whether the lower layers' merged view has a directory at `dir` (a path in the target), as
    /// overlayfs resolves it.
    fn lowers_show_dir(&self, dir: &Path) -> bool {
        let Ok(rel) = dir.strip_prefix(&self.target.dir) else { return false };
        crate::view::locate(&self.target.lowers, rel).is_some_and(|shown| fs::symlink_metadata(shown).is_ok_and(|m| m.is_dir()))
    }

    /// Finds a hard link's target: in this layer, else copied up from the topmost lower that has it.
    fn link_target(&self, raw: &str, link: &str) -> Result<PathBuf> {
        let parts = self.clean(link).map_err(|_| self.err(raw, format!("hard link to {link:?} leaves the layer")))?;
        if parts.is_empty() {
            return Err(self.err(raw, "hard link to the root"));
        }
        let parent = self.parent(raw, &parts)?;
        let here = parent.join(parts.last().map(PathBuf::as_path).unwrap_or(Path::new("")));
        if fs::symlink_metadata(&here).is_ok() {
            return Ok(here);
        }
        let rel: PathBuf = parts.iter().collect();
        for lower in &self.target.lowers {
            let there = lower.join(&rel);
            if fs::symlink_metadata(&there).is_ok_and(|m| m.is_file()) {
                fs::copy(&there, &here).map_err(SnapshotError::io(format!("copy up {}", there.display())))?;
                let m = fs::metadata(&there).map_err(SnapshotError::io("stat lower"))?;
                use std::os::unix::fs::MetadataExt;
                // As for an entry: owner, then xattrs (file capabilities among them), then the mode,
                // so that chown drops neither the capabilities nor setuid/setgid.
                lchown(&here, Some(m.uid()), Some(m.gid())).map_err(SnapshotError::io("chown copy-up"))?;
                for attr in xattr::list(&there).map_err(SnapshotError::io(format!("list xattrs of {}", there.display())))? {
                    if attr.as_bytes().starts_with(b"trusted.overlay.") {
                        continue;
                    }
                    if let Some(value) = xattr::get(&there, &attr).map_err(SnapshotError::io(format!("read xattrs of {}", there.display())))? {
                        xattr::set(&here, &attr, &value).map_err(|err| self.err(raw, format!("copy xattr {} up: {err}", attr.to_string_lossy())))?;
                    }
                }
                fs::set_permissions(&here, m.permissions()).map_err(SnapshotError::io("chmod copy-up"))?;
                return Ok(here);
            }
        }
        Err(self.err(raw, format!("hard link target {link:?} does not exist")))
    }

    /// Copies an entry's data, telling a broken layer stream (read side) from a failed write.
    fn copy_data(&mut self, raw: &str, from: &mut impl Read, to: &mut File) -> Result<()> {
        let mut buf = std::mem::take(&mut self.copy_buf);
        buf.resize(256 << 10, 0);
        let copied = self.copy_with(&mut buf, raw, from, to);
        self.copy_buf = buf;
        copied
    }

    fn copy_with(&self, buf: &mut [u8], raw: &str, from: &mut impl Read, to: &mut File) -> Result<()> {
        loop {
            let n = match from.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err(raw, format!("layer stream truncated or corrupt: {e}"))),
            };
            io::Write::write_all(to, &buf[..n]).map_err(|e| self.err(raw, format!("write: {e}")))?;
        }
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<()> {
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let parts = self.clean(&raw)?;
        let Some(name) = parts.last().cloned() else { return Ok(()) }; // "./" itself
        let dir = self.parent(&raw, &parts)?;
        let path = dir.join(&name);
        if name.as_os_str().as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&raw, &dir, name.as_os_str());
        }
        let h = e.header().clone();
        let kind = h.entry_type();
        let mode = h.mode().map_err(|e| self.err(&raw, e.to_string()))? & 0o7777;
        let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
        let mtime = h.mtime().unwrap_or(0) as i64;
        match kind {
            tar::EntryType::Directory => {
                self.clear(&path, true)?;
                if fs::symlink_metadata(&path).is_err() {
                    fs::create_dir(&path).map_err(SnapshotError::io(format!("create {}", path.display())))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                self.clear(&path, false)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc_o_nofollow())
                    .mode(0o600)
                    .open(&path)
                    .map_err(SnapshotError::io(format!("create {}", path.display())))?;
                self.copy_data(&raw, &mut e, &mut f)?;
            }
            tar::EntryType::Symlink => {
                let target = e.link_name_bytes().ok_or_else(|| self.err(&raw, "symlink without target"))?;
                self.clear(&path, false)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(SnapshotError::io(format!("symlink {}", path.display())))?;
            }
            tar::EntryType::Link => {
                let link = String::from_utf8_lossy(&e.link_name_bytes().ok_or_else(|| self.err(&raw, "hard link without target"))?).into_owned();
                let target = self.link_target(&raw, &link)?;
                if target != path {
                    self.clear(&path, false)?;
                    fs::hard_link(&target, &path).map_err(SnapshotError::io(format!("link {}", path.display())))?;
                }
                self.written.insert(path);
                return Ok(());
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let sflag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(
                    u64::from(h.device_major().ok().flatten().unwrap_or(0)),
                    u64::from(h.device_minor().ok().flatten().unwrap_or(0)),
                );
                self.clear(&path, false)?;
                mknod(&path, sflag, Mode::from_bits_truncate(0o600), dev).map_err(|err| match err {
                    nix::errno::Errno::EPERM => self.err(&raw, "device node in an unprivileged context (no CAP_MKNOD)"),
                    other => self.err(&raw, format!("mknod: {other}")),
                })?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                return Ok(());
            }
            other => return Err(self.err(&raw, format!("unsupported entry type {other:?}"))),
        }
        // Ownership first: the kernel drops security.capability and the setuid/setgid bits on chown,
        // so xattrs and the mode are set after it.
        lchown(&path, Some(uid), Some(gid)).map_err(SnapshotError::io(format!("chown {}", path.display())))?;
        // Extended attributes from PAX records (overlay's own are never taken from a layer).
        if let Ok(Some(exts)) = e.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(attr) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    if attr.starts_with("trusted.overlay.") {
                        tracing::warn!(layer = self.layer, entry = %raw, attr, "ignoring overlay xattr in layer");
                        continue;
                    }
                    xattr::set(&path, attr, ext.value_bytes()).map_err(|err| self.err(&raw, format!("xattr {attr}: {err}")))?;
                }
            }
        }
        if kind != tar::EntryType::Symlink {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(SnapshotError::io(format!("chmod {}", path.display())))?;
        }
        if kind == tar::EntryType::Directory {
            self.dir_times.push((path.clone(), mtime, 0));
        } else {
            let t = TimeSpec::new(mtime, 0);
            utimensat(None, &path, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(|err| self.err(&raw, format!("set times: {err}")))?;
        }
        self.written.insert(path);
        Ok(())
    }
}

fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

/// Applies the uncompressed tar stream `reader` of `layer` (its digest, for messages) onto `target`.
/// `compressed_size` bounds how far the stream may expand.
pub fn apply(reader: impl Read, layer: &str, compressed_size: u64, target: &Target, limits: Limits) -> Result<Applied> {
    let limit = limits.floor.max(compressed_size.saturating_mul(limits.ratio));
    let mut hashing = Hashing { inner: reader, hasher: Sha256::new(), count: 0, limit };
    let mut applier = Applier { target, layer, written: HashSet::new(), dir_times: Vec::new(), copy_buf: Vec::new() };
    let mut entries = 0u64;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let iter = archive.entries().map_err(|e| SnapshotError::BadLayer { layer: layer.into(), reason: format!("not a tar stream: {e}") })?;
        for entry in iter {
            let entry = entry.map_err(|e| SnapshotError::BadLayer { layer: layer.into(), reason: format!("corrupt or truncated: {e}") })?;
            applier.entry(entry)?;
            entries += 1;
        }
    }
    // The diffID covers the whole stream, trailing padding included.
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| SnapshotError::BadLayer { layer: layer.into(), reason: format!("corrupt or truncated: {e}") })?;
    for (dir, mtime, _) in applier.dir_times.iter().rev() {
        let t = TimeSpec::new(*mtime, 0);
        let _ = utimensat(None, dir, &t, &t, UtimensatFlags::NoFollowSymlink);
    }
    let diff_id = format!("sha256:{}", hex::encode(hashing.hasher.finalize())).parse::<Digest>()?;
    Ok(Applied { diff_id, uncompressed: hashing.count, entries })
}
