//! The namespace child: unshares the pod's namespaces and sets them up from inside, before the
//! parent pins them and anything joins them, then waits to be released.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::unistd::{fork, ForkResult, Pid};
use skiff_runtime::pod::{PinRequest, Sysctl};

use super::holder;
use crate::netns;

/// The child's ends of the pipes to the parent.
pub struct Ends {
    pub parent: Pid,
    /// Written once: the report.
    pub status: OwnedFd,
    /// EOF when the parent has pinned the namespaces (or given up).
    pub release: OwnedFd,
    /// The holder's: `k` when it may stay.
    pub commit: Option<OwnedFd>,
}

/// The kernel refused a value of the request (a sysctl it does not have, or a value out of its
/// range): the caller's mistake, reported as such.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

/// Runs in the forked child; never returns.
pub fn run(ends: Ends, req: &PinRequest, sysctls: &[Sysctl]) -> ! {
    let Ends { parent, status, release, commit } = ends;
    let result = set_up(parent, req, sysctls, commit);
    let line = match &result {
        Ok(holder) => format!("ok {}\n", holder.map_or(0, Pid::as_raw)),
        Err(e) => {
            let word = if e.downcast_ref::<Refused>().is_some() { "invalid" } else { "error" };
            format!("{word} {}\n", format!("{e:#}").replace('\n', " "))
        }
    };
    let _ = File::from(status).write_all(line.as_bytes());
    if result.is_err() {
        exit_now(1);
    }
    // Whatever arrives, or EOF, or an error: the parent is done with the namespaces.
    let mut byte = [0u8; 1];
    let _ = File::from(release).read(&mut byte);
    exit_now(0)
}

fn set_up(parent: Pid, req: &PinRequest, sysctls: &[Sysctl], commit: Option<OwnedFd>) -> anyhow::Result<Option<Pid>> {
    // A parent killed now would leave namespaces nobody pins; die with it.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")?;
    if nix::unistd::getppid() != parent {
        bail!("the pin helper exited");
    }
    let ns = req.namespaces;
    let mut flags = CloneFlags::empty();
    flags.set(CloneFlags::CLONE_NEWNET, ns.net);
    flags.set(CloneFlags::CLONE_NEWIPC, ns.ipc);
    flags.set(CloneFlags::CLONE_NEWUTS, ns.uts);
    // Takes effect for the next child, the holder.
    flags.set(CloneFlags::CLONE_NEWPID, req.pid_holder);
    unshare(flags).with_context(|| format!("unshare({flags:?})"))?;
    if ns.net {
        // Entering its own namespace is a no-op: this reuses the ioctl the zygote uses.
        netns::loopback_up(std::process::id() as i32).context("bringing lo up")?;
    }
    if let Some(hostname) = &req.hostname {
        set_hostname(hostname)?;
    }
    for sysctl in sysctls {
        write_sysctl(sysctl)?;
    }
    let Some(commit) = commit else { return Ok(None) };
    // SAFETY: single-threaded (the parent was, and fork leaves one thread).
    match unsafe { fork() }.context("forking the pid holder")? {
        ForkResult::Child => holder::run(commit),
        ForkResult::Parent { child } => Ok(Some(child)),
    }
}

fn set_hostname(hostname: &str) -> anyhow::Result<()> {
    let name = CString::new(hostname).map_err(|_| anyhow!("hostname {hostname:?} holds a NUL byte"))?;
    // SAFETY: a valid pointer and its length (without the NUL).
    if unsafe { libc::sethostname(name.as_ptr(), hostname.len()) } < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setting the hostname {hostname:?}"));
    }
    Ok(())
}

/// Opened from inside the new namespaces, the file is theirs (the kernel picks the namespace of
/// the opener).
fn write_sysctl(sysctl: &Sysctl) -> anyhow::Result<()> {
    let path = Path::new("/proc/sys").join(&sysctl.path);
    let mut file = match OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Refused(format!("sysctl {:?} does not exist on this kernel", sysctl.name)).into()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    match file.write_all(sysctl.value.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(Refused(format!("sysctl {:?}: the kernel refuses the value {:?}", sysctl.name, sysctl.value)).into()),
        Err(e) => Err(e).with_context(|| format!("setting sysctl {:?} to {:?}", sysctl.name, sysctl.value)),
    }
}

/// Exits a forked process at once: no atexit handler or buffer flush of the parent's runs twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) takes any status and does not return.
    unsafe { libc::_exit(code) }
}
