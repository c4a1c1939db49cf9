use super::*;

const LIST: &str = r#"{"cniVersion":"1.0.0","name":"pods","plugins":[
    {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local","subnet":"10.88.0.0/16"}},
    {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write config");
}

#[test]
fn conflist_parses_plugins_in_order_with_declared_capabilities() {
    let list = NetworkConfigList::from_list_bytes(LIST.as_bytes(), Path::new("10-pods.conflist")).expect("parse");
    assert_eq!(list.name, "pods");
    assert_eq!(list.cni_version, "1.0.0");
    let types: Vec<_> = list.plugins.iter().map(|p| p.plugin_type.as_str()).collect();
    assert_eq!(types, ["bridge", "portmap"]);
    assert!(list.plugins[0].capabilities.is_empty());
    // Only capabilities set to true count.
    assert_eq!(list.plugins[1].capabilities.iter().collect::<Vec<_>>(), ["portMappings"]);
    assert_eq!(list.bytes, LIST.as_bytes(), "the cache keeps the file's own bytes");
    assert_eq!(list.plugins[0].raw["ipam"]["subnet"], "10.88.0.0/16");
}

#[test]
fn single_plugin_conf_becomes_a_list_of_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "10-single.conf", r#"{"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"br9"}"#);
    let list = load_dir(dir.path()).expect("load");
    assert_eq!(list.name, "single");
    assert_eq!(list.cni_version, "0.4.0");
    assert_eq!(list.plugins.len(), 1);
    assert_eq!(list.plugins[0].plugin_type, "bridge");
    assert_eq!(list.plugins[0].raw["bridge"], "br9");
    // The bytes are a list again, as libcni's upconversion makes them: a DEL from the cache parses them as one.
    let again = NetworkConfigList::from_list_bytes(&list.bytes, Path::new("cache")).expect("reparse the upconverted list");
    assert_eq!(again.plugins, list.plugins);
    assert_eq!(again.name, "single");
}

#[test]
fn json_extension_is_a_single_plugin_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "net.json", r#"{"cniVersion":"1.0.0","name":"j","type":"ptp"}"#);
    assert_eq!(load_dir(dir.path()).expect("load").plugins[0].plugin_type, "ptp");
}

#[test]
fn first_file_by_name_wins_whatever_its_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20-b.conflist", &LIST.replace("\"pods\"", "\"second\""));
    write(dir.path(), "10-a.conf", r#"{"cniVersion":"1.0.0","name":"first","type":"bridge"}"#);
    write(dir.path(), "30-c.json", r#"{"cniVersion":"1.0.0","name":"third","type":"bridge"}"#);
    write(dir.path(), "00-ignored.txt", "not a config");
    std::fs::create_dir(dir.path().join("05-dir.conflist")).expect("mkdir");
    assert_eq!(config_files(dir.path()).expect("list").len(), 3);
    assert_eq!(load_dir(dir.path()).expect("load").name, "first");
    std::fs::remove_file(dir.path().join("10-a.conf")).expect("rm");
    assert_eq!(load_dir(dir.path()).expect("load").name, "second");
}

#[test]
fn no_config_and_missing_dir_are_no_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(load_dir(dir.path()), Err(CniError::NoConfig { .. })));
    let missing = dir.path().join("absent");
    let err = load_dir(&missing).expect_err("missing dir");
    assert!(matches!(err, CniError::NoConfig { .. }));
    assert!(err.to_string().contains("absent"), "{err}");
}

#[test]
fn bad_json_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "10-broken.conflist", r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"},]}"#);
    let err = load_dir(dir.path()).expect_err("bad json");
    let msg = err.to_string();
    assert!(matches!(err, CniError::BadConfig { .. }));
    assert!(msg.contains("10-broken.conflist") && msg.contains("not valid JSON"), "{msg}");
}

#[test]
fn malformed_lists_are_refused_with_the_reason() {
    let cases = [
        (r#"[]"#, "not a JSON object"),
        (r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#, "no \"name\""),
        (r#"{"cniVersion":"1.0.0","name":"../up","plugins":[{"type":"bridge"}]}"#, "network name"),
        (r#"{"name":"n","plugins":[{"type":"bridge"}]}"#, "no \"cniVersion\""),
        (r#"{"cniVersion":"0.2.0","name":"n","plugins":[{"type":"bridge"}]}"#, "not one this runtime reads"),
        (r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#, "\"plugins\" is empty"),
        (r#"{"cniVersion":"1.0.0","name":"n"}"#, "no \"plugins\""),
        (r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"bridge":"x"}]}"#, "plugin 0: no \"type\""),
        (r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"../../bin/sh"}]}"#, "plugin 1: \"type\""),
        (r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"portmap","capabilities":{"portMappings":"yes"}}]}"#, "capability \"portMappings\""),
    ];
    for (text, want) in cases {
        let err = NetworkConfigList::from_list_bytes(text.as_bytes(), Path::new("x.conflist")).expect_err(text);
        assert!(err.to_string().contains(want), "{text}: {err} lacks {want:?}");
    }
}

#[test]
fn a_list_in_a_conf_file_is_refused() {
    let err = NetworkConfigList::from_plugin_bytes(LIST.as_bytes(), Path::new("10.conf")).expect_err("list in .conf");
    assert!(err.to_string().contains("*.conflist"), "{err}");
}

#[test]
fn cni_versions_picks_the_highest_supported() {
    let text = r#"{"cniVersion":"0.4.0","cniVersions":["1.0.0","0.3.1","9.9.9"],"name":"n","plugins":[{"type":"bridge"}]}"#;
    let list = NetworkConfigList::from_list_bytes(text.as_bytes(), Path::new("x")).expect("parse");
    assert_eq!(list.cni_version, "1.0.0");
}

#[test]
fn names_follow_the_spec() {
    for ok in ["a", "pod-1", "0abc", "x_y.z"] {
        assert!(is_valid_name(ok), "{ok}");
    }
    for bad in ["", "-a", ".", "a/b", "a b", "a;b", "é"] {
        assert!(!is_valid_name(bad), "{bad}");
    }
}
