//! `--format` templates in Go's text/template syntax (via gtmpl), over an inspect document.
//! Besides gtmpl's builtins (`index`, `len`, `printf`, ...), `json` prints a value as JSON, as in docker.

use anyhow::{anyhow, Result};
use gtmpl_value::{FuncError, Number, Value};

fn to_gtmpl(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::Number(Number::from(u)),
            (_, Some(i), _) => Value::Number(Number::from(i)),
            (_, _, Some(f)) => Value::Number(Number::from(f)),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        serde_json::Value::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect()),
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
        Value::Object(m) | Value::Map(m) => {
            let mut sorted: Vec<(&String, &Value)> = m.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let v = args.first().ok_or_else(|| FuncError::AtLeastXArgs("json".into(), 1))?;
    Ok(Value::String(to_json(v).to_string()))
}

/// Renders `template` over `doc`.
pub fn render(template: &str, doc: &serde_json::Value) -> Result<String> {
    let mut t = gtmpl::Template::default();
    t.add_func("json", json_func);
    t.parse(template).map_err(|e| anyhow!("template {template:?}: {e}"))?;
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
}
