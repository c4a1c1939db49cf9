//! Layers whose paths run into what a lower layer made: one rule (the layer's own paths win, as an
//! overlay upper directory shows them) gives the same tree on every backend.

use std::collections::BTreeMap;

use super::filesystem::tar_of;
use super::{lines, write, Ctx};
use crate::apply::{apply, Limits};
use crate::SnapshotError;

/// A lower layer with a symlink `a -> t` (t a directory with a file) and a plain file `f`.
fn lower(ctx: &mut Ctx) {
    ctx.layer("lower", None, |d| {
        write(d, "t/kept", "kept");
        std::os::unix::fs::symlink("t", d.join("a")).expect("symlink");
        write(d, "f", "file");
    });
}

/// Applies `layer` on `lower` and returns the tree its committed result shows.
fn on_lower(ctx: &mut Ctx, name: &str, layer: &[u8]) -> Result<Vec<String>, SnapshotError> {
    let s = ctx.s();
    let active = format!("{name}-active");
    s.prepare(&active, Some("lower"), BTreeMap::new()).expect("prepare");
    let target = s.diff_target(&active).expect("diff target");
    if let Err(e) = apply(layer, name, layer.len() as u64, &target, Limits::default()) {
        s.remove(&active).expect("remove the refused layer's snapshot");
        return Err(e);
    }
    s.commit(name, &active).expect("commit");
    Ok(ctx.view_tree(name))
}

/// A directory in this layer where a lower one has a symlink or a file: the layer's directory
/// replaces it (never written through: the symlink's target is untouched), with or without an
/// explicit directory entry, and whiteouts and opaque markers under it act on the new directory.
pub fn a_layer_s_directory_replaces_a_lower_symlink_or_file(ctx: &mut Ctx) {
    lower(ctx);
    let base = ["t dir", "t/kept file:kept", "f file:file"];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        lines(&v)
    };
    let cases: [(&str, Vec<u8>, Vec<String>); 5] = [
        ("implicit-dir", tar_of(&[("a/b", Some("new"))]), with(&["a dir", "a/b file:new"])),
        ("explicit-dir", tar_of(&[("a/", None), ("a/b", Some("new"))]), with(&["a dir", "a/b file:new"])),
        ("whiteout-under", tar_of(&[("a/.wh.kept", Some(""))]), with(&["a dir"])),
        ("opaque-under", tar_of(&[("a/", None), ("a/.wh..wh..opq", Some("")), ("a/d", Some("d"))]), with(&["a dir", "a/d file:d"])),
        ("under-a-file", tar_of(&[("f/g", Some("g"))]), lines(&["t dir", "t/kept file:kept", "a link->t", "f dir", "f/g file:g"])),
    ];
    for (name, layer, want) in cases {
        let got = on_lower(ctx, name, &layer).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

/// What stays refused on every backend: writing through a symlink the layer made itself, and an
/// opaque marker at the layer's root (it would hide every lower layer, which an overlay upper root
/// cannot express).
pub fn a_layer_cannot_write_through_its_own_symlink_nor_hide_every_lower_layer(ctx: &mut Ctx) {
    lower(ctx);
    let mut own = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    own.append_link(&mut h, "mine", "t").expect("symlink entry");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    own.append_data(&mut h, "mine/x", &b"x"[..]).expect("file entry");
    let own = own.into_inner().expect("tar");
    let err = on_lower(ctx, "own-symlink", &own).expect_err("through its own symlink");
    assert!(err.to_string().contains("written through the symlink"), "{err}");
    let err = on_lower(ctx, "root-opaque", &tar_of(&[(".wh..wh..opq", Some("")), ("new", Some("n"))])).expect_err("root opaque");
    assert!(err.to_string().contains("opaque marker at the layer's root"), "{err}");
    assert_eq!(ctx.view_tree("lower"), lines(&["t dir", "t/kept file:kept", "a link->t", "f file:file"]), "the lower layer is untouched");
}
