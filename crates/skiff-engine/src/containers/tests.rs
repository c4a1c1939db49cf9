//! The manager against fake shims (the launcher seam): real store, real snapshots and mounts
//! (root), the real shim client over a real socket; only the runtime is not there.

use std::sync::Arc;
use std::time::Duration;

use skiff_image::import::{import, ImportOptions};
use skiff_image::NoProgress;
use skiff_runtime::shim::Stdio;
use skiff_snapshot::{apply::Limits, Backend, FsSnapshotter, Unpacker};
use skiff_store::{Store, StoreOptions};
use skiff_testimage::{files_layer, host_platform, write_layout, ImageSpec};
use skiff_types::{ErrorKind, HasKind};
use tokio::sync::broadcast;

use super::fake_shim::{FakeLauncher, PID};
use super::*;
use crate::events::{Event, EventType};

const IMAGE: &str = "localhost/test/files:1";

struct Fixture {
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
    manager: Arc<Manager>,
    launcher: Arc<FakeLauncher>,
    events: broadcast::Receiver<Event>,
}

fn fixture(launcher: FakeLauncher) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (store, _) = Store::open(&root, &StoreOptions::default()).expect("store");
    let spec = ImageSpec {
        name: IMAGE.into(),
        layers: vec![files_layer(&[("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), ("bin/sh", b"not really")], true).expect("layer")],
        platforms: vec![host_platform()],
        force_index: false,
        cmd: vec!["/bin/sh".into()],
        env: vec![],
        volumes: vec![],
        index_descriptor_annotations: Default::default(),
        index_annotations: Default::default(),
        manifest_descriptor_annotations: Default::default(),
        manifest_annotations: Default::default(),
    };
    write_layout(&spec, &dir.path().join("layout")).expect("layout");
    import(&store, &dir.path().join("layout"), &ImportOptions::default(), &NoProgress).expect("import");
    let snapshotter = FsSnapshotter::open(&root, store.db().clone(), Backend::Native).expect("snapshotter");
    let unpacker = Arc::new(Unpacker::new(Arc::new(snapshotter), Limits { floor: 1 << 30, ratio: 100 }));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let _inside = runtime.enter();
    let bus = crate::EventBus::default();
    let events = bus.subscribe();
    let launcher = Arc::new(launcher);
    let manager = Manager::new(ManagerParts {
        store: Arc::new(store),
        unpacker,
        platform: skiff_image::Platform::host(),
        config: Default::default(),
        root,
        launcher: launcher.clone(),
        events: bus,
    })
    .expect("manager");
    Fixture { _dir: dir, _runtime: runtime, manager, launcher, events }
}

impl Drop for Fixture {
    /// Containers hold mounts: removing them is what lets the temp root go.
    fn drop(&mut self) {
        let _inside = self._runtime.enter();
        for record in self.manager.records().list().unwrap_or_default() {
            if let Err(e) = self.manager.delete(&record.id, true) {
                eprintln!("removing test container {}: {e}", record.name);
            }
        }
        assert!(self.manager.sweep_removed(Duration::from_secs(20)) || std::thread::panicking(), "leftovers swept");
        let left = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self._dir.path().display().to_string();
        assert!(!left.contains(&root) || std::thread::panicking(), "mounts left under {root}");
    }
}

fn create(m: &Manager, name: &str) -> crate::Result<ContainerRecord> {
    m.create(CreateSpec { image: IMAGE.into(), name: name.into(), ..Default::default() })
}

/// No record, and once the sweep is done no container snapshot and no state dir.
fn assert_no_container_left(m: &Manager) {
    assert!(m.records().list().expect("list").is_empty());
    assert!(m.sweep_removed(Duration::from_secs(10)), "leftovers swept");
    assert!(m.unpacker.snapshotter().list().expect("snapshots").iter().all(|s| !s.key.starts_with("container/")), "no container snapshot");
    let left: Vec<_> = std::fs::read_dir(&m.dir).expect("containers dir").collect();
    assert!(left.is_empty(), "no state dir left: {left:?}");
}

fn next_event(rx: &mut broadcast::Receiver<Event>) -> Event {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match rx.try_recv() {
            Ok(e) => return e,
            Err(broadcast::error::TryRecvError::Empty) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("no event: {e}"),
        }
    }
}

#[test]
fn a_container_goes_through_its_lifecycle_and_every_change_is_an_event() {
    let mut f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let m = &f.manager;
    let created = create(m, "web").expect("create");
    assert_eq!((created.status, created.pid, created.command.as_slice()), (Status::Created, 0, &["/bin/sh".to_string()][..]));
    assert_eq!(next_event(&mut f.events).kind, EventType::Created);
    // A created container has no process: its supervisor comes up at start.
    assert!(f.launcher.groups.lock().expect("groups").is_empty(), "no shim before the start");
    let err = m.kill("web", libc::SIGTERM, false).expect_err("kill before start");
    assert_eq!(err.to_string(), "container web is created, not running: only a running container can be signalled");
    m.stop("web", Duration::from_secs(1)).expect("a stop of a created container does nothing");
    let spec = m.spec(&created.id).expect("config.json");
    assert_eq!(spec["annotations"]["io.skiff.container.name"], "web");

    // Illegal transitions are refused, naming the state.
    let err = m.exec("web", ExecSpec { args: vec!["true".into()], ..Default::default() }).expect_err("exec before start");
    assert_eq!((err.kind(), err.to_string()), (ErrorKind::FailedPrecondition, "container web is created, not running".to_string()));

    let started = m.start("web").expect("start");
    assert_eq!((started.status, started.pid), (Status::Running, PID));
    assert_eq!(next_event(&mut f.events).kind, EventType::Started);
    let err = m.start("web").expect_err("second start");
    assert!(err.to_string().contains("container web is running, not created"), "{err}");
    let err = m.delete("web", false).expect_err("delete running");
    assert_eq!((err.kind(), err.to_string()), (ErrorKind::FailedPrecondition, "container web is running: stop it first, or force".to_string()));
    let (_, pid) = m.exec("web", ExecSpec { args: vec!["true".into()], ..Default::default() }).expect("exec");
    assert_eq!(pid, PID + 1);

    // The follower (a task, not a thread) records the exit the shim reports.
    m.kill("web", libc::SIGTERM, false).expect("kill");
    let exited = next_event(&mut f.events);
    assert_eq!((exited.kind, exited.exit_code, exited.reason.as_deref()), (EventType::Exited, Some(143), Some("Error")));
    let record = m.records().find("web").expect("record");
    assert_eq!((record.status, record.exit.as_ref().map(|e| e.code)), (Status::Exited, Some(143)));
    assert_eq!(m.wait("web", None).expect("wait").code, 143, "wait after the exit answers from the record");

    m.delete("web", false).expect("delete");
    assert_eq!(next_event(&mut f.events).kind, EventType::Deleted);
    assert_eq!(m.records().find("web").expect_err("gone").kind(), ErrorKind::NotFound);
    assert!(m.sweep_removed(Duration::from_secs(10)), "leftovers swept");
    assert!(!m.state_dir(&created.id).exists(), "state dir removed");
    assert!(m.unpacker.snapshotter().stat(&created.snapshot_key).is_err(), "snapshot removed");
    create(m, "web").expect("the name is free again");
}

#[test]
fn of_twenty_concurrent_creates_of_one_name_exactly_one_wins() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    for round in 0..5 {
        let name = format!("only-{round}");
        let results: Vec<crate::Result<ContainerRecord>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..20).map(|_| s.spawn(|| create(&f.manager, &name))).collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let winners: Vec<&ContainerRecord> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let errors: Vec<String> = results.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
        assert_eq!(winners.len(), 1, "one winner; errors: {errors:?}");
        let holder = &winners[0].id;
        for err in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
            assert_eq!(err.to_string(), format!("container name \"{name}\" is in use by container {holder}"));
        }
    }
    assert_eq!(f.manager.records().list().expect("list").len(), 5, "the losers left no record");
}

