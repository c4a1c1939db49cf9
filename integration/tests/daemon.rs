//! Daemon lifecycle: crash consistency under kill -9, the store lock, clean shutdown.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use skiff_integration::{bin, count_files, Skiff};
use skiff_testimage::{random_layer, write_oci_archive, ImageSpec};

/// kill -9 in the middle of an import: on restart the store opens cleanly and holds the whole
/// image or none of it.
#[test]
fn kill9_during_import_leaves_all_or_nothing() {
    let mut s = Skiff::start().expect("skiffd");
    let archive = s.path("big.tar");
    let mut spec = ImageSpec::busybox("example.com/big:1", std::path::Path::new("/usr/bin/busybox")).expect("busybox");
    spec.layers = (0..4).map(|i| random_layer(i + 10, 24 << 20)).collect::<anyhow::Result<_>>().expect("layers");
    write_oci_archive(&spec, &archive).expect("archive");

    let mut outcomes = Vec::new();
    // Kill at several moments: as soon as ingest starts, and after a few growing delays.
    for delay_ms in [0u64, 40, 120, 250] {
        let mut child = std::process::Command::new(bin("skiff"))
            .args(["--address", s.socket.to_str().expect("utf8"), "images", "import", "-q", archive.to_str().expect("utf8")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("skiff import");
        let ingest = s.root.join("content/ingest");
        let deadline = Instant::now() + Duration::from_secs(10);
        while count_files(&ingest) == 0 && Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        s.kill9();
        let _ = child.wait();
        s.spawn().expect("restart after kill -9");
        let images = s.images();
        let content = s.content();
        if images.is_empty() {
            assert!(content.is_empty(), "no image, yet content left behind: {content:?}");
            outcomes.push("none");
        } else {
            assert_eq!(images, vec!["example.com/big:1"]);
            assert!(s.cli(&["content", "verify"]).ok().contains("verified 6 blob(s)"));
            s.cli(&["images", "inspect", "example.com/big:1"]).ok();
            outcomes.push("whole");
            s.cli(&["images", "rm", "example.com/big:1"]).ok();
            assert!(s.content().is_empty());
        }
        assert_eq!(count_files(&s.root.join("content/ingest")), 0, "temp files cleaned on start");
    }
    eprintln!("kill -9 outcomes by delay: {outcomes:?}");
    assert!(outcomes.contains(&"none"), "at least one kill landed mid-import: {outcomes:?}");
    // And the daemon still imports normally afterwards.
    s.cli(&["images", "import", "-q", archive.to_str().expect("utf8")]).ok();
    assert_eq!(s.images(), vec!["example.com/big:1"]);
}

#[test]
fn one_daemon_per_root_and_clean_shutdown() {
    let mut s = Skiff::start().expect("skiffd");
    let mode = std::fs::metadata(&s.socket).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let second = std::process::Command::new(bin("skiffd"))
        .args(["--root", s.root.to_str().expect("utf8"), "--socket", s.path("other.sock").to_str().expect("utf8")])
        .output()
        .expect("second skiffd");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another process"), "{err}");
    assert_eq!(s.stop(), Some(0), "SIGTERM exits 0");
    assert!(!s.socket.exists(), "socket removed on shutdown");

    let cfg = s.path("bad.toml");
    std::fs::write(&cfg, "root = \"/tmp/x\"\nnonsense = 1\n").expect("write");
    let bad = std::process::Command::new(bin("skiffd")).args(["--config", cfg.to_str().expect("utf8")]).output().expect("skiffd");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nonsense"));
}
