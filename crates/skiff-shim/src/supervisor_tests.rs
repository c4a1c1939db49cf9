//! The supervisor against a runtime that fails the way libcontainer does when a process of the
//! cgroup exits while it walks them: the container's init is a real child (`sleep`), reaped by the
//! real reaper.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use skiff_runtime::shim::{Request, Response, RuntimeKind, ShimConfig, Stdio};

use super::Supervisor;
use crate::io::ChildStdio;
use crate::launcher::{LaunchError, Launcher};
use crate::reaper::Reaper;

/// One reaper for the test process: it reaps every child, as the shim's does.
fn reaper() -> Arc<Reaper> {
    static REAPER: OnceLock<Arc<Reaper>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            let reaper = Arc::new(Reaper::default());
            let running = reaper.clone();
            std::thread::spawn(move || running.run());
            reaper
        })
        .clone()
}

/// How the first kill fails.
#[derive(Clone, Copy)]
enum Race {
    /// The init died of the signal before the runtime got to read it.
    InitGone,
    /// Another process of the container went away; the init lives on.
    OtherGone,
}

struct Racing {
    race: Race,
    pid: OnceLock<i32>,
    /// Shared with the test, which gives the launcher away.
    kills: Arc<AtomicUsize>,
}

impl Launcher for Racing {
    fn create(&self, _stdio: ChildStdio) -> Result<i32, LaunchError> {
        let child = std::process::Command::new("sleep").arg("30").spawn()?;
        let pid = child.id() as i32;
        let _ = self.pid.set(pid);
        Ok(pid)
    }
    fn start(&self) -> Result<(), LaunchError> {
        Ok(())
    }
    fn exec(&self, _process: &Path, _stdio: ChildStdio) -> Result<i32, LaunchError> {
        Err(LaunchError::Runtime("no exec here".into()))
    }
    fn kill(&self, signal: i32, _all: bool) -> Result<(), LaunchError> {
        let pid = *self.pid.get().expect("created");
        let first = self.kills.fetch_add(1, Ordering::SeqCst) == 0;
        match (first, self.race) {
            (true, Race::InitGone) => {
                // SAFETY: kill(2) with a pid and a signal number.
                unsafe { libc::kill(pid, signal) };
                Err(LaunchError::Runtime(format!("File not found: /proc/{pid}/stat")))
            }
            (true, Race::OtherGone) => Err(LaunchError::Runtime("File not found: /proc/999999/stat".into())),
            (false, _) => {
                // SAFETY: as above.
                unsafe { libc::kill(pid, signal) };
                Ok(())
            }
        }
    }
    fn delete(&self) -> Result<(), LaunchError> {
        Ok(())
    }
}

fn supervised(race: Race, dir: &Path) -> (Arc<Supervisor>, Arc<AtomicUsize>) {
    let config = ShimConfig {
        id: "racing".into(),
        bundle: dir.join("bundle"),
        log_path: dir.join("container.log"),
        runtime: RuntimeKind::Builtin,
        stdio: Stdio::default(),
        cgroup_path: None,
        loopback_up: false,
        open_stdin: false,
        stdin_once: false,
    };
    let kills = Arc::new(AtomicUsize::new(0));
    let launcher = Racing { race, pid: OnceLock::new(), kills: kills.clone() };
    let supervisor = Supervisor::create(config, dir.to_path_buf(), Box::new(launcher), reaper()).expect("create");
    assert!(matches!(supervisor.handle(Request::Start), Response::Ok));
    (supervisor, kills)
}

#[test]
fn a_kill_to_all_that_races_with_the_inits_death_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (supervisor, kills) = supervised(Race::InitGone, dir.path());
    let answer = supervisor.handle(Request::Kill { signal: libc::SIGKILL, all: true });
    assert!(matches!(answer, Response::Ok), "{answer:?}");
    assert_eq!(kills.load(Ordering::SeqCst), 1, "the init's exit settles it without a second pass");
    assert!(matches!(supervisor.handle(Request::Wait { exec_id: None }), Response::Exited(e) if e.code == 137));
}

#[test]
fn a_kill_to_all_that_races_with_another_process_is_made_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (supervisor, kills) = supervised(Race::OtherGone, dir.path());
    let answer = supervisor.handle(Request::Kill { signal: libc::SIGKILL, all: true });
    assert!(matches!(answer, Response::Ok), "{answer:?}");
    assert_eq!(kills.load(Ordering::SeqCst), 2, "a second pass reached what was left");
    assert!(matches!(supervisor.handle(Request::Wait { exec_id: None }), Response::Exited(e) if e.code == 137));
}
