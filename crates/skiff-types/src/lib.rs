//! The vocabulary every Skiff crate shares, with no dependencies of its own so that the shim's
//! build graph stays small: the fixed set of error kinds ([`ErrorKind`], reported by every library
//! error through [`HasKind::kind`]) and an image's annotation levels ([`ImageAnnotations`]), which
//! the store keeps and the runtime spec builder reads.

mod annotations;
mod kind;

pub use annotations::ImageAnnotations;
pub use kind::{ErrorKind, HasKind};
