//! Keeps the kernel's cgroup migration lock warm while containers are being started.
//!
//! Every move of a process into a cgroup (a write of its pid to `cgroup.procs`: libcontainer
//! makes one for each container's init and each exec'd process) takes the kernel's one global
//! `cgroup_threadgroup_rwsem` for writing. After an idle spell, taking it first waits for an RCU
//! grace period (7.7 ms measured on the 2-core test host, about half of a container's start);
//! a move within a grace period of the last one is free (6 µs). The kernel's `favordynmods`
//! cgroup2 mount option keeps it warm for good, host-wide, for every fork and exit to pay for;
//! this keeps it warm only while Skiff starts containers: once told a start is coming (a pod
//! run, a create, a start, an exec), a thread moves skiffd into the cgroup it is already in
//! (the kernel takes the lock, finds nothing to move) every [`INTERVAL`] until [`WINDOW`] has
//! passed since the last word, or until the start has made its move. The container's own move
//! then finds the lock warm, and the first grace period is waited out on this thread, beside
//! the work that precedes the move.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cgroupfs::CgroupMounts;

/// How often the lock is taken while warm: well under a grace period (several ms).
const INTERVAL: Duration = Duration::from_millis(2);
/// How long it stays warm after the last word, at most: a pod's run, its image check, its
/// containers' create and start come this close together from the kubelet. A start that has
/// made its move ends the window ([`AttachWarmer::moved`]): while warm, the host's forks and
/// exits take the lock's slower path (the cost the kernel documents for `favordynmods`), and
/// each move briefly holds them off.
const WINDOW: Duration = Duration::from_millis(100);

/// Cheap to clone; every clone feeds the one thread.
#[derive(Clone)]
pub struct AttachWarmer {
    shared: Arc<Shared>,
}

struct Shared {
    /// Where skiffd's pid goes; None where no cgroup file is found (nothing is warmed).
    target: Option<Target>,
    state: Mutex<State>,
    wake: Condvar,
}

enum Target {
    /// skiffd's own cgroup, found again before each move: a process moved meanwhile (by the
    /// node's administrator) is not moved back.
    Own(CgroupMounts),
    /// A file named by a test.
    #[cfg(test)]
    Fixed(PathBuf),
}

impl Target {
    fn procs(&self) -> Option<PathBuf> {
        match self {
            Target::Own(mounts) => procs_file(mounts, &std::fs::read_to_string("/proc/self/cgroup").ok()?),
            #[cfg(test)]
            Target::Fixed(path) => Some(path.clone()),
        }
    }
}

#[derive(Default)]
struct State {
    /// Warm until then.
    until: Option<Instant>,
    running: bool,
    /// Moves made, for tests and logs.
    moves: u64,
}

impl AttachWarmer {
    /// A warmer of this process's own cgroup, found in its mount table and `/proc/self/cgroup`.
    pub fn for_this_process() -> AttachWarmer {
        let target = CgroupMounts::detect().ok().map(Target::Own).filter(|t| t.procs().is_some());
        if target.is_none() {
            tracing::debug!("no cgroup.procs of our own found: container starts wait out the cgroup lock's grace period");
        }
        AttachWarmer::with_target(target)
    }

    fn with_target(target: Option<Target>) -> AttachWarmer {
        AttachWarmer { shared: Arc::new(Shared { target, state: Mutex::new(State::default()), wake: Condvar::new() }) }
    }

    /// A start is coming: keeps the lock warm for [`WINDOW`] from now.
    pub fn expect_start(&self) {
        if self.shared.target.is_none() {
            return;
        }
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.until = Some(Instant::now() + WINDOW);
        if state.running {
            self.shared.wake.notify_one();
            return;
        }
        let shared = self.shared.clone();
        match std::thread::Builder::new().name("cgroup-warmer".into()).spawn(move || shared.warm()) {
            Ok(_) => state.running = true,
            Err(e) => tracing::debug!(error = %e, "starting the cgroup warmer thread"),
        }
    }

    /// The start that was expected has moved its process: nothing more to warm until the next
    /// word. With starts side by side the first to move ends the window for all: the lock stays
    /// warm for one more grace period, and a move that comes later waits one out, as it would
    /// without the warmer.
    pub fn moved(&self) {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).until = None;
    }

    /// How many moves the thread has made.
    pub fn moves(&self) -> u64 {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).moves
    }
}

