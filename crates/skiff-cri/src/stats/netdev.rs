//! A pod's network counters: `/proc/<pid>/net/dev` of a process in the pod's network namespace
//! when one is known (a container's init, the PID holder), else read from inside the pinned
//! namespace by a thread of its own that enters it and ends: setns changes the calling thread
//! only, and a thread of the async runtime or the blocking pool must never change namespace.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::StatsError;

/// One interface's cumulative counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

/// `/proc/net/dev`: two header lines, then `name: rx_bytes packets errs drop fifo frame
/// compressed multicast tx_bytes packets errs ...` per interface.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Interface>, StatsError> {
    let bad = |reason: String| StatsError::Parse { path: path.into(), reason };
    let mut out = Vec::new();
    for line in text.lines().skip(2).filter(|l| !l.trim().is_empty()) {
        let (name, counters) = line.split_once(':').ok_or_else(|| bad(format!("line {line:?} names no interface")))?;
        let counters: Vec<u64> = counters.split_whitespace().map(str::parse).collect::<Result<_, _>>().map_err(|_| bad(format!("line {line:?} holds a counter that is not a number")))?;
        if counters.len() < 16 {
            return Err(bad(format!("line {line:?} has {} counters, not 16", counters.len())));
        }
        out.push(Interface { name: name.trim().to_string(), rx_bytes: counters[0], rx_errors: counters[2], tx_bytes: counters[8], tx_errors: counters[10] });
    }
    Ok(out)
}

/// Whether `pid` is in the network namespace `netns` (a pinned file or a /proc link).
fn in_netns(pid: i32, netns: &std::fs::Metadata) -> bool {
    std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.dev() == netns.dev() && m.ino() == netns.ino())
}

/// The interfaces of the pod's network namespace `netns`, read through the first of `pids` that
/// is in it, else from inside it; None when the namespace is gone (the pod being removed).
pub fn pod_interfaces(netns: &Path, pids: &[i32]) -> Result<Option<Vec<Interface>>, StatsError> {
    let ns = match std::fs::metadata(netns) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StatsError::Read { path: netns.into(), source }),
    };
    for &pid in pids.iter().filter(|p| **p > 0) {
        if !in_netns(pid, &ns) {
            continue;
        }
        let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        // Still the same process afterwards: its pid was not reused while it was read.
        if in_netns(pid, &ns) {
            return parse(&path, &text).map(Some);
        }
    }
    let text = read_inside(netns)?;
    parse(Path::new("/proc/thread-self/net/dev"), &text).map(Some)
}

/// `/proc/thread-self/net/dev` as a thread inside `netns` sees it; the thread ends right after,
/// taking its namespace with it.
pub fn read_inside(netns: &Path) -> Result<String, StatsError> {
    let file = std::fs::File::open(netns).map_err(|source| StatsError::Read { path: netns.into(), source })?;
    let fail = |reason: String| StatsError::Netns { path: netns.into(), reason };
    let thread = std::thread::Builder::new()
        .name("skiff-netns-stats".into())
        .spawn(move || -> Result<String, String> {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering it: {e}"))?;
            std::fs::read_to_string("/proc/thread-self/net/dev").map_err(|e| format!("reading /proc/thread-self/net/dev in it: {e}"))
        })
        .map_err(|e| fail(format!("starting a thread to enter it: {e}")))?;
    thread.join().map_err(|_| fail("the thread reading it panicked".into()))?.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     560       8    0    0    0     0          0         0      560       8    0    0    0     0       0          0
  eth0: 1234567    900    3    1    0     0          0         2    76543     321    4    0    0     0       0          0
eth1:12 1 0 0 0 0 0 0 34 1 0 0 0 0 0 0
";

    #[test]
    fn counters_of_each_interface() {
        let got = parse(Path::new("dev"), DEV).expect("parse");
        assert_eq!(got.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["lo", "eth0", "eth1"]);
        assert_eq!(got[1], Interface { name: "eth0".into(), rx_bytes: 1234567, rx_errors: 3, tx_bytes: 76543, tx_errors: 4 });
        assert_eq!((got[2].rx_bytes, got[2].tx_bytes), (12, 34), "no space after the colon");
    }

    #[test]
    fn broken_lines_are_errors_naming_the_file() {
        for (text, needle) in [
            ("h\nh\n  eth0 1 2 3\n", "names no interface"),
            ("h\nh\n  eth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "not a number"),
            ("h\nh\n  eth0: 1 2 3\n", "has 3 counters"),
        ] {
            let err = parse(Path::new("/proc/7/net/dev"), text).expect_err(text).to_string();
            assert!(err.contains(needle) && err.contains("/proc/7/net/dev"), "{err}");
        }
        assert_eq!(parse(Path::new("dev"), "h\nh\n").expect("empty"), vec![]);
    }

    #[test]
    fn a_thread_inside_a_namespace_sees_its_interfaces() {
        // skiffd's own namespace, entered from a thread: the same interfaces as /proc/self/net/dev.
        let inside = read_inside(Path::new("/proc/self/ns/net")).expect("read inside");
        let names = |text: &str| parse(Path::new("dev"), text).expect("parse").into_iter().map(|i| i.name).collect::<Vec<_>>();
        let own = std::fs::read_to_string("/proc/self/net/dev").expect("own");
        assert_eq!(names(&inside), names(&own));
        // And the calling thread is where it was.
        assert_eq!(std::fs::read_link("/proc/thread-self/ns/net").expect("ns"), std::fs::read_link("/proc/self/ns/net").expect("ns"));
    }

    #[test]
    fn a_process_in_the_namespace_is_read_and_a_gone_namespace_is_none() {
        let own = std::process::id() as i32;
        let got = pod_interfaces(Path::new("/proc/self/ns/net"), &[0, own]).expect("read").expect("there");
        assert!(got.iter().any(|i| i.name == "lo"), "{got:?}");
        assert_eq!(pod_interfaces(Path::new("/nonexistent/net"), &[own]).expect("gone"), None);
    }
}
