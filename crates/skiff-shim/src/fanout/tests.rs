//! The fan-out against real pipes and FIFOs: the test plays the process (it writes the pipes
//! `io::prepare` made for it, and reads its stdin) and the clients (FIFOs it made and reads).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_runtime::shim::{ErrorCode, Stdio};

use super::{AttachError, Fanout, StdinPolicy, MAX_PENDING};
use crate::io::{self, Attached, ChildStdio, ConsoleAt, LogSink};

const LONG: Duration = Duration::from_secs(10);

struct Process {
    dir: tempfile::TempDir,
    child: ChildStdio,
    attached: Attached,
}

fn process(stdio: &Stdio, policy: StdinPolicy) -> Process {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(LogSink::open(&dir.path().join("container.log")).expect("log"));
    let console = ConsoleAt { bind: dir.path().join("console.sock"), reach: dir.path().join("console.sock") };
    let (child, pending) = io::prepare(stdio, policy, Some(log), console).expect("prepare");
    let attached = pending.attach().expect("attach");
    Process { dir, child, attached }
}

impl Process {
    fn fanout(&self) -> Arc<Fanout> {
        self.attached.fanout.clone()
    }

    fn fifo(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        path
    }

    /// What the process writes to its stdout.
    fn stdout(&self) -> File {
        File::from(self.child.stdout.try_clone().expect("dup stdout"))
    }

    /// The process's stdin, as it reads it.
    fn stdin(&self) -> File {
        File::from(self.child.stdin.try_clone().expect("dup stdin"))
    }

    /// The process ended: its output ends, the exit is seen, the clients are finished.
    fn exit(self) -> String {
        let Process { dir, child, mut attached } = self;
        drop(child);
        attached.drain(LONG);
        attached.fanout.finish();
        let log = std::fs::read_to_string(dir.path().join("container.log")).expect("read the log");
        // `TIME STREAM F MESSAGE`: the messages, one a line.
        log.lines().map(|l| l.splitn(4, ' ').nth(3).unwrap_or_default().to_string() + "\n").collect()
    }
}

/// A client's read end, opened before the attach (as clients do) without waiting for a writer.
fn open_client_reader(path: &Path) -> File {
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).expect("open the client's reader")
}

/// Reads a client's FIFO to EOF on a thread, once the shim holds its write end.
fn read_to_eof(file: File) -> mpsc::Receiver<Vec<u8>> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let flags = fcntl(file.as_raw_fd(), FcntlArg::F_GETFL).expect("getfl");
    fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK)).expect("setfl");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut file = file;
        let mut all = Vec::new();
        let _ = file.read_to_end(&mut all);
        let _ = tx.send(all);
    });
    rx
}

fn stdout_only(path: &Path) -> Stdio {
    Stdio { stdout: Some(path.to_path_buf()), ..Stdio::default() }
}

fn lines(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("line {i}\n")).collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_clients_get_the_same_bytes_and_the_log_keeps_them_all() {
    let p = process(&Stdio::default(), StdinPolicy::default());
    let (a, b) = (p.fifo("a"), p.fifo("b"));
    let (ra, rb) = (open_client_reader(&a), open_client_reader(&b));
    p.fanout().attach(&stdout_only(&a)).expect("first client");
    p.fanout().attach(&stdout_only(&b)).expect("second client");
    let (ra, rb) = (read_to_eof(ra), read_to_eof(rb));
    p.stdout().write_all(lines(0..2000).as_bytes()).expect("the process writes");
    let log = p.exit();
    let expected = lines(0..2000).into_bytes();
    assert_eq!(ra.recv_timeout(LONG).expect("a reached EOF"), expected);
    assert_eq!(rb.recv_timeout(LONG).expect("b reached EOF"), expected);
    assert_eq!(log, lines(0..2000));
}

