//! What an import or a pull stored, unpacked and described for the client: the one ending both
//! the Images service and the registry pulls share.

use skiff_api::v1;
use skiff_engine::unpack::unpack_stored;
use skiff_image::import::ImportReport;
use skiff_image::Platform;
use skiff_snapshot::Unpacker;
use skiff_store::Store;

use crate::convert;
use crate::status::ApiError;

/// Unpacks what an import or pull stored (unless `no_unpack`; a refused image is removed, see
/// `unpack_stored`) and describes both for the client.
pub fn finish(store: &Store, unpacker: &Unpacker, stored: &ImportReport, no_unpack: bool, default: &Platform) -> Result<v1::ImportResult, ApiError> {
    let (layers_unpacked, layers_present) = unpack_stored(store, unpacker, &stored.images, no_unpack, default)?;
    Ok(result(stored, layers_unpacked, layers_present))
}

/// What was stored and unpacked, for the client.
pub fn result(stored: &ImportReport, layers_unpacked: u32, layers_present: u32) -> v1::ImportResult {
    v1::ImportResult {
        images: stored.images.iter().map(convert::image).collect(),
        blobs_written: stored.blobs_written as u32,
        blobs_present: stored.blobs_present as u32,
        bytes_written: stored.bytes_written,
        layers_unpacked,
        layers_present,
    }
}
