//! Pod sandboxes without a pause container. A sandbox is a record and what it names: the pod's
//! namespaces pinned by `skiff-shim pin` (net, ipc, uts; a PID holder when the pod shares one PID
//! namespace), its network attached through CNI, and its state dir:
//!
//! ```text
//! <root>/pods/<id>/        0700
//!   net ipc uts            bind mounts of the pod's namespaces (what containers join)
//!   hostname hosts resolv.conf   the pod's files, mounted into each of its containers
//!   shm/                   the pod's /dev/shm (a tmpfs; the host's for host IPC)
//! sled sandboxes/sandbox/<id> -> SandboxRecord (json)
//! ```
//!
//! The record is written (durably) before anything is made, as `creating`, so one undo serves a
//! failed RunPodSandbox and a crash in the middle of one: recovery finds the record and undoes
//! what it names. Lifecycle: creating → ready → notready (stopped: network detached) → removed.
//! The kubelet lists sandboxes every second: the records are served from memory.

pub mod files;
pub mod record;
mod recover;
mod remove;
mod run;
pub(crate) mod status;
mod store;

pub use record::{SandboxRecord, SandboxState};
pub use store::Sandboxes;

#[cfg(test)]
mod tests;
