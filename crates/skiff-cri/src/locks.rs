//! Async locks by key (an image reference, a pod name, a sandbox id): work on one key is made one
//! after the other, work on different keys runs at once, and a key's entry goes with its last
//! holder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        self.lock_noting_wait(key).await.0
    }

    /// The lock, and whether another holder had it when asked (work on the key was in flight).
    pub async fn lock_noting_wait(&self, key: &str) -> (KeyGuard<'_>, bool) {
        let lock = self.locks.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let (guard, waited) = match lock.clone().try_lock_owned() {
            Ok(guard) => (guard, false),
            Err(_) => (lock.clone().lock_owned().await, true),
        };
        (KeyGuard { locks: self, key: key.to_string(), lock, _guard: guard }, waited)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.locks.locks.lock().unwrap_or_else(|p| p.into_inner());
        // The map holds one reference, this guard another, and its own mutex guard a third: no
        // one else waits, so the entry can go.
        if Arc::strong_count(&self.lock) <= 3 {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_waits_other_keys_run_and_no_entry_is_left() {
        let locks = Arc::new(KeyedLocks::default());
        let first = locks.lock("a").await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _second = locks.lock("a").await;
            })
        };
        let other = locks.lock("b").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a second holder of one key waits");
        drop(first);
        waiting.await.expect("second holder");
        drop(other);
        assert!(locks.is_empty());
    }
}
