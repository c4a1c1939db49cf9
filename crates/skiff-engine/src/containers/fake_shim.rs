//! A launcher whose "shim" is a thread of the test serving the real shim protocol on the state
//! dir's socket: it keeps a container's state (created → running → stopped) as the real one
//! does, so the manager is tested through its real client and socket without a runtime.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use skiff_runtime::shim::{ErrorCode, ExitStatus, Request, Response, ShimConfig, State, Status, CONFIG_FILE, PID_FILE, SOCKET_FILE};

use crate::error::{EngineError, Result};
use crate::launcher::Launcher;

pub const PID: i32 = 4242;

/// Starts fake shims (one per container, whatever the group); `fail_with` makes every spawn fail
/// as a runtime error would. The groups it was given are kept for the tests to look at.
#[derive(Default)]
pub struct FakeLauncher {
    pub fail_with: Option<String>,
    pub groups: Mutex<Vec<Option<std::path::PathBuf>>>,
    pub released: Mutex<Vec<std::path::PathBuf>>,
    pub prepared: Mutex<Vec<std::path::PathBuf>>,
}

struct Container {
    status: Mutex<(Status, Option<ExitStatus>)>,
    changed: Condvar,
}

impl Launcher for FakeLauncher {
    fn prepare(&self, group: &Path) -> Result<()> {
        self.prepared.lock().unwrap_or_else(|e| e.into_inner()).push(group.to_path_buf());
        Ok(())
    }

    fn release(&self, group: &Path) {
        self.released.lock().unwrap_or_else(|e| e.into_inner()).push(group.to_path_buf());
    }

    fn spawn(&self, state_dir: &Path, group: Option<&Path>) -> Result<()> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner()).push(group.map(Path::to_path_buf));
        // What the manager wrote must be a shim config the real shim would accept.
        let config = std::fs::read(state_dir.join(CONFIG_FILE)).map_err(EngineError::io("reading shim.json"))?;
        let _: ShimConfig = serde_json::from_slice(&config).map_err(|e| EngineError::CreateFailed(format!("bad shim.json: {e}")))?;
        if let Some(message) = &self.fail_with {
            return Err(EngineError::CreateFailed(message.clone()));
        }
        if let Some(group) = group {
            // As the real launcher does: the group's dir is made with its first container.
            std::fs::create_dir_all(group).map_err(EngineError::io("making the group dir"))?;
        }
        // As the real shim does: its pid file says a start brought it up.
        std::fs::write(state_dir.join(PID_FILE), std::process::id().to_string()).map_err(EngineError::io("writing shim.pid"))?;
        let socket = state_dir.join(SOCKET_FILE);
        let listener = UnixListener::bind(&socket).map_err(EngineError::io("binding the fake shim"))?;
        let container = Arc::new(Container { status: Mutex::new((Status::Created, None)), changed: Condvar::new() });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (container, socket) = (container.clone(), socket.clone());
                // One thread per connection, as waits block while other requests go on.
                std::thread::spawn(move || {
                    if serve(&container, stream) {
                        // Delete: the shim ends, so nothing answers on its socket any more.
                        let _ = std::fs::remove_file(&socket);
                    }
                });
            }
        });
        Ok(())
    }
}

/// Answers one request; true when the shim should end (after `Delete`).
fn serve(c: &Container, stream: UnixStream) -> bool {
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return false;
    }
    let Ok(request) = serde_json::from_str::<Request>(&line) else { return false };
    let is_delete = matches!(request, Request::Delete);
    let mut state = c.status.lock().unwrap_or_else(|e| e.into_inner());
    let refuse = |message: &str| Response::Error { code: ErrorCode::FailedPrecondition, message: message.into() };
    let answer = match request {
        Request::State => Response::State(State { pid: PID, status: state.0, exit: state.1.clone() }),
        Request::Start if state.0 == Status::Created => {
            state.0 = Status::Running;
            Response::Ok
        }
        Request::Start => refuse("container is not created"),
        Request::Kill { signal, .. } if state.0 != Status::Stopped => {
            *state = (Status::Stopped, Some(ExitStatus { pid: PID, code: 128 + signal, signal: Some(signal), oom_killed: false, exited_at: String::new(), lost: false, start_error: None }));
            c.changed.notify_all();
            Response::Ok
        }
        Request::Kill { .. } => Response::Ok,
        Request::Wait { exec_id: None } => {
            while state.1.is_none() {
                state = c.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            Response::Exited(state.1.clone().unwrap_or_else(|| ExitStatus::lost(String::new())))
        }
        Request::Wait { exec_id: Some(_) } => Response::Exited(ExitStatus { pid: PID + 1, code: 0, signal: None, oom_killed: false, exited_at: String::new(), lost: false, start_error: None }),
        Request::Exec { .. } if state.0 == Status::Running => Response::Exec { pid: PID + 1 },
        Request::Exec { .. } => refuse("container is not running"),
        Request::Attach { .. } if state.0 == Status::Running => Response::Ok,
        Request::Attach { .. } => refuse("container is not running"),
        Request::ResizePty { .. } | Request::ReopenLog | Request::KillExec { .. } => Response::Ok,
        Request::Delete if state.0 == Status::Running => refuse("container is running"),
        Request::Delete => Response::Ok,
    };
    let deleted = is_delete && matches!(answer, Response::Ok);
    drop(state);
    let mut bytes = serde_json::to_vec(&answer).unwrap_or_default();
    bytes.push(b'\n');
    let _ = (&stream).write_all(&bytes);
    deleted
}
