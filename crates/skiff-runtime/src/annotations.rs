//! Image annotations into the runtime spec — Skiff's headline feature.
//!
//! Merged lowest precedence first: index-descriptor (the OCI layout's `index.json` entry) → index →
//! manifest-descriptor → manifest (the image levels) → request annotations (CLI `--annotation`, later
//! CRI pod/container annotations) → keys the manager sets itself. The layout's naming keys
//! (`io.containerd.image.name`, `org.opencontainers.image.ref.name`) name the image, not the
//! container, and are never carried. Values pass through byte for byte. From the image, reserved keys (the manager's own
//! `io.kubernetes.cri.*` and `io.skiff.*`) are always dropped, and so, by default, are prefixes that
//! low-level runtimes read as privileged options; the policy's allow/deny globs filter the rest, and
//! `enabled = false` takes no image annotations at all. Every drop is logged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skiff_types::ImageAnnotations;

use crate::error::{Result, RuntimeError};

/// Key prefixes only the manager may set.
pub const RESERVED_PREFIXES: &[&str] = &["io.kubernetes.cri.", "io.skiff."];

/// Keys an OCI layout's `index.json` entry uses to name the image (containerd's and the OCI one).
pub const NAMING_KEYS: &[&str] = &["io.containerd.image.name", "org.opencontainers.image.ref.name"];

/// Prefixes that runtimes interpret as privileged options, never taken from an image by default.
pub const DEFAULT_DENY_PREFIXES: &[&str] = &["org.systemd.property.", "run.oci.", "io.kubernetes.cri-o.", "io.katacontainers.config."];

/// Where an effective annotation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    IndexDescriptor,
    Index,
    ManifestDescriptor,
    Manifest,
    Request,
    Manager,
}

/// `[runtime.image_annotations]` (per runtime handler).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImageAnnotationPolicy {
    /// Copy image annotations into the runtime spec. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When not empty, only image annotation keys matching one of these globs are copied.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Image annotation keys matching one of these globs are dropped.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Apply the built-in deny list of privileged-option prefixes. Default true.
    #[serde(default = "yes")]
    pub default_deny: bool,
}

fn yes() -> bool {
    true
}

impl Default for ImageAnnotationPolicy {
    fn default() -> Self {
        ImageAnnotationPolicy { enabled: true, allow: Vec::new(), deny: Vec::new(), default_deny: true }
    }
}

/// An annotation dropped on the way, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub key: String,
    pub source: Source,
    pub reason: String,
}

/// The annotations a container's spec gets, with the source of each and what was dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    pub annotations: BTreeMap<String, String>,
    pub sources: BTreeMap<String, Source>,
    pub dropped: Vec<Dropped>,
}

fn patterns(globs: &[String]) -> Result<Vec<glob::Pattern>> {
    globs
        .iter()
        .map(|g| glob::Pattern::new(g).map_err(|e| RuntimeError::BadPattern { pattern: g.clone(), reason: e.to_string() }))
        .collect()
}

