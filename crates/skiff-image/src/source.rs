//! Where imported blobs come from: an OCI layout directory, or a tar archive read in place.
//!
//! An archive is scanned once for its entry table (headers only, seeking over data), checking every
//! path on the way: absolute paths, `..` components and links that leave the archive are refused.
//! Blobs are then read straight from their byte ranges, which lets several layers be ingested at once.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{ImageError, Result};
use crate::model::Desc;

/// Where an OCI layout keeps a blob.
pub fn blob_path(d: &Desc) -> String {
    format!("blobs/{}/{}", d.digest.algorithm(), d.digest.hex())
}

/// A blob source: an opened reader and its length, or `None` when the path is absent.
pub trait Source: Sync {
    /// A name for messages (the path imported from).
    fn name(&self) -> &str;
    fn open(&self, path: &str) -> Result<Option<(Box<dyn Read + Send + '_>, u64)>>;

    /// Opens the blob `desc` names: in a layout at `blobs/<alg>/<hex>`; a registry fetches
    /// manifests and blobs from their own endpoints.
    fn open_blob(&self, desc: &Desc) -> Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        self.open(&blob_path(desc))
    }

    /// Reads a small file whole, refusing more than `limit` bytes.
    fn read_small(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some((r, size)) = self.open(path)? else { return Ok(None) };
        if size > limit {
            return Err(ImageError::InvalidArchive {
                path: self.name().to_string(),
                reason: format!("{path} is {size} bytes, over the {limit}-byte limit"),
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        r.take(limit).read_to_end(&mut buf).map_err(ImageError::io(format!("read {path} from {}", self.name())))?;
        Ok(Some(buf))
    }
}

/// An OCI layout (or unpacked docker-archive) directory.
pub struct DirSource {
    root: PathBuf,
    name: String,
}

impl DirSource {
    pub fn new(root: &Path) -> DirSource {
        DirSource { root: root.to_path_buf(), name: root.display().to_string() }
    }
}

impl Source for DirSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&self, path: &str) -> Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        let rel = clean_path(path)?;
        let full = self.root.join(rel);
        match File::open(&full) {
            Ok(f) => {
                let len = f.metadata().map_err(ImageError::io(format!("stat {}", full.display())))?.len();
                Ok(Some((Box::new(f), len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(format!("open {}", full.display()))(e)),
        }
    }
}

/// A tar archive (oci-archive or docker-archive), read in place.
pub struct TarSource {
    file: File,
    name: String,
    entries: HashMap<String, (u64, u64)>,
}

/// Normalises an archive path: strips `./`, refuses absolute paths and `..`.
fn clean_path(raw: &str) -> Result<String> {
    let hostile = |reason| ImageError::HostileEntry { entry: raw.to_string(), reason };
    let p = Path::new(raw);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| hostile("path is not UTF-8"))?),
            Component::CurDir => {}
            Component::ParentDir => return Err(hostile("path contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(hostile("absolute path")),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a link target inside the archive; `base` is the directory the link sits in (symlinks)
/// or the archive root (hard links).
fn resolve_link(entry: &str, base: &str, target: &str) -> Result<String> {
    let hostile = |reason| ImageError::HostileEntry { entry: format!("{entry} -> {target}"), reason };
    if target.starts_with('/') {
        return Err(hostile("link to an absolute path"));
    }
    let mut parts: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(|| hostile("link points outside the archive"))?;
            }
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

impl TarSource {
    /// Scans the archive's entry table.
    pub fn scan(path: &Path) -> Result<TarSource> {
        let name = path.display().to_string();
        let invalid = |reason: String| ImageError::InvalidArchive { path: name.clone(), reason };
        let file = File::open(path).map_err(ImageError::io(format!("open {name}")))?;
        let len = file.metadata().map_err(ImageError::io(format!("stat {name}")))?.len();
        let mut magic = [0u8; 4];
        let n = file.read_at(&mut magic, 0).map_err(ImageError::io(format!("read {name}")))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(invalid("the archive is compressed; decompress it first (e.g. gunzip or zstd -d)".into()));
        }
        if len < 512 {
            return Err(invalid(format!("{len} bytes is too short to be a tar archive")));
        }
        let mut entries = HashMap::new();
        let mut links = Vec::new();
        let mut archive = tar::Archive::new(&file);
        let iter = archive.entries_with_seek().map_err(|e| invalid(format!("not a tar archive: {e}")))?;
        for entry in iter {
            let entry = entry.map_err(|e| invalid(format!("truncated or corrupt tar: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let clean = clean_path(&raw)?;
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let (off, size) = (entry.raw_file_position(), entry.size());
                    if off.saturating_add(size) > len {
                        return Err(invalid(format!(
                            "truncated: entry {raw:?} needs {size} bytes at offset {off} but the file ends at {len}"
                        )));
                    }
                    entries.insert(clean, (off, size));
                }
                tar::EntryType::Directory => {}
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| invalid(format!("link {raw:?} has no target")))?;
                    let base = if kind == tar::EntryType::Symlink {
                        clean.rsplit_once('/').map_or("", |(d, _)| d).to_string()
                    } else {
                        String::new()
                    };
                    links.push((clean.clone(), resolve_link(&raw, &base, &target)?));
                }
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
                _ => {
                    return Err(ImageError::HostileEntry {
                        entry: raw,
                        reason: "device, fifo or other special file in an image archive",
                    })
                }
            }
        }
        for (link, target) in links {
            let at = entries.get(&target).copied().ok_or_else(|| invalid(format!("link {link:?} points at missing {target:?}")))?;
            entries.insert(link, at);
        }
        Ok(TarSource { file, name, entries })
    }
}

/// Reads a byte range of a file with positioned reads, so readers can share one file handle.
struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive ended inside an entry"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Source for TarSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&self, path: &str) -> Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        let key = clean_path(path)?;
        Ok(self.entries.get(&key).map(|&(off, size)| {
            (Box::new(RangeReader { file: &self.file, pos: off, end: off + size }) as Box<dyn Read + Send>, size)
        }))
    }
}

