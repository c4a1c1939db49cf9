//! Removing what a teardown found left behind, once it is reported, and what the harness owns
//! itself (its bridge, host-local's dir for its network). Each step is best effort: what stays is
//! found by checking again afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cni::CniNetwork;
use crate::leaks::{cgroup_pids, Leak};
use crate::procfs;

/// Removes `leaks`, processes first: they keep mounts, interfaces and cgroups busy.
pub(crate) fn clean(leaks: &[Leak]) {
    let mut pids: Vec<u32> = Vec::new();
    for leak in leaks {
        match leak {
            Leak::Shim { pid, .. } | Leak::Process { pid, .. } => pids.push(*pid),
            Leak::Cgroup { path, .. } => pids.extend(cgroup_pids(path)),
            _ => {}
        }
    }
    kill_and_wait(&pids);

    for leak in leaks {
        if let Leak::NsfsMount { point, holder: Some(pid) } = leak {
            if procfs::alive(*pid) {
                run(Command::new("nsenter").arg(format!("--target={pid}")).arg("--mount").arg("umount").arg("-l").arg(point));
            }
        }
    }
    // Deepest first, so that a lazy unmount of a parent leaves no child to fail on.
    let mut points: Vec<&PathBuf> = leaks
        .iter()
        .filter_map(|l| match l {
            Leak::Mount { point, .. } | Leak::NsfsMount { point, holder: None } => Some(point),
            _ => None,
        })
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for point in points {
        run(Command::new("umount").arg("-l").arg(point));
    }

    for leak in leaks {
        match leak {
            Leak::Interface { name, .. } => run(Command::new("ip").args(["link", "del", name])),
            Leak::Cgroup { path, .. } => remove_cgroup(path),
            Leak::IpReservation { path, .. } | Leak::CniCache { path } => {
                let _ = std::fs::remove_file(path);
            }
            _ => {}
        }
    }
}

/// Removes the bridge (the bridge plugin makes it on a pod's first ADD and never deletes it, as
/// containerd's and CRI-O's hosts keep theirs: not a leak, but the harness's own) and host-local's
/// dir for the network (its lock and last-reserved files stay after the last release).
pub(crate) fn remove_owned(cni: &CniNetwork) -> Vec<String> {
    let mut errors = Vec::new();
    if Path::new("/sys/class/net").join(cni.bridge()).exists() {
        run(Command::new("ip").args(["link", "del", cni.bridge()]));
        if Path::new("/sys/class/net").join(cni.bridge()).exists() {
            errors.push(format!("bridge {} could not be deleted", cni.bridge()));
        }
    }
    let reservations = cni.reservations_dir();
    match std::fs::remove_dir_all(&reservations) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => errors.push(format!("remove {}: {e}", reservations.display())),
        _ => {}
    }
    errors
}

/// SIGKILL, then wait until the processes are gone (or zombies: they hold nothing), for at most 5 s.
pub(crate) fn kill_and_wait(pids: &[u32]) {
    for pid in pids {
        run(Command::new("kill").arg("-KILL").arg(pid.to_string()));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| procfs::alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes a cgroup and the cgroups below it, deepest first; a cgroup whose last process just
/// died can stay busy for a moment, hence the retries.
fn remove_cgroup(dir: &Path) {
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        if let Ok(children) = std::fs::read_dir(&dirs[i]) {
            dirs.extend(children.flatten().filter(|c| c.file_type().is_ok_and(|t| t.is_dir())).map(|c| c.path()));
        }
        i += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for d in dirs.iter().rev() {
        while std::fs::remove_dir(d).is_err() && d.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs a cleanup command quietly: whether it worked is seen by checking again.
fn run(cmd: &mut Command) {
    let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}
