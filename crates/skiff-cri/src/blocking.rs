//! Store, registry and snapshot work is blocking I/O: it runs on tokio's blocking pool, never on
//! the threads serving requests.

use crate::error::{CriError, Result};

pub async fn blocking<T: Send + 'static>(what: &'static str, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|_| CriError::Lost(what))?
}
