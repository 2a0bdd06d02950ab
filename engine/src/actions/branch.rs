//! `aws:branch` (reference 6.3): the first choice whose condition holds names the next step.
//! Conditions are evaluated with three values so a dry-run can say "unknown" and explore
//! every choice that might hold. The structure of conditions (V10) is checked here too, for
//! branches and for the `LoopCondition` of `aws:loop`.

use serde_json::{Map, Value, json};

use super::{Action, Checked, Choice, Context, Failure, Kind, Output, Result};
use crate::diagnostic::{Code, Diagnostic, describe_json, nearest, pointer_push};
use crate::document::model::{Step, lenient_bool};
use crate::template::render::to_text;

pub const ACTION: Action = Action {
    pure: true,
    kind: Kind::Branch,
    self_contained: true,
    builtin_outputs: &["NextStep"],
    safe_to_repeat: true,
    execute: executor!(sync execute),
    describe,
    check,
    ..Action::new("aws:branch")
};

pub const STRING_OPERATORS: &[&str] = &["StringEquals", "EqualsIgnoreCase", "StartsWith", "EndsWith", "Contains"];
pub const NUMERIC_OPERATORS: &[&str] =
    &["NumericEquals", "NumericGreater", "NumericLesser", "NumericGreaterOrEquals", "NumericLesserOrEquals"];
pub const BOOLEAN_OPERATORS: &[&str] = &["BooleanEquals"];

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

fn execute(_: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let Some(choices) = inputs.get("Choices").and_then(Value::as_array) else {
        return Err(Failure::error("`Choices` must be a list of conditions"));
    };
    for (index, choice) in choices.iter().enumerate() {
        match evaluate(choice, &mut |leaf| Ok(Some(leaf.clone()))) {
            Ok(Some(true)) => {
                let next = choice.get("NextStep").cloned().unwrap_or(Value::Null);
                return Ok(chosen(Choice::Taken(index), next));
            }
            Ok(_) => {}
            Err(message) => {
                return Err(Failure::error(format!("choice {} ({}): {message}", index + 1, next_of(choice))));
            }
        }
    }
    Ok(chosen(Choice::Default, inputs.get("Default").cloned().unwrap_or(Value::Null)))
}

fn next_of(choice: &Value) -> String {
    choice.get("NextStep").and_then(Value::as_str).unwrap_or("?").to_owned()
}

fn chosen(choice: Choice, next: Value) -> Output {
    let mut builtins = Map::new();
    builtins.insert("NextStep".into(), next.clone());
    Output { root: json!({ "NextStep": next }), builtins, choice: Some(choice), ..Output::empty() }
}

/// Each choice's `NextStep` as written (`None` when a choice has none).
pub fn choice_targets(step: &Step) -> Vec<Option<&str>> {
    match step.inputs.get("Choices") {
        Some(Value::Array(choices)) => {
            choices.iter().map(|choice| choice.get("NextStep").and_then(Value::as_str)).collect()
        }
        _ => Vec::new(),
    }
}

/// `Default` as written.
pub fn default_target(step: &Step) -> Option<&str> {
    step.inputs.get("Default").and_then(Value::as_str)
}

/// Every jump of a branch with what names it and its pointer: `Default`, then each choice's
/// `NextStep`.
pub fn jumps(step: &Step) -> Vec<(&'static str, &str, String)> {
    let mut jumps = Vec::new();
    if let Some(target) = default_target(step) {
        jumps.push(("Default", target, step.input_pointer("Default")));
    }
    for (i, target) in choice_targets(step).into_iter().enumerate() {
        if let Some(target) = target {
            jumps.push(("NextStep", target, format!("{}/{i}/NextStep", step.input_pointer("Choices"))));
        }
    }
    jumps
}

/// A branch condition as one line: `{{ x }} StringEquals "a" and not ({{ y }} BooleanEquals true)`.
pub fn describe_condition(condition: &Value) -> String {
    let Some(object) = condition.as_object() else { return condition.to_string() };
    let group = |items: &Value, word: &str| match items.as_array() {
        Some(items) => items
            .iter()
            .map(|item| format!("({})", describe_condition(item)))
            .collect::<Vec<_>>()
            .join(&format!(" {word} ")),
        None => items.to_string(),
    };
    if let Some(items) = object.get("And") {
        return group(items, "and");
    }
    if let Some(items) = object.get("Or") {
        return group(items, "or");
    }
    if let Some(inner) = object.get("Not") {
        return format!("not ({})", describe_condition(inner));
    }
    let variable =
        object.get("Variable").map_or_else(|| "?".to_owned(), |v| v.as_str().map_or(v.to_string(), str::to_owned));
    let operator = object.iter().find(|(key, _)| !matches!(key.as_str(), "Variable" | "NextStep"));
    match operator {
        Some((operator, operand)) => format!("{variable} {operator} {operand}"),
        None => variable,
    }
}

fn describe(_: &Step, _: &Value) -> std::result::Result<String, String> {
    Ok("choose the next step".into())
}

/// V10: choices and conditions.
fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let Some(Value::Array(choices)) = step.inputs.get("Choices") else {
        let message = "aws:branch needs a `Choices` list";
        out.push(Diagnostic::new(Code::BranchStructure, message).at(pointer_push(&step.pointer, "inputs")));
        return;
    };
    if choices.is_empty() {
        out.push(Diagnostic::new(Code::BranchStructure, "`Choices` is empty").at(step.input_pointer("Choices")));
    }
    for (i, choice) in choices.iter().enumerate() {
        let pointer = pointer_push(&step.input_pointer("Choices"), i);
        check_condition(choice, &pointer, Level::Choice, out);
    }
}

