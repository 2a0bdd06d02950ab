//! `aws:branch` (reference 6.3): the first choice whose condition holds names the next step.
//! Conditions are evaluated with three values so a dry-run can say "unknown" and explore
//! every choice that might hold.

use serde_json::{Map, Value, json};

use super::{Context, Failure, Output, Result};
use crate::plan::Outcome;
use crate::template::render::to_text;

/// The operators of a simple condition.
pub const OPERATORS: &[&str] = &[
    "StringEquals",
    "EqualsIgnoreCase",
    "StartsWith",
    "EndsWith",
    "Contains",
    "NumericEquals",
    "NumericGreater",
    "NumericLesser",
    "NumericGreaterOrEquals",
    "NumericLesserOrEquals",
    "BooleanEquals",
];

pub fn execute(_: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let Some(choices) = inputs.get("Choices").and_then(Value::as_array) else {
        return Err(Failure::error("`Choices` must be a list of conditions"));
    };
    for (index, choice) in choices.iter().enumerate() {
        match evaluate(choice, &mut |leaf| Ok(Some(leaf.clone()))) {
            Ok(Some(true)) => {
                let next = choice.get("NextStep").cloned().unwrap_or(Value::Null);
                return Ok(chosen(Outcome::Chose(index), next));
            }
            Ok(_) => {}
            Err(message) => {
                return Err(Failure::error(format!("choice {} ({}): {message}", index + 1, next_of(choice))));
            }
        }
    }
    Ok(chosen(Outcome::NoChoice, inputs.get("Default").cloned().unwrap_or(Value::Null)))
}

fn next_of(choice: &Value) -> String {
    choice.get("NextStep").and_then(Value::as_str).unwrap_or("?").to_owned()
}

fn chosen(outcome: Outcome, next: Value) -> Output {
    let mut builtins = Map::new();
    builtins.insert("NextStep".into(), next.clone());
    Output { root: json!({ "NextStep": next }), builtins, outcome, ..Output::empty() }
}

/// A condition's value: `Some(true|false)`, or `None` when a leaf is unknown. `leaf`
/// renders a `Variable` or an operand, `None` meaning unknown (dry-runs only).
pub fn evaluate(
    condition: &Value,
    leaf: &mut dyn FnMut(&Value) -> std::result::Result<Option<Value>, String>,
) -> std::result::Result<Option<bool>, String> {
    let Some(object) = condition.as_object() else {
        return Err("a condition must be a mapping".into());
    };
    let group = |key: &str| object.get(key).map(|items| items.as_array().ok_or(format!("`{key}` needs a list")));
    // And is decided by the first false, Or by the first true; an unknown item leaves the
    // group unknown unless a later one decides it.
    for (key, decisive) in [("And", false), ("Or", true)] {
        if let Some(items) = group(key) {
            let mut result = Some(!decisive);
            for item in items? {
                match evaluate(item, leaf)? {
                    Some(holds) if holds == decisive => return Ok(Some(decisive)),
                    Some(_) => {}
                    None => result = None,
                }
            }
            return Ok(result);
        }
    }
    if let Some(inner) = object.get("Not") {
        return Ok(evaluate(inner, leaf)?.map(|holds| !holds));
    }
    let Some(variable) = object.get("Variable") else {
        return Err("a condition needs `Variable`, `And`, `Or` or `Not`".into());
    };
    let Some((operator, operand)) = object.iter().find(|(key, _)| OPERATORS.contains(&key.as_str())) else {
        return Err("a condition needs an operator such as `StringEquals`".into());
    };
    let (Some(variable), Some(operand)) = (leaf(variable)?, leaf(operand)?) else {
        return Ok(None);
    };
    compare(operator, &variable, &operand).map(Some)
}

