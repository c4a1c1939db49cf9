//! Everything the CLI prints on stdout, and listings as tables, JSON or `--format` templates.
//!
//! `println!` panics when stdout is a closed pipe (`skiff images ls | head -1`); every line goes
//! through [`line`] or [`Stdout`] instead, which return the error. A closed pipe comes back as
//! [`StdoutClosed`], and `main` ends the command quietly on it.

use std::io::{self, Write};

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;

use crate::template;

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// How a listing prints: the flags every listing takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ListFormat {
    /// A table, or all rows as one JSON array.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
    /// A Go template applied to each row (e.g. '{{.Name}}'), `json` for one JSON object a line,
    /// `table` or 'table {{.Name}}\t{{.ID}}' for a table of the template's tab-separated cells.
    #[arg(long)]
    pub format: Option<String>,
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

/// A row of a listing.
pub trait Row: Serialize {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;

    /// The row as `--format` sees it: its JSON fields named Go style (`created_at` is `CreatedAt`,
    /// `id` is `ID`), as docker's listing templates name theirs.
    fn template_doc(&self) -> Result<serde_json::Value> {
        Ok(go_fields(serde_json::to_value(self)?))
    }
}

/// Top-level keys of an object from snake_case to Go's exported-field style; values are kept.
pub fn go_fields(v: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(map) = v else { return v };
    let pascal = |k: &str| -> String {
        k.split('_')
            .map(|w| {
                let mut chars = w.chars();
                match chars.next() {
                    _ if w == "id" => "ID".to_string(),
                    Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
                    None => String::new(),
                }
            })
            .collect()
    };
    serde_json::Value::Object(map.into_iter().map(|(k, v)| (pascal(&k), v)).collect())
}

/// Prints a listing: `--format` when given (a Go template per row, as docker applies its listing
/// templates), else as `--output` says.
pub fn print_rows<R: Row>(rows: &[R], how: &ListFormat) -> Result<()> {
    let Some(format) = how.format.as_deref() else {
        return match how.output {
            Output::Json => Ok(outln!("{}", serde_json::to_string_pretty(rows)?)?),
            Output::Table => {
                let mut lines = vec![R::HEADERS.iter().map(|h| h.to_string()).collect()];
                lines.extend(rows.iter().map(Row::cells));
                aligned(&lines)
            }
        };
    };
    // As docker does for listings, `\t` and `\n` typed in the format are a tab and a newline.
    let format = format.replace("\\t", "\t").replace("\\n", "\n");
    match format.trim() {
        "json" => {
            for row in rows {
                outln!("{}", serde_json::to_string(&row.template_doc()?)?)?;
            }
            Ok(())
        }
        "table" => print_rows(rows, &ListFormat::default()),
        t => match t.strip_prefix("table").filter(|rest| rest.starts_with(char::is_whitespace)) {
            Some(cells) => {
                let cells = cells.trim_start_matches(' ');
                let mut lines = vec![cells.split('\t').map(header).collect::<Vec<_>>()];
                for row in rows {
                    let text = template::render(cells, &row.template_doc()?)?;
                    lines.push(text.split('\t').map(str::to_string).collect());
                }
                aligned(&lines)
            }
            None => {
                for row in rows {
                    outln!("{}", template::render(&format, &row.template_doc()?)?)?;
                }
                Ok(())
            }
        },
    }
}

/// A `table` column's header: its template's first field, in words (`{{.CreatedSince}}` is
/// `CREATED SINCE`).
fn header(cell: &str) -> String {
    let Some(at) = cell.match_indices('.').map(|(i, _)| i + 1).find(|&i| cell[i..].starts_with(|c: char| c.is_ascii_uppercase())) else {
        return String::new();
    };
    let name: String = cell[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        // A word starts at an upper-case letter after a lower-case one, or before one ("IDLabel").
        let starts = i > 0 && c.is_uppercase() && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if starts {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fields_are_named_go_style() {
        let doc = go_fields(serde_json::json!({"id": 1, "created_at": "t", "media_type": "m", "labels": {"a_b": "c"}}));
        assert_eq!(doc, serde_json::json!({"ID": 1, "CreatedAt": "t", "MediaType": "m", "Labels": {"a_b": "c"}}));
    }

    #[test]
    fn table_headers_come_from_each_cell_s_first_field() {
        assert_eq!(header("{{.CreatedSince}}"), "CREATED SINCE");
        assert_eq!(header("{{.ID}}"), "ID");
        assert_eq!(header(r#"{{index .Annotations "k"}}"#), "ANNOTATIONS");
        assert_eq!(header("{{.Name}} on {{.Platform}}"), "NAME");
        assert_eq!(header("literal"), "");
    }
}
