//! The skiff CLI as users of docker, nerdctl and podman use it: pipes that close early, Go
//! templates, top-level verbs, `--format` on listings.

use std::path::Path;
use std::process::{Command, Stdio};

use skiff_integration::registry::Registry;
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

#[test]
fn templates_print_maps_and_lists_as_go_does() {
    let s = Skiff::start().expect("skiffd");
    import(&s, IMAGE);
    let annotations = s.cli(&["images", "inspect", IMAGE, "--format", "{{.Annotations}}"]).ok();
    assert_eq!(annotations.trim(), "map[org.example.a:first org.example.z:last]");
    let ranged = s.cli(&["images", "inspect", IMAGE, "--format", "{{range $k, $v := .Annotations}}{{$k}}={{$v}};{{end}}"]).ok();
    assert_eq!(ranged.trim(), "org.example.a=first;org.example.z=last;", "range visits keys sorted");
    let id = s.cli(&["run", "-d", "-l", "z=26", "-l", "a=1", IMAGE, "sleep", "30"]).ok().trim().to_string();
    let out = s.cli(&["containers", "inspect", &id, "--format", "{{.Labels}} {{.Command}} {{.Missing}}"]).ok();
    assert_eq!(out.trim(), "map[a:1 z:26] [sleep 30] <no value>");
    s.cli(&["rm", "-f", &id]).ok();
}

