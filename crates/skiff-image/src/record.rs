//! The image record an import or pull writes: the name, the target, the platforms stored of it and
//! the annotations of the platform the record speaks for.

use std::collections::BTreeMap;

use skiff_store::{ImageRecord, Store};

use crate::error::{ImageError, Result};
use crate::import::ImportOptions;
use crate::model::Desc;
use crate::platform::Platform;
use crate::resolve::resolve;
use crate::stored::stored;

/// The record an import or pull writes for `name`. Its platform set is what is stored of `target`
/// now, so it grows with each platform pulled. When the image already had this target, it keeps
/// the platform its annotations were collected for (while that is still stored): adding a platform
/// must not change what an existing record says.
pub(crate) fn image_record(store: &Store, name: &str, target: &Desc, opts: &ImportOptions) -> Result<ImageRecord> {
    let platforms = stored(store.content(), target)?.platforms;
    let previous = match store.images().get(name) {
        Ok(old) => Some(old),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let kept = previous
        .filter(|old| old.target.digest == target.digest && platforms.contains(&old.platform))
        .and_then(|old| old.platform.parse::<Platform>().ok());
    let primary = kept.unwrap_or_else(|| opts.platform.clone());
    let (annotations, platform) = match resolve(store.content(), target, &primary) {
        Ok(r) => (r.annotations, primary.to_string()),
        // An --all-platforms import of an image with no manifest for this host.
        Err(ImageError::NoMatchingPlatform { .. }) if opts.all_platforms => Default::default(),
        Err(e) => return Err(e),
    };
    Ok(ImageRecord {
        name: name.to_string(),
        target: target.to_store(),
        created_at: String::new(),
        updated_at: String::new(),
        labels: BTreeMap::new(),
        platform,
        platforms,
        annotations,
    })
}
