//! A pull as every API makes it: the registry's content through the import pipeline, then the
//! layers unpacked for the platform asked for (an image whose layers are refused is not kept).

use skiff_image::import::ImportReport;
use skiff_image::Progress;
use skiff_registry::{ClientOptions, PullOptions};
use skiff_snapshot::Unpacker;
use skiff_store::Store;

use crate::error::Result;
use crate::unpack::unpack_stored;

/// What a pull stored and unpacked.
pub struct Pulled {
    pub report: ImportReport,
    pub layers_unpacked: u32,
    pub layers_present: u32,
}

/// Pulls `reference` and unpacks it (unless `no_unpack`) for `opts.platform`.
pub fn pull_image(
    store: &Store,
    unpacker: &Unpacker,
    reference: &str,
    client: &ClientOptions,
    opts: &PullOptions,
    no_unpack: bool,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let started = std::time::Instant::now();
    let report = skiff_registry::pull(store, reference, client, opts, progress)?;
    tracing::info!(reference, blobs = report.blobs_written, bytes = report.bytes_written, elapsed = ?started.elapsed(), "pulled");
    let (layers_unpacked, layers_present) = unpack_stored(store, unpacker, &report.images, no_unpack, &opts.platform)?;
    Ok(Pulled { report, layers_unpacked, layers_present })
}
