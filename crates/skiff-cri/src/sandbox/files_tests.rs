use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use skiff_types::{ErrorKind, HasKind};
use tempfile::TempDir;

use super::*;

/// A pod dir under a fresh temp root, its files removed and any tmpfs detached when dropped,
/// whether the test passed or not.
struct Pod {
    root: TempDir,
}

impl Pod {
    fn new() -> Pod {
        Pod { root: tempfile::tempdir().expect("temp dir") }
    }

    /// Not made yet: `make_pod_files` must make it.
    fn dir(&self) -> PathBuf {
        self.root.path().join("pod")
    }

    fn req<'a>(&self, dir: &'a Path) -> PodFilesRequest<'a> {
        PodFilesRequest { dir, hostname: "web-0", dns: None, host_network: false, host_ipc: false, shm_size: 0 }
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = remove_pod_files(&self.dir());
        // Should remove_pod_files be wrong, the tmpfs still must not outlive the test.
        while umount2(&self.dir().join(SHM), MntFlags::MNT_DETACH).is_ok() {}
    }
}

/// Host files the copies come from, chosen by the test.
struct Host {
    dir: TempDir,
}

impl Host {
    fn with(hosts: Option<&str>, resolv_conf: Option<&str>) -> Host {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [("hosts", hosts), ("resolv.conf", resolv_conf)] {
            if let Some(text) = text {
                fs::write(dir.path().join(name), text).expect("host file");
            }
        }
        Host { dir }
    }

    fn make(&self, req: &PodFilesRequest) -> Result<PodFiles, FilesError> {
        let (hosts, resolv_conf) = (self.dir.path().join("hosts"), self.dir.path().join("resolv.conf"));
        make_with(req, &HostFiles { hosts: &hosts, resolv_conf: &resolv_conf })
    }
}

