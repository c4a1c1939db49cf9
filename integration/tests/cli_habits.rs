//! The skiff CLI as users of docker, nerdctl and podman use it: pipes that close early, Go
//! templates, top-level verbs, `--format` on listings.

use std::path::Path;
use std::process::{Command, Stdio};

use skiff_integration::{bin, Skiff};
use skiff_testimage::{write_layout, ImageSpec};

const IMAGE: &str = "localhost/habits/busybox:1";

fn import(s: &Skiff, name: &str) {
    let mut spec = ImageSpec::busybox(name, Path::new("/usr/bin/busybox")).expect("busybox test image (apt-get install busybox-static)");
    spec.manifest_annotations = [("org.example.z".to_string(), "last".to_string()), ("org.example.a".to_string(), "first".to_string())].into();
    let layout = s.path(&format!("layout-{}", name.replace(['/', ':'], "-")));
    write_layout(&spec, &layout).expect("layout");
    s.cli(&["images", "import", layout.to_str().expect("utf8")]).ok();
}

/// Runs skiff with stdout on a pipe whose reader is already gone, as `skiff ... | head -1` is once
/// head has its line: every write fails with EPIPE. Returns the exit code and stderr.
fn with_closed_stdout(s: &Skiff, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(bin("skiff"))
        .arg("--address")
        .arg(&s.socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run skiff");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let s = Skiff::start().expect("skiffd");
    import(&s, IMAGE);
    let id = s.cli(&["run", "-d", "--name", "piped", IMAGE, "sleep", "30"]).ok().trim().to_string();
    let digest = s.content()[0].clone();
    for args in [
        &["images", "ls"][..],
        &["images", "ls", "-q"],
        &["images", "ls", "-o", "json"],
        &["images", "inspect", IMAGE],
        &["content", "ls"],
        &["content", "get", &digest],
        &["snapshots", "ls"],
        &["ps", "-a"],
        &["containers", "inspect", &id],
        &["containers", "inspect", "--format", "{{.Annotations}}", &id],
        &["logs", &id],
        &["--help"],
    ] {
        let (code, stderr) = with_closed_stdout(&s, args);
        // Exit 0 with nothing on stderr, as ripgrep does: the reader chose to stop reading.
        assert_eq!(code, Some(0), "skiff {args:?}: stderr {stderr:?}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "skiff {args:?}: {stderr}");
        assert_eq!(stderr, "", "skiff {args:?}");
    }

    // A foreground container's output: the CLI ends as docker's does and the container runs on,
    // unless --rm asked for it to go; `exec` leaves its process running too.
    let forever = ["sh", "-c", "while true; do echo y; done"];
    let (code, stderr) = with_closed_stdout(&s, &[&["run", "--rm", "--name", "gone", IMAGE][..], &forever].concat());
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    let (code, stderr) = with_closed_stdout(&s, &[&["run", "--name", "kept", IMAGE][..], &forever].concat());
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    let (code, stderr) = with_closed_stdout(&s, &[&["exec", "kept"][..], &forever].concat());
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    let listed: serde_json::Value = serde_json::from_str(&s.cli(&["ps", "-a", "-o", "json"]).ok()).expect("json");
    let states: Vec<(&str, &str)> = listed.as_array().expect("rows").iter().map(|c| (c["name"].as_str().unwrap_or(""), c["status"].as_str().unwrap_or(""))).collect();
    assert!(states.contains(&("kept", "running")) && !states.iter().any(|(n, _)| *n == "gone"), "{states:?}");
    s.cli(&["rm", "-f", &id, "kept"]).ok();
}