#[test]
fn leftovers_of_a_removal_cut_short_are_swept_at_the_next_start() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let m = &f.manager;
    let record = create(m, "cut-short").expect("create");
    // A pod's container that ran and ended: its supervisor still holds it.
    let owner = Some(super::plan::Owner { sandbox_id: "pod1".into(), pod: "default/web".into() });
    let ended = m.create(CreateSpec { image: IMAGE.into(), name: "ended".into(), owner, ..Default::default() }).expect("create in a pod");
    m.start(&ended.id).expect("start");
    m.stop(&ended.id, Duration::from_secs(5)).expect("stop");
    let ended = m.records().find(&ended.id).expect("record");
    assert!(m.shim(&ended.id).alive(), "its supervisor answers");
    // The start mounted the rootfs; a create alone leaves it to the start.
    let rootfs = m.rootfs(&ended.id);
    let mounted = |path: &std::path::Path| std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().contains(&path.display().to_string());
    assert!(mounted(&rootfs), "the started container's rootfs is mounted");
    assert!(!mounted(&m.rootfs(&record.id)), "the created one's is not");
    // A crash right after the records went: the mounts, snapshots and state dirs are left, and
    // the supervisor's hold of the pod's container.
    m.records().remove(&record).expect("remove the record only");
    m.records().remove(&ended).expect("remove the record only");
    m.recover().expect("recover");
    assert!(m.sweep_removed(Duration::from_secs(10)), "leftovers swept");
    assert!(!m.shim(&ended.id).alive(), "the supervisor was told to delete the container");
    assert_eq!(f.launcher.released.lock().expect("released").clone(), vec![m.groups.join("pod1")], "the pod's supervisor dir is released after the sweep");
    assert!(!m.state_dir(&ended.id).exists(), "state dir removed");
    assert!(!mounted(&rootfs), "rootfs unmounted");
    assert!(m.unpacker.snapshotter().stat(&record.snapshot_key).is_err(), "snapshot removed");
    assert!(!m.state_dir(&record.id).exists(), "state dir removed");
}

