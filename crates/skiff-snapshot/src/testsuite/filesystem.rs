//! Cases on data, through real mounts: what a child sees of its parents, deletions, read-only views,
//! layers applied through `diff_target`, long chains and usage.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use super::{assert_err, lines, tree, write, Ctx};
use crate::apply::{apply, Limits};
use crate::SnapshotError;

/// A <- B <- C: each sees its ancestors' files, newest version winning; a child's writes never reach
/// a committed parent.
pub fn writes_pass_down_a_chain_and_never_up(ctx: &mut Ctx) {
    ctx.layer("a", None, |d| write(d, "foo", "foo\n"));
    ctx.layer("b", Some("a"), |d| {
        assert_eq!(tree(d), lines(&["foo file:foo\n"]));
        write(d, "foo", "foo bar\n");
        write(d, "dir/only-b", "b");
    });
    let s = ctx.s();
    let mounts = s.prepare("c", Some("b"), BTreeMap::new()).expect("prepare c");
    {
        let m = ctx.mount(&mounts, "c");
        assert_eq!(tree(m.path()), lines(&["dir dir", "dir/only-b file:b", "foo file:foo bar\n"]));
        write(m.path(), "foo", "changed in c");
        write(m.path(), "dir/only-b", "changed in c");
        write(m.path(), "new-in-c", "c");
    }
    assert_eq!(ctx.view_tree("a"), lines(&["foo file:foo\n"]), "a is untouched by b and c");
    assert_eq!(ctx.view_tree("b"), lines(&["dir dir", "dir/only-b file:b", "foo file:foo bar\n"]), "b is untouched by c");
    let siblings = s.prepare("c2", Some("b"), BTreeMap::new()).expect("prepare a sibling of c");
    assert_eq!(tree(ctx.mount(&siblings, "c2").path()), lines(&["dir dir", "dir/only-b file:b", "foo file:foo bar\n"]), "a sibling does not see c");
    let c = s.stat("c").expect("stat c");
    assert_eq!(s.stat(c.parent.as_deref().expect("c has a parent")).expect("stat b").parent.as_deref(), Some("a"), "parents chain to a");
}

/// Files and directories removed, renamed or replaced in an upper layer are gone for its children,
/// however the snapshotter records it (overlay whiteouts and opaque directories, or real deletes).
pub fn deletions_in_an_upper_layer_hide_lower_files(ctx: &mut Ctx) {
    ctx.layer("l1", None, |d| {
        write(d, "foo", "foo");
        write(d, "foobar", "foobar");
        write(d, "dir1/f1", "hello");
        write(d, "dir2/f2", "...");
        write(d, "opaque/old", "old");
        std::os::unix::fs::symlink("foo", d.join("link")).expect("symlink");
    });
    ctx.layer("l2", Some("l1"), |d| {
        std::fs::remove_file(d.join("foobar")).expect("rm foobar");
        std::fs::remove_dir_all(d.join("dir1")).expect("rm -r dir1");
        std::fs::create_dir(d.join("dir3")).expect("mkdir dir3");
        std::fs::rename(d.join("dir2/f2"), d.join("dir3/f2")).expect("mv dir2/f2 dir3/f2");
        std::fs::remove_dir_all(d.join("opaque")).expect("rm -r opaque");
        write(d, "opaque/new", "new");
        std::fs::remove_file(d.join("link")).expect("rm link");
    });
    // A layer that changes nothing passes the deletions on.
    ctx.layer("l3", Some("l2"), |_| {});
    let want = lines(&["dir2 dir", "dir3 dir", "dir3/f2 file:...", "foo file:foo", "opaque dir", "opaque/new file:new"]);
    assert_eq!(ctx.view_tree("l2"), want);
    assert_eq!(ctx.view_tree("l3"), want);
    assert_eq!(
        ctx.view_tree("l1"),
        lines(&["dir1 dir", "dir1/f1 file:hello", "dir2 dir", "dir2/f2 file:...", "foo file:foo", "foobar file:foobar", "link link->foo", "opaque dir", "opaque/old file:old"]),
        "the lower layer keeps what its child deleted"
    );
}

/// A view cannot be written, and writing into it cannot reach the committed snapshot it shows;
/// on a one-layer chain as on a longer one.
pub fn views_are_read_only(ctx: &mut Ctx) {
    ctx.layer("one", None, |d| write(d, "file", "committed"));
    ctx.layer("two", Some("one"), |d| write(d, "second", "2"));
    let s = ctx.s();
    for parent in ["one", "two"] {
        let key = format!("view-of-{parent}");
        let mounts = s.view(&key, parent).expect("view");
        let m = ctx.mount(&mounts, &key);
        let new = std::fs::write(m.path().join("new"), "x");
        let existing = std::fs::write(m.path().join("file"), "overwritten");
        let removed = std::fs::remove_file(m.path().join("file"));
        drop(m);
        for (what, r) in [("create", new), ("overwrite", existing), ("remove", removed)] {
            let e = r.expect_err(&format!("{what} in a view of {parent} must fail"));
            assert_eq!(e.raw_os_error(), Some(nix::libc::EROFS), "{what} in a view of {parent}: {e}");
        }
        s.remove(&key).expect("remove view");
    }
    assert_eq!(ctx.view_tree("one"), lines(&["file file:committed"]));
}

