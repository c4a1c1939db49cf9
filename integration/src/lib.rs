//! A throwaway Skiff for tests: `Skiff::start()` runs the real `skiffd` binary on a fresh temp root
//! and socket; `cli()` runs the real `skiff` binary against it. Dropping it kills the daemon.
//! The binaries come from the same target directory as the test (build them first:
//! `cargo build --workspace --bins`, which `hack/test` does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Device, inode and change time of the file at `path`, if there is one: an inode number can be
/// reused at once, its change time with it hardly.
fn socket_identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

pub mod bench;
pub mod cri;
pub mod faults;
pub mod layout;
pub mod registry;
/// The streaming server's clients (kept under this name for the tests).
pub use skiff_streaming::client as stream;

/// Directory holding the workspace's binaries (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SKIFF_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test>-<hash>
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} is missing: run `cargo build --workspace --bins` first (hack/test does)", p.display());
    p
}

/// The result of a CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: stdout={} stderr={}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts failure whose stderr mentions every needle; returns stderr.
    pub fn fails_with(self, needles: &[&str]) -> String {
        assert_ne!(self.code, 0, "command succeeded but should not: {}", self.stdout);
        for n in needles {
            assert!(self.stderr.contains(n), "stderr {:?} does not mention {n:?}", self.stderr);
        }
        self.stderr
    }
}

pub struct Skiff {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub socket: PathBuf,
    config: Option<PathBuf>,
    /// A command skiffd runs under (e.g. `setpriv` dropping a capability).
    wrapper: Vec<String>,
    child: Option<Child>,
}

impl Skiff {
    /// Starts skiffd on a fresh temp root.
    pub fn start() -> Result<Skiff> {
        Skiff::start_with(|_, config| Ok(config))
    }

    /// Starts skiffd with the default config as `edit` returns it (given the test's temp dir and
    /// the config text), with its registry `config_path` at `<dir>/certs.d`.
    pub fn start_with(edit: impl FnOnce(&Path, String) -> Result<String>) -> Result<Skiff> {
        let dir = tempfile::Builder::new().prefix("skiff-it-").tempdir_in(std::env::temp_dir())?;
        let root = dir.path().join("root");
        let socket = dir.path().join("skiff.sock");
        let default = Command::new(bin("skiffd")).arg("--print-default-config").output()?;
        let certs = dir.path().join("certs.d");
        std::fs::create_dir_all(&certs)?;
        let config = String::from_utf8(default.stdout)?
            .replace("config_path = \"/etc/skiff/certs.d\"", &format!("config_path = \"{}\"", certs.display()))
            .replace("retries = 4", "retries = 3");
        let config = edit(dir.path(), config)?;
        let config_path = dir.path().join("skiffd.toml");
        std::fs::write(&config_path, config)?;
        let mut s = Skiff { dir, root, socket, config: Some(config_path), wrapper: Vec::new(), child: None };
        s.spawn()?;
        Ok(s)
    }

    /// Starts skiffd (default config) under `wrapper`, e.g. `["setpriv", "--bounding-set", "-mknod"]`.
    pub fn start_under(wrapper: &[&str]) -> Result<Skiff> {
        let mut s = Skiff::start()?;
        s.kill9();
        s.wrapper = wrapper.iter().map(|w| w.to_string()).collect();
        s.spawn()?;
        Ok(s)
    }

