//! Checks on raw request fields at the API edge, before any library sees them: a string that the
//! kernel or a runtime would cut at a NUL byte. (Stdio paths are checked where they are made:
//! `containers::fifos`.)

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_are_refused_naming_the_field() {
        assert!(text("hostname", "box").is_ok());
        let err = text("hostname", "bo\0x").expect_err("nul").to_string();
        assert!(err.contains("hostname holds a NUL byte"), "{err}");
        let err = pairs("annotation", [(&"k\0".to_string(), &"v".to_string())]).expect_err("nul key").to_string();
        assert!(err.starts_with("annotation key"), "{err}");
    }
}