/// One typed comparison. Numeric and boolean operators need values of their type (numbers
/// and `true`/`false` written as text count); a mismatch fails the step (reference 6.3).
pub fn compare(operator: &str, variable: &Value, operand: &Value) -> std::result::Result<bool, String> {
    let text = || (to_text(variable), to_text(operand));
    Ok(match operator {
        "StringEquals" => {
            let (a, b) = text();
            a == b
        }
        "EqualsIgnoreCase" => {
            let (a, b) = text();
            a.to_lowercase() == b.to_lowercase()
        }
        "StartsWith" => {
            let (a, b) = text();
            a.starts_with(&b)
        }
        "EndsWith" => {
            let (a, b) = text();
            a.ends_with(&b)
        }
        // On a list, membership; on text, a substring.
        "Contains" => match variable {
            Value::Array(items) => items.iter().any(|item| to_text(item) == to_text(operand)),
            _ => {
                let (a, b) = text();
                a.contains(&b)
            }
        },
        "BooleanEquals" => boolean(variable, operator)? == boolean(operand, operator)?,
        _ => {
            let (a, b) = (number(variable, operator)?, number(operand, operator)?);
            match operator {
                "NumericEquals" => a == b,
                "NumericGreater" => a > b,
                "NumericLesser" => a < b,
                "NumericGreaterOrEquals" => a >= b,
                "NumericLesserOrEquals" => a <= b,
                _ => return Err(format!("unknown operator `{operator}`")),
            }
        }
    })
}

fn number(value: &Value, operator: &str) -> std::result::Result<f64, String> {
    match value {
        Value::Number(number) => number.as_f64().ok_or_else(|| format!("{operator}: {number} is out of range")),
        Value::String(text) => {
            text.trim().parse().map_err(|_| format!("{operator} needs a number, found the text {value}"))
        }
        other => Err(format!("{operator} needs a number, found {other}")),
    }
}

fn boolean(value: &Value, operator: &str) -> std::result::Result<bool, String> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("{operator} needs true or false, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(condition: Value) -> std::result::Result<Option<bool>, String> {
        evaluate(&condition, &mut |leaf| Ok(Some(leaf.clone())))
    }

    #[test]
    fn every_operator_compares_by_type() {
        let cases = [
            ("StringEquals", json!("a"), json!("a"), true),
            ("StringEquals", json!("a"), json!("A"), false),
            ("EqualsIgnoreCase", json!("Running"), json!("running"), true),
            ("StartsWith", json!("i-123"), json!("i-"), true),
            ("EndsWith", json!("file.py"), json!(".zip"), false),
            ("Contains", json!("Status: OK"), json!("OK"), true),
            ("Contains", json!(["a", "b"]), json!("b"), true),
            ("Contains", json!(["ab"]), json!("b"), false),
            ("NumericEquals", json!(3), json!("3"), true),
            ("NumericGreater", json!("10"), json!(9), true),
            ("NumericLesser", json!(1.5), json!(2), true),
            ("NumericGreaterOrEquals", json!(2), json!(2), true),
            ("NumericLesserOrEquals", json!(3), json!(2), false),
            ("BooleanEquals", json!("True"), json!(true), true),
            ("BooleanEquals", json!(false), json!(true), false),
        ];
        for (operator, variable, operand, expected) in cases {
            assert_eq!(compare(operator, &variable, &operand), Ok(expected), "{operator} {variable} {operand}");
        }
    }

    #[test]
    fn mismatched_types_fail() {
        assert_eq!(
            compare("NumericGreater", &json!("abc"), &json!(1)),
            Err("NumericGreater needs a number, found the text \"abc\"".into())
        );
        assert!(compare("BooleanEquals", &json!("yes"), &json!(true)).is_err());
    }

    #[test]
    fn and_or_not_combine() {
        let t = json!({"Variable": "a", "StringEquals": "a"});
        let f = json!({"Variable": "a", "StringEquals": "b"});
        assert_eq!(check(json!({"And": [t, f]})), Ok(Some(false)));
        assert_eq!(check(json!({"Or": [f, t]})), Ok(Some(true)));
        assert_eq!(check(json!({"Not": f})), Ok(Some(true)));
        assert_eq!(check(json!({"And": [t, {"Not": {"Or": [f, f]}}]})), Ok(Some(true)));
    }

    #[test]
    fn unknown_leaves_make_unknown_conditions_unless_decided() {
        let unknown = json!({"Variable": "{{ x }}", "StringEquals": "a"});
        let f = json!({"Variable": "a", "StringEquals": "b"});
        let mut leaf = |value: &Value| Ok((value != &json!("{{ x }}")).then(|| value.clone()));
        assert_eq!(evaluate(&json!({"And": [unknown, f]}), &mut leaf), Ok(Some(false)));
        assert_eq!(evaluate(&json!({"Or": [unknown, f]}), &mut leaf), Ok(None));
        assert_eq!(evaluate(&json!({"Not": unknown}), &mut leaf), Ok(None));
    }
}
