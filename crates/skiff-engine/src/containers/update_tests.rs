use super::*;

fn files(writes: &[Write]) -> Vec<(&str, &str)> {
    writes.iter().map(|w| (w.file.as_str(), w.value.as_str())).collect()
}

#[test]
fn v1_writes_name_each_file_and_lift_limits_with_minus_one() {
    let u = ResourceUpdate { cpu_period: Some(100_000), cpu_quota: Some(0), cpu_shares: Some(1), memory_limit: Some(0), pids_limit: Some(0), cpuset_cpus: Some("0".into()), ..Default::default() };
    assert_eq!(
        files(&v1_writes(&u, None)),
        [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "-1"), ("cpu.shares", "2"), ("cpuset.cpus", "0"), ("memory.limit_in_bytes", "-1"), ("pids.max", "max")]
    );
    assert_eq!(v1_writes(&u, None)[3].controller, "cpuset");
    assert!(v1_writes(&ResourceUpdate::default(), None).is_empty(), "nothing asked, nothing written");
}

#[test]
fn v1_memory_and_swap_go_in_the_order_the_kernel_accepts() {
    let grow = ResourceUpdate { memory_limit: Some(512 << 20), memory_swap_limit: Some(1 << 30), ..Default::default() };
    assert_eq!(files(&v1_writes(&grow, Some(256 << 20))), [("memory.memsw.limit_in_bytes", "1073741824"), ("memory.limit_in_bytes", "536870912")], "memsw first when it grows");
    let shrink = ResourceUpdate { memory_limit: Some(64 << 20), memory_swap_limit: Some(128 << 20), ..Default::default() };
    assert_eq!(files(&v1_writes(&shrink, Some(1 << 30))), [("memory.limit_in_bytes", "67108864"), ("memory.memsw.limit_in_bytes", "134217728")], "memory first when memsw shrinks");
}

#[test]
fn v2_writes_convert_to_the_unified_files() {
    let u = ResourceUpdate {
        cpu_quota: Some(50_000),
        cpu_shares: Some(1024),
        memory_limit: Some(256 << 20),
        memory_swap_limit: Some(512 << 20),
        unified: BTreeMap::from([("memory.high".to_string(), "200M".to_string())]),
        ..Default::default()
    };
    assert_eq!(
        files(&v2_writes(&u, 100_000)),
        [("cpu.max", "50000 100000"), ("cpu.weight", "39"), ("memory.max", "268435456"), ("memory.swap.max", "268435456"), ("memory.high", "200M")]
    );
    let lift = ResourceUpdate { cpu_period: Some(20_000), memory_limit: Some(-1), ..Default::default() };
    assert_eq!(files(&v2_writes(&lift, 100_000)), [("cpu.max", "max 20000"), ("memory.max", "max")]);
    // The extremes of runc's weight map.
    assert_eq!(v2_writes(&ResourceUpdate { cpu_shares: Some(2), ..Default::default() }, 100_000)[0].value, "1");
    assert_eq!(v2_writes(&ResourceUpdate { cpu_shares: Some(262_144), ..Default::default() }, 100_000)[0].value, "10000");
}

#[test]
fn unified_keys_must_be_plain_cgroup_file_names() {
    for bad in ["", "..", "../memory.max", "memory.max/x", "nodot", "memory.max\0"] {
        assert!(check_file(bad).is_err(), "{bad:?}");
    }
    check_file("memory.high").expect("a plain file");
}
