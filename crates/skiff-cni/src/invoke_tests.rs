use std::os::unix::fs::PermissionsExt;

use super::*;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn env(command: Command) -> PluginEnv<'static> {
    PluginEnv { command, container_id: "sb1", netns: "/run/netns/x", ifname: "eth0", args: "IgnoreUnknown=1;K8S_POD_NAME=web", path: "/usr/lib/cni:/opt/cni/bin" }
}

const WHO: PluginRef<'static> = PluginRef { plugin: "probe", network: "pods" };

#[test]
fn variables_reach_the_child_and_only_the_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = dir.path().join("seen");
    let exe = script(dir.path(), "probe", &format!("env | grep '^CNI_' | sort > {0}\ncat >> {0}\necho '{{\"cniVersion\":\"1.0.0\"}}'", seen.display()));
    let out = run(WHO, &exe, br#"{"type":"probe"}"#, &env(Command::Add), Duration::from_secs(10)).expect("run");
    assert_eq!(out, b"{\"cniVersion\":\"1.0.0\"}\n");
    let seen = std::fs::read_to_string(&seen).expect("read");
    assert_eq!(
        seen,
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web\nCNI_COMMAND=ADD\nCNI_CONTAINERID=sb1\nCNI_IFNAME=eth0\nCNI_NETNS=/run/netns/x\nCNI_PATH=/usr/lib/cni:/opt/cni/bin\n{\"type\":\"probe\"}"
    );
    for var in ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"] {
        assert!(std::env::var_os(var).is_none(), "{var} leaked into this process");
    }
}

#[test]
fn an_error_object_becomes_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = script(dir.path(), "probe", r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"boom","details":"bridge gone"}'; exit 1"#);
    match run(WHO, &exe, b"{}", &env(Command::Del), Duration::from_secs(10)) {
        Err(CniError::Plugin { plugin, network, command, code, msg, details }) => {
            assert_eq!((plugin.as_str(), network.as_str(), command, code, msg.as_str(), details.as_str()), ("probe", "pods", Command::Del, 7, "boom", "bridge gone"));
        }
        other => panic!("want a plugin error, got {other:?}"),
    }
}

#[test]
fn a_failure_without_an_error_object_carries_stderr_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = script(dir.path(), "probe", "echo 'panic: nil map' >&2; exit 3");
    let err = run(WHO, &exe, b"{}", &env(Command::Add), Duration::from_secs(10)).expect_err("fails");
    assert!(matches!(err, CniError::PluginFailed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("exit status 3") && msg.contains("panic: nil map") && msg.contains("\"probe\""), "{msg}");
}

#[test]
fn a_plugin_that_ignores_stdin_and_exits_is_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = script(dir.path(), "probe", "echo '{}'");
    let big = vec![b' '; 1 << 20];
    assert_eq!(run(WHO, &exe, &big, &env(Command::Del), Duration::from_secs(10)).expect("run"), b"{}\n");
}

#[test]
fn a_hung_plugin_is_killed_with_its_children_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let exe = script(dir.path(), "probe", &format!("sleep 60 &\necho $! > {}\nwait", pidfile.display()));
    let started = Instant::now();
    let err = run(WHO, &exe, b"{}", &env(Command::Add), Duration::from_millis(400)).expect_err("times out");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(matches!(err, CniError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("\"probe\"") && err.to_string().contains("ADD"), "{err}");
    let grandchild = std::fs::read_to_string(&pidfile).expect("pid").trim().to_string();
    // The delegate got the group's SIGKILL: gone, or a zombie waiting for a reaper.
    let gone = (0..50).any(|_| {
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).ok();
        let dead = state.as_deref().is_none_or(|s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')));
        if !dead {
            std::thread::sleep(Duration::from_millis(20));
        }
        dead
    });
    assert!(gone, "sleep {grandchild} outlived the timeout");
}

#[test]
fn text_file_busy_is_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = script(dir.path(), "probe", "echo '{}'");
    // Held open for writing, as by an installer still copying it: exec fails with ETXTBSY until it closes.
    let writer = std::fs::OpenOptions::new().write(true).open(&exe).expect("open for write");
    let busy = std::process::Command::new(&exe).output().expect_err("busy while open for writing");
    assert_eq!(busy.raw_os_error(), Some(nix::errno::Errno::ETXTBSY as i32));
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        drop(writer);
    });
    assert_eq!(run(WHO, &exe, b"{}", &env(Command::Add), Duration::from_secs(10)).expect("retried"), b"{}\n");
    closer.join().expect("closer");
}

#[test]
fn plugins_are_found_in_dir_order_and_must_be_executable() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    std::fs::write(a.path().join("bridge"), "not executable").expect("write");
    std::fs::create_dir(a.path().join("portmap")).expect("mkdir");
    let in_b = script(b.path(), "bridge", "true");
    script(b.path(), "portmap", "true");
    let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
    assert_eq!(find_plugin(&dirs, "bridge"), Some(in_b));
    assert_eq!(find_plugin(&dirs, "portmap"), Some(b.path().join("portmap")));
    assert_eq!(find_plugin(&dirs, "tuning"), None);
    let first = script(a.path(), "tuning", "true");
    script(b.path(), "tuning", "true");
    assert_eq!(find_plugin(&dirs, "tuning"), Some(first));
}
