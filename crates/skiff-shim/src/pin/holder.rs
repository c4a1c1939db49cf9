//! The pid holder: PID 1 of the pod's PID namespace, forked by the namespace child after it
//! unshared (so it is in the pod's net, ipc and uts namespaces too and `/proc/1` in the pod is
//! a quiet process, not the host's init). The namespace lives as long as it does.
//!
//! - It waits for the helper's commit (`k` once the answer naming it is out); EOF instead means
//!   the pin failed or the helper died, and it exits rather than become a process nobody knows.
//! - Its parent, the namespace child, exits right after: it is reparented to init (or the
//!   nearest subreaper) and in a session of its own, so nobody forgets to reap it and no
//!   terminal or process group signal reaches it.
//! - Every signal that can be ignored is: from inside the pod the kernel drops signals PID 1
//!   has no handler for anyway; from the host only SIGKILL (unpin) and SIGSTOP get through.
//! - SIGCHLD ignored makes the kernel reap its children as they exit, including the pod's
//!   orphans reparented to it, with no wake-up: the loop is `pause()` alone.
//! - It keeps no fd (an inherited stdout would keep the caller waiting for EOF), holds no
//!   directory, and drops to uid/gid 65535 (the pause image's user) with no capabilities,
//!   non-dumpable: a container sharing its PID namespace can neither signal it nor, without
//!   CAP_SYS_PTRACE, ptrace it or open its `/proc/1/exe`, `root` or `environ`.

use std::os::fd::{AsRawFd, OwnedFd};

use super::child::exit_now;

use nix::unistd::{Gid, Uid};

/// The pause image's user and group (`USER 65535:65535`).
const HOLDER_ID: u32 = 65535;

/// Runs in the forked holder; never returns.
///
/// It holds from the helper's image: re-executing the binary for a fresh one was measured
/// to cost more (RSS 4.8 MB against 2.1 MB, PSS 3.2 against 1.8: a new start faults in more
/// of the binary than the few pages a fork still maps).
pub fn run(commit: OwnedFd) -> ! {
    ignore_signals();
    let _ = nix::unistd::setsid();
    let _ = nix::unistd::chdir("/");
    if detach_fds(commit).is_err() {
        exit_now(1);
    }
    // fd 3 is now the commit pipe.
    let mut byte = [0u8; 1];
    let committed = matches!(nix::unistd::read(3, &mut byte), Ok(1)) && byte[0] == b'k';
    let _ = nix::unistd::close(3);
    if !committed || drop_privileges().is_err() {
        exit_now(0);
    }
    let _ = nix::sys::prctl::set_name(c"skiff-pod-init");
    loop {
        nix::unistd::pause();
    }
}

fn ignore_signals() {
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_IGN installs no handler. glibc refuses its two internal real-time
        // signals (EINVAL); those stay as they are.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

/// The commit pipe to fd 3, stdio to /dev/null, every other fd closed.
fn detach_fds(commit: OwnedFd) -> nix::Result<()> {
    // First, so that /dev/null cannot land on fd 3 and a commit pipe on 0-2 is still there.
    if commit.as_raw_fd() != 3 {
        nix::unistd::dup2(commit.as_raw_fd(), 3)?;
    }
    // Its old number is overwritten or closed below.
    std::mem::forget(commit);
    let null = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty())?;
    for fd in 0..3 {
        if null != fd {
            nix::unistd::dup2(null, fd)?;
        }
    }
    // SAFETY: close_range(2) on fds nothing here refers to any more.
    if unsafe { libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) } < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(())
}

fn drop_privileges() -> nix::Result<()> {
    nix::unistd::setgroups(&[])?;
    nix::unistd::setresgid(Gid::from_raw(HOLDER_ID), Gid::from_raw(HOLDER_ID), Gid::from_raw(HOLDER_ID))?;
    // All uids non-zero without keepcaps: every capability set is emptied.
    nix::unistd::setresuid(Uid::from_raw(HOLDER_ID), Uid::from_raw(HOLDER_ID), Uid::from_raw(HOLDER_ID))?;
    nix::sys::prctl::set_no_new_privs()?;
    nix::sys::prctl::set_dumpable(false)
}
