//! Standalone containers: records, the manager that runs them through skiff-shim, their logs,
//! and the gRPC service.

mod logs;
mod manager;
mod record;
mod rootfs;
mod service;
mod volumes;

pub use manager::Manager;
pub use service::ContainersService;
