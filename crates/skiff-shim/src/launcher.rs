//! The seam between the shim and an OCI runtime: libcontainer (through the zygote) or a
//! runc-compatible binary. Both see the same bundle and `config.json`.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::io::ChildStdio;
use crate::reaper::Reaper;
use crate::zygote::{Call, Zygote};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Runtime(String),
    #[error("runtime binary {path}: {source}")]
    Binary { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub trait Launcher: Send + Sync {
    /// Creates the container; its init waits for `start`. Returns the init's pid.
    fn create(&self, stdio: ChildStdio) -> Result<i32, LaunchError>;
    fn start(&self) -> Result<(), LaunchError>;
    /// Starts `process` (an OCI process JSON file) in the running container; returns its pid.
    fn exec(&self, process: &Path, stdio: ChildStdio) -> Result<i32, LaunchError>;
    fn kill(&self, signal: i32, all: bool) -> Result<(), LaunchError>;
    /// Removes the runtime's state and the container's cgroup.
    fn delete(&self) -> Result<(), LaunchError>;
}

/// youki's libcontainer, called from the zygote.
pub struct Builtin {
    pub zygote: Zygote,
    pub id: String,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub loopback_up: bool,
}

fn fds(stdio: &ChildStdio) -> [i32; 3] {
    [stdio.stdin.as_raw_fd(), stdio.stdout.as_raw_fd(), stdio.stderr.as_raw_fd()]
}

impl Launcher for Builtin {
    fn create(&self, stdio: ChildStdio) -> Result<i32, LaunchError> {
        let call = Call::Create {
            id: self.id.clone(),
            root: self.root.clone(),
            bundle: self.bundle.clone(),
            console_socket: stdio.console_socket.clone(),
            loopback_up: self.loopback_up,
        };
        let pid = self.zygote.call(&call, &fds(&stdio)).map_err(LaunchError::Runtime)?;
        pid.ok_or_else(|| LaunchError::Runtime("the zygote answered no pid".into()))
    }

    fn start(&self) -> Result<(), LaunchError> {
        self.zygote.call(&Call::Start { id: self.id.clone(), root: self.root.clone() }, &[]).map_err(LaunchError::Runtime)?;
        Ok(())
    }

    fn exec(&self, process: &Path, stdio: ChildStdio) -> Result<i32, LaunchError> {
        let call = Call::Exec {
            id: self.id.clone(),
            root: self.root.clone(),
            process: process.to_path_buf(),
            console_socket: stdio.console_socket.clone(),
        };
        let pid = self.zygote.call(&call, &fds(&stdio)).map_err(LaunchError::Runtime)?;
        pid.ok_or_else(|| LaunchError::Runtime("the zygote answered no pid".into()))
    }

    fn kill(&self, signal: i32, all: bool) -> Result<(), LaunchError> {
        let call = Call::Kill { id: self.id.clone(), root: self.root.clone(), signal, all };
        self.zygote.call(&call, &[]).map_err(LaunchError::Runtime)?;
        Ok(())
    }

    fn delete(&self) -> Result<(), LaunchError> {
        self.zygote.call(&Call::Delete { id: self.id.clone(), root: self.root.clone() }, &[]).map_err(LaunchError::Runtime)?;
        Ok(())
    }
}

/// A runc-compatible binary (runc, crun, urunc, kata-runtime): the OCI runtime command line.
pub struct Binary {
    pub path: PathBuf,
    pub id: String,
    pub root: PathBuf,
    pub bundle: PathBuf,
    /// The shim's state dir: the runtime runs there.
    pub state_dir: PathBuf,
    pub reaper: Arc<Reaper>,
}

impl Binary {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.current_dir(&self.state_dir)
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(self.state_dir.join("runtime.log"))
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// Runs the runtime; its exit is reaped by the shim's reaper, never by `Command`.
    fn run(&self, mut cmd: Command, stdio: Option<ChildStdio>) -> Result<(), LaunchError> {
        let binary_error = |source| LaunchError::Binary { path: self.path.clone(), source };
        match stdio {
            Some(s) => {
                cmd.stdin(s.stdin).stdout(s.stdout).stderr(s.stderr);
            }
            None => {
                cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
            }
        }
        let child = cmd.spawn().map_err(binary_error)?;
        let pid = child.id() as i32;
        drop(child);
        let ended = self.reaper.wait(pid);
        if ended.code() != 0 {
            return Err(LaunchError::Runtime(format!("{} failed ({}): {}", self.path.display(), ended.code(), self.last_error())));
        }
        Ok(())
    }

    /// The last error the runtime logged (runc's JSON log: `{"level":"error","msg":…}`).
    fn last_error(&self) -> String {
        let log = std::fs::read_to_string(self.state_dir.join("runtime.log")).unwrap_or_default();
        log.lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|entry| entry["level"] == "error")
            .and_then(|entry| entry["msg"].as_str().map(str::to_string))
            .unwrap_or_else(|| "no error in its log".into())
    }

    fn read_pid(&self, file: &Path) -> Result<i32, LaunchError> {
        let text = std::fs::read_to_string(file)?;
        let pid = text.trim().parse().map_err(|_| LaunchError::Runtime(format!("bad pid file {}: {text:?}", file.display())))?;
        let _ = std::fs::remove_file(file);
        Ok(pid)
    }

    fn console_arg(cmd: &mut Command, stdio: &ChildStdio) {
        if let Some(socket) = &stdio.console_socket {
            cmd.arg("--console-socket").arg(socket);
        }
    }
}

impl Launcher for Binary {
    fn create(&self, stdio: ChildStdio) -> Result<i32, LaunchError> {
        let pid_file = self.state_dir.join("init.pid");
        let mut cmd = self.command();
        cmd.arg("create").arg("--bundle").arg(&self.bundle).arg("--pid-file").arg(&pid_file);
        Self::console_arg(&mut cmd, &stdio);
        cmd.arg(&self.id);
        self.run(cmd, Some(stdio))?;
        self.read_pid(&pid_file)
    }

    fn start(&self) -> Result<(), LaunchError> {
        let mut cmd = self.command();
        cmd.arg("start").arg(&self.id);
        self.run(cmd, None)
    }

    fn exec(&self, process: &Path, stdio: ChildStdio) -> Result<i32, LaunchError> {
        let pid_file = process.with_extension("pid");
        let mut cmd = self.command();
        cmd.arg("exec").arg("--detach").arg("--pid-file").arg(&pid_file).arg("--process").arg(process);
        Self::console_arg(&mut cmd, &stdio);
        cmd.arg(&self.id);
        self.run(cmd, Some(stdio))?;
        self.read_pid(&pid_file)
    }

    fn kill(&self, signal: i32, all: bool) -> Result<(), LaunchError> {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(&self.id).arg(signal.to_string());
        self.run(cmd, None)
    }

    fn delete(&self) -> Result<(), LaunchError> {
        let mut cmd = self.command();
        cmd.arg("delete").arg("--force").arg(&self.id);
        self.run(cmd, None)
    }
}
