//! The ingest half of an import: a plan's layers (and the configs read beside them) fetched by a
//! few workers at once, each layer streamed into the store and verified as it commits, each such
//! config stored as soon as it is read and checked; then the other JSON blobs, children first, so
//! that no manifest is stored before what it names.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use skiff_store::{CommitOptions, ContentStore, LeaseId, Store};

use crate::error::{ImageError, Result};
use crate::import::{read_verified, ImportOptions, ImportReport, JsonBlob, Plan};
use crate::media::MAX_CONFIG_SIZE;
use crate::model::{parse_config, Desc};
use crate::progress::{Counting, Progress};
use crate::source::Source;

/// What one worker does next: a layer to stream into the store, or a deferred config to read and
/// store.
enum Job<'a> {
    Layer(&'a Desc),
    Config(&'a JsonBlob),
}

pub(crate) fn ingest_plan(
    store: &Store,
    src: &dyn Source,
    plan: &Plan,
    lease: &LeaseId,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let content = store.content();
    let total: u64 = plan.layers.iter().map(|l| l.size).sum::<u64>() + plan.json.iter().map(|j| j.desc.size).sum::<u64>();
    progress.total(total);
    let report = Mutex::new(ImportReport::default());
    // Configs first: each is one small request, and its layers' workers are busy with them.
    let jobs: Vec<Job> =
        plan.json.iter().filter(|j| j.bytes.is_none()).map(Job::Config).chain(plan.layers.iter().map(Job::Layer)).collect();
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<ImageError>> = Mutex::new(None);
    let ingest_layer = |layer: &Desc| -> Result<()> {
        // One ingest per digest at a time: a concurrent import or pull of the same blob waits for
        // it, then finds it stored.
        let _claim = loop {
            if content.info(&layer.digest).is_ok() {
                content.lease_existing(&layer.digest, lease)?;
                progress.advance(layer.size);
                progress.blob(layer.digest.as_str(), layer.size, true);
                report.lock().unwrap_or_else(|p| p.into_inner()).blobs_present += 1;
                return Ok(());
            }
            match content.claim(&layer.digest) {
                Some(claim) => break claim,
                None => content.wait_for(&layer.digest),
            }
        };
        let missing = || ImageError::MissingBlob { what: "layer", digest: layer.digest.to_string(), source_name: src.name().to_string() };
        let (reader, size) = match plan.paths.get(layer.digest.as_str()) {
            Some(path) => src.open(path)?,
            None => src.open_blob(layer)?,
        }
        .ok_or_else(missing)?;
        if size != layer.size {
            return Err(skiff_store::StoreError::SizeMismatch { digest: layer.digest.to_string(), expected: layer.size, actual: size }.into());
        }
        let mut counted = Counting { blob: Some((layer.digest.as_str(), layer.size)), ..Counting::new(reader, progress) };
        let commit = CommitOptions { labels: opts.labels.clone(), lease: Some(lease.clone()) };
        content.ingest(&mut counted, Some(layer.digest.clone()), Some(layer.size), commit)?;
        progress.blob(layer.digest.as_str(), layer.size, false);
        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
        r.blobs_written += 1;
        r.bytes_written += layer.size;
        Ok(())
    };
    // A JSON blob into the store, counted; a config needs nothing stored before it.
    let store_json = |blob: &JsonBlob, bytes: &[u8]| -> Result<()> {
        let existed = content.info(&blob.desc.digest).is_ok();
        let mut labels = opts.labels.clone();
        labels.extend(blob.labels.clone());
        let commit = CommitOptions { labels, lease: Some(lease.clone()) };
        content.ingest(&mut &bytes[..], Some(blob.desc.digest.clone()), Some(blob.desc.size), commit)?;
        progress.advance(blob.desc.size);
        progress.blob(blob.desc.digest.as_str(), blob.desc.size, existed);
        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
        if existed {
            r.blobs_present += 1;
        } else {
            r.blobs_written += 1;
            r.bytes_written += blob.desc.size;
        }
        Ok(())
    };
    let read_config = |blob: &JsonBlob| -> Result<()> {
        let bytes = read_verified(src, &blob.desc, "config", MAX_CONFIG_SIZE)?;
        parse_config(&bytes, &blob.desc)?;
        store_json(blob, &bytes)
    };
    let workers = opts.parallelism.clamp(1, 16).min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if first_error.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                    return;
                }
                let outcome = match jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    None => return,
                    Some(Job::Layer(layer)) => ingest_layer(layer),
                    Some(Job::Config(blob)) => read_config(blob),
                };
                if let Err(e) = outcome {
                    first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    return;
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // The configs the workers stored are skipped; every other JSON blob was read while planning.
    for blob in &plan.json {
        if let Some(bytes) = &blob.bytes {
            store_json(blob, bytes)?;
        }
    }
    Ok(report.into_inner().unwrap_or_else(|p| p.into_inner()))
}