#[test]
fn a_client_that_goes_is_dropped_at_once_and_the_others_go_on() {
    let p = process(&Stdio::default(), StdinPolicy::default());
    let (a, b) = (p.fifo("a"), p.fifo("b"));
    let (ra, rb) = (open_client_reader(&a), open_client_reader(&b));
    p.fanout().attach(&stdout_only(&a)).expect("first client");
    p.fanout().attach(&stdout_only(&b)).expect("second client");
    let rb = read_to_eof(rb);
    drop(ra);
    // Seen by the reader's going, not by a failed write: the container printed nothing yet.
    let fanout = p.fanout();
    wait_for("the gone client is dropped", || fanout.clients() == 1);
    p.stdout().write_all(lines(0..100).as_bytes()).expect("the process writes");
    let log = p.exit();
    assert_eq!(rb.recv_timeout(LONG).expect("b reached EOF"), lines(0..100).into_bytes());
    assert_eq!(log, lines(0..100));
}

#[test]
fn a_client_that_stops_reading_is_dropped_without_stalling_the_process_or_the_log() {
    let p = process(&Stdio::default(), StdinPolicy::default());
    let (slow, fast) = (p.fifo("slow"), p.fifo("fast"));
    let (r_slow, r_fast) = (open_client_reader(&slow), open_client_reader(&fast));
    p.fanout().attach(&stdout_only(&slow)).expect("slow client");
    p.fanout().attach(&stdout_only(&fast)).expect("fast client");
    let r_fast = read_to_eof(r_fast);
    // Four times what a client may be behind, plus any pipe buffer: the slow one cannot keep it.
    let count = 4 * MAX_PENDING / "line 000000\n".len();
    let started = Instant::now();
    p.stdout().write_all(lines(0..count).as_bytes()).expect("the process writes");
    let fanout = p.fanout();
    wait_for("the slow client is dropped", || fanout.clients() == 1);
    assert!(started.elapsed() < LONG, "the process was held up by a client that does not read");
    let log = p.exit();
    assert_eq!(r_fast.recv_timeout(LONG).expect("fast reached EOF"), lines(0..count).into_bytes());
    assert_eq!(log, lines(0..count));
    // The dropped one sees EOF after what its FIFO held.
    let got = read_to_eof(r_slow).recv_timeout(LONG).expect("slow reached EOF");
    assert!(got.len() < lines(0..count).len(), "the slow client was cut off ({} bytes)", got.len());
}

/// A client's stdin FIFO, opened read-write as the CLI does (so it never sees EOF before it writes).
fn client_stdin(path: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(path).expect("open the client's stdin")
}

fn read_some(mut from: &File) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = from.read(&mut buf).expect("read the process's stdin");
    buf.truncate(n);
    buf
}

/// Whether the process's stdin is still open: nothing to read yet, rather than EOF.
fn stdin_still_open(stdin: &File) -> bool {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let flags = fcntl(stdin.as_raw_fd(), FcntlArg::F_GETFL).expect("getfl");
    fcntl(stdin.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK)).expect("setfl");
    let mut buf = [0u8; 16];
    let open = matches!((&*stdin).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    fcntl(stdin.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags))).expect("setfl");
    open
}

#[test]
fn one_client_at_a_time_feeds_stdin_and_its_eof_ends_only_its_attachment() {
    let p = process(&Stdio::default(), StdinPolicy { open: true, once: false });
    let (a_in, a_out, b_in) = (p.fifo("a-in"), p.fifo("a-out"), p.fifo("b-in"));
    let (a_writer, a_reader) = (client_stdin(&a_in), open_client_reader(&a_out));
    let a = Stdio { stdin: Some(a_in), stdout: Some(a_out), ..Stdio::default() };
    p.fanout().attach(&a).expect("first client, with stdin");
    let a_reader = read_to_eof(a_reader);
    let _b_writer = client_stdin(&b_in);
    let b = Stdio { stdin: Some(b_in.clone()), ..Stdio::default() };
    let refused = p.fanout().attach(&b).expect_err("a second stdin is refused");
    assert!(matches!(refused, AttachError::StdinTaken), "{refused}");
    assert_eq!(refused.code(), ErrorCode::FailedPrecondition);

    (&a_writer).write_all(b"hello\n").expect("the client types");
    let stdin = p.stdin();
    assert_eq!(read_some(&stdin), b"hello\n");
    drop(a_writer);
    // Its attachment ends, though the process runs on with its stdin open for the next client.
    assert_eq!(a_reader.recv_timeout(LONG).expect("a's output ended"), b"");
    assert!(stdin_still_open(&stdin), "stdin stays open without stdin_once");
    p.fanout().attach(&b).expect("stdin is free again");
    p.exit();
}

