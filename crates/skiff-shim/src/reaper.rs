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

#[derive(Default)]
pub struct Reaper {
    ended: Mutex<HashMap<i32, Ended>>,
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
        if let Ok(mut map) = self.ended.lock() {
            map.insert(pid, ended);
            // Exits nobody waits for (libcontainer's intermediate process) must not pile up.
            if map.len() > 4096 {
                map.clear();
            }
        }
        self.changed.notify_all();
    }

    /// Blocks until `pid` ended (it may have already).
    pub fn wait(&self, pid: i32) -> Ended {
        let mut map = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(ended) = map.remove(&pid) {
                return ended;
            }
            map = self.changed.wait(map).unwrap_or_else(|e| e.into_inner());
        }
    }
}
