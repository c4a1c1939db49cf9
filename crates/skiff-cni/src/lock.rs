//! One CNI operation per pod at a time (the spec forbids parallel operations on one container),
//! any number on different pods.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks by key; a key's lock exists only while held or waited for.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    held: Mutex<HashSet<String>>,
    released: Condvar,
}

/// Holds a key until dropped.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
}

impl KeyedLocks {
    pub fn new() -> KeyedLocks {
        KeyedLocks::default()
    }

    /// Waits until no one holds `key`, then holds it.
    pub fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mut held = self.set();
        while held.contains(key) {
            held = self.released.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        held.insert(key.to_string());
        KeyGuard { locks: self, key: key.to_string() }
    }

    // The set stays consistent whatever panicked while holding it (every change is one insert or remove).
    fn set(&self) -> MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.locks.set().remove(&self.key);
        self.locks.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_holder_per_key_many_keys_at_once() {
        let locks = Arc::new(KeyedLocks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    // Even threads share key "a"; odd ones each have their own.
                    let key = if i % 2 == 0 { "a".to_string() } else { format!("k{i}") };
                    let _g = locks.lock(&key);
                    if key == "a" {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two holders of key a at once");
        assert!(locks.set().is_empty(), "released keys are forgotten");
    }

    #[test]
    fn other_keys_do_not_wait() {
        let locks = KeyedLocks::new();
        let _a = locks.lock("a");
        let _b = locks.lock("b");
        drop(_a);
        let _a2 = locks.lock("a");
    }
}
