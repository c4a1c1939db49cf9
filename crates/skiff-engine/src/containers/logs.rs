//! Reading a container's CRI-format log (`RFC3339Nano STREAM P|F MESSAGE`) back into its streams.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

/// One log entry's stream and bytes (with its newline back when it ended a line).
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub stream: String,
    pub data: Vec<u8>,
}

/// Parses one line (without its trailing `\n`); None when it is not a CRI log line.
pub fn parse_line(line: &[u8]) -> Option<Entry> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let _time = parts.next()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let message = parts.next().unwrap_or_default();
    if !matches!(stream, "stdout" | "stderr") {
        return None;
    }
    let mut data = message.to_vec();
    match tag {
        b"F" => data.push(b'\n'),
        b"P" => {}
        _ => return None,
    }
    Some(Entry { stream: stream.to_string(), data })
}

/// Reads entries from `offset`; returns them and the offset after the last whole line.
pub fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<Entry>, u64)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut pos = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            // EOF, or a line still being written: read it next time.
            return Ok((entries, pos));
        }
        pos += n as u64;
        if let Some(e) = parse_line(&line[..n - 1]) {
            entries.push(e);
        }
    }
}

/// The last `n` full lines' entries (partial entries belong to the line they precede).
pub fn tail(entries: Vec<Entry>, n: usize) -> Vec<Entry> {
    let mut lines_seen = 0;
    let mut start = entries.len();
    for (i, e) in entries.iter().enumerate().rev() {
        if e.data.last() == Some(&b'\n') {
            if lines_seen == n {
                break;
            }
            lines_seen += 1;
        }
        start = i;
    }
    entries.into_iter().skip(start).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_lines() {
        assert_eq!(
            parse_line(b"2026-01-01T00:00:00.000000001Z stdout F hello world"),
            Some(Entry { stream: "stdout".into(), data: b"hello world\n".to_vec() })
        );
        assert_eq!(parse_line(b"2026-01-01T00:00:00Z stderr P abc"), Some(Entry { stream: "stderr".into(), data: b"abc".to_vec() }));
        assert_eq!(parse_line(b"2026-01-01T00:00:00Z stdout F "), Some(Entry { stream: "stdout".into(), data: b"\n".to_vec() }));
        assert_eq!(parse_line(b"garbage"), None);
        let entries = vec![
            parse_line(b"t stdout F one").expect("1"),
            parse_line(b"t stdout P tw").expect("2"),
            parse_line(b"t stdout F o").expect("3"),
            parse_line(b"t stdout F three").expect("4"),
        ];
        let last2: Vec<Vec<u8>> = tail(entries, 2).into_iter().map(|e| e.data).collect();
        assert_eq!(last2, vec![b"tw".to_vec(), b"o\n".to_vec(), b"three\n".to_vec()]);
    }
}
