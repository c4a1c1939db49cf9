//! What the leak checks read from /proc: mount tables and processes.

use std::path::{Path, PathBuf};

/// One line of a mountinfo file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    pub point: PathBuf,
    pub fstype: String,
}

/// Parses mountinfo (proc(5)): the mount point is field 5, the filesystem type the first field
/// after the ` - ` separator that ends the optional fields.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some(Mount { point: PathBuf::from(unescape(point)), fstype: unescape(fstype) })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in mountinfo paths as `\NNN` octal.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount table of the process `pid` (`None`: ours) sees; `None` when it cannot be read.
pub(crate) fn mounts(pid: Option<u32>) -> std::io::Result<Vec<Mount>> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/mountinfo"),
        None => "/proc/self/mountinfo".into(),
    };
    Ok(parse_mountinfo(&std::fs::read_to_string(path)?))
}

/// Every process id on the host (in our pid namespace), ourselves excluded.
pub(crate) fn pids() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).filter(|&p| p != me).collect())
        .unwrap_or_default()
}

/// The process's arguments; `None` for a process gone or a kernel thread.
pub(crate) fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// Where `/proc/<pid>/<name>` (exe, cwd, root, ns/mnt) points.
pub(crate) fn link(pid: u32, name: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/{name}")).ok()
}

/// Whether the process exists and is not a zombie (a zombie holds nothing but its pid).
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // pid (comm) S ...: the name may hold spaces and parentheses, the state follows the last ')'.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|state| state != "Z" && state != "X")
}

/// Whether `path` is `dir` or below it.
pub(crate) fn under(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mount_points_and_types_with_escapes_and_optional_fields() {
        let text = "36 35 98:0 /mnt1 /tmp/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/root rw\n\
                    40 36 0:4 net:[4026531840] /tmp/x/ns rw - nsfs nsfs rw\n\
                    41 36 0:4 / /t\\134z rw - tmpfs tmpfs rw\n";
        let got = parse_mountinfo(text);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].point.as_path(), got[0].fstype.as_str()), (Path::new("/tmp/a b"), "ext3"));
        assert_eq!((got[1].point.as_path(), got[1].fstype.as_str()), (Path::new("/tmp/x/ns"), "nsfs"));
        assert_eq!(got[2].point, Path::new("/t\\z"));
    }

    #[test]
    fn our_own_process_is_alive_and_found() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
        assert!(under(Path::new("/tmp/h/root/x"), Path::new("/tmp/h")) && !under(Path::new("/tmp/hx"), Path::new("/tmp/h")));
    }
}
