//! The shim is a child subreaper: the container's init and exec'd processes (siblings of the
//! zygote, or orphans of an external runtime) and the runtime binaries it runs are its children.
//! One thread reaps every child; callers wait for a pid here, never with their own `waitpid`,
//! so no exit status is stolen by a second waiter.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl Ended {
    /// The shell convention: the exit code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(code) => code,
            Ended::Signaled(signal) => 128 + signal,
        }
    }
}

/// Unclaimed exits kept at most (libcontainer's intermediate processes are never claimed).
const MAX_UNCLAIMED: usize = 1024;

#[derive(Default)]
pub struct Reaper {
    /// pid → (how it ended, order of reaping).
    ended: Mutex<HashMap<i32, (Ended, u64)>>,
    reaped: std::sync::atomic::AtomicU64,
    changed: Condvar,
}

impl Reaper {
    /// Reaps forever (run on a thread of its own).
    pub fn run(&self) -> ! {
        loop {
            match waitpid(None::<Pid>, None) {
                Ok(WaitStatus::Exited(pid, code)) => self.record(pid.as_raw(), Ended::Exited(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => self.record(pid.as_raw(), Ended::Signaled(signal as i32)),
                Ok(_) | Err(Errno::EINTR) => {}
                // No child at the moment (an external runtime between calls): look again soon.
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn record(&self, pid: i32, ended: Ended) {
        let seq = self.reaped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut map) = self.ended.lock() {
            map.insert(pid, (ended, seq));
            // Exits nobody waits for must not pile up: drop the oldest half. A waiter claims its
            // exit within moments, so what is old was never going to be claimed.
            if map.len() > MAX_UNCLAIMED {
                let mut seqs: Vec<u64> = map.values().map(|(_, s)| *s).collect();
                seqs.sort_unstable();
                let cutoff = seqs[seqs.len() / 2];
                map.retain(|_, (_, s)| *s >= cutoff);
            }
        }
        self.changed.notify_all();
    }

    /// Blocks until `pid` ended (it may have already).
    pub fn wait(&self, pid: i32) -> Ended {
        let mut map = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((ended, _)) = map.remove(&pid) {
                return ended;
            }
            map = self.changed.wait(map).unwrap_or_else(|e| e.into_inner());
        }
    }
}
