//! Skiff's runtime side: the OCI runtime spec a container gets (`spec::build`),
//! including Skiff's promise that image annotations reach the runtime (`annotations::merge`), the
//! user resolution against the image's passwd/group files, the default seccomp profile, and the
//! protocol skiffd speaks with `skiff-shim`, the per-container supervisor that runs the container
//! (`shim`), and the pinning of a pod sandbox's namespaces by `skiff-shim pin` (`pod`).

pub mod annotations;
mod error;
pub mod pod;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub mod user;

pub use annotations::{merge, Effective, ImageAnnotationPolicy, Source};
pub use error::{Result, RuntimeError};
pub use spec::{build, Built, Device, MountRequest, Propagation, ResolvedDevice, RunRequest, Seccomp, Security, SpecInputs};