/// The (fstype, mount options) of every mount on `path`, bottom first, from mountinfo.
fn mounts_on(path: &Path) -> Vec<(String, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let path = path.to_str().expect("utf-8 path");
    info.lines()
        .filter_map(|line| {
            let (mine, theirs) = line.split_once(" - ")?;
            let fields: Vec<&str> = mine.split(' ').collect();
            (fields.get(4) == Some(&path)).then(|| (theirs.split(' ').next().unwrap_or("").to_owned(), fields.get(5).unwrap_or(&"").to_string()))
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn dns(servers: &[&str], searches: &[&str], options: &[&str]) -> cri::DnsConfig {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    cri::DnsConfig { servers: own(servers), searches: own(searches), options: own(options) }
}

#[test]
fn resolv_conf_is_written_from_the_dns_config() {
    let pod = Pod::new();
    let dir = pod.dir();
    let config = dns(&["10.96.0.10", "fd00::a"], &["default.svc.cluster.local", "svc.cluster.local", "cluster.local"], &["ndots:5", "edns0"]);
    let files = Host::with(None, Some("nameserver 192.0.2.1\n")).make(&PodFilesRequest { dns: Some(&config), ..pod.req(&dir) }).expect("make");
    assert_eq!(files.resolv_conf, dir.join("resolv.conf"));
    assert_eq!(
        fs::read_to_string(&files.resolv_conf).expect("read"),
        "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5 edns0\n"
    );
    for path in [&files.hostname, &files.hosts, &files.resolv_conf] {
        assert_eq!(mode(path), 0o644, "{}", path.display());
    }
    assert_eq!(mode(&dir), 0o700);
    // Only the three files and the shm dir: no temp file stays.
    let mut names: Vec<String> = fs::read_dir(&dir).expect("list").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["hostname", "hosts", "resolv.conf", "shm"]);
}

#[test]
fn resolv_conf_copies_the_hosts_without_a_dns_config() {
    let host = Host::with(None, Some("nameserver 192.0.2.1\nsearch example.org\n"));
    for config in [None, Some(cri::DnsConfig::default())] {
        let pod = Pod::new();
        let dir = pod.dir();
        let files = host.make(&PodFilesRequest { dns: config.as_ref(), host_ipc: true, ..pod.req(&dir) }).expect("make");
        assert_eq!(fs::read_to_string(&files.resolv_conf).expect("read"), "nameserver 192.0.2.1\nsearch example.org\n");
    }
    // A host without the file gives an empty one.
    let pod = Pod::new();
    let dir = pod.dir();
    let files = Host::with(None, None).make(&PodFilesRequest { host_ipc: true, ..pod.req(&dir) }).expect("make");
    assert_eq!(fs::read(&files.resolv_conf).expect("read"), b"");
    // The public entry reads the real /etc/resolv.conf.
    let pod = Pod::new();
    let dir = pod.dir();
    let files = make_pod_files(&PodFilesRequest { host_ipc: true, ..pod.req(&dir) }).expect("make");
    assert_eq!(fs::read(&files.resolv_conf).expect("read"), fs::read("/etc/resolv.conf").unwrap_or_default());
}

#[test]
fn bad_dns_entries_are_refused_before_anything_is_made() {
    let long: Vec<String> = (0..20).map(|i| format!("{i:02}{}", "d".repeat(100))).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let many: Vec<String> = (0..33).map(|i| format!("s{i}.example")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases = [
        (dns(&["10.0.0.300"], &[], &[]), "dns_config.servers[0]"),
        (dns(&["10.0.0.1", ""], &[], &[]), "dns_config.servers[1]"),
        (dns(&["10.0.0.1\n"], &[], &[]), "dns_config.servers[0]"),
        (dns(&[], &["a.example\nnameserver 192.0.2.9"], &[]), "dns_config.searches[0]"),
        (dns(&[], &["a.example b.example"], &[]), "dns_config.searches[0]"),
        (dns(&[], &[""], &[]), "dns_config.searches[0]"),
        (dns(&[], &[], &["ndots:5", ""]), "dns_config.options[1]"),
        (dns(&[], &[], &["ndots:5\0"]), "dns_config.options[0]"),
        (dns(&[], &[], &["rotate\r"]), "dns_config.options[0]"),
        (dns(&[], &many, &[]), "dns_config.searches"),
        (dns(&[], &long, &[]), "dns_config.searches"),
    ];
    for (config, field) in cases {
        let pod = Pod::new();
        let dir = pod.dir();
        let err = make_pod_files(&PodFilesRequest { dns: Some(&config), ..pod.req(&dir) }).expect_err(field);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().starts_with(&format!("invalid {field}: ")), "{err}");
        assert!(!dir.exists(), "{field}: a refused request made {}", dir.display());
    }
}

#[test]
fn dns_limits_are_inclusive() {
    let many: Vec<String> = (0..MAX_SEARCHES).map(|i| format!("s{i}.example")).collect();
    assert!(resolv_conf(&cri::DnsConfig { searches: many, ..Default::default() }).is_ok());
    // 2048 characters joined by spaces: 31 entries of 63, one of 64 and 31 spaces.
    let mut full: Vec<String> = (0..31).map(|i| format!("{i:02}{}", "x".repeat(61))).collect();
    full.push("y".repeat(64));
    assert_eq!(full.join(" ").len(), MAX_SEARCH_CHARS);
    assert!(resolv_conf(&cri::DnsConfig { searches: full.clone(), ..Default::default() }).is_ok());
    full[31].push('y');
    assert!(resolv_conf(&cri::DnsConfig { searches: full, ..Default::default() }).is_err());
}

#[test]
fn hosts_is_localhost_for_a_pod_and_the_hosts_for_host_network() {
    let host = Host::with(Some("127.0.0.1 localhost\n192.0.2.7 node-a\n"), None);
    let pod = Pod::new();
    let dir = pod.dir();
    let files = host.make(&PodFilesRequest { host_ipc: true, ..pod.req(&dir) }).expect("make");
    assert_eq!(
        fs::read_to_string(&files.hosts).expect("read"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    );
    let pod = Pod::new();
    let dir = pod.dir();
    let files = host.make(&PodFilesRequest { host_network: true, host_ipc: true, ..pod.req(&dir) }).expect("make");
    assert_eq!(fs::read_to_string(&files.hosts).expect("read"), "127.0.0.1 localhost\n192.0.2.7 node-a\n");
}

#[test]
fn hostname_is_the_pods_or_the_nodes() {
    let node = format!("{}\n", nix::sys::utsname::uname().expect("uname").nodename().to_string_lossy());
    let cases = [("web-0.example", false, "web-0.example\n".to_owned()), ("", false, node.clone()), ("anything_at_all", true, node.clone()), ("", true, node)];
    for (hostname, host_network, want) in cases {
        let pod = Pod::new();
        let dir = pod.dir();
        let files = make_pod_files(&PodFilesRequest { hostname, host_network, host_ipc: true, ..pod.req(&dir) }).expect("make");
        assert_eq!(fs::read_to_string(&files.hostname).expect("read"), want, "{hostname:?} host network {host_network}");
    }
}

#[test]
fn bad_hostnames_are_refused_naming_the_field() {
    let long = format!("{}.{}", "a".repeat(40), "b".repeat(24));
    assert_eq!(long.len(), 65);
    for hostname in ["a_b", "-a", "a-", "a..b", ".a", "a.", "a b", "a\nb", "a\0b", "ünï", long.as_str()] {
        let pod = Pod::new();
        let dir = pod.dir();
        let err = make_pod_files(&PodFilesRequest { hostname, ..pod.req(&dir) }).expect_err(hostname);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().starts_with("invalid hostname: "), "{err}");
        assert!(!dir.exists(), "{hostname:?} made {}", dir.display());
    }
    assert!(check_hostname(&"a".repeat(63)).is_ok());
    assert!(check_hostname(&format!("{}.{}", "a".repeat(40), "b".repeat(23))).is_ok());
}

#[test]
fn shm_is_a_tmpfs_of_the_size_asked() {
    for (asked, want) in [(8 << 20, 8 << 20), (0, DEFAULT_SHM_SIZE)] {
        let pod = Pod::new();
        let dir = pod.dir();
        let files = make_pod_files(&PodFilesRequest { shm_size: asked, ..pod.req(&dir) }).expect("make");
        assert_eq!(files.shm, dir.join("shm"));
        let mounts = mounts_on(&files.shm);
        assert_eq!(mounts.len(), 1, "{mounts:?}");
        let (fstype, options) = &mounts[0];
        assert_eq!(fstype, "tmpfs");
        for flag in ["nosuid", "nodev", "noexec"] {
            assert!(options.split(',').any(|o| o == flag), "{flag} missing from {options}");
        }
        let stat = nix::sys::statfs::statfs(&files.shm).expect("statfs");
        assert_eq!(stat.blocks() * stat.block_size() as u64, want);
        assert_eq!(mode(&files.shm), 0o1777);
    }
}

#[test]
fn host_ipc_uses_the_hosts_shm_and_mounts_nothing() {
    let pod = Pod::new();
    let dir = pod.dir();
    let files = make_pod_files(&PodFilesRequest { host_ipc: true, ..pod.req(&dir) }).expect("make");
    assert_eq!(files.shm, Path::new("/dev/shm"));
    assert!(!dir.join("shm").exists());
    assert!(mounts_on(&dir.join("shm")).is_empty());
}

#[test]
fn making_again_leaves_one_tmpfs() {
    let pod = Pod::new();
    let dir = pod.dir();
    make_pod_files(&pod.req(&dir)).expect("make");
    fs::write(dir.join("shm/left"), "x").expect("write into shm");
    let files = make_pod_files(&PodFilesRequest { hostname: "web-1", ..pod.req(&dir) }).expect("make again");
    assert_eq!(mounts_on(&files.shm).len(), 1);
    assert!(!files.shm.join("left").exists(), "the old tmpfs is still seen");
    assert_eq!(fs::read_to_string(&files.hostname).expect("read"), "web-1\n");
}

#[test]
fn remove_unmounts_and_removes_and_may_repeat() {
    let pod = Pod::new();
    let dir = pod.dir();
    let files = make_pod_files(&pod.req(&dir)).expect("make");
    remove_pod_files(&dir).expect("remove");
    assert!(mounts_on(&files.shm).is_empty());
    assert_eq!(fs::read_dir(&dir).expect("list").count(), 0, "files stay in {}", dir.display());
    remove_pod_files(&dir).expect("remove again");
    remove_pod_files(&pod.root.path().join("never-made")).expect("remove of a dir never made");
}

#[test]
fn remove_takes_a_half_made_dir() {
    let pod = Pod::new();
    let dir = pod.dir();
    fs::create_dir_all(dir.join("shm")).expect("dirs");
    fs::write(dir.join("hostname"), "web-0\n").expect("hostname");
    fs::write(dir.join(".hosts.tmp"), "127.0.0.1").expect("temp file a crash left");
    remove_pod_files(&dir).expect("remove");
    assert_eq!(fs::read_dir(&dir).expect("list").count(), 0);
}

#[test]
fn a_failure_midway_mounts_nothing() {
    let pod = Pod::new();
    let dir = pod.dir();
    // A non-empty dir where resolv.conf goes: the rename onto it fails after two files are written.
    fs::create_dir_all(dir.join("resolv.conf/in-the-way")).expect("dirs");
    let err = make_pod_files(&pod.req(&dir)).expect_err("rename onto a dir");
    assert!(matches!(err, FilesError::Io { .. }), "{err}");
    assert!(err.to_string().contains("resolv.conf"), "{err}");
    assert!(mounts_on(&dir.join("shm")).is_empty());
    assert!(!dir.join(".resolv.conf.tmp").exists());
}
