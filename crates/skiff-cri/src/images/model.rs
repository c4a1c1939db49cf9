//! Skiff's image records as the CRI sees images. A CRI image is identified by the config digest
//! of the platform manifest that runs here (as containerd's CRI does), so several records (names)
//! can be one image: `repo_tags` lists the names that are tags, `repo_digests` each repository
//! with the digest its name resolved to.
//!
//! What a record resolves to is read from its content, which never changes under a digest, so
//! the facts are cached by (target digest, platform) and the kubelet's frequent listings cost a
//! scan of the records alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_cri::v1 as cri;
use skiff_engine::images::{content_size, platform_to_show};
use skiff_image::model::Desc;
use skiff_image::Platform;
use skiff_store::{ImageRecord, Store};

use crate::error::Result;

/// The label that keeps an image from the kubelet's image garbage collection (`pinned`).
pub const PINNED_LABEL: &str = "io.skiff.cri.pinned";

/// What the CRI says of an image, from its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// `sha256:…` of the config.
    pub id: String,
    /// Manifest, config and layers, compressed.
    pub size: u64,
    /// The image config's `User`, split as the kubelet's `runAsNonRoot` check wants it.
    pub uid: Option<i64>,
    pub username: String,
}

/// Facts by (target digest, platform).
#[derive(Default)]
pub struct FactsCache {
    known: Mutex<HashMap<(String, String), Arc<Facts>>>,
}

/// An image's `User` (`uid[:gid]` or `name[:group]`) as (uid, username): a numeric user gives
/// the uid, any other the name.
pub fn user_of(user: &str) -> (Option<i64>, String) {
    let name = user.split(':').next().unwrap_or("");
    match name.parse::<i64>() {
        Ok(uid) => (Some(uid), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

impl FactsCache {
    pub fn facts(&self, store: &Store, record: &ImageRecord, default: &Platform) -> Result<Arc<Facts>> {
        let platform = platform_to_show(record, "", default)?;
        let key = (record.target.digest.to_string(), platform.to_string());
        if let Some(known) = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(known.clone());
        }
        let resolved = skiff_image::resolve::resolve(store.content(), &Desc::from_store(&record.target), &platform)?;
        let user = resolved.config.config().as_ref().and_then(|c| c.user().clone()).unwrap_or_default();
        let (uid, username) = user_of(&user);
        let facts = Arc::new(Facts { id: resolved.manifest.config.digest.to_string(), size: content_size(store, record, default)?, uid, username });
        self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(key, facts.clone());
        Ok(facts)
    }

    /// The facts of `record` when they are known already: no content is read.
    fn known(&self, record: &ImageRecord, default: &Platform) -> Option<Arc<Facts>> {
        let platform = platform_to_show(record, "", default).ok()?;
        self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&(record.target.digest.to_string(), platform.to_string())).cloned()
    }

    /// Every stored image, its records grouped under its id (sorted by id). A record whose content
    /// cannot be read is left out with a warning: one damaged image must not hide the others.
    pub fn all(&self, store: &Store, default: &Platform) -> Result<Vec<(Arc<Facts>, Vec<ImageRecord>)>> {
        let mut by_id: BTreeMap<String, (Arc<Facts>, Vec<ImageRecord>)> = BTreeMap::new();
        for record in store.images().list()? {
            match self.facts(store, &record, default) {
                Ok(facts) => by_id.entry(facts.id.clone()).or_insert_with(|| (facts, Vec::new())).1.push(record),
                Err(e) => tracing::warn!(image = %record.name, error = %e, "image left out of the CRI listing"),
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// [`FactsCache::all`] when every record's facts are known, so that no content file is read
    /// (the records are in the store's memory): the kubelet's status and list calls are answered
    /// without a blocking thread. None when one would have to be read.
    pub fn all_known(&self, store: &Store, default: &Platform) -> Result<Option<Vec<(Arc<Facts>, Vec<ImageRecord>)>>> {
        let mut by_id: BTreeMap<String, (Arc<Facts>, Vec<ImageRecord>)> = BTreeMap::new();
        for record in store.images().list()? {
            let Some(facts) = self.known(&record, default) else { return Ok(None) };
            by_id.entry(facts.id.clone()).or_insert_with(|| (facts, Vec::new())).1.push(record);
        }
        Ok(Some(by_id.into_values().collect()))
    }
}

/// The repository of a stored name (`docker.io/library/busybox:1` → `docker.io/library/busybox`).
pub fn repository(name: &str) -> &str {
    if let Some((repo, _)) = name.split_once('@') {
        return repo;
    }
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// The CRI image of `records` (every name of one image).
pub fn cri_image(facts: &Facts, records: &[ImageRecord]) -> cri::Image {
    let mut repo_tags: Vec<String> = records.iter().filter(|r| !r.name.contains('@')).map(|r| r.name.clone()).collect();
    let mut repo_digests: Vec<String> = records.iter().map(|r| format!("{}@{}", repository(&r.name), r.target.digest)).collect();
    repo_tags.sort();
    repo_tags.dedup();
    repo_digests.sort();
    repo_digests.dedup();
    cri::Image {
        id: facts.id.clone(),
        repo_tags,
        repo_digests,
        size: facts.size,
        uid: facts.uid.map(|value| cri::Int64Value { value }),
        username: facts.username.clone(),
        spec: Some(cri::ImageSpec { image: facts.id.clone(), ..Default::default() }),
        pinned: records.iter().any(|r| r.labels.get(PINNED_LABEL).is_some_and(|v| v == "true")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_split_as_the_kubelet_checks_them() {
        assert_eq!(user_of(""), (None, String::new()));
        assert_eq!(user_of("0"), (Some(0), String::new()));
        assert_eq!(user_of("1000:1000"), (Some(1000), String::new()));
        assert_eq!(user_of("nobody"), (None, "nobody".to_string()));
        assert_eq!(user_of("app:staff"), (None, "app".to_string()));
    }

    #[test]
    fn repositories_of_names() {
        assert_eq!(repository("docker.io/library/busybox:1.36"), "docker.io/library/busybox");
        assert_eq!(repository("localhost:5000/a/b:1"), "localhost:5000/a/b");
        assert_eq!(repository("localhost:5000/a/b"), "localhost:5000/a/b");
        assert_eq!(repository("localhost:5000/a/b@sha256:00"), "localhost:5000/a/b");
    }
}
