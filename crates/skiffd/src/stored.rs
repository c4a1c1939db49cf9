//! What an import or a pull stored, unpacked and described for the client: the one ending both
//! the Images service and the registry pulls share.

use skiff_api::v1;
use skiff_engine::unpack::{collect, unpack_images};
use skiff_engine::EngineError;
use skiff_types::{ErrorKind, HasKind};
use skiff_image::import::ImportReport;
use skiff_image::Platform;
use skiff_snapshot::Unpacker;
use skiff_store::Store;

use crate::convert;
use crate::status::ApiError;

/// Unpacks what an import or pull stored (unless `no_unpack`) and describes both for the client.
/// An image whose layers are refused (hostile or broken content) is not left looking runnable:
/// its record is removed and what only it used is collected; what other images share stays.
pub fn finish(store: &Store, unpacker: &Unpacker, stored: &ImportReport, no_unpack: bool, default: &Platform) -> Result<v1::ImportResult, ApiError> {
    let (layers_unpacked, layers_present) = if no_unpack {
        (0, 0)
    } else {
        match unpack_images(store, unpacker, &stored.images, default) {
            Ok(counts) => counts,
            Err(EngineError::Unpack { image, source }) if source.kind() == ErrorKind::InvalidArgument => {
                match store.images().delete(&image) {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
                let (content, snapshots) = collect(store, unpacker, default)?;
                tracing::warn!(image, blobs = content.removed.len(), snapshots = snapshots.len(), error = %source, "image refused and removed");
                return Err(ApiError::Refused { image, source });
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(v1::ImportResult {
        images: stored.images.iter().map(convert::image).collect(),
        blobs_written: stored.blobs_written as u32,
        blobs_present: stored.blobs_present as u32,
        bytes_written: stored.bytes_written,
        layers_unpacked,
        layers_present,
    })
}
