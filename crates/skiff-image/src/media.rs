//! Media types Skiff understands, OCI and Docker, and what each kind of blob is.

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_SCHEMA1_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

const LAYERS: &[&str] = &[
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// What a blob is, by its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
    Config,
    Layer,
}

/// The kind of blob a media type names, or `None` for a media type Skiff does not handle.
pub fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        OCI_CONFIG | DOCKER_CONFIG => Some(Kind::Config),
        mt if LAYERS.contains(&mt) => Some(Kind::Layer),
        _ => None,
    }
}

/// True for the Docker schema 1 manifests, which Skiff refuses (they carry no content digests).
pub fn is_schema1(media_type: &str) -> bool {
    media_type == DOCKER_SCHEMA1_MANIFEST || media_type == DOCKER_SCHEMA1_SIGNED
}

/// Size limits for blobs that are read into memory.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(kind_of(OCI_INDEX), Some(Kind::Index));
        assert_eq!(kind_of(DOCKER_MANIFEST), Some(Kind::Manifest));
        assert_eq!(kind_of(DOCKER_CONFIG), Some(Kind::Config));
        assert_eq!(kind_of("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"), Some(Kind::Layer));
        assert_eq!(kind_of("application/vnd.example.unknown"), None);
        assert!(is_schema1(DOCKER_SCHEMA1_SIGNED));
    }
}
