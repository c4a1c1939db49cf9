//! The cgroup readers over fixture trees written into a temp dir, as the kernel lays them out.

use std::path::Path;

use super::cgroup::{Cgroups, Memory, Sample, Swap};
use skiff_engine::cgroupfs::Hierarchy;

const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const UNIFIED: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

fn hierarchy(mount: &str) -> Option<Hierarchy> {
    Some(Hierarchy { mount: mount.into(), root: "/".into() })
}

#[test]
fn a_hybrid_host_reads_the_v1_controllers_wherever_they_are_mounted() {
    assert_eq!(Cgroups::from_mountinfo(HYBRID).expect("hybrid"), Cgroups::V1 { cpuacct: hierarchy("/sys/fs/cgroup/cpuacct"), memory: hierarchy("/sys/fs/cgroup/memory") });
    let together = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    assert_eq!(Cgroups::from_mountinfo(together).expect("together"), Cgroups::V1 { cpuacct: hierarchy("/sys/fs/cgroup/cpu,cpuacct"), memory: hierarchy("/sys/fs/cgroup/memory") });
}

#[test]
fn a_unified_host_reads_v2_and_a_host_without_cgroups_is_an_error() {
    assert_eq!(Cgroups::from_mountinfo(UNIFIED).expect("v2"), Cgroups::V2 { root: "/sys/fs/cgroup".into() });
    let err = Cgroups::from_mountinfo("22 1 0:21 / /sys rw - sysfs sysfs rw\n").expect_err("none").to_string();
    assert!(err.contains("no cgroup filesystem"), "{err}");
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).expect("dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write");
    }
}

const V1_STAT: &str = "cache 8192\nrss 4096\ninactive_file 4096\ntotal_cache 1048576\ntotal_rss 3145728\ntotal_inactive_file 524288\ntotal_pgfault 1200\ntotal_pgmajfault 7\n";

fn v1(root: &Path) -> Cgroups {
    Cgroups::V1 { cpuacct: Some(Hierarchy { mount: root.join("cpuacct"), root: "/".into() }), memory: Some(Hierarchy { mount: root.join("memory"), root: "/".into() }) }
}

#[test]
fn v1_reads_cpuacct_and_the_hierarchical_memory_keys() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(&tmp.path().join("cpuacct/kubepods/pod1/c1"), &[("cpuacct.usage", "123456789\n"), ("cgroup.procs", "10\n11\n")]);
    let memory = tmp.path().join("memory/kubepods/pod1/c1");
    write(&memory, &[
        ("memory.usage_in_bytes", "4194304\n"),
        ("memory.limit_in_bytes", "67108864\n"),
        ("memory.stat", V1_STAT),
        ("memory.memsw.usage_in_bytes", "4198400\n"),
        ("memory.memsw.limit_in_bytes", "100663296\n"),
        ("cgroup.procs", "10\n11\n"),
    ]);
    let sample = v1(tmp.path()).sample("/kubepods/pod1/c1").expect("read").expect("there");
    let m = Memory {
        usage: 4194304,
        inactive_file: 524288,
        limit: Some(67108864),
        rss: Some(3145728),
        page_faults: Some(1200),
        major_page_faults: Some(7),
        swap: Some(Swap { usage: 4096, limit: Some(100663296 - 67108864) }),
    };
    assert_eq!(sample, Sample { cpu_ns: Some(123456789), memory: Some(m) });
    assert_eq!((m.working_set(), m.available()), (4194304 - 524288, Some(67108864 - (4194304 - 524288))));
}

#[test]
fn v1_unlimited_and_without_swap_accounting() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(&tmp.path().join("memory/skiff/c1"), &[("memory.usage_in_bytes", "100\n"), ("memory.limit_in_bytes", "9223372036854771712\n"), ("memory.stat", "total_inactive_file 400\n")]);
    let m = v1(tmp.path()).sample("/skiff/c1").expect("read").expect("there").memory.expect("memory");
    assert_eq!((m.limit, m.available(), m.swap, m.rss), (None, None, None, None));
    assert_eq!(m.working_set(), 0, "inactive page cache past the usage floors at 0");
}

