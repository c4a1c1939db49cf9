//! Pins through a spare helper: each pin after the first finds a helper waiting, the spare is
//! replaced after each, a killed spare is replaced rather than asked, a helper ends (and is
//! reaped) once it has answered, and none outlives its owner.

use std::path::Path;

use super::*;
use crate::pod::PinHelpers;

/// Waits until the helpers hold a spare, for at most 5 s.
fn spare_of(helpers: &PinHelpers) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = helpers.spare_pid() {
            return pid;
        }
        assert!(Instant::now() < deadline, "no spare pin helper was started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_waiting_pin_helper(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')));
    cmdline == b"skiff-shim\0pin\0" && !zombie
}

#[test]
fn pins_go_through_a_waiting_spare_and_none_outlives_its_owner() {
    if !is_root() {
        return;
    }
    let helpers = PinHelpers::new(shim());
    assert_eq!(helpers.spare_pid(), None, "no helper before the first pin");
    let first = PodDir::new("spare-a");
    let pinned = Pinning(helpers.pin(&first.request(true, true, true)).expect("first pin"));
    assert_eq!(pinned.files().count(), 3);
    let spare = spare_of(&helpers);
    assert!(is_waiting_pin_helper(spare), "the spare waits for its request");

    // The next pin is the spare's: it ends once it answered, and another waits.
    let second = PodDir::new("spare-b");
    let also = Pinning(helpers.pin(&second.request(true, false, true)).expect("second pin"));
    assert_eq!(also.files().map(Path::to_path_buf).collect::<Vec<_>>(), [second.0.join("net"), second.0.join("uts")]);
    // Its answer comes before its exit (it waits for its namespace child), which is reaped
    // off the caller's path.
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_waiting_pin_helper(spare) {
        assert!(Instant::now() < deadline, "the spare did the second pin but did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    let next = spare_of(&helpers);
    assert_ne!(next, spare);

    // A spare killed while it waited is not asked: the pin starts its own.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(next as i32), nix::sys::signal::Signal::SIGKILL).expect("kill the spare");
    std::thread::sleep(Duration::from_millis(50));
    let third = PodDir::new("spare-c");
    let third_pin = Pinning(helpers.pin(&third.request(false, true, false)).expect("a pin after the spare was killed"));
    assert_eq!(third_pin.files().count(), 1);

    // A request the helper would refuse is refused before any helper is asked.
    let waiting = spare_of(&helpers);
    let mut bad = PodDir::new("spare-d").request(true, false, false);
    bad.sysctls.insert("vm.swappiness".into(), "1".into());
    helpers.pin(&bad).expect_err("not a namespaced sysctl");
    assert_eq!(helpers.spare_pid(), Some(waiting), "the spare still waits");

    drop(helpers);
    assert!(!is_waiting_pin_helper(waiting), "the spare ends with its owner");
    for (pinning, dir) in [(pinned, first), (also, second), (third_pin, third)] {
        unpin_ok(&pinning);
        assert_eq!(dir.mounts(), Vec::<String>::new(), "mounts left under {}", dir.0.display());
    }
}
