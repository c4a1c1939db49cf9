//! Whether a path is a live network namespace. A pod's namespace is a bind mount of nsfs on a
//! file; once the namespace is released the file may stay, empty, on the filesystem below. The
//! bridge plugin refuses such a file on DEL ("not a network namespace") yet takes an empty
//! `CNI_NETNS` and then releases the IP alone, so a DEL passes the path only while it is live.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::statfs::{statfs, NSFS_MAGIC};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetnsState {
    /// nsfs is mounted there.
    Live,
    Missing,
    /// Something else: the file a namespace was mounted on, or any other file.
    NotNetns,
    Unreadable(Errno),
}

pub fn probe(path: &Path) -> NetnsState {
    match statfs(path) {
        Ok(fs) if fs.filesystem_type() == NSFS_MAGIC => NetnsState::Live,
        Ok(_) => NetnsState::NotNetns,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => NetnsState::Missing,
        Err(e) => NetnsState::Unreadable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_namespace_from_a_plain_file() {
        assert_eq!(probe(Path::new("/proc/self/ns/net")), NetnsState::Live);
        let file = tempfile::NamedTempFile::new().expect("temp file");
        assert_eq!(probe(file.path()), NetnsState::NotNetns);
        assert_eq!(probe(&file.path().join("below-a-file")), NetnsState::Missing);
        assert_eq!(probe(Path::new("/nonexistent/skiff/ns/net")), NetnsState::Missing);
    }
}