    /// Writes `<certs.d>/<host>/hosts.toml`.
    pub fn hosts_toml(&self, host: &str, text: &str) -> Result<()> {
        let dir = self.dir.path().join("certs.d").join(host);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("hosts.toml"), text)?;
        Ok(())
    }

    /// Starts skiffd on this root again (after `kill9` or `stop`).
    pub fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("skiffd.log"))?;
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin("skiffd"));
                c
            }
            None => Command::new(bin("skiffd")),
        };
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        // The socket a killed daemon left can answer for a moment (a child it was forking holds it
        // until its exec): ready means the path is a new socket that answers.
        let before = socket_identity(&self.socket);
        let child = cmd
            .arg("--root")
            .arg(&self.root)
            .arg("--socket")
            .arg(&self.socket)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn skiffd")?;
        self.child = Some(child);
        self.wait_ready(before)
    }

    fn wait_ready(&mut self, before: Option<(u64, u64, i64, i64)>) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let new = socket_identity(&self.socket).is_some_and(|now| Some(now) != before);
            if new && std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("skiffd exited {status} during start; log:\n{}", self.log());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("skiffd did not open {} in 20s; log:\n{}", self.socket.display(), self.log())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("skiffd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let pid = c.id() as i32;
        std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().ok()?;
        c.wait().ok()?.code()
    }

    /// Runs the skiff CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Run {
        let out = Command::new(bin("skiff"))
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run skiff");
        Run::from(out)
    }

    /// Runs the skiff CLI with `input` on its stdin.
    pub fn cli_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = Command::new(bin("skiff"))
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run skiff");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        Run::from(child.wait_with_output().expect("wait for skiff"))
    }

    /// A path inside the test's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Digests in the content store, sorted.
    pub fn content(&self) -> Vec<String> {
        let mut v: Vec<String> = self.cli(&["content", "ls", "-q"]).ok().lines().map(str::to_string).collect();
        v.sort();
        v
    }

    pub fn images(&self) -> Vec<String> {
        self.cli(&["images", "ls", "-q"]).ok().lines().map(str::to_string).collect()
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("content/blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }
}

impl Drop for Skiff {
    fn drop(&mut self) {
        if self.child.is_some() {
            for id in self.cli(&["ps", "-a", "-q"]).stdout.lines() {
                let _ = self.cli(&["rm", "-f", id]);
            }
        }
        self.kill9();
        // Whatever a test left running (skiffd killed with containers up): shims, mounts, cgroups.
        reap_containers(&self.root);
    }
}

/// Kills the shims of containers under `root`, unmounts their rootfs and removes their cgroups.
pub fn reap_containers(root: &Path) {
    let Ok(dirs) = std::fs::read_dir(root.join("containers")) else { return };
    for dir in dirs.flatten() {
        let state = dir.path();
        if let Some(pid) = std::fs::read_to_string(state.join("shim.pid")).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            if std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with("skiff-shim")) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
        let id = dir.file_name().to_string_lossy().into_owned();
        // The container's processes die with their pid namespace's init; kill that via the cgroup.
        for cgroup in cgroup_dirs(&id) {
            if let Ok(procs) = std::fs::read_to_string(cgroup.join("cgroup.procs")) {
                for pid in procs.lines() {
                    let _ = Command::new("kill").arg("-9").arg(pid).status();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for cgroup in cgroup_dirs(&id) {
            let _ = std::fs::remove_dir(&cgroup);
        }
        let _ = Command::new("umount").arg("-l").arg(state.join("bundle/rootfs")).stderr(std::process::Stdio::null()).status();
    }
}

/// The cgroup directories of container `id` (cgroupfs: `<mount>/skiff/<id>`) that exist.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let base = Path::new("/sys/fs/cgroup");
    let mut candidates = vec![base.join("skiff").join(id)];
    if let Ok(mounts) = std::fs::read_dir(base) {
        candidates.extend(mounts.flatten().map(|m| m.path().join("skiff").join(id)));
    }
    for c in candidates {
        if c.is_dir() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Mounts whose mount point is under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// The mounts under `dir` that are still there after up to 10 s: a removed container's rootfs
/// is unmounted just after its removal answered (skiffd sweeps it off the caller's path).
pub fn mounts_left_under(dir: &Path) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = mounts_under(dir);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Live skiff-shim processes serving containers under `root`.
pub fn shims_under(root: &Path) -> Vec<i32> {
    let Ok(dirs) = std::fs::read_dir(root.join("containers")) else { return Vec::new() };
    dirs.flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("shim.pid")).ok()?.trim().parse::<i32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with("skiff-shim")))
        .collect()
}

/// Files directly inside a directory (0 when it does not exist).
pub fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}
