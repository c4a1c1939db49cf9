//! Cases on what is kept: labels, and records and data across closing and reopening the snapshotter.

use std::collections::BTreeMap;

use super::{labels, lines, tree, write, Ctx};
use crate::{Info, Kind};

/// Labels given to prepare are on the record, survive commit, show in list, and are per snapshot.
pub fn labels_are_kept(ctx: &mut Ctx) {
    let s = ctx.s();
    let given = labels(&[("io.example/owner", "suite"), ("empty", ""), ("unicode", "ünï")]);
    s.prepare("a", None, given.clone()).expect("prepare");
    assert_eq!(s.stat("a").expect("stat").labels, given);
    let committed = s.commit("c", "a").expect("commit");
    assert_eq!(committed.labels, given, "commit keeps the active snapshot's labels");
    s.prepare("child", Some("c"), labels(&[("own", "1")])).expect("prepare child");
    s.prepare("bare", None, BTreeMap::new()).expect("prepare without labels");
    let listed: BTreeMap<String, BTreeMap<String, String>> = s.list().expect("list").into_iter().map(|i| (i.key, i.labels)).collect();
    assert_eq!(listed.get("c"), Some(&given));
    assert_eq!(listed.get("child"), Some(&labels(&[("own", "1")])), "a child does not inherit its parent's labels");
    assert_eq!(listed.get("bare"), Some(&BTreeMap::new()));
    ctx.reopen();
    assert_eq!(ctx.s().stat("c").expect("stat after reopen").labels, given, "labels are persisted");
}

/// Closing and reopening keeps every record as it was and every snapshot's data; the reopened
/// snapshotter goes on working (mounts, commits, new ids that do not collide, removal).
pub fn records_and_data_survive_reopen(ctx: &mut Ctx) {
    ctx.layer("c1", None, |d| write(d, "base", "base"));
    let s = ctx.s();
    let mounts = s.prepare("a1", Some("c1"), labels(&[("k", "v")])).expect("prepare a1");
    write(ctx.mount(&mounts, "a1").path(), "work-in-progress", "wip");
    s.view("v1", "c1").expect("view v1");
    let before: BTreeMap<String, Info> = s.list().expect("list").into_iter().map(|i| (i.key.clone(), i)).collect();

    ctx.reopen();
    let s = ctx.s();
    let after: BTreeMap<String, Info> = s.list().expect("list after reopen").into_iter().map(|i| (i.key.clone(), i)).collect();
    assert_eq!(after, before, "every record survives reopen unchanged");
    let mounts = s.mounts("a1").expect("mounts of a1 after reopen");
    {
        let m = ctx.mount(&mounts, "a1-again");
        assert_eq!(tree(m.path()), lines(&["base file:base", "work-in-progress file:wip"]), "an active snapshot's writes survive");
        write(m.path(), "after-reopen", "yes");
    }
    let c2 = s.commit("c2", "a1").expect("commit after reopen");
    assert_eq!((c2.kind, c2.parent.as_deref()), (Kind::Committed, Some("c1")));
    s.prepare("fresh", Some("c2"), BTreeMap::new()).expect("prepare after reopen");
    let ids: Vec<u64> = s.list().expect("list").iter().map(|i| i.id).collect();
    let unique: std::collections::HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "ids given after reopen do not collide: {ids:?}");
    assert_eq!(ctx.view_tree("c2"), lines(&["after-reopen file:yes", "base file:base", "work-in-progress file:wip"]));
    ctx.reopen();
    let s = ctx.s();
    for key in ["fresh", "c2", "v1", "c1"] {
        s.remove(key).expect("remove after a second reopen");
    }
    assert!(s.list().expect("list").is_empty());
    ctx.reopen();
    assert!(ctx.s().list().expect("list").is_empty(), "removals are persisted");
}
