//! Listings as aligned tables or JSON (`--output table|json`).

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// A row of a table listing.
pub trait Row: Serialize {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

pub fn print_rows<R: Row>(rows: &[R], output: Output) -> Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Output::Table => {
            let cells: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
            let mut widths: Vec<usize> = R::HEADERS.iter().map(|h| h.len()).collect();
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |row: Vec<&str>| {
                let last = row.len().saturating_sub(1);
                let parts: Vec<String> = row
                    .iter()
                    .enumerate()
                    .map(|(i, c)| if i == last { c.to_string() } else { format!("{c:<w$}", w = widths[i]) })
                    .collect();
                println!("{}", parts.join("   "));
            };
            line(R::HEADERS.to_vec());
            for row in &cells {
                line(row.iter().map(String::as_str).collect());
            }
        }
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
