//! Reading what an export wrote as other OCI-layout tools do: every descriptor `index.json` names,
//! and every one below it, must be a blob the layout holds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Unpacks an oci-archive into `dir` and returns `dir`.
pub fn unpack_archive(archive: &Path, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    tar::Archive::new(std::fs::File::open(archive).with_context(|| format!("open {}", archive.display()))?).unpack(dir)?;
    Ok(dir.to_path_buf())
}

/// The layout's `index.json`.
pub fn index_json(dir: &Path) -> Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(dir.join("index.json")).context("index.json")?)?)
}

fn blob(dir: &Path, digest: &str) -> Option<Vec<u8>> {
    let hex = digest.strip_prefix("sha256:")?;
    std::fs::read(dir.join("blobs/sha256").join(hex)).ok()
}

/// Digests named in the layout (by `index.json`, indexes and manifests) whose blobs it lacks.
pub fn dangling(dir: &Path) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    let mut queue: Vec<Value> = index_json(dir)?["manifests"].as_array().cloned().unwrap_or_default();
    let mut depth = 0;
    while !queue.is_empty() {
        depth += 1;
        if depth > 8 {
            bail!("indexes nested deeper than 8");
        }
        let mut next = Vec::new();
        for desc in queue {
            let digest = desc["digest"].as_str().unwrap_or_default().to_string();
            let Some(bytes) = blob(dir, &digest) else {
                missing.push(digest);
                continue;
            };
            let media_type = desc["mediaType"].as_str().unwrap_or_default();
            if media_type.contains("index") || media_type.contains("manifest.list") {
                let doc: Value = serde_json::from_slice(&bytes)?;
                next.extend(doc["manifests"].as_array().cloned().unwrap_or_default());
            } else if media_type.contains("manifest") {
                let doc: Value = serde_json::from_slice(&bytes)?;
                next.push(doc["config"].clone());
                next.extend(doc["layers"].as_array().cloned().unwrap_or_default());
            }
        }
        queue = next;
    }
    Ok(missing)
}
