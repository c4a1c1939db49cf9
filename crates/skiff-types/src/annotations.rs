//! An image's annotations, kept per level: where on the way from the name to the platform's
//! manifest each was found. The level decides precedence when they reach a runtime spec.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Annotations collected at each level of an image while resolving it for a platform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAnnotations {
    /// On the descriptor that names the image (the OCI layout's `index.json` entry).
    #[serde(default)]
    pub index_descriptor: BTreeMap<String, String>,
    /// On the image index itself.
    #[serde(default)]
    pub index: BTreeMap<String, String>,
    /// On the index entry that selected this platform's manifest.
    #[serde(default)]
    pub manifest_descriptor: BTreeMap<String, String>,
    /// On the platform manifest.
    #[serde(default)]
    pub manifest: BTreeMap<String, String>,
}
