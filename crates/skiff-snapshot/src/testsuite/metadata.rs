//! Cases on file metadata a layer carries: ownership, setuid/setgid modes and file capabilities
//! must all survive applying a layer, copying a parent (native) and copying up a hard link's target.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Ctx;
use crate::apply::{apply, Limits};

/// `setcap cap_net_raw+ep`: a VFS_CAP_REVISION_2 value with the effective flag and CAP_NET_RAW (13) permitted.
const CAP_NET_RAW_EP: [u8; 20] = [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// The kernel drops `security.capability` and setuid/setgid bits on chown: a layer's files owned by
/// a non-root user keep both only if ownership is applied before xattrs and modes. Checked on the
/// applied snapshot, on a child of it (a full copy for native), and on a hard link in the child to
/// the lower file (a copy-up for overlay).
pub fn capabilities_and_setuid_survive_apply_and_copies(ctx: &mut Ctx) {
    let s = ctx.s();
    s.prepare("caps-active", None, BTreeMap::new()).expect("prepare");
    let target = s.diff_target("caps-active").expect("diff target");
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &CAP_NET_RAW_EP[..])]).expect("pax record");
    append(&mut b, "ping", 0o4755, tar::EntryType::Regular, None);
    append(&mut b, "sgid", 0o2755, tar::EntryType::Regular, None);
    let layer = b.into_inner().expect("finish tar");
    apply(&layer[..], "caps-layer", layer.len() as u64, &target, Limits::default()).expect("apply the layer");
    s.commit("caps", "caps-active").expect("commit");

    let key = "caps-view";
    let mounts = s.view(key, "caps").expect("view");
    {
        let m = ctx.mount(&mounts, key);
        check(m.path(), "ping", 0o4755, true, "applied");
        check(m.path(), "sgid", 0o2755, false, "applied");
    }
    s.remove(key).expect("remove the view");

    let mounts = s.prepare("caps-child", Some("caps"), BTreeMap::new()).expect("prepare a child");
    let target = s.diff_target("caps-child").expect("diff target of the child");
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "ping-link", 0o4755, tar::EntryType::Link, Some("ping"));
    let layer = b.into_inner().expect("finish tar");
    apply(&layer[..], "caps-link-layer", layer.len() as u64, &target, Limits::default()).expect("apply the hard link layer");
    let m = ctx.mount(&mounts, "caps-child");
    check(m.path(), "ping", 0o4755, true, "in a child");
    check(m.path(), "sgid", 0o2755, false, "in a child");
    check(m.path(), "ping-link", 0o4755, true, "hard-linked in a child");
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, kind: tar::EntryType, link: Option<&str>) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_size(if link.is_some() { 0 } else { 4 });
    h.set_mtime(1_700_000_000);
    if let Some(l) = link {
        h.set_link_name(l).expect("link name");
    }
    let data: &[u8] = if link.is_some() { b"" } else { b"\x7fELF" };
    b.append_data(&mut h, path, data).expect("append tar entry");
}

fn check(dir: &Path, name: &str, mode: u32, caps: bool, when: &str) {
    let path = dir.join(name);
    let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{when}: stat {name}: {e}"));
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "{when}: {name} keeps its owner");
    assert_eq!(meta.mode() & 0o7777, mode, "{when}: {name} keeps its mode {mode:o} (setuid/setgid bits survive chown)");
    let cap = xattr::get(&path, "security.capability").unwrap_or_else(|e| panic!("{when}: getxattr {name}: {e}"));
    if caps {
        assert_eq!(cap.as_deref(), Some(&CAP_NET_RAW_EP[..]), "{when}: {name} keeps security.capability");
    }
}
