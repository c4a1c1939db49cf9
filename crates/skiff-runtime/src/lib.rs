//! Skiff's runtime side. This first part is pure: the OCI runtime spec a container gets
//! (`spec::build`), including Skiff's promise that image annotations reach the runtime
//! (`annotations::merge`), the user resolution against the image's passwd/group files, and the
//! default seccomp profile. The launcher (a per-container supervisor on libcontainer) builds on it.

pub mod annotations;
mod error;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub mod user;

pub use annotations::{merge, Effective, ImageAnnotationPolicy, Source};
pub use error::{Result, RuntimeError};
pub use spec::{build, Built, RunRequest, SpecInputs};
