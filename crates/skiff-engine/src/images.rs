//! Finding stored images by what a user typed (a name, an id, an id prefix or a digest), the
//! platform to use one for, and whether containers still use one.

use skiff_image::{normalize, Platform};
use skiff_store::{ImageRecord, Store};

use crate::containers::Records;
use crate::error::{EngineError, Result};

/// The shortest id prefix taken for an image, so that a short name (`abc`) is not read as an id.
const MIN_ID_PREFIX: usize = 4;

/// Finds an image by a user-typed name: normalised (`busybox` → `docker.io/library/busybox:latest`),
/// falling back to the name as given, then to an id (the target digest's hex, or a unique prefix
/// of it, as `images ls` shows) or a full `sha256:` digest. When several names share the id, any
/// of them is the same image.
pub fn lookup(store: &Store, reference: &str) -> Result<ImageRecord> {
    let mut found = find(store, reference)?;
    if found.is_empty() {
        // Not found by any means: the name's own error (normalised) says what was looked for.
        let name = normalize(reference).unwrap_or_else(|_| reference.to_string());
        return Err(skiff_store::StoreError::NotFound { kind: "image", name }.into());
    }
    Ok(found.swap_remove(0))
}

/// Every record `reference` names: one for a name; for an id or digest, each name of that image.
/// Empty when none matches. An id prefix matching two different images is an error.
pub fn find(store: &Store, reference: &str) -> Result<Vec<ImageRecord>> {
    for name in normalize(reference).ok().into_iter().chain(std::iter::once(reference.to_string())) {
        match store.images().get(&name) {
            Ok(r) => return Ok(vec![r]),
            Err(e) if !e.is_not_found() => return Err(e.into()),
            Err(_) => {}
        }
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let full_digest = reference.starts_with("sha256:");
    if hex.len() < MIN_ID_PREFIX || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) || (full_digest && hex.len() != 64) {
        return Ok(Vec::new());
    }
    let matches: Vec<ImageRecord> =
        store.images().list()?.into_iter().filter(|r| r.target.digest.to_string().strip_prefix("sha256:").is_some_and(|h| h.starts_with(hex))).collect();
    let mut digests: Vec<String> = matches.iter().map(|r| r.target.digest.to_string()).collect();
    digests.dedup();
    if digests.len() > 1 {
        return Err(EngineError::InvalidArgument(format!("{reference:?} matches {} images; give more of the id", digests.len())));
    }
    Ok(matches)
}

/// Refuses to remove `record` while a container was made from it and no other name keeps its
/// image, as docker and podman refuse `rmi` (force overrides).
pub fn check_unused(store: &Store, containers: &Records, record: &ImageRecord) -> Result<()> {
    let digest = record.target.digest.to_string();
    let other_names = store.images().list()?.into_iter().any(|r| r.name != record.name && r.target.digest == record.target.digest);
    if other_names {
        return Ok(());
    }
    let users: Vec<String> = containers.list()?.into_iter().filter(|c| c.image_digest == digest).map(|c| c.name).collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(EngineError::ImageInUse { image: record.name.clone(), containers: users.join(", ") })
}

/// A platform as a request gives it (`""`: none), else `fallback`: the record's platform or the
/// daemon's default.
pub fn platform_or(requested: &str, fallback: &Platform) -> Result<Platform> {
    if requested.is_empty() {
        Ok(fallback.clone())
    } else {
        Ok(requested.parse::<Platform>()?)
    }
}

/// The platform a record was stored for, else the daemon's default.
pub fn platform_of(record: &ImageRecord, default: &Platform) -> Result<Platform> {
    platform_or(&record.platform, default)
}

/// The stored platform a container of `record` runs: the one requested (`""`: the daemon's
/// default), as long as it is stored; otherwise an error naming what is stored and how to pull
/// the one wanted. Pulling another platform never changes what this picks.
pub fn platform_to_run(record: &ImageRecord, requested: &str, default: &Platform) -> Result<Platform> {
    let wanted = platform_or(requested, default)?;
    Ok(skiff_image::select::platform_for(record, &wanted)?)
}

/// The platform to show or edit of `record` when none is requested: the daemon's default when
/// it is stored, else the one the record was stored for.
pub fn platform_to_show(record: &ImageRecord, requested: &str, default: &Platform) -> Result<Platform> {
    if !requested.is_empty() {
        return platform_or(requested, default);
    }
    match skiff_image::select::platform_for(record, default) {
        Ok(p) => Ok(p),
        Err(_) => platform_of(record, default),
    }
}

/// The bytes of content a container of `record` uses on the platform shown by default: its
/// manifest, config and layers, compressed (what `ctr images ls` shows as SIZE).
pub fn content_size(store: &Store, record: &ImageRecord, default: &Platform) -> Result<u64> {
    let platform = platform_to_show(record, "", default)?;
    let r = skiff_image::resolve::resolve(store.content(), &skiff_image::model::Desc::from_store(&record.target), &platform)?;
    Ok(r.manifest_desc.size + r.manifest.config.size + r.manifest.layers.iter().map(|l| l.size).sum::<u64>())
}

/// Every platform of `record` whose content is stored (the record's own for records that predate
/// the set).
pub fn stored_platforms(record: &ImageRecord, default: &Platform) -> Result<Vec<Platform>> {
    let stored = skiff_image::select::stored_platforms(record);
    if stored.is_empty() {
        return Ok(vec![platform_of(record, default)?]);
    }
    Ok(stored)
}
