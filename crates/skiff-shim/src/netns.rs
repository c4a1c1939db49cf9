//! Loopback in a new network namespace: the kernel creates `lo` down and libcontainer (unlike
//! runc) leaves it so; a container expects 127.0.0.1 to work.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::sched::{setns, CloneFlags};

/// Brings `lo` up in the network namespace of `pid`. Called from the single-threaded zygote, which
/// enters the namespace and returns to its own.
pub fn loopback_up(pid: i32) -> std::io::Result<()> {
    let own = File::open("/proc/self/ns/net")?;
    let target = File::open(format!("/proc/{pid}/ns/net"))?;
    setns(&target, CloneFlags::CLONE_NEWNET)?;
    let result = set_lo_up();
    setns(&own, CloneFlags::CLONE_NEWNET)?;
    result
}

fn set_lo_up() -> std::io::Result<()> {
    let socket = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data; the name fits (3 bytes + NUL); the ioctls read and write it.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
