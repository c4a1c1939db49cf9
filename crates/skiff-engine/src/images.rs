//! Finding a stored image by what a user typed, and the platform to use it for.

use skiff_image::{normalize, Platform};
use skiff_store::{ImageRecord, Store};

use crate::error::Result;

/// Finds an image by a user-typed name: normalised (`busybox` → `docker.io/library/busybox:latest`),
/// falling back to the name as given.
pub fn lookup(store: &Store, name: &str) -> Result<ImageRecord> {
    if let Ok(n) = normalize(name) {
        match store.images().get(&n) {
            Ok(r) => return Ok(r),
            Err(e) if !e.is_not_found() => return Err(e.into()),
            Err(_) => {}
        }
    }
    Ok(store.images().get(name)?)
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
