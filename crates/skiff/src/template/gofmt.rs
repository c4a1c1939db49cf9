//! Values as Go's `fmt` prints them with `%v`, which is what text/template's actions do: maps as
//! `map[a:1 b:2]` with sorted keys, slices as `[a b]`, strings raw, floats in `%g`'s shortest form.
//! gtmpl prints containers with Rust's `Debug` instead, which no ctr/docker/nerdctl user expects.

use gtmpl_value::Value;

/// What an action prints for `v`. Go unwraps the `interface{}` of a JSON-decoded value before
/// printing, so a null at the top of a pipeline prints `<no value>`, like a missing key.
pub fn action(v: &Value) -> String {
    match v {
        Value::NoValue | Value::Nil => "<no value>".into(),
        other => operand(other),
    }
}

/// `fmt.Sprint` of one operand: inside a map or slice, or given to `print`, a null is `<nil>`.
pub fn operand(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v);
    out
}

fn write(out: &mut String, v: &Value) {
    match v {
        Value::NoValue | Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => out.push_str(&u.to_string()),
            (_, Some(i), _) => out.push_str(&i.to_string()),
            (_, _, Some(f)) => out.push_str(&float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write(out, item);
            }
            out.push(']');
        }
        Value::Map(m) | Value::Object(m) => {
            // Go's fmt sorts map keys (since Go 1.12), so output is stable.
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push_str("map[");
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write(out, v);
            }
            out.push(']');
        }
        Value::Function(f) => out.push_str(&f.to_string()),
    }
}

/// A float64 as Go's `%v` prints it: `%g` with the shortest digits that round-trip, and the
/// exponent form when the exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`, `123456`).
pub fn float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Go's strconv: "1.2345e6".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<HashMap<_, _>>())
    }

    #[test]
    fn containers_print_as_go_does() {
        let m = map(&[("z", "w".into()), ("a.b/c", "v".into()), ("n", Value::from(3u64))]);
        assert_eq!(action(&m), "map[a.b/c:v n:3 z:w]");
        let nested = map(&[("outer", map(&[("b", "2".into()), ("a", "1".into())])), ("list", Value::Array(vec!["x".into(), Value::Nil]))]);
        assert_eq!(action(&nested), "map[list:[x <nil>] outer:map[a:1 b:2]]");
        assert_eq!(action(&Value::Array(vec!["a".into(), "b".into()])), "[a b]");
        assert_eq!(action(&Value::Array(vec![])), "[]");
        assert_eq!(action(&map(&[])), "map[]");
        assert_eq!(action(&Value::Array(vec![map(&[("k", Value::Bool(true))])])), "[map[k:true]]");
    }

    #[test]
    fn scalars_and_nulls_print_as_go_does() {
        assert_eq!(action(&"raw \"text\"".into()), "raw \"text\"");
        assert_eq!(action(&Value::Bool(false)), "false");
        assert_eq!(action(&Value::from(-7i64)), "-7");
        assert_eq!(action(&Value::from(18446744073709551615u64)), "18446744073709551615");
        assert_eq!(action(&Value::NoValue), "<no value>");
        assert_eq!(action(&Value::Nil), "<no value>");
        assert_eq!(operand(&Value::Nil), "<nil>");
    }

    #[test]
    fn floats_print_in_go_shortest_g_form() {
        for (f, want) in [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.25, "-2.25"),
            (1e100, "1e+100"),
            (0.0, "0"),
            (-0.0, "-0"),
            (100.0, "100"),
        ] {
            assert_eq!(float(f), want, "{f}");
        }
    }
}
