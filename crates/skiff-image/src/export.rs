//! Exporting images as an OCI layout directory or an oci-archive tar. Blobs are copied byte for
//! byte from the store, so a round trip through export and import keeps every digest — except an
//! index that names platforms not stored here, which is exported rewritten to list only those that
//! are, so that the archive holds every blob it names.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use skiff_store::{buffered, ContentStore, ImageRecord, Store};

use crate::error::{ImageError, Result};
use crate::import::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::media::{OCI_INDEX, OCI_LAYOUT_VERSION};
use crate::model::Desc;
use crate::platform::Platform;
use crate::progress::{Counting, Progress};
use crate::reference::Reference;
use crate::source::blob_path;
use crate::stored::{stored, stored_platform, Stored};

/// The export's shape on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// A directory holding `oci-layout`, `index.json` and `blobs/`.
    Layout,
    /// The same as one tar file.
    Archive,
}

/// Which platforms to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Only this platform's manifest, which becomes the image's `index.json` entry. Default: every
    /// manifest whose content is in the store, under an index that lists only those.
    pub platform: Option<Platform>,
}

/// The stored part of `record` that an export writes, per `opts`.
fn part(store: &dyn ContentStore, record: &ImageRecord, opts: &ExportOptions) -> Result<Stored> {
    let target = Desc::from_store(&record.target);
    let part = match &opts.platform {
        Some(p) => stored_platform(store, &target, p)?,
        None => stored(store, &target)?,
    };
    if !part.missing.is_empty() {
        tracing::info!(image = %record.name, missing = %part.missing_platforms(), index = %part.top.digest,
            "exporting an index of the stored platforms only");
    }
    Ok(part)
}

/// What `org.opencontainers.image.ref.name` says for each record. OCI tools pick an image of a
/// layout by this name, so it must tell the images apart: the tag alone, as containerd and Docker
/// write it, where no other image in the export has that tag; else (and for an image named by
/// digest) the full reference, which the OCI grammar for ref.name also allows.
fn ref_names(records: &[&ImageRecord]) -> Vec<String> {
    let tags: Vec<Option<String>> = records.iter().map(|r| r.name.parse::<Reference>().ok().and_then(|r| r.tag)).collect();
    tags.iter()
        .zip(records)
        .map(|(tag, r)| match tag {
            Some(t) if tags.iter().filter(|o| o.as_ref() == Some(t)).count() == 1 => t.clone(),
            _ => r.name.clone(),
        })
        .collect()
}

/// The `index.json` entry for an image: the top of its stored part, with the record's descriptor
/// annotations (under the manifest entry's own, for one platform) and the name annotations.
fn index_entry(record: &ImageRecord, part: &Stored, ref_name: &str) -> serde_json::Value {
    let mut annotations: BTreeMap<String, String> = record.target.annotations.clone();
    if part.top.digest != record.target.digest {
        annotations.extend(part.top.annotations.clone());
    }
    annotations.insert(ANNOTATION_IMAGE_NAME.into(), record.name.clone());
    annotations.insert(ANNOTATION_REF_NAME.into(), ref_name.to_string());
    let mut entry = serde_json::json!({
        "mediaType": part.top.media_type,
        "digest": part.top.digest.to_string(),
        "size": part.top.size,
        "annotations": annotations,
    });
    if let Some(p) = &part.top.platform {
        let mut platform = serde_json::json!({"architecture": p.architecture, "os": p.os});
        if let Some(v) = &p.variant {
            platform["variant"] = serde_json::Value::String(v.clone());
        }
        entry["platform"] = platform;
    }
    entry
}

