//! Cases on records: the prepare/commit/view/remove lifecycle, what each kind allows, typed errors, races.

use std::collections::BTreeMap;
use std::sync::Barrier;

use super::{assert_err, labels, lines, tree, write, Ctx};
use crate::{Info, Kind, SnapshotError};

/// The whole lifecycle through real mounts: a base, a layer on it, a view of the top, removal leaves first.
pub fn prepare_commit_view_chain(ctx: &mut Ctx) {
    let s = ctx.s();
    // Keys are opaque strings; containerd's callers use paths.
    let mounts = s.prepare("work/preparing", None, BTreeMap::new()).expect("prepare");
    assert!(!mounts.is_empty(), "an active snapshot has mounts");
    {
        let m = ctx.mount(&mounts, "preparing");
        write(m.path(), "foo", "foo\n");
        std::fs::create_dir_all(m.path().join("a/b/c")).expect("mkdir");
    }
    let base = s.commit("base", "work/preparing").expect("commit");
    assert_eq!((base.key.as_str(), base.kind, base.parent.as_deref()), ("base", Kind::Committed, None));
    assert_eq!(s.stat("base").expect("stat base"), base, "commit returns what stat shows");
    assert_err!(s.stat("work/preparing"), SnapshotError::NotFound(_));

    let mounts = s.prepare("next", Some("base"), BTreeMap::new()).expect("prepare on base");
    {
        let m = ctx.mount(&mounts, "next");
        assert_eq!(tree(m.path()), lines(&["a dir", "a/b dir", "a/b/c dir", "foo file:foo\n"]), "the child starts as its parent");
        write(m.path(), "bar", "bar\n");
        write(m.path(), "foo", "bar\n");
        std::fs::remove_dir_all(m.path().join("a/b")).expect("rm -r a/b");
    }
    let next = s.stat("next").expect("stat next");
    assert_eq!((next.kind, next.parent.as_deref()), (Kind::Active, Some("base")));
    let top = s.commit("top", "next").expect("commit next");
    assert_eq!((top.kind, top.parent.as_deref()), (Kind::Committed, Some("base")));

    let mut keys: Vec<Info> = s.list().expect("list");
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(keys, vec![base.clone(), top.clone()], "list shows exactly the committed pair, as stat does");

    let mounts = s.view("top-view", "top").expect("view");
    {
        let m = ctx.mount(&mounts, "top-view");
        assert_eq!(tree(m.path()), lines(&["a dir", "bar file:bar\n", "foo file:bar\n"]));
    }
    s.remove("top-view").expect("remove view");
    assert_err!(s.remove("base"), SnapshotError::FailedPrecondition { .. });
    s.remove("top").expect("remove top");
    s.remove("base").expect("remove base");
    assert!(s.list().expect("list").is_empty(), "nothing left");
}

/// Builds c1 <- c2 (committed), a1 on c2 and a2 alone (active), v1 on c2 (view).
fn base_set(ctx: &Ctx) {
    let s = ctx.s();
    s.prepare("c1-a", None, BTreeMap::new()).expect("prepare c1-a");
    s.commit("c1", "c1-a").expect("commit c1");
    s.prepare("c2-a", Some("c1"), BTreeMap::new()).expect("prepare c2-a");
    s.commit("c2", "c2-a").expect("commit c2");
    s.prepare("a1", Some("c2"), BTreeMap::new()).expect("prepare a1");
    s.prepare("a2", None, BTreeMap::new()).expect("prepare a2");
    s.view("v1", "c2").expect("view v1");
}

/// Stat and list agree on every kind, with parents and creation times.
pub fn stat_and_list_every_kind(ctx: &mut Ctx) {
    let before = chrono::Utc::now();
    base_set(ctx);
    let after = chrono::Utc::now();
    let s = ctx.s();
    let want = [
        ("c1", Kind::Committed, None),
        ("c2", Kind::Committed, Some("c1")),
        ("a1", Kind::Active, Some("c2")),
        ("a2", Kind::Active, None),
        ("v1", Kind::View, Some("c2")),
    ];
    let listed: BTreeMap<String, Info> = s.list().expect("list").into_iter().map(|i| (i.key.clone(), i)).collect();
    assert_eq!(listed.len(), want.len(), "list has exactly the base set: {listed:?}");
    for (key, kind, parent) in want {
        let info = s.stat(key).expect("stat");
        assert_eq!((info.key.as_str(), info.kind, info.parent.as_deref()), (key, kind, parent), "{info:?}");
        assert_eq!(listed.get(key), Some(&info), "list shows what stat does for {key}");
        let created = chrono::DateTime::parse_from_rfc3339(&info.created_at).expect("created_at is RFC 3339");
        assert!(created >= before && created <= after, "{key} created at {created}, between {before} and {after}");
    }
}

