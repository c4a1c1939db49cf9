//! `/proc/<pid>/stat`: a process's state and start time, which tell a live holder from a process
//! that reused its pid.

use std::io;

pub(crate) struct Stat {
    pub state: char,
    pub start_time: u64,
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks after boot.
pub fn start_time(pid: i32) -> io::Result<u64> {
    stat(pid).map(|s| s.start_time)
}

pub(crate) fn stat(pid: i32) -> io::Result<Stat> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/stat is unreadable")))
}

/// The command (field 2) is in parentheses and may hold anything, spaces and ')' included: the
/// fields after it start past the last ')'.
fn parse(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was `state`; field 22 is 19 further.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

#[cfg(test)]
mod tests {
    #[test]
    fn start_time_survives_odd_command_names() {
        let line = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 93 0 0 0 0 0 0 0 20 0 1 0 987654 2322432 201 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = super::parse(line).expect("parsed");
        assert_eq!((s.state, s.start_time), ('S', 987654));
        assert!(super::parse("4242 (truncated").is_none());
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = super::start_time(me).expect("own stat");
        assert_eq!(super::start_time(me).expect("own stat"), a);
    }
}
