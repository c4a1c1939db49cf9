//! Parsing of `run` flags: KEY=VALUE pairs, bind mounts, memory sizes.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use skiff_api::v1;

/// `KEY=VALUE` pairs (annotations, labels).
pub fn key_values(items: &[String], what: &str) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => bail!("{what} {item:?} must be KEY=VALUE"),
        }
    }
    Ok(out)
}

pub fn parse_volume(text: &str) -> Result<v1::BindMount> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, destination, readonly) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        _ => bail!("volume {text:?} must be SOURCE:DEST[:ro|rw]"),
    };
    let source = crate::absolute(Path::new(source))?;
    Ok(v1::BindMount { source: source.display().to_string(), destination: destination.into(), readonly })
}

pub fn parse_memory(text: &str) -> Result<i64> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let n: i64 = digits.parse().with_context(|| format!("memory {text:?} must be a number with an optional unit (k, m, g)"))?;
    let scale = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => bail!("memory {text:?}: unknown unit {unit:?}"),
    };
    n.checked_mul(scale).filter(|v| *v > 0).with_context(|| format!("memory {text:?} out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_or_say_why() {
        assert_eq!(parse_memory("64m").expect("64m"), 64 << 20);
        assert_eq!(parse_memory("1G").expect("1G"), 1 << 30);
        assert_eq!(parse_memory("4096").expect("bytes"), 4096);
        assert!(parse_memory("12x").is_err());
        assert!(parse_memory("0").is_err());
        assert_eq!(key_values(&["a=b=c".into()], "annotation").expect("kv")["a"], "b=c");
        let err = key_values(&["novalue".into()], "annotation").expect_err("no =");
        assert_eq!(err.to_string(), "annotation \"novalue\" must be KEY=VALUE");
        assert!(parse_volume("/a:/b:ro").expect("vol").readonly);
        assert!(parse_volume("/a").is_err());
    }
}
