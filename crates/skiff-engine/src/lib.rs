//! The engine: what skiffd's APIs (Skiff's own, and the CRI) drive. It owns the container
//! manager — records and their lifecycle state machine, the rootfs snapshot, volumes, logs and
//! cgroups, the shim launcher — the event bus every lifecycle change goes out on, and the image
//! glue (lookup by a user's name, default platform, unpack, garbage collection).
//!
//! Data flows one way: the store and snapshotter below, the runtime spec builder and the shim
//! protocol beside, the APIs above. skiffd wires the parts explicitly ([`ManagerParts`]).

pub mod attach_warmer;
pub mod config;
pub mod containers;
mod error;
pub mod events;
pub mod images;
pub mod cgroupfs;
pub mod launcher;
pub mod pull;
pub mod unpack;

pub use config::{HandlerConfig, ImageVolumes, RuntimeConfig, BUILTIN_HANDLER};
pub use containers::{ContainerRecord, CreateSpec, ExecSpec, Manager, ManagerParts, Owner, ResourceUpdate, Status};
pub use error::{EngineError, Result};
pub use events::{Event, EventBus, EventType};
pub use launcher::{Launcher, SealedShim};
