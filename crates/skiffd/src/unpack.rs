//! Unpacking stored images into snapshots, and garbage collection across content and snapshots.

use std::collections::HashSet;

use skiff_image::model::Desc;
use skiff_image::resolve::resolve;
use skiff_image::Platform;
use skiff_snapshot::{needed_by, Unpacker};
use skiff_api::v1;
use skiff_image::import::ImportReport;
use skiff_store::{GcReport, ImageRecord, Store};

use crate::status::ApiError;

/// The platform a record was stored for, else the daemon's default.
pub fn platform_of(record: &ImageRecord, default: &Platform) -> Result<Platform, ApiError> {
    if record.platform.is_empty() {
        Ok(default.clone())
    } else {
        Ok(record.platform.parse()?)
    }
}

/// Unpacks each image's layers (for the platform it was stored for). Returns (unpacked, present).
pub fn unpack_images(store: &Store, unpacker: &Unpacker, images: &[ImageRecord], default: &Platform) -> Result<(u32, u32), ApiError> {
    let (mut unpacked, mut present) = (0, 0);
    for record in images {
        if record.platform.is_empty() {
            // An --all-platforms import with no manifest for this host: nothing to unpack here.
            continue;
        }
        let resolved = resolve(store.content(), &Desc::from_store(&record.target), &platform_of(record, default)?)?;
        let started = std::time::Instant::now();
        let report = unpacker.unpack(store, &resolved).map_err(|e| ApiError::Unpack { image: record.name.clone(), source: e })?;
        tracing::info!(image = %record.name, unpacked = report.unpacked, present = report.present, bytes = report.bytes, elapsed = ?started.elapsed(), "unpacked");
        unpacked += report.unpacked as u32;
        present += report.present as u32;
    }
    Ok((unpacked, present))
}

/// Unpacks what an import or pull stored (unless `no_unpack`) and describes both for the client.
pub fn finish(
    store: &Store,
    unpacker: &Unpacker,
    stored: &ImportReport,
    no_unpack: bool,
    default: &Platform,
) -> Result<v1::ImportResult, ApiError> {
    let (layers_unpacked, layers_present) = if no_unpack { (0, 0) } else { unpack_images(store, unpacker, &stored.images, default)? };
    Ok(v1::ImportResult {
        images: stored.images.iter().map(crate::convert::image).collect(),
        blobs_written: stored.blobs_written as u32,
        blobs_present: stored.blobs_present as u32,
        bytes_written: stored.bytes_written,
        layers_unpacked,
        layers_present,
    })
}

/// Removes content and snapshots that no image (or lease, or root label) needs.
pub fn collect(store: &Store, unpacker: &Unpacker, default: &Platform) -> Result<(GcReport, Vec<String>), ApiError> {
    let content = store.collect_garbage()?;
    let mut needed = HashSet::new();
    for record in store.images().list()? {
        match platform_of(&record, default)
            .and_then(|p| Ok(resolve(store.content(), &Desc::from_store(&record.target), &p)?))
        {
            Ok(r) => needed.extend(needed_by(&r)),
            Err(e) => {
                // Without knowing what this image needs, removing snapshots could take its layers.
                tracing::warn!(image = %record.name, error = %e, "cannot resolve image; keeping all snapshots this time");
                return Ok((content, Vec::new()));
            }
        }
    }
    let snapshots = unpacker.collect(&needed).map_err(|e| ApiError::Snapshot(Box::new(e)))?;
    Ok((content, snapshots))
}
