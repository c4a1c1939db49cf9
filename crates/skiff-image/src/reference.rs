//! Image references, normalised as Docker and containerd do (`busybox` → `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use skiff_store::Digest;

use crate::error::ImageError;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, with port if any.
    pub domain: String,
    /// Repository path below the host.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// The repository with its domain: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// The same reference with the default tag when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> ImageError {
    ImageError::InvalidReference { input: input.to_string(), reason: reason.into() }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ joined by '.', '_', '__' or runs of '-'.
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut prev_sep = String::new();
    for &ch in b {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            if !prev_sep.is_empty() {
                let ok = prev_sep == "." || prev_sep == "_" || prev_sep == "__" || prev_sep.bytes().all(|x| x == b'-');
                if !ok {
                    return false;
                }
                prev_sep.clear();
            }
        } else if matches!(ch, b'.' | b'_' | b'-') {
            prev_sep.push(ch as char);
        } else {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl FromStr for Reference {
    type Err = ImageError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(invalid(input, "empty reference"));
        }
        if input.len() > 4096 {
            return Err(invalid(input, "longer than 4096 characters"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| invalid(input, e.to_string()))?)),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(input, format!("tag {t:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")));
            }
        }
        let (domain, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            Some(_) => (DEFAULT_DOMAIN.to_string(), name.to_string()),
            None => (DEFAULT_DOMAIN.to_string(), format!("library/{name}")),
        };
        if !valid_domain(&domain) {
            return Err(invalid(input, format!("registry host {domain:?} is not a valid host[:port]")));
        }
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(input, "repository name must be lowercase"));
        }
        if let Some(bad) = repository.split('/').find(|c| !valid_component(c)) {
            return Err(invalid(
                input,
                format!("path component {bad:?} must be lowercase letters and digits separated by '.', '_', '__' or '-'"),
            ));
        }
        if domain.len() + repository.len() + 1 > 255 {
            return Err(invalid(input, "repository name longer than 255 characters"));
        }
        Ok(Reference { domain, repository, tag: tag.map(str::to_string), digest })
    }
}

/// Parses a reference and fills in the default tag: the canonical form image records are named by.
pub fn normalize(input: &str) -> Result<String, ImageError> {
    Ok(input.parse::<Reference>()?.with_default_tag().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("user/app", "docker.io/user/app:latest"),
            ("localhost/app:v1", "localhost/app:v1"),
            ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t"),
            ("ghcr.io/o/r", "ghcr.io/o/r:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).expect(input), want);
        }
        assert_eq!(normalize(&format!("host:5000/r@{d}")).expect("digest"), format!("host:5000/r@{d}"));
        assert_eq!(normalize(&format!("r:t@{d}")).expect("both"), format!("docker.io/library/r:t@{d}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "lower/UPPER", "a//b", "-a", "a:", "a:-t", "a@sha256:123", "host:port/x", "a b", "a/B", "r@md5:abc"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} should not parse");
        }
    }
}
