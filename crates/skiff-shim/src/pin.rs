//! `skiff-shim pin`: makes a pod's namespaces and pins them (see `skiff_runtime::pod` for the
//! protocol and the pod dir). Reads a `PinRequest` on stdin, answers `Pinned` on stdout, or
//! exits non-zero with the reason on stderr having undone what it made.
//!
//! This process stays in the caller's namespaces throughout: the bind mounts it makes are in
//! the caller's (skiffd's) mount namespace, so they need no propagation to be seen there. The
//! pod dir is not made a private mount point: below a shared mount (/ on a systemd host) a pin
//! also appears in the peer and slave mount namespaces, and its unmount reaches them the same
//! way; a private dir would stop only the unmount from reaching copies of it made in the
//! meantime, which would then keep the namespaces alive.
//!
//! Order: check the request; make the dir and the empty target files; fork the child (`child`),
//! which unshares and sets up the namespaces and reports; bind-mount `/proc/<child>/ns/*`;
//! commit the pid holder (`holder`), answer, release the child. Any failure before the answer
//! went out undoes everything (`undo`); an uncommitted holder exits by itself.

mod child;
mod holder;
mod undo;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{anyhow, Context};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult};
use skiff_runtime::pod::{self, PidHolder, PinRequest, Pinned, Sysctl};

use self::undo::Undo;

/// A request is a few hundred bytes; anything near this is not one.
const MAX_REQUEST: u64 = 1 << 20;

/// Why the pin failed, and the exit code that tells the caller the kind.
enum Failure {
    Invalid(String),
    Exists(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Failed(e)
    }
}

/// Runs the pin mode and exits.
pub fn main() -> ! {
    let (code, message) = match run() {
        Ok(()) => std::process::exit(0),
        Err(Failure::Invalid(m)) => (pod::EXIT_INVALID, m),
        Err(Failure::Exists(m)) => (pod::EXIT_EXISTS, m),
        Err(Failure::Failed(e)) => (1, format!("pinning the pod's namespaces: {e:#}")),
    };
    eprintln!("{message}");
    std::process::exit(code)
}

fn run() -> Result<(), Failure> {
    let mut input = Vec::new();
    std::io::stdin().take(MAX_REQUEST).read_to_end(&mut input).context("reading the request")?;
    let req: PinRequest = serde_json::from_slice(&input).map_err(|e| Failure::Invalid(format!("bad pin request: {e}")))?;
    let sysctls = pod::validate(&req).map_err(|e| Failure::Invalid(e.to_string()))?;
    let mut undo = Undo::default();
    // On an error `undo` is dropped armed and takes back what was made.
    pin(&req, &sysctls, &mut undo)?;
    if let Some((child, release)) = undo.disarm() {
        // The namespaces are pinned: the child may exit.
        drop(release);
        let _ = waitpid(child, None);
    }
    Ok(())
}

fn pin(req: &PinRequest, sysctls: &[Sysctl], undo: &mut Undo) -> Result<(), Failure> {
    make_dir(&req.dir, undo)?;
    let mut targets = Vec::new();
    for (ns, path) in req.files() {
        targets.push((ns, make_target(&path, undo)?, path));
    }
    let (status_r, status_w) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (release_r, release_w) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (commit_r, commit_w) = match req.pid_holder {
        true => pipe2(OFlag::O_CLOEXEC).map(|(r, w)| (Some(r), Some(w))).context("pipe")?,
        false => (None, None),
    };
    let parent = nix::unistd::getpid();
    // SAFETY: the pin mode never starts a thread, so the child may do anything after fork.
    let pid = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop((status_r, release_w, commit_w, targets));
            // The caller reads this process's stdout to EOF: a copy held here would keep it
            // waiting for this child's exit.
            let _ = release_stdout();
            child::run(child::Ends { parent, status: status_w, release: release_r, commit: commit_r }, req, sysctls)
        }
        ForkResult::Parent { child } => child,
    };
    drop((status_w, release_r, commit_r));
    undo.child(pid, release_w);
    let holder = read_report(status_r)?;
    for (ns, target, path) in &targets {
        // Through the fd of the file made above: a path swapped for a symlink since cannot
        // redirect the mount.
        let source = format!("/proc/{pid}/ns/{ns}");
        let target_path = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(Some(source.as_str()), target_path.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>).with_context(|| format!("bind-mounting {source} on {}", path.display()))?;
        undo.mounted(path);
    }
    let pid_holder = match holder {
        Some(holder_pid) => {
            undo.holder(holder_pid);
            let start_time = pod::start_time(holder_pid).context("reading the pid holder's start time")?;
            Some(PidHolder { pid: holder_pid, ns: format!("/proc/{holder_pid}/ns/pid").into(), start_time })
        }
        None => None,
    };
    let path_of = |name: &str| targets.iter().find(|(ns, ..)| *ns == name).map(|(_, _, path)| path.clone());
    let pinned = Pinned { net: path_of(pod::NET_FILE), ipc: path_of(pod::IPC_FILE), uts: path_of(pod::UTS_FILE), pid_holder };
    if let Some(commit) = commit_w {
        File::from(commit).write_all(b"k").context("committing the pid holder (it exited)")?;
    }
    let mut answer = serde_json::to_vec(&pinned).context("encoding the answer")?;
    answer.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&answer).and_then(|()| stdout.flush()).context("writing the answer")?;
    drop(stdout);
    // The answer is whole and nothing can fail after it: the caller takes it at EOF, without
    // waiting for the child's and this process's exits (about 2 ms), and reaps this one later.
    let _ = release_stdout();
    Ok(())
}

/// Points fd 1 at /dev/null, closing this process's end of the caller's stdout pipe.
fn release_stdout() -> nix::Result<()> {
    let null = nix::fcntl::open("/dev/null", OFlag::O_WRONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    nix::unistd::dup2(null.as_raw_fd(), 1).map(drop)
}

fn make_dir(dir: &Path, undo: &mut Undo) -> Result<(), Failure> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => return Err(Failure::Invalid(format!("pod dir {} is not a directory", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!(e).context(format!("pod dir {}", dir.display())).into()),
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("making the pod dir {}", dir.display()))?;
    undo.made_dir(dir);
    Ok(())
}

/// The empty file a namespace is mounted on; an existing one means the dir is pinned already.
fn make_target(path: &Path, undo: &mut Undo) -> Result<File, Failure> {
    match OpenOptions::new().write(true).create_new(true).mode(0o400).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path) {
        Ok(file) => {
            undo.made_file(path);
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Failure::Exists(format!("{} exists: the pod dir holds a pin already; unpin it first", path.display()))),
        Err(e) => Err(anyhow!(e).context(format!("making {}", path.display())).into()),
    }
}

/// The child's one line: `ok <holder pid or 0>`, `invalid <message>` or `error <message>`.
fn read_report(status: OwnedFd) -> Result<Option<i32>, Failure> {
    let mut line = String::new();
    BufReader::new(File::from(status)).read_line(&mut line).context("reading the child's report")?;
    let line = line.trim_end();
    if let Some(message) = line.strip_prefix("invalid ") {
        return Err(Failure::Invalid(message.to_string()));
    }
    if let Some(message) = line.strip_prefix("error ") {
        return Err(anyhow!("{message}").into());
    }
    let holder: i32 = line.strip_prefix("ok ").and_then(|pid| pid.parse().ok()).ok_or_else(|| anyhow!("the namespace child exited before reporting ({line:?})"))?;
    Ok((holder > 0).then_some(holder))
}