/// Writes `records` to `dest`. The result appears at `dest` only when complete, and every
/// descriptor in it names a blob it holds.
pub fn export(
    store: &Store,
    records: &[ImageRecord],
    dest: &Path,
    format: ExportFormat,
    opts: &ExportOptions,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut names = HashSet::new();
    let records: Vec<&ImageRecord> = records.iter().filter(|r| names.insert(r.name.clone())).collect();
    if records.is_empty() {
        return Err(ImageError::InvalidArgument("no images to export".into()));
    }
    if dest.exists() {
        return Err(ImageError::InvalidArgument(format!("{} already exists", dest.display())));
    }
    let mut blobs = Blobs::default();
    let mut entries = Vec::new();
    for (r, ref_name) in records.iter().zip(ref_names(&records)) {
        let part = part(store.content(), r, opts)?;
        entries.push(index_entry(r, &part, &ref_name));
        blobs.add(part);
    }
    progress.total(blobs.stored.iter().map(|b| b.size).sum::<u64>() + blobs.made.iter().map(|(d, _)| d.size).sum::<u64>());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    let index_bytes = serde_json::to_vec(&index).map_err(|e| ImageError::InvalidArgument(e.to_string()))?;
    let layout = format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}");
    let tmp = PathBuf::from(format!("{}.skiff-tmp-{}", dest.display(), std::process::id()));
    let result = match format {
        ExportFormat::Layout => write_layout(store, &blobs, &tmp, layout.as_bytes(), &index_bytes, progress),
        ExportFormat::Archive => write_archive(store, &blobs, &tmp, layout.as_bytes(), &index_bytes, progress),
    };
    if let Err(e) = result.and_then(|n| {
        fs::rename(&tmp, dest).map_err(ImageError::io(format!("rename into {}", dest.display())))?;
        Ok(n)
    }) {
        let _ = fs::remove_dir_all(&tmp).or_else(|_| fs::remove_file(&tmp));
        return Err(e);
    }
    Ok(blobs.len())
}

/// The blobs of an export, each once: from the store, and indexes made for it.
#[derive(Default)]
struct Blobs {
    stored: Vec<Desc>,
    made: Vec<(Desc, Vec<u8>)>,
    seen: HashSet<skiff_store::Digest>,
}

impl Blobs {
    fn add(&mut self, part: Stored) {
        for b in part.blobs {
            if self.seen.insert(b.digest.clone()) {
                self.stored.push(b);
            }
        }
        for (d, bytes) in part.made {
            if self.seen.insert(d.digest.clone()) {
                self.made.push((d, bytes));
            }
        }
    }

    fn len(&self) -> u64 {
        (self.stored.len() + self.made.len()) as u64
    }
}

fn write_layout(store: &Store, blobs: &Blobs, dir: &Path, layout: &[u8], index: &[u8], progress: &dyn Progress) -> Result<u64> {
    let io_err = |what: &str| ImageError::io(format!("write {what} under {}", dir.display()));
    fs::create_dir_all(dir.join("blobs/sha256")).map_err(io_err("blobs/sha256"))?;
    for b in &blobs.stored {
        let mut src = Counting::new(buffered(store.content().open(&b.digest)?), progress);
        let mut out = File::create(dir.join(blob_path(b))).map_err(io_err(&blob_path(b)))?;
        io::copy(&mut src, &mut out).map_err(io_err(&blob_path(b)))?;
    }
    for (d, bytes) in &blobs.made {
        fs::write(dir.join(blob_path(d)), bytes).map_err(io_err(&blob_path(d)))?;
        progress.advance(d.size);
    }
    fs::write(dir.join("oci-layout"), layout).map_err(io_err("oci-layout"))?;
    fs::write(dir.join("index.json"), index).map_err(io_err("index.json"))?;
    Ok(blobs.len())
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn write_archive(store: &Store, blobs: &Blobs, path: &Path, layout: &[u8], index: &[u8], progress: &dyn Progress) -> Result<u64> {
    let io_err = || ImageError::io(format!("write {}", path.display()));
    let file = File::create(path).map_err(io_err())?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    tar.append_data(&mut header(layout.len() as u64, 0o644, tar::EntryType::Regular), "oci-layout", layout).map_err(io_err())?;
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append_data(&mut header(0, 0o755, tar::EntryType::Directory), dir, io::empty()).map_err(io_err())?;
    }
    for b in &blobs.stored {
        let src = Counting::new(buffered(store.content().open(&b.digest)?), progress);
        tar.append_data(&mut header(b.size, 0o644, tar::EntryType::Regular), blob_path(b), src.take(b.size)).map_err(io_err())?;
    }
    for (d, bytes) in &blobs.made {
        tar.append_data(&mut header(d.size, 0o644, tar::EntryType::Regular), blob_path(d), &bytes[..]).map_err(io_err())?;
        progress.advance(d.size);
    }
    tar.append_data(&mut header(index.len() as u64, 0o644, tar::EntryType::Regular), "index.json", index).map_err(io_err())?;
    let mut out = tar.into_inner().map_err(io_err())?;
    out.flush().map_err(io_err())?;
    out.get_ref().sync_all().map_err(io_err())?;
    Ok(blobs.len())
}
