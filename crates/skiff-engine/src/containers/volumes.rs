//! The image config's `Volumes`: paths the image says hold data rather than code. With
//! `image_volumes = "bind"` each becomes an anonymous volume, a directory under the container's
//! state dir seeded with what the image has at that path and bind-mounted over it, so writes go
//! around the container's layer (and work on a read-only rootfs), and it goes with the container.
//! A request mount at the same place wins, as in docker.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_runtime::spec::MountRequest;

use super::rootfs::resolve_in_root;
use crate::config::ImageVolumes;
use crate::error::{EngineError, Result};

/// Where a container's anonymous volumes live, inside its state dir.
pub const VOLUMES_DIR: &str = "volumes";

/// `path` cleaned lexically (`//`, `.`, `..` resolved, `..` stopping at `/`), as components.
fn clean(path: &str) -> Result<Vec<&str>> {
    if !path.starts_with('/') {
        return Err(EngineError::UnusableImage(format!("the image's volume {path:?} is not an absolute path")));
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(EngineError::UnusableImage(format!("the image's volume {path:?} would cover the whole rootfs")));
    }
    Ok(parts)
}

fn joined(parts: &[&str]) -> String {
    parts.iter().fold(String::new(), |acc, p| acc + "/" + p)
}

/// Makes sure `/parts…` is a directory in the rootfs, creating what is missing (0755, root),
/// symlinks followed within the rootfs; returns its host path.
fn ensure_dir_in_root(rootfs: &Path, parts: &[&str]) -> Result<PathBuf> {
    let mut host = rootfs.to_path_buf();
    for i in 0..parts.len() {
        let prefix = joined(&parts[..=i]);
        host = match resolve_in_root(rootfs, &prefix) {
            Some(p) => p,
            None => {
                let p = host.join(parts[i]);
                std::fs::DirBuilder::new().mode(0o755).create(&p).map_err(|e| {
                    EngineError::UnusableImage(format!("cannot make the image's volume directory {prefix}: {e}"))
                })?;
                p
            }
        };
        if !std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
            return Err(EngineError::UnusableImage(format!(
                "the image declares a volume at {}, but {prefix} in the image is not a directory",
                joined(parts)
            )));
        }
    }
    Ok(host)
}

/// Makes each image volume `mode` asks for and returns the bind mounts to add to the request.
/// `state_dir` is the container's; its `volumes/` is created on first use.
pub fn prepare(
    mode: ImageVolumes,
    volumes: &[String],
    requested: &[MountRequest],
    rootfs: &Path,
    state_dir: &Path,
) -> Result<Vec<MountRequest>> {
    if mode == ImageVolumes::Ignore {
        return Ok(Vec::new());
    }
    let taken: Vec<String> = requested.iter().filter_map(|m| clean(&m.destination).ok()).map(|p| joined(&p)).collect();
    let mut mounts = Vec::new();
    for volume in volumes {
        let parts = clean(volume)?;
        let destination = joined(&parts);
        if taken.contains(&destination) || mounts.iter().any(|m: &MountRequest| m.destination == destination) {
            continue;
        }
        let in_image = ensure_dir_in_root(rootfs, &parts)?;
        if mode == ImageVolumes::Mkdir {
            continue;
        }
        let dir = state_dir.join(VOLUMES_DIR);
        std::fs::create_dir_all(&dir).map_err(EngineError::io(format!("creating {}", dir.display())))?;
        let source = dir.join(mounts.len().to_string());
        std::fs::create_dir(&source).map_err(EngineError::io(format!("creating {}", source.display())))?;
        seed(&in_image, &source)?;
        mounts.push(MountRequest { source: source.display().to_string(), destination, readonly: false, ..Default::default() });
    }
    Ok(mounts)
}

