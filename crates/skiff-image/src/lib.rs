//! Skiff's OCI image layer: references and platforms, parsing and validating indexes and manifests,
//! resolving a stored image for a platform (collecting annotations at each level), importing OCI
//! layouts, oci-archives and docker-archives, exporting, annotating and inspecting.
//!
//! Data flows one way: sources → `import` → the store; the store → `resolve` → inspect, annotate,
//! export and (later) the runtime.

pub mod annotate;
mod docker;
mod error;
pub mod export;
pub mod import;
mod ingest;
pub mod inspect;
pub mod media;
pub mod model;
pub mod platform;
mod progress;
mod record;
pub mod reference;
pub mod resolve;
pub mod resolve_cache;
pub mod select;
pub mod source;
pub mod stored;

pub use error::{ImageError, Result};
pub use platform::Platform;
pub use progress::{NoProgress, Progress};
pub use reference::{normalize, Reference};
