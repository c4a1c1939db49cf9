//! SPDY/3.1 (draft-mbelshe-httpbis-spdy-00 with the 3.1 flow control), as Kubernetes'
//! `httpstream/spdy` speaks it.
pub mod codec;
pub mod dictionary;
pub mod error;
pub mod frame;
pub mod headers;
pub mod upgrade;

#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod frame_tests;
