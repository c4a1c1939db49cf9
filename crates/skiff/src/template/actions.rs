//! Rewrites a template so gtmpl runs it as Go would, where gtmpl has no hook to change:
//! - it writes an action's value with its own `Display`, so each printing action's pipeline ends
//!   in [`PRINT`]: `{{.A}}` becomes `{{.A | _skiff_print}}`;
//! - it ranges over a map in hash order, where Go visits keys sorted, so a `range` pipeline ends
//!   in [`VALUES`] (the map's values in key order), and with `$k, $v :=` the keys come from
//!   [`KEYS`], taken once before the loop and indexed by the loop's position.
//!
//! Control words (`if`, `end`, ...), declarations (`$x := ...`) and comments are left alone. The
//! lexing follows Go's: an action ends at the first `}}` outside a quoted string, raw string or
//! character constant; `{{- ` and ` -}}` trim markers are kept where they act.

/// Prints a value as Go does.
pub const PRINT: &str = "_skiff_print";
/// A map's values in key order; anything else unchanged.
pub const VALUES: &str = "_skiff_values";
/// A map's keys sorted, a list's indexes.
pub const KEYS: &str = "_skiff_keys";

/// Words that open an action that prints nothing itself.
const KEYWORDS: &[&str] = &["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"];

/// `template` with Go's printing and ranges (see the module docs). Unterminated actions are left
/// as they are for the parser to report.
pub fn go_semantics(template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    let mut ranges = 0;
    // The open blocks, to know which `else` and `end` belong to a range.
    let mut blocks: Vec<Block> = Vec::new();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        rest = &rest[open + 2..];
        let Some(a) = scan_action(rest) else {
            out.push_str("{{");
            out.push_str(rest);
            return out;
        };
        let (left, body, right) = (&rest[..a.body.0], &rest[a.body.0..a.body.1], &rest[a.body.1..a.end]);
        // A left trim marker goes on the first action written in this one's place.
        let trim = if left.is_empty() { "" } else { "- " };
        match kind(body) {
            Kind::Prints => out.push_str(&format!("{{{{{left}{body} | {PRINT}{right}")),
            Kind::Range(r) => {
                blocks.push(Block::Range);
                // Inside `{{if P}}`: gtmpl runs a range's else clause even after iterating, and
                // fails on a missing value, where Go iterates zero times.
                let pipe = r.pipe;
                match r.vars.as_slice() {
                    [k, v] => {
                        let (keys, index) = (format!("$__skiff_keys{ranges}"), format!("$__skiff_i{ranges}"));
                        ranges += 1;
                        let op = r.op;
                        out.push_str(&format!("{{{{{trim}{keys} := {pipe} | {KEYS}}}}}{{{{if {pipe}}}}}"));
                        out.push_str(&format!("{{{{range {index}, {v} {op} {pipe} | {VALUES}{right}"));
                        out.push_str(&format!("{{{{{k} {op} index {keys} {index}{right}"));
                    }
                    _ => out.push_str(&format!("{{{{{trim}if {pipe}}}}}{{{{{body} | {VALUES}{right}")),
                }
            }
            Kind::Else if blocks.last() == Some(&Block::Range) => {
                blocks.pop();
                blocks.push(Block::RangeElse);
                out.push_str(&format!("{{{{{trim}end}}}}{{{{{body}{right}"));
            }
            Kind::End if blocks.pop() == Some(Block::Range) => out.push_str(&format!("{{{{{trim}end}}}}{{{{{body}{right}")),
            Kind::Open => {
                blocks.push(Block::Other);
                out.push_str(&format!("{{{{{left}{body}{right}"));
            }
            Kind::Else | Kind::End | Kind::Other => out.push_str(&format!("{{{{{left}{body}{right}")),
        }
        rest = &rest[a.end..];
    }
    out.push_str(rest);
    out
}

#[derive(PartialEq)]
enum Block {
    Range,
    RangeElse,
    Other,
}

/// Byte offsets into the text after `{{`: the pipeline, and the end of the closing delimiter.
struct Action {
    body: (usize, usize),
    end: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn scan_action(s: &str) -> Option<Action> {
    let b = s.as_bytes();
    let start = if b.len() >= 2 && b[0] == b'-' && is_space(b[1]) { 1 } else { 0 };
    let trimmed = start + s[start..].len() - s[start..].trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8)).len();
    if s[trimmed..].starts_with("/*") {
        // A comment runs to `*/`, whatever it holds, and prints nothing.
        let close = s[trimmed + 2..].find("*/")? + trimmed + 4;
        let end = s[close..].find("}}")? + close;
        return Some(Action { body: (start, close), end: end + 2 });
    }
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => i = skip_quoted(b, i)?,
            b'`' => i += s[i + 1..].find('`')? + 2,
            b'}' if b.get(i + 1) == Some(&b'}') => {
                let trim = i >= start + 2 && b[i - 1] == b'-' && is_space(b[i - 2]);
                return Some(Action { body: (start, if trim { i - 2 } else { i }), end: i + 2 });
            }
            _ => i += 1,
        }
    }
    None
}

/// Past a `"..."` or `'...'` literal starting at `i` (backslash escapes honoured).
fn skip_quoted(b: &[u8], i: usize) -> Option<usize> {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return Some(j + 1),
            b'\n' => return None,
            _ => j += 1,
        }
    }
    None
}

/// A `range` action's parts: its variables, `:=` or `=`, and the pipeline it ranges over.
struct Range<'a> {
    vars: Vec<&'a str>,
    op: &'a str,
    pipe: &'a str,
}

enum Kind<'a> {
    Prints,
    Range(Range<'a>),
    /// `if`, `with`, `define`, `block`: closed by an `end`.
    Open,
    Else,
    End,
    Other,
}

