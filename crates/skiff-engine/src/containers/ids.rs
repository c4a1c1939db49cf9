//! Ids, names, times and signals as the manager takes and gives them.

use std::fs::File;
use std::io::Read;

use crate::error::{EngineError, Result};

pub use skiff_store::now;

/// 64 hex digits from the kernel's random source, as docker's and containerd's ids.
pub fn random_id() -> Result<String> {
    random_hex(32)
}

/// `bytes` random bytes from the kernel's random source, in hex: every id and token Skiff makes
/// (containers, pod sandboxes, stdio FIFO sets).
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).map_err(EngineError::io("reading /dev/urandom"))?;
    Ok(hex::encode(buf))
}

/// A container id as [`random_id`] makes them: 64 lowercase hex digits.
pub fn check_id(id: &str) -> Result<()> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!("container id {id:?} must be 64 lowercase hex digits")))
    }
}

/// Docker's rule for names: a letter or digit, then letters, digits, `_`, `.`, `-`; at most 128.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "container name {name:?} must start with a letter or digit and hold only letters, digits, '_', '.', '-'"
        )))
    }
}

/// The name a container gets when the request gives none: the image's repository and the short id.
pub fn default_name(image: &str, id: &str) -> String {
    let base = image.rsplit('/').next().unwrap_or("container").split([':', '@']).next().unwrap_or("container");
    format!("{base}-{}", &id[..8])
}

/// `SIGTERM`, `TERM`, `term` or `15`; empty: SIGKILL.
pub fn parse_signal(text: &str) -> Result<i32> {
    if text.is_empty() {
        return Ok(libc::SIGKILL);
    }
    let unknown = || EngineError::InvalidArgument(format!("unknown signal {text:?}"));
    if let Ok(n) = text.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map(|s| s as i32).map_err(|_| unknown());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_number_or_nothing() {
        for (text, want) in [("", libc::SIGKILL), ("TERM", libc::SIGTERM), ("sigterm", libc::SIGTERM), ("15", 15), ("SIGHUP", libc::SIGHUP)] {
            assert_eq!(parse_signal(text).expect(text), want, "{text}");
        }
        for bad in ["SIGNOPE", "999", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        for good in ["web", "a", "web-1.prod_2", &"x".repeat(128)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-web", "bad name", "web/1", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(default_name("docker.io/library/busybox:1.36", "0123456789abcdef"), "busybox-01234567");
        assert_eq!(default_name("localhost/x@sha256:ab", "0123456789abcdef"), "x-01234567");
    }
}