#[test]
fn a_failed_start_is_the_containers_end_and_its_removal_leaves_nothing() {
    let f = fixture(FakeLauncher { fail_with: Some("runtime said no".into()), ..Default::default() });
    let _inside = f._runtime.enter();
    let m = &f.manager;
    create(m, "doomed").expect("a create makes no process, so the runtime is not asked yet");
    let err = m.start("doomed").expect_err("launcher fails");
    assert_eq!((err.kind(), err.to_string()), (ErrorKind::FailedPrecondition, "creating the container failed: runtime said no".to_string()));
    // Recorded as containerd records a task it could not make: exited, 128, StartError.
    let record = m.records().find("doomed").expect("the record stays");
    let exit = record.exit.as_ref().expect("an exit");
    assert_eq!((record.status, exit.code, exit.reason().as_str()), (Status::Exited, 128, "StartError"));
    assert_eq!(exit.start_error.as_deref(), Some("creating the container failed: runtime said no"));
    assert_eq!(create(m, "doomed").expect_err("name still held").kind(), ErrorKind::AlreadyExists);
    assert!(m.start("doomed").expect_err("no second start").to_string().contains("is exited, not created"));

    m.delete("doomed", false).expect("delete");
    assert_no_container_left(m);
    assert_eq!(m.records().find("doomed").expect_err("no record").kind(), ErrorKind::NotFound);
    create(m, "doomed").expect("the name is free again");
}

#[test]
fn a_failed_create_leaves_nothing_and_frees_its_name() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let m = &f.manager;
    let spec = CreateSpec { image: IMAGE.into(), name: "doomed".into(), run: skiff_runtime::spec::RunRequest { user: Some("nobody-here".into()), ..Default::default() }, ..Default::default() };
    let err = m.create(spec).expect_err("an unknown user");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_no_container_left(m);
    create(m, "doomed").expect("the name is free again");
}