#[test]
fn with_stdin_once_the_first_clients_eof_closes_stdin_and_its_output_goes_on() {
    let p = process(&Stdio::default(), StdinPolicy { open: true, once: true });
    let (a_in, a_out) = (p.fifo("a-in"), p.fifo("a-out"));
    let (a_writer, a_reader) = (client_stdin(&a_in), open_client_reader(&a_out));
    p.fanout().attach(&Stdio { stdin: Some(a_in), stdout: Some(a_out), ..Stdio::default() }).expect("attach");
    let a_reader = read_to_eof(a_reader);
    (&a_writer).write_all(b"x").expect("the client types");
    drop(a_writer);
    let stdin = p.stdin();
    assert_eq!(read_some(&stdin), b"x");
    assert_eq!(read_some(&stdin), b"", "the process reads EOF");
    let late = p.fifo("late");
    let _late_writer = client_stdin(&late);
    let refused = p.fanout().attach(&Stdio { stdin: Some(late), ..Stdio::default() }).expect_err("stdin is closed for good");
    assert!(matches!(refused, AttachError::StdinClosed), "{refused}");
    p.stdout().write_all(b"after\n").expect("the process writes");
    p.exit();
    assert_eq!(a_reader.recv_timeout(LONG).expect("a reached EOF"), b"after\n");
}

#[test]
fn the_creators_stdin_eof_closes_stdin_when_it_is_not_kept_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stdin");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let writer = client_stdin(&path);
    let p = process(&Stdio { stdin: Some(path), ..Stdio::default() }, StdinPolicy::default());
    (&writer).write_all(b"abc").expect("the creator types");
    drop(writer);
    let stdin = p.stdin();
    assert_eq!(read_some(&stdin), b"abc");
    assert_eq!(read_some(&stdin), b"", "the process reads EOF, as before attach existed");
    p.exit();
}

#[test]
fn attaches_that_cannot_work_are_refused_with_the_reason() {
    let p = process(&Stdio::default(), StdinPolicy::default());
    let fanout = p.fanout();
    let out = p.fifo("out");
    let stdin = p.fifo("in");
    let _stdin_writer = client_stdin(&stdin);
    let refuse = |stdio: Stdio| fanout.attach(&stdio).expect_err("refused");
    let e = refuse(Stdio { stdin: Some(stdin), ..Stdio::default() });
    assert!(matches!(e, AttachError::StdinNotOpen) && e.code() == ErrorCode::FailedPrecondition, "{e}");
    let e = refuse(Stdio { tty: true, ..stdout_only(&out) });
    assert!(matches!(e, AttachError::NoTty) && e.code() == ErrorCode::InvalidArgument, "{e}");
    assert!(matches!(refuse(Stdio::default()), AttachError::NoStreams));
    assert!(matches!(refuse(stdout_only(&out)), AttachError::NoReader { .. }), "no one reads it yet");
    let file = p.dir.path().join("a-file");
    std::fs::write(&file, b"").expect("a regular file");
    assert!(matches!(refuse(stdout_only(&file)), AttachError::NotFifo { .. }), "the shim never writes a file");
    let log = p.exit();
    assert_eq!(log, "");
    let e = fanout.attach(&stdout_only(&out)).expect_err("after the exit");
    assert!(matches!(e, AttachError::Exited) && e.code() == ErrorCode::FailedPrecondition, "{e}");
}
