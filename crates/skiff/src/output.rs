//! Everything the CLI prints on stdout, and listings as aligned tables or JSON (`--output table|json`).
//!
//! `println!` panics when stdout is a closed pipe (`skiff images ls | head -1`); every line goes
//! through [`line`] or [`Stdout`] instead, which return the error. A closed pipe comes back as
//! [`StdoutClosed`], and `main` ends the command quietly on it.

use std::io::{self, Write};

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// The reader of our stdout went away: nothing more can be shown, and nothing is wrong.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output closed")
    }
}

impl std::error::Error for StdoutClosed {}

fn closed(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe { io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed) } else { e }
}

/// True when `e` (anywhere in its chain) is a write to a closed stdout.
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>() || c.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).is_some_and(|inner| inner.is::<StdoutClosed>()))
}

/// Standard output as a writer whose errors are returned, a closed pipe as [`StdoutClosed`].
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stdout().write(buf).map_err(closed)
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush().map_err(closed)
    }
}

/// One line on stdout (`outln!`).
pub fn line(args: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.write_all(b"\n")).map_err(closed)
}

/// `println!` that returns the write's error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// A row of a table listing.
pub trait Row: Serialize {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

pub fn print_rows<R: Row>(rows: &[R], output: Output) -> Result<()> {
    match output {
        Output::Json => Ok(outln!("{}", serde_json::to_string_pretty(rows)?)?),
        Output::Table => {
            let mut lines = vec![R::HEADERS.iter().map(|h| h.to_string()).collect()];
            lines.extend(rows.iter().map(Row::cells));
            aligned(&lines)
        }
    }
}

/// Lines of cells in columns three spaces apart; the last column is not padded.
fn aligned(lines: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for line in lines {
        for (i, c) in line.iter().enumerate() {
            let w = c.chars().count();
            match widths.get_mut(i) {
                Some(old) => *old = (*old).max(w),
                None => widths.push(w),
            }
        }
    }
    for line in lines {
        let last = line.len().saturating_sub(1);
        let parts: Vec<String> = line.iter().enumerate().map(|(i, c)| if i == last { c.clone() } else { format!("{c:<w$}", w = widths[i]) }).collect();
        outln!("{}", parts.join("   "))?;
    }
    Ok(())
}

/// Bytes for people: 1.2 MiB.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
