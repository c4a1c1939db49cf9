//! Running one plugin: found in the plugin dirs by its type, exec'd with the `CNI_*` variables set
//! on the child alone (never on this process: the daemon runs many pods' operations at once), its
//! config on stdin, its stdout read whole. A plugin that hangs is killed with its process group
//! when the timeout passes (the bridge plugin's IPAM child runs in the same group). An exec that
//! fails with ETXTBSY — the binary still open for writing while being installed, or a descriptor
//! to it inherited by a child another thread forked — is retried a few times, as libcni does.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::error::{CniError, Result};
use crate::result::{excerpt, PluginError};

/// A CNI operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol's variables for one invocation.
#[derive(Clone, Debug)]
pub struct PluginEnv<'a> {
    pub command: Command,
    pub container_id: &'a str,
    /// Empty on a DEL whose namespace is gone (spec 1.0 lets CNI_NETNS be empty on DEL).
    pub netns: &'a str,
    pub ifname: &'a str,
    /// `K=V;K=V`.
    pub args: &'a str,
    /// The plugin dirs joined with `:`, where plugins look for their delegates (IPAM).
    pub path: &'a str,
}

/// Names the plugin in errors.
#[derive(Clone, Copy, Debug)]
pub struct PluginRef<'a> {
    pub plugin: &'a str,
    pub network: &'a str,
}

/// How many times an exec failing with ETXTBSY is retried, and the first wait (doubled each time:
/// 20 ms to 640 ms, 1.26 s in all).
const ETXTBSY_RETRIES: u32 = 6;
const ETXTBSY_FIRST_WAIT: Duration = Duration::from_millis(20);

/// The plugin's executable: the first regular, executable file named `plugin` in `dirs`.
pub fn find_plugin(dirs: &[PathBuf], plugin: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|d| d.join(plugin)).find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Runs a plugin and gives its stdout, or the error it reported.
pub fn run(who: PluginRef<'_>, exe: &Path, stdin: &[u8], env: &PluginEnv<'_>, timeout: Duration) -> Result<Vec<u8>> {
    let out = exec(exe, stdin, env, timeout).map_err(|e| match e {
        ExecFailure::Spawn(source) => CniError::Exec { path: exe.to_path_buf(), source },
        ExecFailure::Io(source) => CniError::Exec { path: exe.to_path_buf(), source },
        ExecFailure::Timeout => CniError::Timeout { plugin: who.plugin.into(), network: who.network.into(), command: env.command, timeout },
    })?;
    if !out.stderr.is_empty() {
        tracing::debug!(plugin = who.plugin, command = %env.command, stderr = %excerpt(&out.stderr), "cni plugin stderr");
    }
    if out.status.success() {
        return Ok(out.stdout);
    }
    if let Some(e) = PluginError::parse(&out.stdout) {
        return Err(CniError::Plugin { plugin: who.plugin.into(), network: who.network.into(), command: env.command, code: e.code, msg: e.msg, details: e.details });
    }
    let output = if out.stdout.iter().any(|b| !b.is_ascii_whitespace()) { &out.stdout } else { &out.stderr };
    let output = if output.is_empty() { "no output".to_string() } else { excerpt(output) };
    Err(CniError::PluginFailed { plugin: who.plugin.into(), network: who.network.into(), command: env.command, status: describe(out.status), output })
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// What a finished plugin left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum ExecFailure {
    Spawn(std::io::Error),
    Io(std::io::Error),
    Timeout,
}

enum Event {
    Stdout(std::io::Result<Vec<u8>>),
    Stderr(std::io::Result<Vec<u8>>),
    Exited,
}

/// Execs `exe` and waits for it to exit and close its output, at most `timeout`.
pub fn exec(exe: &Path, stdin: &[u8], env: &PluginEnv<'_>, timeout: Duration) -> std::result::Result<Output, ExecFailure> {
    let deadline = Instant::now() + timeout;
    let mut cmd = std::process::Command::new(exe);
    cmd.env("CNI_COMMAND", env.command.as_str())
        .env("CNI_CONTAINERID", env.container_id)
        .env("CNI_NETNS", env.netns)
        .env("CNI_IFNAME", env.ifname)
        .env("CNI_ARGS", env.args)
        .env("CNI_PATH", env.path)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that a timeout kills the plugin and the delegates it started.
        .process_group(0);
    let mut child = spawn_retrying(&mut cmd).map_err(ExecFailure::Spawn)?;
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|_| ExecFailure::Io(std::io::Error::other("child pid out of range")))?);
    let (tx, rx) = mpsc::channel();
    let (Some(mut input), Some(mut stdout), Some(mut stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
        kill_and_reap(&mut child, pid);
        return Err(ExecFailure::Io(std::io::Error::other("child without piped stdio")));
    };
    let stdin = stdin.to_vec();
    let spawned = (|| {
        let t = tx.clone();
        std::thread::Builder::new().name("cni-stdin".into()).spawn(move || {
            // A plugin may exit without reading its config; the broken pipe is then no error of ours.
            let _ = input.write_all(&stdin);
            drop(input);
            // Waits for the exit without reaping: the pid stays the plugin's until this thread's
            // caller reaps it, so a kill on timeout cannot hit a process that took the pid over.
            let _ = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
            let _ = t.send(Event::Exited);
        })?;
        let t = tx.clone();
        std::thread::Builder::new().name("cni-stdout".into()).spawn(move || {
            let mut buf = Vec::new();
            let _ = t.send(Event::Stdout(stdout.read_to_end(&mut buf).map(|_| buf)));
        })?;
        std::thread::Builder::new().name("cni-stderr".into()).spawn(move || {
            let mut buf = Vec::new();
            let _ = tx.send(Event::Stderr(stderr.read_to_end(&mut buf).map(|_| buf)));
        })?;
        Ok(())
    })();
    if let Err(e) = spawned {
        kill_and_reap(&mut child, pid);
        return Err(ExecFailure::Io(e));
    }
    let (mut out, mut err, mut exited) = (None, None, false);
    while out.is_none() || err.is_none() || !exited {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Stdout(r)) => out = Some(r),
            Ok(Event::Stderr(r)) => err = Some(r),
            Ok(Event::Exited) => exited = true,
            Err(_) => {
                kill_and_reap(&mut child, pid);
                return Err(ExecFailure::Timeout);
            }
        }
    }
    let status = child.wait().map_err(ExecFailure::Io)?;
    let stdout = out.unwrap_or_else(|| Ok(Vec::new())).map_err(ExecFailure::Io)?;
    let stderr = err.unwrap_or_else(|| Ok(Vec::new())).map_err(ExecFailure::Io)?;
    Ok(Output { status, stdout, stderr })
}

fn spawn_retrying(cmd: &mut std::process::Command) -> std::io::Result<Child> {
    let mut wait = ETXTBSY_FIRST_WAIT;
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) && attempt < ETXTBSY_RETRIES => {
                tracing::debug!(attempt, "cni plugin busy (ETXTBSY), retrying");
                std::thread::sleep(wait);
                wait *= 2;
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// Kills the plugin's group (the plugin is not reaped yet, so its pid is still its group's id).
fn kill_and_reap(child: &mut Child, pid: Pid) {
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
#[path = "invoke_tests.rs"]
mod tests;
