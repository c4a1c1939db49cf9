//! What a local user, a hostile image and bad ids found: the store is not readable by other users,
//! and ids that would leave a process root are refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use skiff_integration::Skiff;
use skiff_testimage::{files_layer, write_layout, ImageSpec};

const IMAGE: &str = "localhost/test/busybox:1";
const PROBE: &str = "skiff-probe";

fn busybox(s: &Skiff, spec: &ImageSpec) {
    let layout = s.path(&format!("layout-{}", spec.name.replace(['/', ':'], "-")));
    write_layout(spec, &layout).expect("layout");
    s.cli(&["images", "import", layout.to_str().expect("utf8")]).ok();
}

fn image() -> ImageSpec {
    ImageSpec::busybox(IMAGE, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)")
}

/// A non-root user of the host, made for the test.
fn probe_user() -> &'static str {
    if !Command::new("id").arg(PROBE).output().is_ok_and(|o| o.status.success()) {
        let made = Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE]).status().expect("useradd");
        assert!(made.success() || Command::new("id").arg(PROBE).output().is_ok_and(|o| o.status.success()), "useradd {PROBE}");
    }
    PROBE
}

/// Runs `cmd` as the probe user; true when it succeeded.
fn as_probe(cmd: &[&str]) -> bool {
    let user = probe_user();
    Command::new("setpriv").args(["--reuid", user, "--regid", user, "--clear-groups", "--"]).args(cmd).output().expect("setpriv").status.success()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

#[test]
fn another_user_of_the_host_reads_nothing_of_the_store() {
    let mut s = Skiff::start().expect("skiffd");
    // The harness's temp dir is private; open it up as /var/lib is, so only Skiff's own modes count.
    std::fs::set_permissions(s.root.parent().expect("parent"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    busybox(&s, &image());
    let id = s.cli(&["run", "-d", "-e", "SECRET=hunter2", IMAGE, "sleep", "60"]).ok().trim().to_string();
    let root = s.root.clone();
    let config = root.join("containers").join(&id).join("bundle/config.json");
    assert!(std::fs::read_to_string(&config).expect("config.json").contains("hunter2"));
    for (what, cmd) in [
        ("list the root", vec!["ls", root.to_str().expect("utf8")]),
        ("list containers", vec!["ls", root.join("containers").to_str().expect("utf8")]),
        ("read a container's config.json", vec!["cat", config.to_str().expect("utf8")]),
        ("list a running container's rootfs", vec!["ls", root.join("containers").join(&id).join("bundle/rootfs").to_str().expect("utf8")]),
        ("list the blobs", vec!["ls", root.join("content/blobs/sha256").to_str().expect("utf8")]),
        ("list the metadata", vec!["ls", root.join("metadata").to_str().expect("utf8")]),
        ("list the snapshots", vec!["ls", root.join("snapshots").to_str().expect("utf8")]),
    ] {
        assert!(!as_probe(&cmd), "another user could {what}");
    }
    assert!(as_probe(&["true"]), "the probe itself runs");
    assert_eq!(mode(&root), 0o711);
    for dir in ["containers", "content", "metadata", "snapshots"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&root.join("containers").join(&id)), 0o700);
    assert_eq!(mode(&config), 0o600);
    s.cli(&["rm", "-f", &id]).ok();

    // A root made with wider modes (an older skiffd, or by hand) is narrowed at start.
    s.stop();
    for dir in [root.clone(), root.join("content"), root.join("snapshots"), root.join("containers")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    s.spawn().expect("restart");
    assert_eq!(mode(&root), 0o711);
    for dir in ["containers", "content", "snapshots"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir} after a restart");
    }
}

#[test]
fn ids_that_would_leave_a_process_root_are_refused() {
    let s = Skiff::start().expect("skiffd");
    let mut spec = image();
    // An image whose own passwd and group give a user and a group the id (uid_t)-1.
    spec.layers.push(
        files_layer(&[("etc/passwd", b"root:x:0:0::/root:/bin/sh\nevil:x:4294967295:0::/:/bin/sh\n"), ("etc/group", b"root:x:0:\nwheel:x:4294967295:\n")], true)
            .expect("layer"),
    );
    busybox(&s, &spec);
    assert_eq!(s.cli(&["run", "--rm", "-u", "2147483647", IMAGE, "id", "-u"]).ok(), "2147483647\n", "the largest id runs");
    for user in ["4294967295", "0:4294967295", "2147483648", "evil", "root:wheel"] {
        s.cli(&["run", "--rm", "-u", user, IMAGE, "id"]).fails_with(&["out of range", "0-2147483647"]);
        s.cli(&["run", "--rm", "--runtime", "runc", "-u", user, IMAGE, "id"]).fails_with(&["out of range"]);
    }
    let id = s.cli(&["run", "-d", IMAGE, "sleep", "60"]).ok().trim().to_string();
    s.cli(&["exec", "-u", "4294967295", &id, "id"]).fails_with(&["out of range"]);
    s.cli(&["rm", "-f", &id]).ok();
    assert_eq!(s.cli(&["ps", "-aq"]).ok(), "", "refused creates leave no container");
}
