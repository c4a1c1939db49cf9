//! Unpacking stored images into snapshots, and garbage collection across content and snapshots.

use std::collections::HashSet;

use skiff_image::model::Desc;
use skiff_image::resolve::resolve;
use skiff_image::Platform;
use skiff_snapshot::{needed_by, Unpacker};
use skiff_store::{GcReport, ImageRecord, Store};
use skiff_types::{ErrorKind, HasKind};

use crate::containers::sweeper::{Sweeper, BEFORE_COLLECT};
use crate::error::{EngineError, Result};
use crate::images::{platform_of, stored_platforms};

/// Unpacks each image's layers (for the platform it was stored for). Returns (unpacked, present).
pub fn unpack_images(store: &Store, unpacker: &Unpacker, images: &[ImageRecord], default: &Platform) -> Result<(u32, u32)> {
    let (mut unpacked, mut present) = (0, 0);
    for record in images {
        if record.platform.is_empty() {
            // An --all-platforms import with no manifest for this host: nothing to unpack here.
            continue;
        }
        let resolved = resolve(store.content(), &Desc::from_store(&record.target), &platform_of(record, default)?)?;
        let started = std::time::Instant::now();
        let report = unpacker.unpack(store, &resolved).map_err(|e| EngineError::Unpack { image: record.name.clone(), source: e })?;
        tracing::info!(image = %record.name, unpacked = report.unpacked, present = report.present, bytes = report.bytes, elapsed = ?started.elapsed(), "unpacked");
        unpacked += report.unpacked as u32;
        present += report.present as u32;
    }
    Ok((unpacked, present))
}

/// Unpacks what an import or pull stored (unless `no_unpack`); (unpacked, present). An image whose
/// layers are refused (hostile or broken content) is not left looking runnable: its record is
/// removed and what only it used is collected (what other images share stays), and the answer is
/// `Refused`.
pub fn unpack_stored(store: &Store, unpacker: &Unpacker, images: &[ImageRecord], no_unpack: bool, default: &Platform) -> Result<(u32, u32)> {
    if no_unpack {
        return Ok((0, 0));
    }
    match unpack_images(store, unpacker, images, default) {
        Err(EngineError::Unpack { image, source }) if source.kind() == ErrorKind::InvalidArgument => {
            match store.images().delete(&image) {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            let (content, snapshots) = collect(store, unpacker, default)?;
            tracing::warn!(image, blobs = content.removed.len(), snapshots = snapshots.len(), error = %source, "image refused and removed");
            Err(EngineError::Refused { image, source })
        }
        other => other,
    }
}

/// [`collect`], once removed containers' leftovers are swept (waiting at most
/// [`BEFORE_COLLECT`]): a snapshot still queued there would keep its image's layers. For the
/// collections a caller asks for (an image removal, a prune).
pub fn collect_after_removals(removals: &Sweeper, store: &Store, unpacker: &Unpacker, default: &Platform) -> Result<(GcReport, Vec<String>)> {
    removals.drain(BEFORE_COLLECT);
    collect(store, unpacker, default)
}

/// Removes content and snapshots that no image (or lease, or root label) needs.
pub fn collect(store: &Store, unpacker: &Unpacker, default: &Platform) -> Result<(GcReport, Vec<String>)> {
    let content = store.collect_garbage()?;
    let mut needed = HashSet::new();
    for record in store.images().list()? {
        // Every stored platform's layers are kept, not only the default's.
        let resolved = stored_platforms(&record, default).and_then(|platforms| {
            platforms.iter().map(|p| Ok(resolve(store.content(), &Desc::from_store(&record.target), p)?)).collect::<Result<Vec<_>>>()
        });
        match resolved {
            Ok(all) => all.iter().for_each(|r| needed.extend(needed_by(r))),
            Err(e) => {
                // Without knowing what this image needs, removing snapshots could take its layers.
                tracing::warn!(image = %record.name, error = %e, "cannot resolve image; keeping all snapshots this time");
                return Ok((content, Vec::new()));
            }
        }
    }
    let snapshots = unpacker.collect(&needed)?;
    Ok((content, snapshots))
}
