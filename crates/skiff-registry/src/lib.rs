//! Skiff's OCI distribution client: resolve, pull and push against registries, with containerd-style
//! host configuration (mirrors, CA, skip_verify, plain HTTP), Basic and Bearer authentication, and
//! retries with backoff. Pull feeds the registry into `skiff-image`'s import pipeline, so a pulled
//! image is checked and stored exactly as an imported one.
//!
//! Kept apart from `skiff-image` so that the HTTP and TLS stack stays out of the image-format crate.

pub mod auth;
pub mod client;
pub mod error;
pub mod hosts;
pub mod pull;
pub mod push;
mod resolve;
mod shared_http;
pub mod source;
mod tls;

pub use auth::{AuthConfig, Credentials};
pub use client::{Access, Client, ClientOptions, Tokens};
pub use error::RegistryError;
pub use hosts::Hosts;
pub use pull::{pull, PullOptions};
pub use push::{push, PushReport};
