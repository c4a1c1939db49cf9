//! Content digests. Skiff addresses content by SHA-256 only, as the OCI image spec requires of registries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

/// A validated `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The digest and length of everything `reader` yields.
    pub fn of_reader(reader: &mut dyn std::io::Read) -> std::io::Result<(Digest, u64)> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((Digest::from_hasher(hasher), size))
    }

    pub(crate) fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }

    /// The hex part, used as the blob's file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| StoreError::InvalidDigest { input: s.to_string(), reason };
        let (alg, hex) = s.split_once(':').ok_or_else(|| invalid("expected <algorithm>:<hex>"))?;
        if alg != "sha256" {
            return Err(invalid("only sha256 digests are supported"));
        }
        if hex.len() != 64 {
            return Err(invalid("a sha256 digest has 64 hex characters"));
        }
        if !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(invalid("digest hex must be lowercase 0-9a-f"));
        }
        Ok(Digest(s.to_string()))
    }
}

impl TryFrom<String> for Digest {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"hello");
        assert_eq!(d.as_str().parse::<Digest>().ok(), Some(d.clone()));
        assert_eq!(d.hex().len(), 64);
        for bad in ["", "sha256", "sha512:abcd", "sha256:xyz", &format!("sha256:{}", "A".repeat(64))] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn reader_digest_matches_bytes() {
        let bytes = vec![7u8; 3 << 20];
        let (d, n) = Digest::of_reader(&mut &bytes[..]).expect("read");
        assert_eq!((d, n), (Digest::of(&bytes), bytes.len() as u64));
    }

    #[test]
    fn known_value() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