/// A source that serves blobs the store already holds from the store, and the rest from `inner`:
/// a re-pull or a resumed pull then fetches only what is missing, manifests and configs included.
pub struct StoreFirst<'a> {
    pub store: &'a dyn skiff_store::ContentStore,
    pub inner: &'a dyn Source,
}

impl Source for StoreFirst<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn open(&self, path: &str) -> Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        self.inner.open(path)
    }

    fn open_blob(&self, desc: &Desc) -> Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        match self.store.info(&desc.digest) {
            Ok(info) => Ok(Some((Box::new(self.store.open(&desc.digest)?), info.size))),
            Err(_) => self.inner.open_blob(desc),
        }
    }
}

/// Opens `path` as a directory layout or an archive.
pub fn open_source(path: &Path) -> Result<Box<dyn Source>> {
    let meta = std::fs::metadata(path).map_err(ImageError::io(format!("open {}", path.display())))?;
    if meta.is_dir() {
        Ok(Box::new(DirSource::new(path)))
    } else {
        Ok(Box::new(TarSource::scan(path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path("./blobs/sha256/ab").expect("ok"), "blobs/sha256/ab");
        assert!(matches!(clean_path("../etc/passwd"), Err(ImageError::HostileEntry { .. })));
        assert!(matches!(clean_path("blobs/../../x"), Err(ImageError::HostileEntry { .. })));
        assert!(matches!(clean_path("/etc/passwd"), Err(ImageError::HostileEntry { .. })));
        assert_eq!(resolve_link("a/l", "a", "../b/layer.tar").expect("ok"), "b/layer.tar");
        assert!(resolve_link("a/l", "a", "../../etc").is_err());
        assert!(resolve_link("l", "", "/etc/passwd").is_err());
    }
}