fn reserved(key: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Merges the image levels, the request and the manager's keys under `policy`.
pub fn merge(
    image: &ImageAnnotations,
    request: &BTreeMap<String, String>,
    manager: &BTreeMap<String, String>,
    policy: &ImageAnnotationPolicy,
) -> Result<Effective> {
    let allow = patterns(&policy.allow)?;
    let deny = patterns(&policy.deny)?;
    let mut out = Effective::default();
    let levels = [
        (Source::IndexDescriptor, &image.index_descriptor),
        (Source::Index, &image.index),
        (Source::ManifestDescriptor, &image.manifest_descriptor),
        (Source::Manifest, &image.manifest),
    ];
    for (source, map) in levels {
        for (key, value) in map {
            let refusal = if !policy.enabled {
                Some("image annotations are disabled for this runtime".to_string())
            } else if NAMING_KEYS.contains(&key.as_str()) {
                Some("names the image in an OCI layout; not a container annotation".to_string())
            } else if reserved(key) {
                Some("reserved for the manager; an image may not set it".to_string())
            } else if policy.default_deny && DEFAULT_DENY_PREFIXES.iter().any(|p| key.starts_with(p)) {
                Some("a privileged runtime option, on the default deny list".to_string())
            } else if deny.iter().any(|p| p.matches(key)) {
                Some("matches the configured deny list".to_string())
            } else if !allow.is_empty() && !allow.iter().any(|p| p.matches(key)) {
                Some("not on the configured allow list".to_string())
            } else {
                None
            };
            match refusal {
                Some(reason) => {
                    if policy.enabled {
                        tracing::warn!(key, ?source, %reason, "dropping image annotation");
                    }
                    out.dropped.push(Dropped { key: key.clone(), source, reason });
                }
                None => {
                    out.annotations.insert(key.clone(), value.clone());
                    out.sources.insert(key.clone(), source);
                }
            }
        }
    }
    for (key, value) in request {
        if reserved(key) {
            out.dropped.push(Dropped { key: key.clone(), source: Source::Request, reason: "reserved for the manager".into() });
            continue;
        }
        out.annotations.insert(key.clone(), value.clone());
        out.sources.insert(key.clone(), Source::Request);
    }
    for (key, value) in manager {
        out.annotations.insert(key.clone(), value.clone());
        out.sources.insert(key.clone(), Source::Manager);
    }
    Ok(out)
}

/// Parses `KEY=VALUE` request annotations (the value may contain `=`).
pub fn parse_pairs(args: &[String]) -> Result<BTreeMap<String, String>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(RuntimeError::BadAnnotation(a.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn image() -> ImageAnnotations {
        ImageAnnotations {
            index_descriptor: map(&[
                ("outer", "carried"),
                ("level", "index-descriptor"),
                ("only.id", "id"),
                ("io.containerd.image.name", "docker.io/library/x:1"),
                ("org.opencontainers.image.ref.name", "1"),
                ("io.skiff.from-layout", "spoofed"),
            ]),
            index: map(&[("level", "index"), ("only.index", "i"), ("com.urunc.unikernel.type", "from-index")]),
            manifest_descriptor: map(&[("level", "manifest-descriptor"), ("only.md", "md")]),
            manifest: map(&[
                ("level", "manifest"),
                ("com.urunc.unikernel.binary", "/bin/busybox\twith\ttabs = and ünïcode"),
                ("io.kubernetes.cri.container-type", "sandbox"),
                ("io.skiff.image.name", "spoofed"),
                ("org.systemd.property.CPUWeight", "1"),
                ("run.oci.seccomp.receiver", "/evil"),
            ]),
        }
    }

    #[test]
    fn precedence_and_byte_for_byte_values() {
        let request = map(&[("level", "request"), ("req.only", "r")]);
        let manager = map(&[("io.kubernetes.cri.container-type", "container"), ("level", "manager")]);
        let e = merge(&image(), &request, &manager, &ImageAnnotationPolicy::default()).expect("merge");
        assert_eq!(e.annotations["level"], "manager");
        assert_eq!(e.sources["level"], Source::Manager);
        assert_eq!(e.annotations["only.index"], "i");
        assert_eq!(e.sources["only.md"], Source::ManifestDescriptor);
        assert_eq!(e.annotations["com.urunc.unikernel.binary"], "/bin/busybox\twith\ttabs = and ünïcode");
        assert_eq!(e.annotations["io.kubernetes.cri.container-type"], "container", "the manager's value, not the image's");
        assert!(!e.annotations.contains_key("io.skiff.image.name"));
        assert!(!e.annotations.contains_key("org.systemd.property.CPUWeight"));
        assert!(!e.annotations.contains_key("run.oci.seccomp.receiver"));
        assert_eq!(e.annotations["outer"], "carried");
        assert_eq!(e.sources["outer"], Source::IndexDescriptor);
        let dropped: Vec<&str> = e.dropped.iter().map(|d| d.key.as_str()).collect();
        for k in [
            "io.kubernetes.cri.container-type",
            "io.skiff.image.name",
            "org.systemd.property.CPUWeight",
            "run.oci.seccomp.receiver",
            "io.skiff.from-layout",
            "io.containerd.image.name",
            "org.opencontainers.image.ref.name",
        ] {
            assert!(dropped.contains(&k), "{k} dropped: {dropped:?}");
        }
        for k in NAMING_KEYS {
            assert!(!e.annotations.contains_key(*k), "{k} is never carried");
        }
        // A request cannot spoof reserved keys either.
        let spoof = map(&[("io.skiff.image.name", "x")]);
        let e = merge(&ImageAnnotations::default(), &spoof, &BTreeMap::new(), &ImageAnnotationPolicy::default()).expect("merge");
        assert!(e.annotations.is_empty());
    }

    #[test]
    fn index_descriptor_is_the_lowest_image_level() {
        // The levels up to `top` all set "k"; the highest of them must win.
        let upto = |top: usize| {
            let mut i = ImageAnnotations::default();
            let maps = [&mut i.index_descriptor, &mut i.index, &mut i.manifest_descriptor, &mut i.manifest];
            for (n, m) in maps.into_iter().enumerate().take(top + 1) {
                m.insert("k".into(), n.to_string());
            }
            i
        };
        let order = [Source::IndexDescriptor, Source::Index, Source::ManifestDescriptor, Source::Manifest];
        for (top, want) in order.iter().enumerate() {
            let e = merge(&upto(top), &BTreeMap::new(), &BTreeMap::new(), &ImageAnnotationPolicy::default()).expect("merge");
            assert_eq!((e.sources["k"], e.annotations["k"].as_str()), (*want, top.to_string().as_str()));
        }
        let request = merge(&upto(0), &map(&[("k", "r")]), &BTreeMap::new(), &ImageAnnotationPolicy::default()).expect("merge");
        assert_eq!(request.sources["k"], Source::Request);
        // The same deny list and policy apply to it.
        let image = ImageAnnotations { index_descriptor: map(&[("run.oci.x", "1"), ("a.b", "1")]), ..Default::default() };
        let e = merge(&image, &BTreeMap::new(), &BTreeMap::new(), &ImageAnnotationPolicy { deny: vec!["a.*".into()], ..Default::default() })
            .expect("merge");
        assert!(e.annotations.is_empty(), "{:?}", e.annotations);
        assert!(e.dropped.iter().all(|d| d.source == Source::IndexDescriptor) && e.dropped.len() == 2);
        let json = serde_json::to_string(&Source::IndexDescriptor).expect("json");
        assert_eq!(json, r#""index-descriptor""#);
    }

    #[test]
    fn allow_deny_and_disable() {
        let policy = ImageAnnotationPolicy { allow: vec!["com.urunc.*".into(), "level".into()], ..Default::default() };
        let e = merge(&image(), &BTreeMap::new(), &BTreeMap::new(), &policy).expect("merge");
        let keys: Vec<&str> = e.annotations.keys().map(String::as_str).collect();
        assert_eq!(keys, ["com.urunc.unikernel.binary", "com.urunc.unikernel.type", "level"]);
        let policy = ImageAnnotationPolicy { deny: vec!["com.urunc.unikernel.b*".into()], ..Default::default() };
        let e = merge(&image(), &BTreeMap::new(), &BTreeMap::new(), &policy).expect("merge");
        assert!(!e.annotations.contains_key("com.urunc.unikernel.binary"));
        assert!(e.annotations.contains_key("com.urunc.unikernel.type"));
        let policy = ImageAnnotationPolicy { default_deny: false, ..Default::default() };
        let e = merge(&image(), &BTreeMap::new(), &BTreeMap::new(), &policy).expect("merge");
        assert!(e.annotations.contains_key("run.oci.seccomp.receiver"), "default deny list can be turned off");
        assert!(!e.annotations.contains_key("io.skiff.image.name"), "reserved keys never come from an image");
        let off = ImageAnnotationPolicy { enabled: false, ..Default::default() };
        let e = merge(&image(), &map(&[("r", "1")]), &BTreeMap::new(), &off).expect("merge");
        assert_eq!(e.annotations, map(&[("r", "1")]));
        assert!(merge(&image(), &BTreeMap::new(), &BTreeMap::new(), &ImageAnnotationPolicy { allow: vec!["[".into()], ..Default::default() }).is_err());
    }

    #[test]
    fn request_pairs() {
        assert_eq!(parse_pairs(&["a=b=c".into()]).expect("pairs"), map(&[("a", "b=c")]));
        assert!(matches!(parse_pairs(&["novalue".into()]), Err(RuntimeError::BadAnnotation(_))));
        assert!(parse_pairs(&["=v".into()]).is_err());
    }
}