/// Copies what the image holds at the volume's path (owner, mode, xattrs, links kept) into the
/// new volume, the directory's own owner and mode included, as docker seeds a fresh volume.
fn seed(from: &Path, to: &Path) -> Result<()> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from.join("."))
        .arg(to)
        .output()
        .map_err(EngineError::io("running cp to seed a volume"))?;
    if !out.status.success() {
        return Err(EngineError::Command {
            what: format!("seeding the volume {} from the image", to.display()),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Orders mounts so that a mount inside another comes after it (by path depth, stable), as
/// docker does: an image volume at `/data` must not hide a `-v …:/data/sub` given with it.
pub fn sort_by_depth(mounts: &mut [MountRequest]) {
    mounts.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty() && *c != ".").count());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(destination: &str) -> MountRequest {
        MountRequest { source: "/src".into(), destination: destination.into(), readonly: false, ..Default::default() }
    }

    #[test]
    fn paths_are_cleaned_and_the_root_refused() {
        assert_eq!(joined(&clean("/var//lib/./x/../data/").expect("clean")), "/var/lib/data");
        assert_eq!(joined(&clean("/../../etc").expect("clean")), "/etc");
        assert!(matches!(clean("/"), Err(EngineError::UnusableImage(m)) if m.contains("whole rootfs")));
        assert!(matches!(clean("/a/.."), Err(EngineError::UnusableImage(_))));
        assert!(matches!(clean("data"), Err(EngineError::UnusableImage(m)) if m.contains("not an absolute path")));
    }

    #[test]
    fn deeper_mounts_come_after_their_parents() {
        let mut m = vec![mount("/data/sub"), mount("/a"), mount("/data"), mount("/b")];
        sort_by_depth(&mut m);
        let order: Vec<&str> = m.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(order, ["/a", "/data", "/b", "/data/sub"]);
    }

    #[test]
    fn volumes_are_seeded_made_or_skipped() {
        let tmp = tempfile::tempdir().expect("test setup");
        let rootfs = tmp.path().join("rootfs");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(rootfs.join("srv/data")).expect("test setup");
        std::fs::create_dir_all(&state).expect("test setup");
        std::fs::write(rootfs.join("srv/data/seed"), "from the image").expect("test setup");
        // A symlink in the image leading out of the rootfs stays inside it.
        std::os::unix::fs::symlink("/../../../../srv", rootfs.join("link")).expect("test setup");
        std::fs::write(rootfs.join("file"), "x").expect("test setup");

        let volumes = ["/link/data".to_string(), "/new/dir".to_string(), "/taken".to_string(), "/srv/data/".to_string()];
        let mounts = prepare(ImageVolumes::Bind, &volumes, &[mount("/taken/")], &rootfs, &state).expect("test setup");
        let got: Vec<(&str, &str)> = mounts.iter().map(|m| (m.destination.as_str(), m.source.as_str())).collect();
        let v0 = state.join("volumes/0").display().to_string();
        let v1 = state.join("volumes/1").display().to_string();
        let v2 = state.join("volumes/2").display().to_string();
        assert_eq!(got, [("/link/data", v0.as_str()), ("/new/dir", v1.as_str()), ("/srv/data", v2.as_str())]);
        assert_eq!(std::fs::read_to_string(state.join("volumes/0/seed")).expect("test setup"), "from the image");
        assert!(rootfs.join("new/dir").is_dir(), "the mount point is made in the rootfs");
        assert!(!rootfs.join("taken").exists(), "a request mount at the same place wins");

        let err = prepare(ImageVolumes::Bind, &["/file/sub".to_string()], &[], &rootfs, &state).expect_err("refused");
        assert!(matches!(&err, EngineError::UnusableImage(m) if m.contains("/file in the image is not a directory")), "{err}");

        assert!(prepare(ImageVolumes::Mkdir, &["/made/here".to_string()], &[], &rootfs, &state).expect("test setup").is_empty());
        assert!(rootfs.join("made/here").is_dir());
        assert!(prepare(ImageVolumes::Ignore, &["/not/made".to_string()], &[], &rootfs, &state).expect("test setup").is_empty());
        assert!(!rootfs.join("not").exists());
    }
}
