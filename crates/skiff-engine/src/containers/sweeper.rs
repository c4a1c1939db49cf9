//! What a removed container leaves, taken away after the removal has answered: its place in its
//! supervisor (the runtime's delete: libcontainer's state and the container's cgroups), the
//! supervisor group dir once no container is served there, the rootfs unmount, the writable
//! snapshot and the state dir.
//!
//! The runtime's delete of an exited container (eight cgroup rmdirs on a cgroup v1 host, its
//! state files) took about 3.4 ms of a 5 ms removal, and more when the supervisor's libcontainer
//! helper had ended and had to be started again for it: the caller has no use for it.
//!
//! Unmounting an overlay syncs its whole upper filesystem (the kernel's `ovl_sync_fs`): on a node
//! that writes, that took 10 ms here at rest and over 200 ms under a build. containerd pays it
//! outside its CRI calls too (a task's rootfs is unmounted when the task is deleted, its snapshot
//! removed by the garbage collector). The record and the name are gone before the caller is
//! answered, so a removed container is never listed and its name can be taken again at once.
//!
//! One thread sweeps, one leftover at a time. What a crash leaves unswept (a state dir or a
//! `container/<id>` snapshot without a record) is found again by [`Manager::recover`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use skiff_snapshot::{mount, Unpacker};

use super::record::Records;
use crate::launcher::Launcher;

/// How long a snapshot collection waits for queued removals before it goes on without them
/// (what they hold is then collected the next time).
pub const BEFORE_COLLECT: Duration = Duration::from_secs(30);

/// The on-disk remains of one container.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftover {
    pub id: String,
    pub rootfs: PathBuf,
    pub snapshot_key: String,
    pub state_dir: PathBuf,
    /// The container's cgroup (`linux.cgroupsPath`) when it is known: what its runtime left
    /// there is removed.
    pub cgroup_path: Option<String>,
    /// The supervisor group dir of the container's pod, removed once no container is served
    /// there (the pod's shim ends with its last container).
    pub group: Option<PathBuf>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Leftover>,
    /// A leftover is being swept (taken off `waiting`, not yet done).
    busy: bool,
    /// The sweeping thread runs.
    running: bool,
}

/// Returns the heap pages that removals freed to the kernel. glibc gives back only the top of an
/// arena on its own; what the removed containers' records, specs and buffers held in the middle
/// stays resident (about 1 MB after a hundred removals) until this asks for it. Once per burst
/// of removals: it walks every arena.
#[allow(unsafe_code)]
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free pages; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

pub struct Sweeper {
    unpacker: Arc<Unpacker>,
    launcher: Arc<dyn Launcher>,
    /// Flushed before a sweep: a removed record must be gone on disk before what it names is.
    records: Records,
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Sweeper {
    pub fn new(unpacker: Arc<Unpacker>, launcher: Arc<dyn Launcher>, records: Records) -> Arc<Sweeper> {
        Arc::new(Sweeper { unpacker, launcher, records, queue: Mutex::new(Queue::default()), changed: Condvar::new() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `leftover`; starts the sweeping thread when none runs (it ends when the queue is
    /// empty, so an idle daemon keeps no thread for it).
    pub fn push(self: &Arc<Self>, leftover: Leftover) {
        let mut queue = self.lock();
        if queue.waiting.contains(&leftover) {
            return;
        }
        queue.waiting.push_back(leftover);
        if !queue.running {
            queue.running = true;
            let me = self.clone();
            let started = std::thread::Builder::new().name("sweeper".into()).spawn(move || me.run());
            if let Err(e) = started {
                // Swept on this thread instead: slower for the caller, nothing left behind.
                tracing::warn!(error = %e, "starting the sweeper thread; sweeping in place");
                queue.running = false;
                drop(queue);
                self.run_here();
            }
        }
    }

    fn run(&self) {
        loop {
            let next = {
                let mut queue = self.lock();
                match queue.waiting.pop_front() {
                    Some(next) => {
                        queue.busy = true;
                        next
                    }
                    None => {
                        queue.running = false;
                        self.changed.notify_all();
                        drop(queue);
                        give_back_freed_memory();
                        return;
                    }
                }
            };
            self.sweep(&next);
            self.lock().busy = false;
            self.changed.notify_all();
        }
    }

    fn run_here(&self) {
        let waiting: Vec<Leftover> = self.lock().waiting.drain(..).collect();
        for leftover in &waiting {
            self.sweep(leftover);
        }
        self.changed.notify_all();
    }

    /// Waits until everything queued so far is swept, at most `timeout`; answers whether it was.
    pub fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.lock();
        while !queue.waiting.is_empty() || queue.busy {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self.changed.wait_timeout(queue, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    fn sweep(&self, leftover: &Leftover) {
        let id = &leftover.id;
        // The removal flushed before it answered; a failed flush there is tried again here, as
        // nothing the record names may go while a crash could bring the record back.
        if let Err(e) = self.records.flush() {
            tracing::warn!(container = %id, error = %e, "flushing the removed record; its leftovers are kept until the next start");
            return;
        }
        // The supervisor lets go of the container before its rootfs goes from under it.
        super::launch::end_runtime(&*self.launcher, &leftover.state_dir, leftover.cgroup_path.as_deref(), leftover.group.as_deref());
        // An error on a rootfs that is not mounted (a create that failed before its mount, a
        // sweep after a crash that had unmounted) is nothing to do. One still mounted keeps its
        // snapshot and state dir: removing the files under a live mount would pull them from
        // whoever holds it. The next start tries again.
        if let Err(e) = mount::unmount(&leftover.rootfs) {
            if super::rootfs::is_mounted(&leftover.rootfs) {
                tracing::warn!(container = %id, error = %e, "unmounting the rootfs; its snapshot and state dir are kept until the next start");
                return;
            }
        }
        let snapshots = self.unpacker.snapshotter();
        if snapshots.stat(&leftover.snapshot_key).is_ok() {
            if let Err(e) = snapshots.remove(&leftover.snapshot_key) {
                tracing::warn!(container = %id, error = %e, "removing the container's snapshot");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&leftover.state_dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %leftover.state_dir.display(), error = %e, "removing the container's state");
            }
        }
        tracing::debug!(container = %id, "container's leftovers swept");
    }
}

