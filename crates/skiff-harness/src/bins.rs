//! Finding the skiffd and skiff binaries: an explicit path, else `$SKIFF_BIN_DIR`, else the target
//! directory the running test was built into, else `PATH`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where `name` is. `$SKIFF_BIN_DIR`, when set, is the only place looked at after an explicit
/// path: whoever sets it means those binaries, and a stale one found further on would be worse
/// than an error.
pub(crate) fn find(name: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return existing(path).ok_or_else(|| Error::BinaryNotFound { name: name.into(), looked: vec![path.to_path_buf()] });
    }
    if let Some(dir) = std::env::var_os("SKIFF_BIN_DIR").filter(|d| !d.is_empty()) {
        let path = Path::new(&dir).join(name);
        return existing(&path).ok_or(Error::BinaryNotFound { name: name.into(), looked: vec![path] });
    }
    let mut looked = Vec::new();
    // A test executable is target/<profile>/deps/<test>-<hash>; the binaries are in target/<profile>.
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent).and_then(Path::parent) {
        let path = dir.join(name);
        if let Some(found) = existing(&path) {
            return Ok(found);
        }
        looked.push(path);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let path = dir.join(name);
        if let Some(found) = existing(&path) {
            return Ok(found);
        }
    }
    looked.push(PathBuf::from(format!("$PATH/{name}")));
    Err(Error::BinaryNotFound { name: name.into(), looked })
}

fn existing(path: &Path) -> Option<PathBuf> {
    path.is_file().then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_path_that_is_missing_is_an_error_naming_it() {
        let err = find("skiffd", Some(Path::new("/nonexistent/skiffd"))).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/skiffd"), "{err}");
        assert_eq!(find("sh", Some(Path::new("/bin/sh"))).expect("explicit"), PathBuf::from("/bin/sh"));
    }
}
