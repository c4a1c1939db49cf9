//! Which stored image a CRI `ImageSpec.image` names: a name (normalised as the kubelet's
//! references are: `busybox` is `docker.io/library/busybox:latest`), the image id (the config
//! digest, or a unique prefix of its hex), a record's target digest, or `repo@digest`. Whatever
//! matched, the answer is every record of that image.

use std::sync::Arc;

use skiff_engine::images::find;
use skiff_image::Platform;
use skiff_store::{ImageRecord, Store};

use super::model::{repository, Facts, FactsCache};
use crate::error::{CriError, Result};

/// Hex digits an id prefix needs, so that a short name is not read as an id.
const MIN_ID_PREFIX: usize = 4;

/// Every image, grouped as [`FactsCache::all`] groups them.
pub type Grouped = Vec<(Arc<Facts>, Vec<ImageRecord>)>;

pub fn find_image(store: &Store, cache: &FactsCache, default: &Platform, reference: &str) -> Result<Option<(Arc<Facts>, Vec<ImageRecord>)>> {
    check_reference(reference)?;
    find_in(store, &cache.all(store, default)?, reference)
}

/// Refuses an empty or unprintable reference.
pub fn check_reference(reference: &str) -> Result<()> {
    if reference.is_empty() {
        return Err(CriError::InvalidArgument("image is empty: name an image by reference, id or digest".into()));
    }
    crate::error::text("image", reference)
}

/// [`find_image`] among images already grouped.
pub fn find_in(store: &Store, all: &Grouped, reference: &str) -> Result<Option<(Arc<Facts>, Vec<ImageRecord>)>> {
    let of_record = |record: &ImageRecord| all.iter().find(|(_, records)| records.iter().any(|r| r.name == record.name)).cloned();
    // A name, a target digest or a prefix of one: Skiff's own lookup.
    if let Some(record) = find(store, reference)?.first() {
        // The record named comes first: names of one id may differ in their manifests (and so in
        // the annotations a container gets).
        return Ok(of_record(record).map(|(facts, mut records)| {
            records.sort_by_key(|r| r.name != record.name);
            (facts, records)
        }));
    }
    // The CRI image id (config digest) or a unique prefix of it.
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    if hex.len() >= MIN_ID_PREFIX && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        let matches: Vec<_> = all.iter().filter(|(facts, _)| facts.id.strip_prefix("sha256:").is_some_and(|id| id.starts_with(hex))).collect();
        match matches.as_slice() {
            [one] => return Ok(Some((*one).clone())),
            [] => {}
            many => return Err(CriError::InvalidArgument(format!("{reference:?} matches {} images; give more of the id", many.len()))),
        }
    }
    // `repo@digest` where the record is named by its tag: the repository and target digest match.
    if let Some((repo, digest)) = reference.split_once('@') {
        let repo = skiff_image::normalize(repo).map(|n| repository(&n).to_string()).unwrap_or_else(|_| repo.to_string());
        let found = all.iter().find(|(_, records)| records.iter().any(|r| repository(&r.name) == repo && r.target.digest.to_string() == digest));
        return Ok(found.cloned());
    }
    Ok(None)
}