impl Shared {
    /// The thread: moves this process into its own cgroup while the window is open, then waits
    /// for the next word.
    fn warm(&self) {
        let pid = std::process::id().to_string();
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                while !state.until.is_some_and(|until| Instant::now() < until) {
                    state.until = None;
                    state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            }
            let Some(procs) = self.target.as_ref().and_then(Target::procs) else { return self.stop() };
            // The kernel takes the lock before it checks the move; a refusal (a cgroup v2
            // parent with controllers enabled answers EBUSY) has warmed it all the same. (A pid
            // that does not exist is looked up before the lock on recent kernels: no use.)
            if let Err(e) = File::options().write(true).open(&procs).and_then(|mut f| f.write_all(pid.as_bytes())) {
                if e.raw_os_error() != Some(libc::EBUSY) {
                    tracing::debug!(file = %procs.display(), error = %e, "moving into our own cgroup: nothing warmed");
                    return self.stop();
                }
            }
            self.state.lock().unwrap_or_else(|e| e.into_inner()).moves += 1;
            std::thread::sleep(INTERVAL);
        }
    }

    /// The thread ends for good (its file cannot be written); later words do nothing.
    fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.until = None;
        // `running` stays set: another thread would meet the same error.
    }
}

/// The `cgroup.procs` of this process's own cgroup in the first hierarchy it can be found in
/// (`own` is `/proc/self/cgroup`): the unified one, else a v1 controller's. Any will do, as the
/// lock is one for every hierarchy.
fn procs_file(mounts: &CgroupMounts, own: &str) -> Option<PathBuf> {
    let mut found = None;
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        let hierarchy = if id == "0" && controllers.is_empty() {
            mounts.unified()
        } else {
            controllers.split(',').filter(|c| !c.contains('=')).find_map(|c| mounts.v1(c))
        };
        let Some(dir) = hierarchy.and_then(|h| h.dir(path)) else { continue };
        let file = dir.join("cgroup.procs");
        if id == "0" {
            return Some(file);
        }
        found.get_or_insert(file);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
33 25 0:29 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn the_unified_hierarchy_is_preferred_then_a_v1_controller() {
        let mounts = CgroupMounts::parse(MOUNTINFO);
        let hybrid = "12:name=systemd:/\n4:cpu,cpuacct:/skiff\n3:pids:/a\n0::/b\n";
        assert_eq!(procs_file(&mounts, hybrid), Some(PathBuf::from("/sys/fs/cgroup/unified/b/cgroup.procs")));
        let v1 = "12:name=systemd:/\n4:cpu,cpuacct:/skiff\n3:pids:/a\n";
        assert_eq!(procs_file(&mounts, v1), Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/skiff/cgroup.procs")));
        assert_eq!(procs_file(&mounts, "12:name=systemd:/\n"), None);
        assert_eq!(procs_file(&CgroupMounts::parse(""), hybrid), None);
        assert_eq!(procs_file(&mounts, "garbage\n3:pids\n"), None);
    }

    #[test]
    fn nothing_to_write_means_nothing_runs() {
        let warmer = AttachWarmer::with_target(None);
        warmer.expect_start();
        assert_eq!(warmer.moves(), 0);
        assert!(!warmer.shared.state.lock().expect("state").running);
    }

    #[test]
    fn a_file_that_cannot_be_written_stops_the_thread_quietly() {
        let warmer = AttachWarmer::with_target(Some(Target::Fixed(PathBuf::from("/nonexistent/cgroup.procs"))));
        warmer.expect_start();
        let deadline = Instant::now() + Duration::from_secs(5);
        while warmer.shared.state.lock().expect("state").until.is_some() {
            assert!(Instant::now() < deadline, "the thread did not give up");
            std::thread::sleep(Duration::from_millis(5));
        }
        warmer.expect_start();
        assert_eq!(warmer.moves(), 0);
    }

    /// As root on a host with cgroups: the thread moves us while the window is open, then stops.
    #[test]
    fn it_moves_while_the_window_is_open_then_rests() {
        let warmer = AttachWarmer::for_this_process();
        if warmer.shared.target.is_none() || !nix::unistd::geteuid().is_root() {
            return;
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroups");
        warmer.expect_start();
        let deadline = Instant::now() + Duration::from_secs(10);
        while warmer.moves() < 3 {
            assert!(Instant::now() < deadline, "no moves made");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Rests once the window has passed with no word.
        std::thread::sleep(WINDOW + Duration::from_millis(100));
        let rested = warmer.moves();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(warmer.moves(), rested, "still moving after the window");
        // A word, then the start's own move: the thread rests again at once.
        warmer.expect_start();
        warmer.moved();
        std::thread::sleep(Duration::from_millis(30));
        let rested = warmer.moves();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(warmer.moves(), rested, "still moving after the start moved");
        warmer.expect_start();
        let deadline = Instant::now() + Duration::from_secs(10);
        while warmer.moves() == rested {
            assert!(Instant::now() < deadline, "a new word did not wake the thread");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(std::fs::read_to_string("/proc/self/cgroup").expect("own cgroups"), own, "the moves changed our cgroups");
    }
}
