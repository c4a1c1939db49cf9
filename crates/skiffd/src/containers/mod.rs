//! The `skiff.v1.Containers` service over the engine's container manager.

mod fifos;
mod service;

pub use fifos::StdioFifos;
pub use service::ContainersService;