#[test]
fn concurrent_starts_of_one_container_bring_up_one_supervisor() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let m = &f.manager;
    create(m, "once").expect("create");
    let results: Vec<crate::Result<ContainerRecord>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| m.start("once"))).collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "one start wins");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(err.to_string().contains("is running, not created"), "{err}");
    }
    assert_eq!(f.launcher.groups.lock().expect("groups").len(), 1, "one supervisor");
}

#[test]
fn a_pods_containers_share_its_supervisor_group_and_others_get_their_own() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let m = &f.manager;
    let owner = |sandbox: &str| Some(super::plan::Owner { sandbox_id: sandbox.into(), pod: "default/web".into() });
    let in_pod = |name: &str, sandbox: &str| m.create(CreateSpec { image: IMAGE.into(), name: name.into(), owner: owner(sandbox), ..Default::default() });
    let a = in_pod("a", "pod1").expect("a");
    in_pod("b", "pod1").expect("b");
    in_pod("c", "pod2").expect("c");
    create(m, "alone").expect("alone");
    // A sandbox id that is no plain file name never becomes a path.
    in_pod("odd", "../escape").expect("odd");
    for name in ["a", "b", "c", "alone", "odd"] {
        m.start(name).expect("start");
    }
    let groups = f.launcher.groups.lock().expect("groups").clone();
    let pod1 = m.groups.join("pod1");
    assert_eq!(groups, vec![Some(pod1.clone()), Some(pod1.clone()), Some(m.groups.join("pod2")), None, None]);
    m.delete(&a.id, true).expect("delete a");
    assert!(m.sweep_removed(Duration::from_secs(10)), "leftovers swept");
    assert_eq!(f.launcher.released.lock().expect("released").clone(), vec![pod1.clone()], "a delete offers the group's dir for removal");
    // A pod's supervisor started ahead of its containers: in the pod's group dir, never by an odd id.
    m.prepare_pod_supervisor("pod1");
    m.prepare_pod_supervisor("../escape");
    assert_eq!(f.launcher.prepared.lock().expect("prepared").clone(), vec![pod1]);
}

#[test]
fn lookups_by_name_prefix_and_id() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let a = create(&f.manager, "alpha").expect("create");
    let r = f.manager.records();
    assert_eq!(r.find(&a.id).expect("id").name, "alpha");
    assert_eq!(r.find("alpha").expect("name").id, a.id);
    assert_eq!(r.find(&a.id[..6]).expect("prefix").id, a.id);
    assert_eq!(r.find("").expect_err("empty").kind(), ErrorKind::InvalidArgument);
    assert_eq!(r.find("zzz").expect_err("none").to_string(), "no container \"zzz\"");
    // A corrupt record is DataLoss when asked for, and left out of listings.
    f.manager.store.db().containers.insert("container/bad", &b"{not json"[..]).expect("insert");
    assert_eq!(r.find("bad").expect_err("corrupt").kind(), ErrorKind::DataLoss);
    assert_eq!(r.list().expect("list").len(), 1);
    // A caller's id (the CRI picks its own) is taken as given, once, and only in the id's form.
    let given = "ab".repeat(32);
    let with_id = |id: &str, name: &str| f.manager.create(CreateSpec { id: Some(id.into()), image: IMAGE.into(), name: name.into(), ..Default::default() });
    assert_eq!(with_id(&given, "beta").expect("given id").id, given);
    assert_eq!(with_id(&given, "gamma").expect_err("taken").kind(), ErrorKind::InvalidArgument);
    assert_eq!(with_id("../x", "delta").expect_err("not an id").kind(), ErrorKind::InvalidArgument);
    assert!(r.find("gamma").is_err() && r.find("delta").is_err(), "refused ids make nothing");
}

