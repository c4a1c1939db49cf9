//! Which of an image's stored platforms a container uses. An image record keeps every platform whose
//! content is stored; the platform wanted (the daemon's default, or an explicit `--platform`) picks
//! one of them each time, so that pulling another platform never changes what `run` uses.

use std::collections::BTreeSet;

use skiff_store::ImageRecord;

use crate::platform::Platform;

/// The wanted platform is not among those stored for the image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("image {image} has no {wanted} content stored (stored: {stored}); pull it with: skiff images pull --platform {wanted} {image}")]
pub struct PlatformNotStored {
    pub image: String,
    pub wanted: String,
    /// The stored platforms, comma separated (`none` when there are none).
    pub stored: String,
}

/// The stored platforms of `record`, parsed (entries that do not parse are skipped: they cannot be
/// chosen anyway).
pub fn stored_platforms(record: &ImageRecord) -> Vec<Platform> {
    record.platforms.iter().filter_map(|p| p.parse().ok()).collect()
}

/// The platform of `record` to use for `wanted`: the stored one equal to it, else the first stored
/// one it matches (an unset variant matches any). A record that knows no stored platform (written
/// before Skiff kept them) gets `wanted` itself, and resolving the image says whether it is there.
pub fn platform_for(record: &ImageRecord, wanted: &Platform) -> Result<Platform, PlatformNotStored> {
    let stored = stored_platforms(record);
    if record.platforms.is_empty() {
        return Ok(wanted.clone());
    }
    if let Some(p) = stored.iter().find(|p| *p == wanted).or_else(|| stored.iter().find(|p| wanted.matches(p))) {
        return Ok(p.clone());
    }
    let names: BTreeSet<&str> = record.platforms.iter().map(String::as_str).collect();
    Err(PlatformNotStored {
        image: record.name.clone(),
        wanted: wanted.to_string(),
        stored: if names.is_empty() { "none".into() } else { names.into_iter().collect::<Vec<_>>().join(", ") },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(platforms: &[&str]) -> ImageRecord {
        ImageRecord {
            name: "docker.io/library/x:1".into(),
            target: skiff_store::Descriptor {
                media_type: crate::media::OCI_INDEX.into(),
                digest: skiff_store::Digest::of(b"x"),
                size: 1,
                annotations: Default::default(),
            },
            created_at: String::new(),
            updated_at: String::new(),
            labels: Default::default(),
            platform: platforms.first().map(|p| p.to_string()).unwrap_or_default(),
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            annotations: Default::default(),
        }
    }

    fn p(s: &str) -> Platform {
        s.parse().expect("platform")
    }

    #[test]
    fn picks_the_wanted_platform_among_those_stored() {
        let both = record(&["linux/arm64", "linux/amd64"]);
        assert_eq!(platform_for(&both, &p("linux/amd64")), Ok(p("linux/amd64")));
        assert_eq!(platform_for(&both, &p("linux/arm64")), Ok(p("linux/arm64")));
        let arm = record(&["linux/arm/v7"]);
        assert_eq!(platform_for(&arm, &Platform { variant: None, ..p("linux/arm/v7") }), Ok(p("linux/arm/v7")));
        // Nothing known: the wanted platform, as before Skiff kept the set.
        assert_eq!(platform_for(&record(&[]), &p("linux/s390x")), Ok(p("linux/s390x")));
    }

    #[test]
    fn a_platform_not_stored_names_what_is_and_how_to_pull_it() {
        let amd = record(&["linux/amd64"]);
        let e = platform_for(&amd, &p("linux/arm64")).expect_err("not stored");
        assert_eq!(
            e.to_string(),
            "image docker.io/library/x:1 has no linux/arm64 content stored (stored: linux/amd64); \
             pull it with: skiff images pull --platform linux/arm64 docker.io/library/x:1"
        );
        let two = record(&["linux/amd64", "linux/arm/v7"]);
        assert!(platform_for(&two, &p("linux/arm/v6")).expect_err("v6").stored.contains("linux/amd64, linux/arm/v7"));
    }
}
