//! Making and removing the mounts a snapshotter describes.
//!
//! A mount whose paths are relative to a directory is made by util-linux `mount` run with that
//! directory as its working directory: the kernel resolves the relative paths against the caller's
//! cwd, and a multi-threaded daemon must not change its own.

use std::path::Path;
use std::process::Command;

use nix::mount::MsFlags;

use crate::error::{Result, SnapshotError};
use crate::Mount;

fn mount_err(target: &Path, m: &Mount, reason: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Io { context: format!("mount {} at {}", m.kind, target.display()), source: std::io::Error::other(reason.to_string()) }
}

/// Mounts `mounts` in order at `target`.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        let ro = m.options.iter().any(|o| o == "ro");
        if let Some(dir) = &m.chdir {
            let out = Command::new("mount")
                .current_dir(dir)
                .args(["-t", &m.kind, &m.source, "-o", &m.options.join(",")])
                .arg(target)
                .output()
                .map_err(SnapshotError::io("run mount"))?;
            if !out.status.success() {
                return Err(mount_err(target, m, String::from_utf8_lossy(&out.stderr).trim()));
            }
            continue;
        }
        match m.kind.as_str() {
            "bind" => {
                let recursive = if m.options.iter().any(|o| o == "rbind") { MsFlags::MS_REC } else { MsFlags::empty() };
                nix::mount::mount(Some(m.source.as_str()), target, None::<&str>, MsFlags::MS_BIND | recursive, None::<&str>)
                    .map_err(|e| mount_err(target, m, e))?;
                if ro {
                    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                    nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(|e| mount_err(target, m, e))?;
                }
            }
            "overlay" => {
                let data: Vec<&str> = m.options.iter().map(String::as_str).filter(|o| *o != "ro").collect();
                let flags = if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
                nix::mount::mount(Some(m.source.as_str()), target, Some("overlay"), flags, Some(data.join(",").as_str()))
                    .map_err(|e| mount_err(target, m, e))?;
            }
            other => return Err(mount_err(target, m, format!("unknown mount type {other:?}"))),
        }
    }
    Ok(())
}

/// Unmounts `target`.
pub fn unmount(target: &Path) -> Result<()> {
    nix::mount::umount(target).map_err(|e| SnapshotError::Io { context: format!("unmount {}", target.display()), source: e.into() })
}
