//! `--format` templates in Go's text/template syntax (via gtmpl), over an inspect document or a
//! listing's row. Besides gtmpl's builtins (`index`, `len`, `printf`, ...), `json` prints a value as
//! JSON, as in docker. Values print as Go prints them (see `gofmt`), not in gtmpl's Rust forms.

mod actions;
mod gofmt;

use anyhow::{anyhow, Result};
use gtmpl_value::{FuncError, Number, Value};

fn to_gtmpl(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::Number(Number::from(u)),
            (_, Some(i), _) => Value::Number(Number::from(i)),
            (_, _, Some(f)) => float(f),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        serde_json::Value::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect()),
    }
}

/// gtmpl_value keeps a float only when it has a fraction of at least EPSILON and is positive:
/// others become integers, truncated (-2.5 is -2) or saturated (1e21 is u64::MAX). Those are given
/// to the template as Go's text of them instead, which prints right but does not compare as a number.
fn float(f: f64) -> Value {
    if f > 0.0 && f.fract() >= f64::EPSILON {
        Value::Number(Number::from(f))
    } else {
        Value::String(gofmt::float(f))
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => n
            .as_u64()
            .map(serde_json::Value::from)
            .or_else(|| n.as_i64().map(serde_json::Value::from))
            .or_else(|| n.as_f64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(m) | Value::Map(m) => serde_json::Value::Object(sorted(m).into_iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let v = args.first().ok_or_else(|| FuncError::AtLeastXArgs("json".into(), 1))?;
    Ok(Value::String(to_json(v).to_string()))
}

fn print_action(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(args.last().map_or_else(|| gofmt::action(&Value::NoValue), gofmt::action)))
}

fn sorted(m: &std::collections::HashMap<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn range_values(args: &[Value]) -> Result<Value, FuncError> {
    match args.last() {
        Some(Value::Map(m) | Value::Object(m)) => Ok(Value::Array(sorted(m).into_iter().map(|(_, v)| v.clone()).collect())),
        Some(other) => Ok(other.clone()),
        None => Err(FuncError::AtLeastXArgs(actions::VALUES.into(), 1)),
    }
}

fn range_keys(args: &[Value]) -> Result<Value, FuncError> {
    match args.last() {
        Some(Value::Map(m) | Value::Object(m)) => Ok(Value::Array(sorted(m).into_iter().map(|(k, _)| Value::String(k.clone())).collect())),
        Some(Value::Array(a)) => Ok(Value::Array((0..a.len()).map(Value::from).collect())),
        Some(other) => Ok(other.clone()),
        None => Err(FuncError::AtLeastXArgs(actions::KEYS.into(), 1)),
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn print_func(args: &[Value]) -> Result<Value, FuncError> {
    let mut s = String::new();
    for (i, v) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::String(_));
        if i > 0 && !is_str(v) && !is_str(&args[i - 1]) {
            s.push(' ');
        }
        s.push_str(&gofmt::operand(v));
    }
    Ok(Value::String(s))
}

/// Go's `fmt.Sprintln`: spaces between all operands, and a newline.
fn println_func(args: &[Value]) -> Result<Value, FuncError> {
    let parts: Vec<String> = args.iter().map(gofmt::operand).collect();
    Ok(Value::String(parts.join(" ") + "\n"))
}

/// gtmpl's `printf`, with the operands of plain `%v`s (any flags but `#`) that gtmpl cannot print
/// as Go does turned into Go's text first: maps and lists (gtmpl's are not Go's form), nulls,
/// floats and negative numbers (gtmpl has no `%v` for them).
fn printf_func(args: &[Value]) -> Result<Value, FuncError> {
    let Some(Value::String(format)) = args.first() else {
        return gtmpl::funcs::printf(args);
    };
    let mut args = args.to_vec();
    for index in plain_v_operands(format) {
        if let Some(v) = args.get_mut(index + 1) {
            let gtmpl_prints_it = match v {
                Value::String(_) | Value::Bool(_) => true,
                Value::Number(n) => n.as_u64().is_some(),
                _ => false,
            };
            if !gtmpl_prints_it {
                *v = Value::String(gofmt::operand(v));
            }
        }
    }
    gtmpl::funcs::printf(&args)
}

/// Indexes of the operands that `%v` verbs (without `#`) of a Go format string consume. `*` widths
/// and precisions consume operands too; explicit `[n]` indexes are followed.
fn plain_v_operands(format: &str) -> Vec<usize> {
    let b = format.as_bytes();
    let (mut i, mut next, mut out) = (0, 0usize, Vec::new());
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        i += 1;
        let mut sharp = false;
        while i < b.len() && matches!(b[i], b'+' | b'-' | b'#' | b' ' | b'0') {
            sharp |= b[i] == b'#';
            i += 1;
        }
        let argument = |i: &mut usize, next: &mut usize| {
            if b.get(*i) == Some(&b'[') {
                if let Some(close) = format[*i..].find(']') {
                    if let Ok(n) = format[*i + 1..*i + close].parse::<usize>() {
                        *next = n.saturating_sub(1);
                    }
                    *i += close + 1;
                }
            }
        };
        // Width, then `.` precision: each an optional `[n]`, then `*` (which takes an argument) or digits.
        let number = |i: &mut usize, next: &mut usize| {
            argument(i, next);
            if b.get(*i) == Some(&b'*') {
                *i += 1;
                *next += 1;
            }
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
        };
        number(&mut i, &mut next);
        if b.get(i) == Some(&b'.') {
            i += 1;
            number(&mut i, &mut next);
        }
        argument(&mut i, &mut next);
        match b.get(i) {
            None => break,
            Some(b'%') => {}
            Some(verb) => {
                if *verb == b'v' && !sharp {
                    out.push(next);
                }
                next += 1;
            }
        }
        i += 1;
    }
    out
}

/// Renders `template` over `doc`.
pub fn render(template: &str, doc: &serde_json::Value) -> Result<String> {
    let compile = |text: &str| -> Result<gtmpl::Template> {
        let mut t = gtmpl::Template::default();
        t.add_func("json", json_func);
        t.add_func("print", print_func);
        t.add_func("println", println_func);
        t.add_func("printf", printf_func);
        t.add_func(actions::PRINT, print_action);
        t.add_func(actions::VALUES, range_values);
        t.add_func(actions::KEYS, range_keys);
        t.parse(text).map_err(|e| anyhow!("template {template:?}: {e}"))?;
        Ok(t)
    };
    // Parsed as written first, so syntax errors point into the user's own text.
    compile(template)?;
    let t = compile(&actions::go_semantics(template))?;
    let ctx = gtmpl::Context::from(to_gtmpl(doc));
    t.render(&ctx).map_err(|e| anyhow!("template {template:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_index_and_json() {
        let doc = serde_json::json!({"Name": "n", "Annotations": {"a.b/c": "v", "z": "w"}, "Size": 3});
        assert_eq!(render("{{.Name}} {{.Size}}", &doc).expect("render"), "n 3");
        assert_eq!(render(r#"{{index .Annotations "a.b/c"}}"#, &doc).expect("index"), "v");
        assert_eq!(render("{{json .Annotations}}", &doc).expect("json"), r#"{"a.b/c":"v","z":"w"}"#);
        assert!(render("{{.Name", &doc).is_err());
    }

    #[test]
    fn values_print_as_go_text_template_prints_them() {
        let doc = serde_json::json!({
            "Annotations": {"z": "w", "a.b/c": "v"},
            "Nested": {"b": {"y": 2, "x": [1, "s"]}, "a": null},
            "List": ["a", "b"],
            "Name": "plain",
            "Ratio": 0.5,
            "Big": 1e21,
            "Floats": [-2.5, 2.0, 1e-20, 1e6],
            "Neg": -3,
            "On": true,
            "Null": null,
            "Empty": {},
            "Size": 3,
        });
        let r = |t: &str| render(t, &doc).expect(t);
        assert_eq!(r("{{.Annotations}}"), "map[a.b/c:v z:w]");
        assert_eq!(r("{{.Nested}}"), "map[a:<nil> b:map[x:[1 s] y:2]]");
        assert_eq!(r("{{.Nested.b.x}}"), "[1 s]");
        assert_eq!(r("{{.List}} {{.Name}} {{.Ratio}} {{.Big}} {{.Neg}} {{.On}}"), "[a b] plain 0.5 1e+21 -3 true");
        assert_eq!(r("{{.Floats}} {{index .Floats 0}}"), "[-2.5 2 1e-20 1e+06] -2.5");
        assert_eq!(r("{{.Null}}|{{.Missing}}|{{index .Annotations \"nope\"}}"), "<no value>|<no value>|<no value>");
        assert_eq!(r("{{range .List}}{{.}},{{end}}"), "a,b,");
        assert_eq!(r("{{range $k, $v := .Annotations}}{{$k}}={{$v}};{{end}}"), "a.b/c=v;z=w;");
        assert_eq!(r("{{range .Annotations}}{{.}};{{end}}{{range $i, $e := .List}}{{$i}}{{$e}}{{end}}"), "v;w;0a1b");
        assert_eq!(r("{{range $k, $v := .Nested}}{{$k}}{{else}}none{{end}} {{range .Empty}}x{{else}}none{{end}}"), "ab none");
        assert_eq!(r("{{range .Missing}}x{{else}}none{{end}}"), "none");
        assert_eq!(r("{{with .Nested}}{{.b.y}}{{end}}{{if .On}} on{{else}} off{{end}}"), "2 on");
        assert_eq!(r("{{$x := .List}}{{$x}}"), "[a b]");
        assert_eq!(r("{{- /* nothing */ -}} {{len .List}}"), "2");
        assert_eq!(r(r#"{{print .List "x" .On .Ratio}} {{println .Null .Name}}"#), "[a b]xtrue 0.5 <nil> plain\n");
        assert_eq!(r(r#"{{printf "%v|%s|%v|%v|%d|%v|%3v|%v" .Annotations .Name .Ratio .On .Neg .Neg .Size .Null}}"#), "map[a.b/c:v z:w]|plain|0.5|true|-3|-3|  3|<nil>");
        assert_eq!(r(r#"{{printf "%[2]v %[1]v" .Name .List}}"#), "[a b] plain");
    }

    #[test]
    fn printf_operands_of_plain_v_are_found() {
        assert_eq!(plain_v_operands("%v %s %v"), vec![0, 2]);
        assert_eq!(plain_v_operands("%% %d %-8v %#v %*v %.*v"), vec![1, 4, 6]);
        assert_eq!(plain_v_operands("%[2]v %[1]v %v"), vec![1, 0, 1]);
        assert_eq!(plain_v_operands("%"), Vec::<usize>::new());
    }
}