fn kind(body: &str) -> Kind<'_> {
    let t = body.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
    if t.is_empty() || t.starts_with("/*") {
        return Kind::Other;
    }
    let word_end = t.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(t.len());
    let word = &t[..word_end];
    if word == "range" {
        let rest = t[word_end..].trim_start();
        return Kind::Range(match declaration(rest) {
            Some((vars, op, pipe)) => Range { vars, op, pipe },
            None => Range { vars: Vec::new(), op: "", pipe: rest },
        });
    }
    match word {
        "if" | "with" | "define" | "block" => Kind::Open,
        "else" => Kind::Else,
        "end" => Kind::End,
        _ if KEYWORDS.contains(&word) || declaration(t).is_some() => Kind::Other,
        _ => Kind::Prints,
    }
}

/// `$x := P`, `$x = P` or `$k, $v := P` at the start of a pipeline: the variables, the operator, P.
fn declaration(t: &str) -> Option<(Vec<&str>, &str, &str)> {
    let mut vars = Vec::new();
    let mut rest = t;
    loop {
        let after = rest.strip_prefix('$')?;
        let name_end = 1 + after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
        vars.push(&rest[..name_end]);
        rest = rest[name_end..].trim_start();
        if let Some(more) = rest.strip_prefix(',') {
            rest = more.trim_start();
            continue;
        }
        let op = if rest.starts_with(":=") { ":=" } else if rest.starts_with('=') && !rest.starts_with("==") { "=" } else { return None };
        return Some((vars, op, rest[op.len()..].trim_start()));
    }
}

#[cfg(test)]
mod tests {
    use super::go_semantics as rw;

    #[test]
    fn printing_actions_end_in_the_print_function_and_nothing_else_does() {
        let p = |s: &str| s.replace('P', "| _skiff_print");
        assert_eq!(rw("{{.A}}"), p("{{.A P}}"));
        assert_eq!(rw("x {{ .A }} y {{.B.C}}"), p("x {{ .A  P}} y {{.B.C P}}"));
        assert_eq!(rw("{{- .A -}}"), p("{{- .A P -}}"));
        assert_eq!(rw(r#"{{index .M "k"}}"#), p(r#"{{index .M "k" P}}"#));
        assert_eq!(rw("{{if .A}}{{.A}}{{else if .B}}b{{end}}"), p("{{if .A}}{{.A P}}{{else if .B}}b{{end}}"));
        assert_eq!(rw("{{$x := .A}}{{$x = .B}}{{$x}}"), p("{{$x := .A}}{{$x = .B}}{{$x P}}"));
        assert_eq!(rw("{{/* a }} comment */}}{{- /* c */ -}}"), "{{/* a }} comment */}}{{- /* c */ -}}");
        assert_eq!(rw(r#"{{printf "%s}}" .A}}"#), p(r#"{{printf "%s}}" .A P}}"#));
        assert_eq!(rw("{{printf `}}` .A}}"), p("{{printf `}}` .A P}}"));
        assert_eq!(rw(r#"{{"\"}}"}}"#), p(r#"{{"\"}}" P}}"#));
        assert_eq!(rw("{{define \"x\"}}{{.}}{{end}}{{template \"x\" .}}"), p("{{define \"x\"}}{{. P}}{{end}}{{template \"x\" .}}"));
        assert_eq!(rw("{{.A | json}}"), p("{{.A | json P}}"));
        assert_eq!(rw("{{$}}{{.X -1}}"), p("{{$ P}}{{.X -1 P}}"));
        assert_eq!(rw("{{end}}{{ endpoint }}"), p("{{end}}{{ endpoint  P}}"));
    }

    #[test]
    fn ranges_visit_maps_in_key_order_inside_an_if() {
        assert_eq!(rw("{{range .M}}{{.}}{{end}}"), "{{if .M}}{{range .M | _skiff_values}}{{. | _skiff_print}}{{end}}{{end}}");
        assert_eq!(rw("{{range $v := .M}}x{{else}}y{{end}}"), "{{if .M}}{{range $v := .M | _skiff_values}}x{{end}}{{else}}y{{end}}");
        assert_eq!(
            rw("{{- range .M -}} {{if .}}{{else}}{{end}} {{- else -}} e {{- end -}}"),
            "{{- if .M}}{{ range .M | _skiff_values -}} {{if .}}{{else}}{{end}} {{- end}}{{ else -}} e {{- end -}}"
        );
        let two = rw("a {{- range $k, $v := .M -}} {{$k}} {{end}}{{range $i, $e := .L}}{{end}}");
        let want = [
            "a {{- $__skiff_keys0 := .M | _skiff_keys}}{{if .M}}{{range $__skiff_i0, $v := .M | _skiff_values -}}",
            "{{$k := index $__skiff_keys0 $__skiff_i0 -}} {{$k | _skiff_print}} {{end}}{{end}}",
            "{{$__skiff_keys1 := .L | _skiff_keys}}{{if .L}}{{range $__skiff_i1, $e := .L | _skiff_values}}{{$i := index $__skiff_keys1 $__skiff_i1}}{{end}}{{end}}",
        ];
        assert_eq!(two, want.concat());
        assert_eq!(rw("{{with .A}}{{range .}}{{end}}{{end}}"), "{{with .A}}{{if .}}{{range . | _skiff_values}}{{end}}{{end}}{{end}}");
    }

    #[test]
    fn malformed_text_is_left_for_the_parser() {
        assert_eq!(rw("{{.A"), "{{.A");
        assert_eq!(rw("{{}}"), "{{}}");
        assert_eq!(rw(r#"{{"open}}"#), r#"{{"open}}"#);
        assert_eq!(rw("plain } text {"), "plain } text {");
    }
}
