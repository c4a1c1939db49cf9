//! Checks on raw request fields at the API edge, before any library sees them: a string that the
//! kernel or a runtime would cut at a NUL byte, and stdio paths that are not FIFOs.

use std::os::unix::fs::FileTypeExt;

use crate::status::ApiError;

/// Refuses a NUL byte in `value`, naming the field.
pub fn text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::BadRequest(format!("{field} holds a NUL byte: {value:?}")));
    }
    Ok(())
}

/// Every string of a list.
pub fn texts<'a>(field: &str, values: impl IntoIterator<Item = &'a String>) -> Result<(), ApiError> {
    values.into_iter().try_for_each(|v| text(field, v))
}

/// Keys and values of a map.
pub fn pairs<'a>(field: &str, map: impl IntoIterator<Item = (&'a String, &'a String)>) -> Result<(), ApiError> {
    for (k, v) in map {
        text(&format!("{field} key"), k)?;
        text(&format!("{field} {k:?}"), v)?;
    }
    Ok(())
}

/// A stdio path must name a FIFO (one the client made, as `ctr` does): the shim opens it as root,
/// so a regular file, a device or a symlink to one would receive the container's output (or feed
/// its input) with root's rights.
pub fn stdio_path(field: &str, path: &str) -> Result<(), ApiError> {
    if path.is_empty() {
        return Ok(());
    }
    text(field, path)?;
    if !path.starts_with('/') {
        return Err(ApiError::BadRequest(format!("{field} {path:?} must be an absolute path")));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() => Ok(()),
        Ok(_) => Err(ApiError::BadRequest(format!("{field} {path} is not a FIFO: stdio is attached through FIFOs the client makes"))),
        Err(e) => Err(ApiError::BadRequest(format!("{field} {path}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_and_non_fifos_are_refused_naming_the_field() {
        assert!(text("hostname", "box").is_ok());
        let err = text("hostname", "bo\0x").expect_err("nul").to_string();
        assert!(err.contains("hostname holds a NUL byte"), "{err}");
        let err = pairs("annotation", [(&"k\0".to_string(), &"v".to_string())]).expect_err("nul key").to_string();
        assert!(err.starts_with("annotation key"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("file");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).expect("symlink");
        assert!(stdio_path("stdout", fifo.to_str().expect("utf8")).is_ok());
        assert!(stdio_path("stdout", "").is_ok(), "not attached");
        for bad in [file.to_str().expect("utf8"), link.to_str().expect("utf8"), "/dev/null", "relative/fifo", "/no/such/fifo"] {
            assert!(stdio_path("stdout", bad).is_err(), "{bad}");
        }
    }
}