#[test]
fn listings_take_format_per_row_and_json_lines() {
    let s = Skiff::start().expect("skiffd");
    import(&s, IMAGE);
    s.cli(&["tag", IMAGE, "example.com/habits/other:2"]).ok();
    let table = s.cli(&["images"]).ok();
    let mut lines = table.lines();
    assert_eq!(lines.next().map(|h| h.split_whitespace().collect::<Vec<_>>()), Some(vec!["NAME", "IMAGE", "ID", "TYPE", "PLATFORMS", "SIZE", "CREATED"]));
    let row = lines.next().expect("a row");
    let digest = s.cli(&["images", "inspect", IMAGE, "--format", "{{.Target.Digest}}"]).ok();
    let short = &digest.trim().trim_start_matches("sha256:")[..12];
    assert!(row.contains(short) && row.ends_with(" ago"), "short id and relative time: {row}");
    assert!(!row.contains(digest.trim()), "not the full digest: {row}");
    assert_eq!(s.cli(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok(), "example.com/habits/other:2\nlocalhost/habits/busybox:1\n");
    assert_eq!(s.cli(&["images", "ls", "--format", "{{.Name}}"]).ok(), s.cli(&["images", "-q"]).ok());
    for line in s.cli(&["images", "--format", "json"]).ok().lines() {
        let doc: serde_json::Value = serde_json::from_str(line).expect("a JSON object a line");
        assert!(doc["CreatedAt"].as_str().is_some_and(|t| t.contains('T')), "absolute time in JSON: {doc}");
        assert_eq!(doc["ID"].as_str().map(str::len), Some(12));
    }
    let listed: serde_json::Value = serde_json::from_str(&s.cli(&["images", "ls", "-o", "json"]).ok()).expect("--output json is one array");
    assert!(listed[0]["created_at"].as_str().is_some_and(|t| t.contains('T')));
    let custom = s.cli(&["images", "--format", r"table {{.ID}}\t{{.Repository}}"]).ok();
    assert!(custom.starts_with("ID             REPOSITORY\n"), "{custom}");

    assert_eq!(s.cli(&["content", "ls", "--format", "{{.Digest}}"]).ok(), s.cli(&["content", "ls", "-q"]).ok());
    let kinds = s.cli(&["snapshots", "ls", "--format", "{{.Kind}}"]).ok();
    assert!(!kinds.is_empty() && kinds.lines().all(|k| k == "committed"), "{kinds}");
    let id = s.cli(&["run", "-d", "--name", "listed", IMAGE, "sleep", "30"]).ok().trim().to_string();
    assert_eq!(s.cli(&["ps", "--format", "{{.Name}} {{.Status}} {{.ID}}"]).ok(), format!("listed running {id}\n"));
    let row: serde_json::Value = serde_json::from_str(s.cli(&["containers", "ls", "--format", "json"]).ok().trim()).expect("json line");
    assert_eq!(row["Name"], "listed");
    s.cli(&["rm", "-f", &id]).ok();
}

#[test]
fn docker_s_top_level_verbs() {
    let s = Skiff::start().expect("skiffd");
    import(&s, IMAGE);
    // inspect: a container whose name matches wins; --type picks; else an image.
    s.cli(&["tag", IMAGE, "docker.io/library/dual:latest"]).ok();
    let id = s.cli(&["run", "-d", "--name", "dual", IMAGE, "sleep", "30"]).ok().trim().to_string();
    assert_eq!(s.cli(&["inspect", "dual", "--format", "{{.Id}}"]).ok().trim(), id);
    assert_eq!(s.cli(&["inspect", "--type", "image", "dual", "--format", "{{.Name}}"]).ok().trim(), "docker.io/library/dual:latest");
    let both: serde_json::Value = serde_json::from_str(&s.cli(&["inspect", IMAGE, &id]).ok()).expect("one JSON array, as docker prints");
    assert_eq!((both[0]["Name"].as_str(), both[1]["Id"].as_str()), (Some(IMAGE), Some(id.as_str())));
    s.cli(&["inspect", "nothing-here"]).fails_with(&["no container or image \"nothing-here\""]);
    s.cli(&["inspect", "--type", "container", IMAGE]).fails_with(&["no container"]);
    s.cli(&["rm", "-f", &id]).ok();
    assert_eq!(s.cli(&["rmi", "dual"]).ok().trim(), "docker.io/library/dual:latest");

    // save / load, as docker's: -o FILE, then stdin or -i FILE.
    let archive = s.path("saved.tar");
    s.cli(&["save", "-o", archive.to_str().expect("utf8"), IMAGE]).ok();
    s.cli(&["rmi", IMAGE]).ok();
    let loaded = s.cli_stdin(&["load", "-q"], &std::fs::read(&archive).expect("archive")).ok();
    assert_eq!(loaded, format!("Loaded image: {IMAGE}\n"));
    s.cli(&["rmi", IMAGE]).ok();
    assert_eq!(s.cli(&["load", "-i", archive.to_str().expect("utf8"), "-q"]).ok(), format!("Loaded image: {IMAGE}\n"));

    // push / pull through a real registry.
    let reg = Registry::plain().expect("registry");
    let remote = format!("{}/habits/busybox:1", reg.host);
    s.cli(&["push", "--plain-http", "-q", IMAGE, &remote]).ok();
    s.cli(&["pull", "--plain-http", "-q", &remote]).ok();
    assert!(s.images().contains(&remote), "{:?}", s.images());

    // info counts what skiffd holds; version needs no daemon.
    let id = s.cli(&["run", "-d", IMAGE, "sleep", "30"]).ok().trim().to_string();
    let info: serde_json::Value = serde_json::from_str(&s.cli(&["info", "-o", "json"]).ok()).expect("info json");
    assert_eq!((info["Images"].as_u64(), info["Containers"].as_u64(), info["ContainersByStatus"]["running"].as_u64()), (Some(2), Some(1), Some(1)));
    assert!(info["SnapshotsBytes"].as_u64().is_some_and(|b| b > 0) && info["Snapshotter"].as_str().is_some_and(|b| !b.is_empty()), "{info}");
    assert!(s.cli(&["info"]).ok().contains("Containers: 1 (1 running)"));
    s.cli(&["rm", "-f", &id]).ok();
    let version = Command::new(bin("skiff")).args(["--address", "/nonexistent.sock", "version", "--format", "{{.Client.Version}}"]).output().expect("version");
    assert!(version.status.success() && !String::from_utf8_lossy(&version.stdout).trim().is_empty());
}