#[test]
fn after_a_crash_the_shim_has_the_last_word_on_the_state() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let m = &f.manager;
    // The shim started the init, then skiffd died before recording it: the record says created.
    let started = create(m, "started").expect("create");
    m.launch(&started).expect("launch");
    m.shim(&started.id).start().expect("shim start");
    // The init ended while skiffd was down.
    let ended = create(m, "ended").expect("create");
    m.launch(&ended).expect("launch");
    m.shim(&ended.id).start().expect("shim start");
    m.shim(&ended.id).kill(libc::SIGKILL, true).expect("shim kill");
    // Its start brought up the shim and the init, then skiffd died before starting it.
    let launched = create(m, "launched").expect("create");
    m.launch(&launched).expect("launch");
    let waiting = create(m, "waiting").expect("create");
    assert!(m.records().list().expect("list").iter().all(|r| r.status == Status::Created));

    m.recover().expect("recover");
    let status = |name: &str| m.records().find(name).expect("record").status;
    assert_eq!(status("started"), Status::Running, "what the shim runs is recorded as running");
    assert!(!m.records().find("started").expect("record").started_at.is_empty());
    assert_eq!(status("ended"), Status::Exited);
    assert_eq!(m.records().find("ended").expect("record").exit.map(|e| e.code), Some(128 + libc::SIGKILL));
    assert_eq!(status("waiting"), Status::Created, "a created container stays created");
    assert_eq!(status("launched"), Status::Created, "a launched one waiting for its start too");
    // And the operations its real state allows work.
    m.exec("started", ExecSpec { args: vec!["true".into()], ..Default::default() }).expect("exec into the running one");
    m.start(&waiting.id).expect("start the created one");
    m.start(&launched.id).expect("start the launched one, through the shim that holds it");
    assert_eq!(f.launcher.groups.lock().expect("groups").len(), 4, "no second shim for the launched one");
}

#[test]
fn records_are_served_from_memory_shared_by_clones_and_loaded_again_at_start() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let a = create(&f.manager, "alpha").expect("create");
    let clone = f.manager.records().clone();
    let mut changed = clone.get(&a.id).expect("get").expect("there");
    changed.labels.insert("seen".into(), "by-both".into());
    clone.put(&changed).expect("put");
    let r = f.manager.records();
    assert_eq!(r.get(&a.id).expect("get").expect("there").labels.get("seen").map(String::as_str), Some("by-both"), "one memory copy for clones");
    // A new Records over the same store (a restart) reads what was written.
    let fresh = super::Records::new(f.manager.store.db().clone());
    let listed = fresh.list().expect("list");
    assert_eq!(listed.iter().map(|c| (c.id.as_str(), c.labels.get("seen").map(String::as_str))).collect::<Vec<_>>(), [(a.id.as_str(), Some("by-both"))]);
    f.manager.delete(&a.id, true).expect("delete");
    assert!(r.get(&a.id).expect("get").is_none() && clone.list().expect("list").is_empty());
}

#[test]
fn an_attach_needs_a_running_container_and_the_stdin_flags_reach_the_shim() {
    let f = fixture(FakeLauncher::default());
    let _inside = f._runtime.enter();
    let m = &f.manager;
    let created = m.create(CreateSpec { image: IMAGE.into(), name: "cat".into(), stdin: true, stdin_once: true, ..Default::default() }).expect("create");
    assert!(created.open_stdin && created.stdin_once, "the record keeps the stdin flags");
    let shim_json = std::fs::read(m.state_dir(&created.id).join(skiff_runtime::shim::CONFIG_FILE)).expect("shim.json");
    let config: skiff_runtime::shim::ShimConfig = serde_json::from_slice(&shim_json).expect("parse shim.json");
    assert!(config.open_stdin && config.stdin_once, "the shim is told to keep stdin open, once");

    let err = m.attach("cat", Stdio::default()).expect_err("attach before start");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(err.to_string().starts_with("container cat is created, not running: only a running container can be attached to"), "{err}");
    m.start("cat").expect("start");
    m.attach("cat", Stdio { stdout: Some("/io/x/stdout".into()), ..Stdio::default() }).expect("attach to the running container");
    m.kill("cat", libc::SIGKILL, false).expect("kill");
    m.wait("cat", None).expect("wait");
    let err = m.attach("cat", Stdio::default()).expect_err("attach after the exit");
    assert!(err.to_string().starts_with("container cat is exited, not running"), "{err}");
}
