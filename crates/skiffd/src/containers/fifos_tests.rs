use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

const ALL: Wanted = Wanted { stdin: true, stdout: true, stderr: true };
const OWNER: Owner = Owner { uid: 4242, gid: 4343 };

fn refusal(result: Result<Claim, ApiError>) -> String {
    result.expect_err("refused").to_string()
}

#[tokio::test]
async fn a_prepared_set_is_the_callers_claimed_once_and_gone_after() {
    let root = tempfile::tempdir().expect("tempdir");
    let fifos = StdioFifos::open(root.path()).expect("open");
    let dir = root.path().join("io");
    assert_eq!(std::fs::metadata(&dir).expect("io dir").permissions().mode() & 0o7777, 0o711);
    let paths = fifos.prepare(OWNER, ALL).expect("prepare");
    for path in [&paths.stdin, &paths.stdout, &paths.stderr] {
        let meta = std::fs::symlink_metadata(path).expect("fifo");
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()), "{path}");
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (OWNER.uid, OWNER.gid, 0o600), "{path}");
        let set = Path::new(path).parent().expect("set");
        let set_meta = std::fs::metadata(set).expect("set dir");
        // Root's directory: the caller opens the FIFOs but cannot replace them.
        assert_eq!((set_meta.uid(), set_meta.mode() & 0o7777), (0, 0o711));
    }
    let set = Path::new(&paths.stdout).parent().expect("set").to_path_buf();
    let claim = fifos.claim(&paths).expect("claim");
    assert_eq!(claim.stdout.as_deref(), Some(Path::new(&paths.stdout)));
    let again = refusal(fifos.claim(&paths));
    assert!(again.contains("claimed already or expired"), "{again}");
    // A request that failed before the shim opened them gives the set back for a retry.
    fifos.give_back(claim);
    assert!(set.exists(), "a given-back set stays");
    let claim = fifos.claim(&paths).expect("claimed again after a failed request");
    drop(claim);
    assert!(!set.exists(), "the set goes with its claim");
}

#[tokio::test]
async fn paths_skiffd_did_not_make_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let fifos = StdioFifos::open(root.path()).expect("open");
    let elsewhere = root.path().join("client-fifo");
    nix::unistd::mkfifo(&elsewhere, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let host_file = root.path().join("victim");
    std::fs::write(&host_file, "keep").expect("file");
    let paths = fifos.prepare(OWNER, ALL).expect("prepare");
    let io = root.path().join("io");
    let bad = [
        elsewhere.display().to_string(),
        host_file.display().to_string(),
        "/dev/null".to_string(),
        "relative/stdout".to_string(),
        format!("{}/../victim", Path::new(&paths.stdout).parent().expect("set").display()),
        format!("{}/0123456789abcdef0123456789abcdef/stdout", io.display()),
        format!("{}/not-a-token/stdout", io.display()),
        // A set's stream under another stream's name.
        paths.stderr.clone(),
    ];
    for path in bad {
        let err = refusal(fifos.claim(&v1::StdioPaths { stdout: path.clone(), ..Default::default() }));
        assert!(err.contains("not a FIFO skiffd made") || err.contains("claimed already or expired"), "{path}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&host_file).expect("victim"), "keep");
    let other = fifos.prepare(OWNER, ALL).expect("prepare");
    let mixed = v1::StdioPaths { stdout: paths.stdout.clone(), stderr: other.stderr.clone(), ..Default::default() };
    assert!(refusal(fifos.claim(&mixed)).contains("another stdio set"));
    // The refusals claimed nothing: both sets still serve one request each.
    fifos.claim(&paths).expect("first set");
    fifos.claim(&other).expect("second set");
    let nul = refusal(fifos.claim(&v1::StdioPaths { stdin: "/x\0y".into(), ..Default::default() }));
    assert!(nul.contains("stdin holds a NUL byte"), "{nul}");
}

#[tokio::test]
async fn no_paths_claims_nothing_and_only_asked_streams_are_made() {
    let root = tempfile::tempdir().expect("tempdir");
    let fifos = StdioFifos::open(root.path()).expect("open");
    let claim = fifos.claim(&v1::StdioPaths { tty: true, ..Default::default() }).expect("detached");
    assert!(claim.stdin.is_none() && claim.stdout.is_none() && claim.stderr.is_none());
    let paths = fifos.prepare(OWNER, Wanted { stdout: true, ..Default::default() }).expect("prepare");
    assert!(paths.stdin.is_empty() && paths.stderr.is_empty() && !paths.stdout.is_empty());
}

#[tokio::test]
async fn unclaimed_sets_expire_are_bounded_and_a_restart_removes_them() {
    let root = tempfile::tempdir().expect("tempdir");
    let fifos = StdioFifos::with_ttl(root.path(), Duration::from_millis(50)).expect("open");
    let paths = fifos.prepare(OWNER, ALL).expect("prepare");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!Path::new(&paths.stdout).exists(), "expired set removed");
    assert!(refusal(fifos.claim(&paths)).contains("claimed already or expired"));

    let fifos = StdioFifos::open(root.path()).expect("open");
    for _ in 0..MAX_UNCLAIMED {
        fifos.prepare(OWNER, Wanted { stdout: true, ..Default::default() }).expect("prepare");
    }
    let busy = fifos.prepare(OWNER, ALL).expect_err("bounded");
    assert_eq!(skiff_types::HasKind::kind(&busy), skiff_types::ErrorKind::ResourceExhausted, "{busy}");
    let reopened = StdioFifos::open(root.path()).expect("reopen");
    assert_eq!(std::fs::read_dir(root.path().join("io")).expect("io").count(), 0, "a restart starts empty");
    reopened.prepare(OWNER, ALL).expect("prepare after restart");
}
