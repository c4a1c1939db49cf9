//! The `skiff.v1.Containers` service over the engine's container manager.

mod service;

pub use service::ContainersService;
