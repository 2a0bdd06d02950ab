//! Parameter values supplied by the caller (`-p NAME=VALUE`, `--params-file`), checked
//! against the declarations as StartAutomationExecution would (reference 2.3, 2.4, 8.3).
//! Defaults are not checked: AWS ships defaults that break their own patterns.

use serde_json::{Map, Value};

use super::java_regex;
use crate::diagnostic::{Code, Diagnostic, Severity, pointer_push};
use crate::diagnostic::{describe_json, nearest};
use crate::document::model::{Parameter, Runbook, Shape, lenient_bool};

/// A value as the caller gave it.
#[derive(Clone, Debug, PartialEq)]
pub enum Supplied {
    /// Text from `-p NAME=VALUE`, parsed by the declared type.
    Text(String),
    /// A value from a parameters file: typed JSON, or the API form (a list of strings).
    Json(Value),
}

/// Typed parameter values, with the problems found while typing and checking them.
#[derive(Debug, Default)]
pub struct Bound {
    pub values: Map<String, Value>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Types and checks `supplied` against the runbook's parameters. The value of a secret
/// parameter (`x-secret`) is never repeated in a message, not even in part.
pub fn bind(runbook: &Runbook, supplied: &[(String, Supplied)]) -> Bound {
    let mut bound = Bound::default();
    for (name, value) in supplied {
        let Some(parameter) = runbook.parameter(name) else {
            let mut diagnostic = Diagnostic::new(
                Code::UndeclaredParameterValue,
                format!("a value was supplied for `{name}`, but the runbook declares no such parameter"),
            );
            if let Some(suggestion) = nearest(name, runbook.parameters.iter().map(|p| p.name.as_str())) {
                diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
            }
            bound.diagnostics.push(diagnostic);
            continue;
        };
        let Some(kind) = parameter.kind else { continue };
        let first = bound.diagnostics.len();
        match typed(kind.shape(), value) {
            Ok(typed) => {
                check_value(parameter, kind.shape(), &typed, &mut bound.diagnostics);
                if let Some(pattern) = kind.resource_pattern() {
                    check_resource_pattern(parameter, pattern, &typed, &mut bound.diagnostics);
                }
                bound.values.insert(name.clone(), typed);
            }
            Err(problem) => {
                let message = format!("`{name}` is {}: {problem}", kind.shape().a_name());
                bound.diagnostics.push(Diagnostic::new(Code::ParameterType, message).at_key(&parameter.pointer));
            }
        }
        if parameter.secret {
            bound.diagnostics[first..].iter_mut().for_each(|diagnostic| seal(diagnostic, parameter));
        }
    }
    for parameter in runbook.parameters.iter().filter(|p| p.is_required()) {
        if !supplied.iter().any(|(name, _)| *name == parameter.name) {
            let message = format!("parameter `{}` has no default and was not supplied", parameter.name);
            let help = format!("pass it with -p {}=VALUE", parameter.name);
            bound
                .diagnostics
                .push(Diagnostic::new(Code::MissingParameter, message).at_key(&parameter.pointer).with_help(help));
        }
    }
    bound
}

/// Says what is wrong with a secret's value without quoting it.
fn seal(diagnostic: &mut Diagnostic, parameter: &Parameter) {
    let name = &parameter.name;
    let kind = parameter.kind.map_or("", |kind| kind.name());
    diagnostic.message = match diagnostic.code {
        Code::ParameterType => format!("`{name}` is a {kind}, and the secret value given is not"),
        Code::ParameterAllowedValues => format!("the secret value of `{name}` is not one of its allowedValues"),
        Code::ParameterPattern if diagnostic.severity == Severity::Warning => {
            format!("the secret value of `{name}` does not look like a value of type {kind}")
        }
        Code::ParameterPattern => format!("the secret value of `{name}` does not match its allowedPattern"),
        // Counts of items and characters quote nothing.
        _ => return,
    };
}

/// Converts a supplied value to the declared shape.
fn typed(shape: Shape, supplied: &Supplied) -> Result<Value, String> {
    match supplied {
        Supplied::Text(text) => from_text(shape, text),
        Supplied::Json(value) if shape.admits(value) => Ok(value.clone()),
        Supplied::Json(Value::String(text)) => from_text(shape, text),
        // The API form: every value is a list of strings.
        Supplied::Json(Value::Array(items)) if items.iter().all(Value::is_string) => {
            let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            match (shape, texts.as_slice()) {
                (Shape::MapList, _) => {
                    let maps = texts.iter().map(|t| from_text(Shape::StringMap, t)).collect::<Result<Vec<_>, _>>()?;
                    Ok(Value::Array(maps))
                }
                (_, [single]) => from_text(shape, single),
                _ => Err(format!("expected {}, found a list of {} strings", shape.description(), texts.len())),
            }
        }
        Supplied::Json(Value::Number(n)) if shape == Shape::String => Ok(Value::String(n.to_string())),
        Supplied::Json(other) => Err(format!("expected {}, found {}", shape.description(), describe_json(other))),
    }
}

fn from_text(shape: Shape, text: &str) -> Result<Value, String> {
    match shape {
        Shape::String => Ok(Value::String(text.to_owned())),
        Shape::Integer => {
            text.trim().parse::<i64>().map(Value::from).map_err(|_| format!("`{text}` is not a whole number"))
        }
        Shape::Boolean => match lenient_bool(&Value::String(text.trim().to_owned())) {
            Some(flag) => Ok(Value::Bool(flag)),
            None => Err(format!("`{text}` is not true or false")),
        },
        Shape::StringList => {
            let trimmed = text.trim();
            if trimmed.starts_with('[') {
                let value: Value = serde_json::from_str(trimmed).map_err(|e| {
                    // `-p Hosts=[a,b]`: the shell kept the brackets, the items are not JSON strings.
                    let items: Vec<&str> = trimmed.trim_matches(['[', ']']).split(',').map(str::trim).collect();
                    format!(
                        "invalid JSON list ({e}): write the items as JSON strings, quoted for the shell \
                         (`'[\"{}\"]'`), or without brackets, separated by commas (`{}`)",
                        items.join("\", \""),
                        items.join(",")
                    )
                })?;
                return match Shape::StringList.admits(&value) {
                    true => Ok(value),
                    false => Err("the JSON list must hold only strings".into()),
                };
            }
            if trimmed.is_empty() {
                return Ok(Value::Array(Vec::new()));
            }
            Ok(Value::Array(text.split(',').map(|item| Value::String(item.trim().to_owned())).collect()))
        }
        Shape::StringMap | Shape::MapList => {
            let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
            match shape.admits(&value) {
                true => Ok(value),
                false => Err(format!("expected {} in JSON, found {}", shape.description(), describe_json(&value))),
            }
        }
    }
}

/// The text forms constraints apply to: each item of a list, the decimal text of an
/// integer, `true`/`false`, the JSON text of a map.
fn texts(shape: Shape, value: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match (shape, value) {
        (Shape::StringList | Shape::MapList, Value::Array(items)) => items.iter().map(text).collect(),
        _ => vec![text(value)],
    }
}

fn check_value(parameter: &Parameter, shape: Shape, value: &Value, out: &mut Vec<Diagnostic>) {
    let name = &parameter.name;
    let items = texts(shape, value);
    if let Some(allowed) = &parameter.allowed_values {
        let allowed_texts: Vec<String> = allowed.iter().flat_map(|v| texts(Shape::String, v)).collect();
        for item in items.iter().filter(|item| !allowed_texts.contains(item)) {
            let message = format!("`{item}` is not an allowed value of `{name}`");
            let help = format!("allowed: {}", allowed_texts.join(", "));
            let pointer = pointer_push(&parameter.pointer, "allowedValues");
            out.push(Diagnostic::new(Code::ParameterAllowedValues, message).at(pointer).with_help(help));
        }
    }
    if let Some(pattern) = &parameter.allowed_pattern
        && let Ok(regex) = java_regex::compile(pattern)
    {
        for item in items.iter().filter(|item| !java_regex::matches(&regex, item)) {
            let message = format!("`{item}` does not match the allowedPattern of `{name}`");
            let pointer = pointer_push(&parameter.pointer, "allowedPattern");
            out.push(Diagnostic::new(Code::ParameterPattern, message).at(pointer));
        }
    }
    let count = |key: &str, limit: Option<u64>, actual: usize, more: bool| {
        let limit = limit?;
        let broken = if more { (actual as u64) < limit } else { (actual as u64) > limit };
        broken.then(|| (key.to_owned(), limit, actual))
    };
    let mut broken = Vec::new();
    if let Value::Array(list) = value {
        broken.extend(count("minItems", parameter.min_items, list.len(), true));
        broken.extend(count("maxItems", parameter.max_items, list.len(), false));
    }
    let char_texts = match shape {
        Shape::StringMap | Shape::MapList => vec![value.to_string()],
        _ => items,
    };
    for text in &char_texts {
        let chars = text.chars().count();
        broken.extend(count("minChars", parameter.min_chars, chars, true));
        broken.extend(count("maxChars", parameter.max_chars, chars, false));
    }
    for (key, limit, actual) in broken {
        let unit = if key.ends_with("Items") { "items" } else { "characters" };
        let message = format!("`{name}` has {actual} {unit}; {key} is {limit}");
        out.push(Diagnostic::new(Code::ParameterLength, message).at(pointer_push(&parameter.pointer, &key)));
    }
}

/// The console patterns of the AWS resource types; a warning, never on the empty string.
fn check_resource_pattern(parameter: &Parameter, pattern: &str, value: &Value, out: &mut Vec<Diagnostic>) {
    let Ok(regex) = fancy_regex::Regex::new(pattern) else { return };
    let kind = parameter.kind.map_or("", |k| k.name());
    for item in texts(Shape::StringList, value).iter().filter(|s| !s.is_empty()) {
        if !java_regex::matches(&regex, item) {
            let message = format!("`{item}` does not look like a value of type {kind} for `{}`", parameter.name);
            let mut diagnostic =
                Diagnostic::new(Code::ParameterPattern, message).at(pointer_push(&parameter.pointer, "type"));
            diagnostic.severity = Severity::Warning;
            out.push(diagnostic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runbook() -> Runbook {
        Runbook::from_value(json!({
            "schemaVersion": "0.3",
            "parameters": {
                "Name": {"type": "String", "allowedPattern": "^[a-z]+$", "maxChars": 5},
                "Ids": {"type": "StringList", "default": [], "maxItems": 2},
                "Count": {"type": "Integer", "default": 1, "allowedValues": ["1", "2"]},
                "Flag": {"type": "Boolean", "default": false},
                "Map": {"type": "StringMap", "default": {}},
                "Maps": {"type": "MapList", "default": []},
                "Instance": {"type": "AWS::EC2::Instance::Id", "default": ""}
            },
            "mainSteps": []
        }))
    }

    fn codes(supplied: &[(&str, Supplied)]) -> Vec<Code> {
        let supplied: Vec<_> = supplied.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
        bind(&runbook(), &supplied).diagnostics.iter().map(|d| d.code).collect()
    }

    fn text(value: &str) -> Supplied {
        Supplied::Text(value.into())
    }

    #[test]
    fn typing_by_declared_type() {
        let supplied = vec![
            ("Name".to_string(), text("abc")),
            ("Ids".to_string(), text("a, b")),
            ("Count".to_string(), text("2")),
            ("Flag".to_string(), text("TRUE")),
            ("Map".to_string(), text(r#"{"k": "v"}"#)),
            ("Maps".to_string(), text(r#"[{"k": 1}]"#)),
        ];
        let bound = bind(&runbook(), &supplied);
        assert!(bound.diagnostics.is_empty(), "{:?}", bound.diagnostics);
        assert_eq!(bound.values["Ids"], json!(["a", "b"]));
        assert_eq!(bound.values["Count"], json!(2));
        assert_eq!(bound.values["Flag"], json!(true));
        assert_eq!(bound.values["Maps"], json!([{"k": 1}]));
        let bound = bind(&runbook(), &[("Name".into(), text("x")), ("Ids".into(), text(r#"["a,b"]"#))]);
        assert_eq!(bound.values["Ids"], json!(["a,b"]));
    }

    #[test]
    fn each_constraint() {
        assert_eq!(codes(&[]), vec![Code::MissingParameter]);
        assert_eq!(codes(&[("Name", text("ABC"))]), vec![Code::ParameterPattern]);
        assert_eq!(codes(&[("Name", text("abcdef"))]), vec![Code::ParameterLength]);
        assert_eq!(codes(&[("Name", text("a")), ("Ids", text("a,b,c"))]), vec![Code::ParameterLength]);
        assert_eq!(codes(&[("Name", text("a")), ("Count", text("3"))]), vec![Code::ParameterAllowedValues]);
        assert_eq!(codes(&[("Name", text("a")), ("Count", text("x"))]), vec![Code::ParameterType]);
        assert_eq!(codes(&[("Name", text("a")), ("Flag", text("yes"))]), vec![Code::ParameterType]);
        assert_eq!(codes(&[("Name", text("a")), ("Map", text("[1]"))]), vec![Code::ParameterType]);
        assert_eq!(codes(&[("Name", text("a")), ("Nmae", text("a"))]), vec![Code::UndeclaredParameterValue]);
        assert_eq!(codes(&[("Name", text("a")), ("Instance", text("not-an-id"))]), vec![Code::ParameterPattern]);
    }

    #[test]
    fn api_form_and_typed_json() {
        let supplied = [
            ("Name", Supplied::Json(json!(["abc"]))),
            ("Count", Supplied::Json(json!(1))),
            ("Flag", Supplied::Json(json!("false"))),
        ];
        assert_eq!(codes(&supplied), vec![]);
    }

    #[test]
    fn values_are_data() {
        let bound = bind(&runbook(), &[("Name".into(), text("{{ Count }}"))]);
        assert_eq!(bound.diagnostics[0].code, Code::ParameterPattern);
        assert_eq!(bound.values["Name"], json!("{{ Count }}"));
    }
}
