//! Resolutions kept for the next container of the same image.
//!
//! Resolving an image reads and verifies its index, manifest and config from the store and
//! parses them: a tenth of a container's create here (0.1 ms of 1 ms, measured with perf),
//! paid again by every container of the image. What a resolution finds is a function of the
//! descriptor it starts from and the platform (blobs are named by their digests and never
//! change), so a kept one is as good as a new one for as long as the image record still names
//! that descriptor, which the caller has just looked up.

use std::sync::{Arc, Mutex};

use skiff_store::ContentStore;

use crate::model::Desc;
use crate::platform::Platform;
use crate::resolve::{resolve, Resolved};
use crate::Result;

/// How many resolutions are kept: the images a node runs containers of at one time.
const KEPT: usize = 32;

#[derive(Default)]
pub struct ResolveCache {
    /// Least recently used first.
    kept: Mutex<Vec<(Desc, Platform, Arc<Resolved>)>>,
}

impl ResolveCache {
    pub fn new() -> ResolveCache {
        ResolveCache::default()
    }

    /// [`resolve`], answered from an earlier resolution of the same descriptor and platform
    /// when there is one. Failures are not kept: the next call tries again.
    pub fn resolve(&self, store: &dyn ContentStore, target: &Desc, platform: &Platform) -> Result<Arc<Resolved>> {
        {
            let mut kept = self.lock();
            if let Some(at) = kept.iter().position(|(d, p, _)| d == target && p == platform) {
                let entry = kept.remove(at);
                let resolved = entry.2.clone();
                kept.push(entry);
                return Ok(resolved);
            }
        }
        let resolved = Arc::new(resolve(store, target, platform)?);
        let mut kept = self.lock();
        if !kept.iter().any(|(d, p, _)| d == target && p == platform) {
            if kept.len() >= KEPT {
                kept.remove(0);
            }
            kept.push((target.clone(), platform.clone(), resolved.clone()));
        }
        Ok(resolved)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Desc, Platform, Arc<Resolved>)>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many resolutions are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