/// Where a condition sits: a branch's choice, inside another condition, or a loop's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Choice,
    Sub,
    LoopCondition,
}

/// Placeholder pushed for an unknown operator so the count of operators stays right.
const OTHER: &str = "?";

/// Checks the structure of one condition (V10).
pub fn check_condition(condition: &Value, pointer: &str, level: Level, out: &mut Vec<Diagnostic>) {
    let Some(object) = condition.as_object() else {
        let message = format!("a condition is a mapping, found {}", describe_json(condition));
        out.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
        return;
    };
    let mut operators = Vec::new();
    for (key, operand) in object {
        let key_pointer = pointer_push(pointer, key);
        match key.as_str() {
            "NextStep" if level == Level::Choice => {
                if !operand.is_string() {
                    out.push(Diagnostic::new(Code::BranchStructure, "NextStep must be a step name").at(key_pointer));
                }
            }
            "NextStep" => {
                let message = match level {
                    Level::LoopCondition => "a LoopCondition has no NextStep",
                    _ => "only a top-level choice has NextStep; this is a sub-condition",
                };
                out.push(Diagnostic::new(Code::BranchStructure, message).at_key(key_pointer));
            }
            "Variable" => {}
            "And" | "Or" => {
                operators.push(key.as_str());
                match operand.as_array() {
                    Some(items) if items.len() >= 2 => {
                        for (i, item) in items.iter().enumerate() {
                            check_condition(item, &pointer_push(&key_pointer, i), Level::Sub, out);
                        }
                    }
                    Some(items) => {
                        let message = format!("`{key}` needs at least two conditions, found {}", items.len());
                        out.push(Diagnostic::new(Code::BranchStructure, message).at(key_pointer));
                    }
                    None => {
                        let message = format!("`{key}` takes a list of conditions");
                        out.push(Diagnostic::new(Code::BranchStructure, message).at(key_pointer));
                    }
                }
            }
            "Not" => {
                operators.push("Not");
                if operand.is_object() {
                    check_condition(operand, &key_pointer, Level::Sub, out);
                } else {
                    let message = "`Not` takes a single condition (a mapping, not a list)";
                    out.push(Diagnostic::new(Code::BranchStructure, message).at(key_pointer));
                }
            }
            op if OPERATORS.contains(&op) => {
                operators.push(op);
                if let Some(problem) = operand_problem(op, operand) {
                    out.push(Diagnostic::new(Code::BranchStructure, problem).at(key_pointer));
                }
            }
            other => {
                let mut diagnostic =
                    Diagnostic::new(Code::BranchOperator, format!("unknown branch operator `{other}`"))
                        .at_key(key_pointer);
                let known = STRING_OPERATORS
                    .iter()
                    .chain(NUMERIC_OPERATORS)
                    .chain(BOOLEAN_OPERATORS)
                    .chain(&["And", "Or", "Not"])
                    .copied();
                if let Some(suggestion) = nearest(other, known) {
                    diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
                }
                out.push(diagnostic);
                operators.push(OTHER);
            }
        }
    }
    if level == Level::Choice && !object.contains_key("NextStep") {
        out.push(Diagnostic::new(Code::BranchStructure, "this choice has no NextStep").at(pointer));
    }
    let combinator = operators.iter().any(|op| matches!(*op, "And" | "Or" | "Not"));
    match operators.len() {
        0 => {
            let message = "a condition needs one operator (e.g. StringEquals) or And/Or/Not";
            out.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
        }
        1 if combinator && object.contains_key("Variable") => {
            let message = format!("`Variable` has no meaning beside `{}`", operators[0]);
            out.push(Diagnostic::new(Code::BranchStructure, message).at_key(pointer_push(pointer, "Variable")));
        }
        1 if !combinator && operators[0] != OTHER => match object.get("Variable") {
            None => {
                let message = format!("`{}` compares a `Variable`, but the condition has none", operators[0]);
                out.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
            }
            Some(Value::String(_)) => {}
            Some(other) => {
                let message = format!("`Variable` is a reference string, found {}", describe_json(other));
                out.push(Diagnostic::new(Code::BranchStructure, message).at(pointer_push(pointer, "Variable")));
            }
        },
        1 => {}
        _ => {
            let listed: Vec<_> = operators.iter().filter(|op| **op != OTHER).map(|op| format!("`{op}`")).collect();
            let message = format!("a condition takes exactly one operator, found {}", listed.join(", "));
            out.push(Diagnostic::new(Code::BranchStructure, message).at(pointer));
        }
    }
}

fn operand_problem(operator: &str, operand: &Value) -> Option<String> {
    let templated = operand.as_str().is_some_and(|s| s.contains("{{"));
    if templated {
        return None;
    }
    if STRING_OPERATORS.contains(&operator) {
        return (!matches!(operand, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            .then(|| format!("`{operator}` compares with a string, found {}", describe_json(operand)));
    }
    if NUMERIC_OPERATORS.contains(&operator) {
        let numeric = operand.is_number() || operand.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok());
        return (!numeric).then(|| format!("`{operator}` compares with a number, found {}", describe_json(operand)));
    }
    let boolean = lenient_bool(operand).is_some();
    (!boolean).then(|| format!("`{operator}` compares with true or false, found {}", describe_json(operand)))
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
        value if lenient_bool(value).is_some() => Ok(lenient_bool(value) == Some(true)),
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
