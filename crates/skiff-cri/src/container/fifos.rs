//! FIFOs between skiffd and a container's shim for one exec or attach: skiffd makes them in a
//! directory of its own (root's, 0700) under `<root>/exec/`, passes their paths to the shim, and
//! removes the directory as soon as the shim has opened them. Dropping the set removes it too.
//!
//! skiffd's ends are opened before the shim's, without blocking: an output FIFO for reading, the
//! stdin FIFO for reading and writing, so that it has a writer from the start (a shim reading a
//! FIFO nobody holds open for writing would see the end of its input at once).

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use skiff_runtime::shim::Stdio;

use crate::error::{CriError, Result};

/// Which streams a set carries.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// skiffd's ends of one set.
pub struct FifoSet {
    dir: PathBuf,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl FifoSet {
    pub fn make(root: &Path, wanted: Wanted) -> Result<FifoSet> {
        let parent = root.join("exec");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&parent).map_err(CriError::host("making the exec fifo directory"))?;
        let dir = parent.join(skiff_engine::containers::random_hex(16)?);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(CriError::host("making the exec fifo directory"))?;
        let mut set = FifoSet { dir, stdin: None, stdout: None, stderr: None };
        // On an error the set is dropped, and its directory with it.
        set.stdin = set.open(wanted.stdin, "stdin", true)?;
        set.stdout = set.open(wanted.stdout, "stdout", false)?;
        set.stderr = set.open(wanted.stderr, "stderr", false)?;
        Ok(set)
    }

    fn open(&self, wanted: bool, name: &str, write: bool) -> Result<Option<File>> {
        if !wanted {
            return Ok(None);
        }
        let path = self.dir.join(name);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(|e| CriError::host(format!("making {}", path.display()))(e.into()))?;
        let file = std::fs::OpenOptions::new().read(true).write(write).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(&path).map_err(CriError::host("opening an exec fifo"))?;
        Ok(Some(file))
    }

    /// The paths the shim opens.
    pub fn stdio(&self, tty: bool, size: Option<(u16, u16)>) -> Stdio {
        let path = |f: &Option<File>, name: &str| f.as_ref().map(|_| self.dir.join(name));
        Stdio { stdin: path(&self.stdin, "stdin"), stdout: path(&self.stdout, "stdout"), stderr: path(&self.stderr, "stderr"), tty, size }
    }

    /// Removes the directory: the shim has its ends open, the paths are no longer needed.
    pub fn unlink(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for FifoSet {
    fn drop(&mut self) {
        self.unlink();
    }
}

/// At start: FIFO directories of execs a crash cut short.
pub(crate) fn clear_leftovers(root: &Path) {
    let _ = std::fs::remove_dir_all(root.join("exec"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_holds_what_was_asked_and_goes_when_dropped() {
        let root = tempfile::tempdir().expect("fifo test");
        let set = FifoSet::make(root.path(), Wanted { stdin: true, stdout: true, stderr: false }).expect("fifo test");
        let stdio = set.stdio(true, Some((24, 80)));
        let (stdin, stdout) = (stdio.stdin.clone().expect("fifo test"), stdio.stdout.clone().expect("fifo test"));
        assert!(stdio.stderr.is_none() && stdio.tty && stdio.size == Some((24, 80)));
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        assert!(std::fs::metadata(&stdin).expect("fifo test").file_type().is_fifo());
        assert_eq!(std::fs::metadata(&stdout).expect("fifo test").permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(stdout.parent().expect("fifo test")).expect("fifo test").permissions().mode() & 0o777, 0o700);
        // The stdin FIFO has a writer already: a reader opening it now does not see an end.
        let mut reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&stdin).expect("fifo test");
        let mut buf = [0u8; 1];
        let err = std::io::Read::read(&mut reader, &mut buf).expect_err("nothing to read, and no end");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        drop(set);
        assert!(!stdout.exists() && !stdin.parent().expect("fifo test").exists());
        clear_leftovers(root.path());
        assert!(!root.path().join("exec").exists());
    }
}
