//! The skiffd config a harness writes: the text `skiffd --print-default-config` prints, with keys
//! replaced or added in place. Editing the text (not a parsed table) keeps every key and comment
//! skiffd documents, and needs no knowledge of keys the harness does not set: skiffd refuses
//! unknown keys, so the harness must never add one this skiffd does not have.

use std::path::{Path, PathBuf};

/// A TOML value to write.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Strs(Vec<String>),
    /// TOML text written as given, e.g. an inline table.
    Raw(String),
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Str(s) => quote(s),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Strs(v) => format!("[{}]", v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")),
            Value::Raw(r) => r.clone(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<&Path> for Value {
    fn from(p: &Path) -> Value {
        Value::Str(p.to_string_lossy().into_owned())
    }
}
impl From<PathBuf> for Value {
    fn from(p: PathBuf) -> Value {
        Value::from(p.as_path())
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Value {
        Value::Strs(v)
    }
}
impl From<&[&str]> for Value {
    fn from(v: &[&str]) -> Value {
        Value::Strs(v.iter().map(|s| s.to_string()).collect())
    }
}

/// A TOML basic string. Every control character and DEL is escaped, which TOML requires.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// skiffd's config as the harness will write it; given to `Builder::config` edits.
#[derive(Clone, Debug)]
pub struct SkiffdConfig {
    text: String,
    dir: PathBuf,
}

impl SkiffdConfig {
    pub(crate) fn new(text: String, dir: &Path) -> SkiffdConfig {
        SkiffdConfig { text, dir: dir.to_path_buf() }
    }

    /// The config text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The harness's temp dir, for paths an edit wants to point into it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the config has a `[table]` header (`""`: the top level, always there).
    pub fn has_table(&self, table: &str) -> bool {
        table.is_empty() || self.text.lines().any(|l| header(l) == Some(table))
    }

    /// Sets `key` in `[table]` (`""`: a top-level key): replaces its line when the table has the
    /// key, else adds it right under the header, else appends the table.
    pub fn set(&mut self, table: &str, key: &str, value: impl Into<Value>) -> &mut SkiffdConfig {
        let line = format!("{key} = {}", value.into().render());
        let mut lines: Vec<String> = self.text.lines().map(str::to_string).collect();
        let start = if table.is_empty() { Some(0) } else { lines.iter().position(|l| header(l) == Some(table)).map(|i| i + 1) };
        let Some(start) = start else {
            if !self.text.is_empty() && !self.text.ends_with('\n') {
                self.text.push('\n');
            }
            self.text.push_str(&format!("\n[{table}]\n{line}\n"));
            return self;
        };
        let end = lines[start..].iter().position(|l| header(l).is_some() || l.trim_start().starts_with("[[")).map_or(lines.len(), |i| start + i);
        match (start..end).find(|&i| key_of(&lines[i]) == Some(key)) {
            Some(i) => {
                let last = value_end(&lines, i, end);
                lines.splice(i..=last, [line]);
            }
            None => lines.insert(start, line),
        }
        self.text = lines.join("\n") + "\n";
        self
    }

    /// Appends raw TOML text (a table of its own, say).
    pub fn append(&mut self, toml: &str) -> &mut SkiffdConfig {
        if !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.text.push_str(toml);
        if !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self
    }
}

/// The table a `[name]` header line opens (not `[[array]]` headers).
fn header(line: &str) -> Option<&str> {
    let l = line.trim();
    let l = l.split_once(" #").map_or(l, |(h, _)| h.trim_end());
    if l.starts_with("[[") {
        return None;
    }
    l.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

/// The bare key a `key = value` line sets.
fn key_of(line: &str) -> Option<&str> {
    let l = line.trim_start();
    if l.starts_with('#') {
        return None;
    }
    let (key, _) = l.split_once('=')?;
    Some(key.trim())
}

/// The last line of the value that starts on line `i`: a multi-line array runs until its brackets
/// balance (brackets inside strings do not count).
fn value_end(lines: &[String], i: usize, end: usize) -> usize {
    let mut depth = 0i32;
    for (n, line) in lines.iter().enumerate().take(end).skip(i) {
        let text = if n == i { line.split_once('=').map_or("", |(_, v)| v) } else { line.as_str() };
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for c in text.chars() {
            match quote {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && q == '"' {
                        escaped = true;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '[' | '{' => depth += 1,
                    ']' | '}' => depth -= 1,
                    '#' => break,
                    _ => {}
                },
            }
        }
        if depth <= 0 {
            return n;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# top\nroot = \"/var/lib/skiff\"\n\n[store]\ncache_capacity_mib = 32\n\n[runtime]\n# the shim\nshim = \"\"\nallow = [\n  \"a]\", # x\n  \"b\",\n]\nafter = 1\n\n[runtime.handlers.runc]\nbinary = \"/usr/sbin/runc\"\n";

    fn config() -> SkiffdConfig {
        SkiffdConfig::new(TEXT.into(), Path::new("/tmp/h"))
    }

    #[test]
    fn replaces_a_key_in_its_own_table_only() {
        let mut c = config();
        c.set("runtime", "shim", Path::new("/opt/skiff-shim")).set("", "root", "/tmp/h/root");
        assert!(c.text().contains("[runtime]\n# the shim\nshim = \"/opt/skiff-shim\"\n"), "{}", c.text());
        assert!(c.text().contains("root = \"/tmp/h/root\"\n") && !c.text().contains("/var/lib/skiff"), "{}", c.text());
        assert!(c.text().contains("binary = \"/usr/sbin/runc\""), "{}", c.text());
    }

    #[test]
    fn replaces_a_multi_line_array_whole() {
        let mut c = config();
        c.set("runtime", "allow", &["x"][..]);
        assert!(c.text().contains("allow = [\"x\"]\nafter = 1\n"), "{}", c.text());
    }

    #[test]
    fn adds_missing_keys_under_the_header_and_missing_tables_at_the_end() {
        let mut c = config();
        c.set("store", "extra", 7i64).set("cri", "cni_bin_dirs", vec!["/usr/lib/cni".to_string(), "/opt/cni/bin".into()]);
        assert!(c.text().contains("[store]\nextra = 7\ncache_capacity_mib = 32\n"), "{}", c.text());
        assert!(c.text().ends_with("\n[cri]\ncni_bin_dirs = [\"/usr/lib/cni\", \"/opt/cni/bin\"]\n"), "{}", c.text());
        assert!(c.has_table("cri") && c.has_table("runtime.handlers.runc") && !c.has_table("handlers"));
    }

    #[test]
    fn quotes_what_toml_requires_escaped() {
        assert_eq!(Value::from("a\"b\\c\u{7f}\n").render(), "\"a\\\"b\\\\c\\u007F\\n\"");
    }
}
