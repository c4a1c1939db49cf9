//! Exporting images as an OCI layout directory or an oci-archive tar. Blobs are copied byte for
//! byte from the store, so a round trip through export and import keeps every digest.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use skiff_store::{buffered, ContentStore, ImageRecord, Store};

use crate::error::{ImageError, Result};
use crate::import::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::source::blob_path;
use crate::media::{Kind, MAX_MANIFEST_SIZE, OCI_INDEX, OCI_LAYOUT_VERSION};
use crate::model::{parse_index, parse_manifest, Desc};
use crate::platform::Platform;
use crate::progress::{Counting, Progress};
use crate::reference::Reference;
use crate::resolve::read_json;

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
    /// Only this platform's manifest (with the index that lists it). Default: every manifest whose
    /// content is in the store.
    pub platform: Option<Platform>,
}

/// Collects the blobs below `desc` that the export needs, children before parents.
fn collect(store: &dyn ContentStore, desc: &Desc, opts: &ExportOptions, required: bool, out: &mut Vec<Desc>) -> Result<bool> {
    let present = |d: &Desc| store.info(&d.digest).is_ok();
    match desc.kind("manifest")? {
        Kind::Index => {
            let index = parse_index(&read_json(store, desc, MAX_MANIFEST_SIZE)?, desc)?;
            let mut any = false;
            for m in &index.manifests {
                let wanted = match (&opts.platform, &m.platform) {
                    (Some(want), Some(p)) => want.matches(p),
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                if wanted {
                    any |= collect(store, m, opts, opts.platform.is_some(), out)?;
                }
            }
            if !any {
                return Err(ImageError::MissingBlob {
                    what: "manifest",
                    digest: format!("for {} in {}", opts.platform.as_ref().map_or("any platform".into(), |p| p.to_string()), desc.digest),
                    source_name: "the content store".into(),
                });
            }
            out.push(desc.clone());
            Ok(true)
        }
        Kind::Manifest => {
            if !present(desc) && !required {
                return Ok(false);
            }
            let manifest = parse_manifest(&read_json(store, desc, MAX_MANIFEST_SIZE)?, desc)?;
            let children: Vec<&Desc> = std::iter::once(&manifest.config).chain(&manifest.layers).collect();
            if let Some(missing) = children.iter().find(|c| !present(c)) {
                if !required {
                    tracing::debug!(manifest = %desc.digest, missing = %missing.digest, "skipping manifest whose content is not stored");
                    return Ok(false);
                }
                return Err(ImageError::MissingBlob {
                    what: "blob",
                    digest: missing.digest.to_string(),
                    source_name: "the content store".into(),
                });
            }
            out.extend(children.into_iter().cloned());
            out.push(desc.clone());
            Ok(true)
        }
        other => Err(ImageError::malformed("image", &desc.digest, format!("cannot export a {other:?}"))),
    }
}

/// The stored blobs of the image at `target`, children before parents: what export writes and
/// push uploads. Manifests of other platforms whose content is not stored are left out.
pub fn image_blobs(store: &dyn ContentStore, target: &Desc, opts: &ExportOptions) -> Result<Vec<Desc>> {
    let mut out = Vec::new();
    collect(store, target, opts, true, &mut out)?;
    let mut seen = HashSet::new();
    out.retain(|b| seen.insert(b.digest.clone()));
    Ok(out)
}

/// The `index.json` entry for an image: its target with name annotations.
fn index_entry(record: &ImageRecord) -> serde_json::Value {
    let mut annotations: BTreeMap<String, String> = record.target.annotations.clone();
    annotations.insert(ANNOTATION_IMAGE_NAME.into(), record.name.clone());
    if let Ok(r) = record.name.parse::<Reference>() {
        if let Some(tag) = r.tag {
            annotations.insert(ANNOTATION_REF_NAME.into(), tag);
        }
    }
    serde_json::json!({
        "mediaType": record.target.media_type,
        "digest": record.target.digest.to_string(),
        "size": record.target.size,
        "annotations": annotations,
    })
}

/// Writes `records` to `dest`. The result appears at `dest` only when complete.
pub fn export(
    store: &Store,
    records: &[ImageRecord],
    dest: &Path,
    format: ExportFormat,
    opts: &ExportOptions,
    progress: &dyn Progress,
) -> Result<u64> {
    if records.is_empty() {
        return Err(ImageError::InvalidArgument("no images to export".into()));
    }
    if dest.exists() {
        return Err(ImageError::InvalidArgument(format!("{} already exists", dest.display())));
    }
    let mut blobs = Vec::new();
    for r in records {
        blobs.extend(image_blobs(store.content(), &Desc::from_store(&r.target), opts)?);
    }
    let mut seen = HashSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
    progress.total(blobs.iter().map(|b| b.size).sum());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": records.iter().map(index_entry).collect::<Vec<_>>(),
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
    Ok(blobs.len() as u64)
}

fn write_layout(store: &Store, blobs: &[Desc], dir: &Path, layout: &[u8], index: &[u8], progress: &dyn Progress) -> Result<u64> {
    let io_err = |what: &str| ImageError::io(format!("write {what} under {}", dir.display()));
    fs::create_dir_all(dir.join("blobs/sha256")).map_err(io_err("blobs/sha256"))?;
    for b in blobs {
        let mut src = Counting::new(buffered(store.content().open(&b.digest)?), progress);
        let mut out = File::create(dir.join(blob_path(b))).map_err(io_err(&blob_path(b)))?;
        io::copy(&mut src, &mut out).map_err(io_err(&blob_path(b)))?;
    }
    fs::write(dir.join("oci-layout"), layout).map_err(io_err("oci-layout"))?;
    fs::write(dir.join("index.json"), index).map_err(io_err("index.json"))?;
    Ok(blobs.len() as u64)
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

fn write_archive(store: &Store, blobs: &[Desc], path: &Path, layout: &[u8], index: &[u8], progress: &dyn Progress) -> Result<u64> {
    let io_err = || ImageError::io(format!("write {}", path.display()));
    let file = File::create(path).map_err(io_err())?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    tar.append_data(&mut header(layout.len() as u64, 0o644, tar::EntryType::Regular), "oci-layout", layout).map_err(io_err())?;
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append_data(&mut header(0, 0o755, tar::EntryType::Directory), dir, io::empty()).map_err(io_err())?;
    }
    for b in blobs {
        let src = Counting::new(buffered(store.content().open(&b.digest)?), progress);
        tar.append_data(&mut header(b.size, 0o644, tar::EntryType::Regular), blob_path(b), src.take(b.size)).map_err(io_err())?;
    }
    tar.append_data(&mut header(index.len() as u64, 0o644, tar::EntryType::Regular), "index.json", index).map_err(io_err())?;
    let mut out = tar.into_inner().map_err(io_err())?;
    out.flush().map_err(io_err())?;
    out.get_ref().sync_all().map_err(io_err())?;
    Ok(blobs.len() as u64)
}