/// Active snapshots and views have mounts (the same ones prepare and view returned); committed ones do not.
pub fn mounts_by_kind(ctx: &mut Ctx) {
    let s = ctx.s();
    let first = s.prepare("a", None, BTreeMap::new()).expect("prepare");
    assert_eq!(s.mounts("a").expect("mounts of active"), first);
    s.commit("c", "a").expect("commit");
    assert_err!(s.mounts("c"), SnapshotError::FailedPrecondition { .. });
    let active = s.prepare("b", Some("c"), BTreeMap::new()).expect("prepare on c");
    assert_eq!(s.mounts("b").expect("mounts of active child"), active);
    let view = s.view("v", "c").expect("view");
    assert_eq!(s.mounts("v").expect("mounts of view"), view);
    assert_err!(s.mounts("missing"), SnapshotError::NotFound(_));
    assert_err!(s.stat("missing"), SnapshotError::NotFound(_));
    assert_err!(s.usage("missing"), SnapshotError::NotFound(_));
}

/// Each misuse gets its own error kind, and none of them changes what is stored.
pub fn errors_are_typed_and_change_nothing(ctx: &mut Ctx) {
    base_set(ctx);
    let s = ctx.s();
    let before = s.list().expect("list");
    let none = BTreeMap::new;
    assert_err!(s.prepare("", None, none()), SnapshotError::InvalidArgument(_));
    for existing in ["a1", "c1", "v1"] {
        assert_err!(s.prepare(existing, None, none()), SnapshotError::AlreadyExists(_));
        assert_err!(s.view(existing, "c1"), SnapshotError::AlreadyExists(_));
    }
    assert_err!(s.prepare("x", Some("missing"), none()), SnapshotError::NotFound(_));
    assert_err!(s.prepare("x", Some("a1"), none()), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.prepare("x", Some("v1"), none()), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.view("x", "missing"), SnapshotError::NotFound(_));
    assert_err!(s.view("x", "a1"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.view("x", "v1"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.commit("x", "missing"), SnapshotError::NotFound(_));
    assert_err!(s.commit("x", "c1"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.commit("x", "v1"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.commit("c1", "a1"), SnapshotError::AlreadyExists(_));
    assert_err!(s.commit("a2", "a1"), SnapshotError::AlreadyExists(_));
    assert_err!(s.remove("missing"), SnapshotError::NotFound(_));
    assert_err!(s.remove("c2"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.remove("c1"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.diff_target("c1"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.diff_target("v1"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.diff_target("missing"), SnapshotError::NotFound(_));
    assert_eq!(s.list().expect("list"), before, "refused operations leave every record as it was");
}

/// A parent with any child (active, view or committed) stays; removed keys can be used again.
pub fn remove_refuses_parents_and_frees_keys(ctx: &mut Ctx) {
    let s = ctx.s();
    s.prepare("base-a", None, BTreeMap::new()).expect("prepare");
    s.commit("base", "base-a").expect("commit base");
    s.prepare("inter-a", Some("base"), BTreeMap::new()).expect("prepare");
    s.commit("inter", "inter-a").expect("commit inter");
    s.prepare("top", Some("inter"), BTreeMap::new()).expect("prepare top");
    s.view("look", "inter").expect("view");
    assert_err!(s.remove("inter"), SnapshotError::FailedPrecondition { .. });
    assert_err!(s.remove("base"), SnapshotError::FailedPrecondition { .. });
    s.remove("top").expect("remove top");
    assert_err!(s.remove("inter"), SnapshotError::FailedPrecondition { .. }); // the view still needs it
    s.remove("look").expect("remove view");
    s.remove("inter").expect("remove inter");
    s.remove("base").expect("remove base");
    assert_err!(s.remove("base"), SnapshotError::NotFound(_));

    // Reuse of a key across kinds after removal.
    s.prepare("c-a", None, BTreeMap::new()).expect("prepare");
    s.commit("c", "c-a").expect("commit");
    s.prepare("reuse", Some("c"), BTreeMap::new()).expect("prepare reuse");
    s.remove("reuse").expect("remove");
    s.view("reuse", "c").expect("view under a freed key");
    s.remove("reuse").expect("remove");
    s.prepare("reuse", None, BTreeMap::new()).expect("prepare again");
    s.remove("c").expect("remove c, now childless");
    s.commit("c", "reuse").expect("commit under the freed name");
    assert_eq!(s.stat("c").expect("stat").parent, None);
}

/// Concurrent prepares of one key, and concurrent commits to one name: one wins, the rest get AlreadyExists.
pub fn racing_prepares_and_commits_have_one_winner(ctx: &mut Ctx) {
    const N: usize = 8;
    let s = ctx.s();
    let barrier = Barrier::new(N);
    let prepared: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    s.prepare("same", None, labels(&[("race", "prepare")]))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("prepare thread")).collect()
    });
    assert_eq!(prepared.iter().filter(|r| r.is_ok()).count(), 1, "one prepare wins: {prepared:?}");
    assert!(prepared.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, SnapshotError::AlreadyExists(_))), "{prepared:?}");
    s.remove("same").expect("remove");

    for round in 0..10 {
        let name = format!("name{round}");
        let key = |i: usize| format!("r{round}-a{i}");
        for i in 0..N {
            let mounts = s.prepare(&key(i), None, BTreeMap::new()).expect("prepare");
            write(ctx.mount(&mounts, &key(i)).path(), "who", &i.to_string());
        }
        let committed: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let (barrier, name, key) = (&barrier, &name, &key);
                    scope.spawn(move || {
                        barrier.wait();
                        s.commit(name, &key(i))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("commit thread")).collect()
        });
        let winners: Vec<usize> = (0..N).filter(|&i| committed[i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: one commit wins: {committed:?}");
        for (i, r) in committed.iter().enumerate() {
            if let Err(e) = r {
                assert!(matches!(e, SnapshotError::AlreadyExists(_)), "{}: {e:?}", key(i));
                assert_eq!(s.stat(&key(i)).expect("a loser stays active").kind, Kind::Active);
                s.remove(&key(i)).expect("remove a loser");
            }
        }
        assert_eq!(ctx.view_tree(&name), lines(&[&format!("who file:{}", winners[0])]), "the name holds the winner's data");
    }
    assert_eq!(s.list().expect("list").len(), 10, "one committed snapshot per round");
}

/// A prepare on a parent racing that parent's removal: either the child exists on a parent that
/// stayed, or the parent is gone and the prepare failed. Never a child of nothing.
pub fn removing_a_parent_never_orphans_a_child(ctx: &mut Ctx) {
    let s = ctx.s();
    for round in 0..40 {
        let parent = format!("p{round}");
        s.prepare(&format!("{parent}-a"), None, BTreeMap::new()).expect("prepare");
        s.commit(&parent, &format!("{parent}-a")).expect("commit");
        let child = format!("child{round}");
        let barrier = Barrier::new(2);
        let (prepared, removed) = std::thread::scope(|scope| {
            let p = scope.spawn(|| {
                barrier.wait();
                s.prepare(&child, Some(&parent), BTreeMap::new())
            });
            let r = scope.spawn(|| {
                barrier.wait();
                s.remove(&parent)
            });
            (p.join().expect("prepare thread"), r.join().expect("remove thread"))
        });
        match (&prepared, &removed) {
            (Ok(_), Err(SnapshotError::FailedPrecondition { .. })) => {
                s.remove(&child).expect("remove child");
                s.remove(&parent).expect("remove parent");
            }
            (Err(SnapshotError::NotFound(_)), Ok(())) => assert_err!(s.stat(&child), SnapshotError::NotFound(_)),
            other => panic!("round {round}: prepare and remove both went ahead or failed oddly: {other:?}"),
        }
    }
    assert!(s.list().expect("list").is_empty());
}
