//! A snapshot's files as its mount shows them, read without mounting it: the directories its
//! mounts stack are looked through top first, as overlayfs looks a path up. The topmost entry
//! decides; a non-directory (a whiteout device among them) hides what lies below it; directories
//! merge down to the first opaque one. A container's create reads its image's account files this
//! way and leaves the mount itself to the start.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::Mount;

/// The directories `mounts` stack, topmost first, or None for mounts that are not one overlay or
/// one bind (those are read by mounting them).
pub fn layers(mounts: &[Mount]) -> Option<Vec<PathBuf>> {
    let [mount] = mounts else { return None };
    let at = |p: &str| match &mount.chdir {
        Some(dir) => Path::new(dir).join(p),
        None => PathBuf::from(p),
    };
    match mount.kind.as_str() {
        "bind" => Some(vec![at(&mount.source)]),
        "overlay" => {
            let option = |name: &str| mount.options.iter().find_map(|o| o.strip_prefix(name)?.strip_prefix('='));
            // Skiff's paths hold no ':' (overlay would need it escaped); lowerdir lists top first.
            let mut stack: Vec<PathBuf> = option("upperdir").map(at).into_iter().collect();
            stack.extend(option("lowerdir")?.split(':').filter(|p| !p.is_empty()).map(at));
            Some(stack)
        }
        _ => None,
    }
}

/// A whiteout: the character device 0/0 overlayfs takes for a deletion.
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, "trusted.overlay.opaque").ok().flatten().as_deref() == Some(b"y")
}

/// Where the merged view of `layers` (topmost first) has `rel` (a relative path; symlinks on the
/// way are not followed, as they are entries themselves): the path of the entry in the layer that
/// shows it. None when the view has nothing there. An empty `rel` is the topmost layer's root.
pub fn locate(layers: &[PathBuf], rel: &Path) -> Option<PathBuf> {
    let mut below: Vec<&PathBuf> = layers.iter().collect();
    let mut shown = layers.first().cloned();
    let mut prefix = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => prefix.push(name),
            Component::CurDir => continue,
            // Lexical `..` and roots are the caller's to resolve.
            _ => return None,
        }
        shown = None;
        let mut merged = Vec::new();
        for layer in below {
            let path = layer.join(&prefix);
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            if is_whiteout(&meta) {
                break;
            }
            if !meta.is_dir() {
                // A file over a directory hides it; a file under a shown directory is hidden.
                if shown.is_none() {
                    shown = Some(path);
                }
                break;
            }
            if shown.is_none() {
                shown = Some(path.clone());
            }
            merged.push(layer);
            if is_opaque(&path) {
                break;
            }
        }
        shown.as_ref()?;
        below = merged;
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn whiteout(path: &Path) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        nix::sys::stat::mknod(path, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::from_bits_truncate(0o600), 0).expect("mknod (as root)");
    }

    #[test]
    fn the_topmost_entry_shows_whiteouts_and_opaque_dirs_hide_what_is_below() {
        let dir = tempfile::tempdir().expect("tempdir");
        let [top, mid, base] = ["top", "mid", "base"].map(|l| dir.path().join(l));
        let layers = vec![top.clone(), mid.clone(), base.clone()];
        write(&base.join("etc/passwd"), "base");
        write(&mid.join("etc/passwd"), "mid");
        write(&base.join("etc/group"), "base");
        write(&base.join("gone/file"), "base");
        whiteout(&mid.join("gone"));
        write(&base.join("dark/old"), "base");
        write(&top.join("dark/new"), "top");
        xattr::set(top.join("dark"), "trusted.overlay.opaque", b"y").expect("opaque xattr (as root)");
        write(&base.join("was-dir/inner"), "base");
        write(&mid.join("was-dir"), "a file now");
        write(&base.join("deleted"), "base");
        whiteout(&top.join("deleted"));
        let read = |rel: &str| locate(&layers, Path::new(rel)).map(|p| fs::read_to_string(p).unwrap_or_else(|_| "<dir>".into()));
        assert_eq!(read("etc/passwd").as_deref(), Some("mid"), "the topmost layer that has it");
        assert_eq!(read("etc/group").as_deref(), Some("base"), "directories merge");
        assert_eq!(read("etc").as_deref(), Some("<dir>"));
        assert_eq!(read("gone/file"), None, "a whiteout hides a directory below it");
        assert_eq!(read("gone"), None);
        assert_eq!(read("dark/new").as_deref(), Some("top"));
        assert_eq!(read("dark/old"), None, "an opaque directory hides the lower ones' entries");
        assert_eq!(read("was-dir").as_deref(), Some("a file now"));
        assert_eq!(read("was-dir/inner"), None, "a file hides the directory below it");
        assert_eq!(read("deleted"), None);
        assert_eq!(read("./etc/./passwd").as_deref(), Some("mid"));
        assert_eq!(read("missing"), None);
        assert_eq!(locate(&layers, Path::new("")), Some(top.clone()));
        assert_eq!(locate(&layers, Path::new("../etc")), None, "`..` is the caller's to resolve");
    }

    #[test]
    fn layers_come_from_one_overlay_or_one_bind() {
        let overlay = |options: &[&str], chdir: Option<&str>| Mount { kind: "overlay".into(), source: "overlay".into(), options: options.iter().map(|o| o.to_string()).collect(), chdir: chdir.map(str::to_string) };
        let paths = |m: Vec<Mount>| layers(&m).map(|l| l.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
        assert_eq!(paths(vec![overlay(&["index=off", "lowerdir=/s/2/fs:/s/1/fs", "upperdir=/s/3/fs", "workdir=/s/3/work"], None)]), Some(vec!["/s/3/fs".into(), "/s/2/fs".into(), "/s/1/fs".into()]));
        assert_eq!(paths(vec![overlay(&["ro", "index=off", "lowerdir=2/fs:1/fs"], Some("/s"))]), Some(vec!["/s/2/fs".into(), "/s/1/fs".into()]));
        let bind = Mount { kind: "bind".into(), source: "/s/4/fs".into(), options: vec!["rbind".into(), "rw".into()], chdir: None };
        assert_eq!(paths(vec![bind.clone()]), Some(vec!["/s/4/fs".into()]));
        assert_eq!(paths(vec![bind.clone(), bind]), None);
        assert_eq!(paths(vec![overlay(&["upperdir=/x"], None)]), None, "an overlay needs lowerdirs");
        assert_eq!(paths(vec![Mount { kind: "tmpfs".into(), source: "tmpfs".into(), options: vec![], chdir: None }]), None);
    }
}
