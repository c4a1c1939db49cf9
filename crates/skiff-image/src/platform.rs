//! Platforms (`os/arch[/variant]`) and matching index entries against one.

use std::fmt;
use std::str::FromStr;

use crate::error::ImageError;

/// A platform to select manifests for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    match (arch, variant) {
        ("x86_64" | "x86-64", _) => ("amd64".into(), None),
        ("aarch64" | "arm64", Some("v8") | None) => ("arm64".into(), None),
        ("armhf" | "arm", None) => ("arm".into(), Some("v7".into())),
        ("i386" | "i686", _) => ("386".into(), None),
        (a, v) => (a.to_string(), v.map(str::to_string)),
    }
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let (architecture, variant) = normalize_arch(arch, variant.filter(|v| !v.is_empty()));
        Platform { os: os.to_string(), architecture, variant }
    }

    /// The platform of the running host.
    pub fn host() -> Platform {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, None)
    }

    /// Whether an index entry's platform satisfies this one. An unset variant on either side matches any.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || other.variant.is_none() || self.variant == other.variant)
    }

    pub(crate) fn from_oci(p: &oci_spec::image::Platform) -> Platform {
        Platform::new(&p.os().to_string(), &p.architecture().to_string(), p.variant().as_deref())
    }
}

impl FromStr for Platform {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| ImageError::InvalidPlatform { input: s.to_string(), reason };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')) {
            return Err(invalid("expected os/arch[/variant] of letters, digits, '-' and '_'"));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(invalid("expected os/arch[/variant]")),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let p: Platform = "linux/amd64".parse().expect("parse");
        assert_eq!(p, Platform::new("linux", "x86_64", None));
        assert!(p.matches(&"linux/amd64".parse().expect("parse")));
        assert!(!p.matches(&"linux/arm64".parse().expect("parse")));
        let arm: Platform = "linux/arm64/v8".parse().expect("parse");
        assert_eq!(arm.to_string(), "linux/arm64");
        let v7: Platform = "linux/arm/v7".parse().expect("parse");
        assert!(!v7.matches(&"linux/arm/v6".parse().expect("parse")));
        for bad in ["linux", "linux/", "a/b/c/d", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