#[test]
fn v2_reads_cpu_stat_memory_and_swap() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("kubepods/pod1");
    write(&dir, &[
        ("cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"),
        ("memory.current", "8388608\n"),
        ("memory.max", "max\n"),
        ("memory.stat", "anon 2097152\nfile 4194304\ninactive_file 1048576\npgfault 31\npgmajfault 2\n"),
        ("memory.swap.current", "4096\n"),
        ("memory.swap.max", "1048576\n"),
        ("cgroup.procs", ""),
    ]);
    write(&dir.join("c1"), &[("cgroup.procs", "7\n8\n")]);
    write(&dir.join("c2"), &[("cgroup.procs", "9\n")]);
    let cgroups = Cgroups::V2 { root: tmp.path().into() };
    let sample = cgroups.sample("/kubepods/pod1").expect("read").expect("there");
    let m = Memory { usage: 8388608, inactive_file: 1048576, limit: None, rss: Some(2097152), page_faults: Some(31), major_page_faults: Some(2), swap: Some(Swap { usage: 4096, limit: Some(1048576) }) };
    assert_eq!(sample, Sample { cpu_ns: Some(2_500_000), memory: Some(m) });
    assert_eq!(cgroups.process_count("/kubepods/pod1").expect("count"), Some(3), "the cgroups below count");
    std::fs::write(dir.join("memory.max"), "33554432\n").expect("limit");
    let m = cgroups.sample("/kubepods/pod1").expect("read").expect("there").memory.expect("memory");
    assert_eq!(m.available(), Some(33554432 - (8388608 - 1048576)));
}

#[test]
fn a_cgroup_that_is_gone_is_no_sample_and_a_bad_file_is_an_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cgroups = v1(tmp.path());
    assert_eq!(cgroups.sample("/skiff/gone").expect("gone"), None);
    assert_eq!(cgroups.process_count("/skiff/gone").expect("gone"), None);
    assert_eq!(Cgroups::V2 { root: tmp.path().into() }.sample("/gone").expect("gone"), None);
    write(&tmp.path().join("outside"), &[("cpu.stat", "usage_usec 1\n")]);
    let v2_below = Cgroups::V2 { root: tmp.path().join("v2root") };
    assert_eq!(v2_below.sample("/../outside").expect("refused"), None, "never above the root");
    assert_eq!(v2_below.process_count("/../outside").expect("refused"), None);
    write(&tmp.path().join("cpuacct/skiff/bad"), &[("cpuacct.usage", "lots\n")]);
    let err = cgroups.sample("/skiff/bad").expect_err("bad").to_string();
    assert!(err.contains("cpuacct.usage") && err.contains("not a number"), "{err}");
    write(&tmp.path().join("memory/skiff/bad2"), &[("memory.usage_in_bytes", "1\n"), ("memory.stat", "total_rss one\n")]);
    let err = cgroups.sample("/skiff/bad2").expect_err("bad").to_string();
    assert!(err.contains("memory.stat") && err.contains("total_rss"), "{err}");
    let v2 = Cgroups::V2 { root: tmp.path().into() };
    write(&tmp.path().join("v2bad"), &[("cpu.stat", "user_usec 1\n")]);
    assert!(v2.sample("/v2bad").expect_err("no usage").to_string().contains("usage_usec"));
}

#[test]
fn a_pod_without_a_cgroup_adds_up_its_containers() {
    let a = Sample { cpu_ns: Some(10), memory: Some(Memory { usage: 100, inactive_file: 10, limit: Some(1000), rss: Some(50), page_faults: Some(1), major_page_faults: None, swap: None }) };
    let b = Sample { cpu_ns: Some(5), memory: Some(Memory { usage: 40, inactive_file: 0, limit: None, rss: Some(20), page_faults: Some(2), major_page_faults: Some(3), swap: Some(Swap { usage: 8, limit: Some(64) }) }) };
    let sum = Sample::sum([a, b]).expect("sum");
    let m = sum.memory.expect("memory");
    assert_eq!(sum.cpu_ns, Some(15));
    assert_eq!((m.usage, m.working_set(), m.rss, m.page_faults, m.major_page_faults), (140, 130, Some(70), Some(3), Some(3)));
    assert_eq!((m.limit, m.swap), (None, Some(Swap { usage: 8, limit: None })), "a container's limit is not the pod's");
    assert_eq!(Sample::sum([]), None);
    assert_eq!(Sample::sum([Sample { cpu_ns: None, memory: None }, Sample { cpu_ns: Some(3), memory: None }]).expect("sum").cpu_ns, Some(3));
}

#[test]
fn this_host_is_read_as_its_runtime_sees_it() {
    // skiffd's own cgroup, whichever version the host runs: found and read without error.
    let cgroups = Cgroups::detect().expect("detect");
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let path = match &cgroups {
        Cgroups::V2 { .. } => own.lines().find_map(|l| l.strip_prefix("0::")),
        Cgroups::V1 { .. } => own.lines().filter_map(|l| l.split_once(':').and_then(|(_, rest)| rest.split_once(':'))).find(|(c, _)| c.split(',').any(|c| c == "memory")).map(|(_, p)| p),
    };
    let path = path.unwrap_or("/");
    let sample = cgroups.sample(path).expect("read own cgroup");
    assert!(sample.and_then(|s| s.memory).is_some_and(|m| m.usage > 0), "{cgroups:?} {path}: {sample:?}");
}