/// A tar layer applied at `diff_target` of an active snapshot, whiteouts included, shows in a view after commit.
pub fn layers_apply_onto_active_snapshots(ctx: &mut Ctx) {
    ctx.layer("base", None, |d| {
        write(d, "etc/keep", "keep");
        write(d, "etc/gone", "gone");
        write(d, "var/lib/old", "old");
    });
    let s = ctx.s();
    s.prepare("layer", Some("base"), BTreeMap::new()).expect("prepare");
    let target = s.diff_target("layer").expect("diff target of an active snapshot");
    let layer = tar_of(&[("etc/new", Some("new")), ("etc/.wh.gone", Some("")), ("var/lib/", None), ("var/lib/.wh..wh..opq", Some("")), ("var/lib/fresh", Some("fresh"))]);
    let applied = apply(&layer[..], "suite-layer", layer.len() as u64, &target, Limits::default()).expect("apply");
    assert_eq!(applied.uncompressed, layer.len() as u64, "the whole stream is read");
    s.commit("applied", "layer").expect("commit");
    assert_err!(s.diff_target("applied"), SnapshotError::FailedPrecondition { .. });
    assert_eq!(
        ctx.view_tree("applied"),
        lines(&["etc dir", "etc/keep file:keep", "etc/new file:new", "var dir", "var/lib dir", "var/lib/fresh file:fresh"])
    );
}

/// A tar of files (`Some(content)`) and directories (`None`, path ending in `/`).
pub(super) fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        let data = content.unwrap_or("").as_bytes();
        h.set_entry_type(if content.is_some() { tar::EntryType::Regular } else { tar::EntryType::Directory });
        h.set_mode(if content.is_some() { 0o644 } else { 0o755 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, data).expect("append tar entry");
    }
    b.into_inner().expect("finish tar")
}

/// 130 layers, each overwriting a file, adding one and replacing a directory: the full chain mounts
/// (past the kernel's one-page limit on mount options with absolute paths) and shows the flattened result.
pub fn a_chain_of_130_layers_mounts(ctx: &mut Ctx) {
    const LAYERS: usize = 130;
    let mut parent: Option<String> = None;
    for i in 0..LAYERS {
        let name = format!("layer-{i:03}");
        ctx.layer(&name, parent.as_deref(), |d| {
            if i > 0 {
                assert_eq!(std::fs::read_to_string(d.join("overwriteme")).expect("read"), format!("{}", i - 1), "layer {i} sees layer {}", i - 1);
                std::fs::remove_dir_all(d.join("onlyme")).expect("rm -r onlyme");
            }
            write(d, "overwriteme", &i.to_string());
            write(d, &format!("addhere/file-{i:03}"), "same");
            write(d, &format!("onlyme/file-{i:03}"), "only me");
        });
        parent = Some(name);
    }
    let top = parent.expect("layers were made");
    let mounts = ctx.s().view("full-view", &top).expect("view the whole chain");
    {
        let m = ctx.mount(&mounts, "full-view");
        let p = m.path();
        assert_eq!(std::fs::read_dir(p.join("addhere")).expect("read addhere").count(), LAYERS, "every layer's file");
        assert_eq!(std::fs::read_to_string(p.join("overwriteme")).expect("read"), (LAYERS - 1).to_string(), "the top layer wins");
        assert_eq!(tree(&p.join("onlyme")), lines(&[&format!("file-{:03} file:only me", LAYERS - 1)]), "replaced directories hide older ones");
    }
    // A writable snapshot on the whole chain mounts and takes writes too.
    let rw = ctx.s().prepare("full-rw", Some(&top), BTreeMap::new()).expect("prepare on the chain");
    let m = ctx.mount(&rw, "full-rw");
    write(m.path(), "addhere/written", "written");
    assert_eq!(std::fs::read_dir(m.path().join("addhere")).expect("read").count(), LAYERS + 1);
}

/// Usage counts the blocks and distinct inodes of a snapshot's own data (a hard link once).
pub fn usage_counts_bytes_and_inodes(ctx: &mut Ctx) {
    const BIG: u64 = 1 << 20;
    let s = ctx.s();
    s.prepare("empty", None, BTreeMap::new()).expect("prepare");
    let empty = s.usage("empty").expect("usage of empty");
    assert_eq!((empty.bytes, empty.inodes), (0, 0), "an empty snapshot uses nothing");

    let mounts = s.prepare("a", None, BTreeMap::new()).expect("prepare");
    {
        let m = ctx.mount(&mounts, "a");
        std::fs::write(m.path().join("big"), vec![0xa5u8; BIG as usize]).expect("write big");
        write(m.path(), "d/small", "x");
        std::fs::hard_link(m.path().join("big"), m.path().join("d/link")).expect("hard link");
    }
    let active = s.usage("a").expect("usage of active");
    assert_eq!(active.inodes, 3, "big, d, d/small; the link shares big's inode: {active:?}");
    assert!(active.bytes >= BIG + 4096 && active.bytes < BIG + (64 << 10), "1 MiB and two small blocks: {active:?}");
    s.commit("c", "a").expect("commit");
    assert_eq!(s.usage("c").expect("usage of committed"), active, "commit keeps the data");

    let mounts = s.prepare("child", Some("c"), BTreeMap::new()).expect("prepare child");
    {
        let m = ctx.mount(&mounts, "child");
        std::fs::write(m.path().join("extra"), vec![1u8; 8192]).expect("write extra");
        let meta = std::fs::metadata(m.path().join("extra")).expect("stat extra");
        assert_eq!(meta.size(), 8192);
    }
    let child = s.usage("child").expect("usage of child");
    assert!(child.inodes >= 1 && child.bytes >= 8192, "the child's own file is counted: {child:?}");
}
