//! What a scenario's run did, compared with what it expects. Each expectation not met is one
//! message; the path is compared as a diff with its first differing step named.

use serde::Serialize;
use serde_json::Value;

use super::file::{CallExpectation, Expect, OutputsExpectation};
use super::mocks::Made;
use crate::journal::Status;

/// One step visit as it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Visit {
    pub step: String,
    pub iteration: u32,
    pub status: Status,
    pub attempts: u32,
    pub outputs: Value,
    pub error: Option<String>,
}

/// What the run did.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// How the execution ended; `None` when the engine stopped or time ran out.
    pub status: Option<Status>,
    /// Why there is no status.
    pub error: Option<String>,
    pub path: Vec<String>,
    pub steps: Vec<Visit>,
    /// Document outputs.
    pub outputs: Value,
    pub calls: Vec<Made>,
}

/// Whether `actual` has everything `expected` has: objects by their keys, recursively;
/// lists element by element, of the same length; anything else equal.
pub fn contains(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            expected.iter().all(|(key, value)| actual.get(key).is_some_and(|found| contains(value, found)))
        }
        (Value::Array(expected), Value::Array(actual)) => {
            expected.len() == actual.len() && expected.iter().zip(actual).all(|(e, a)| contains(e, a))
        }
        (Value::Number(expected), Value::Number(actual)) => expected.as_f64() == actual.as_f64(),
        _ => expected == actual,
    }
}

fn outputs_met(expected: &OutputsExpectation, actual: &Value) -> Option<String> {
    let empty = serde_json::Map::new();
    let actual_map = actual.as_object().unwrap_or(&empty);
    let mut problems = Vec::new();
    for (name, value) in &expected.values {
        match actual_map.get(name) {
            None => problems.push(format!("`{name}` has no value (expected {value})")),
            Some(found) if !contains(value, found) => problems.push(format!("`{name}` is {found}, expected {value}")),
            Some(_) => {}
        }
    }
    if expected.exact {
        for name in actual_map.keys().filter(|name| !expected.values.contains_key(*name)) {
            problems.push(format!("`{name}` is {} and was not expected", actual_map[name]));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn call_text(call: &CallExpectation) -> String {
    match &call.request {
        Some(request) => format!("{} with {}", call.call, request),
        None => call.call.clone(),
    }
}

fn call_matches(expected: &CallExpectation, made: &Made) -> bool {
    expected.call == made.call && expected.request.as_ref().is_none_or(|request| contains(request, &made.params))
}

/// Every expectation `actual` does not meet, as a message.
pub fn compare(expect: &Expect, actual: &Actual) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(error) = &actual.error {
        failures.push(error.clone());
    }
    for made in actual.calls.iter().filter(|made| !made.answered) {
        failures.push(format!(
            "{} was called with {} and no mock answers it",
            made.call,
            crate::diagnostic::short(&made.params)
        ));
    }
    if let (Some(expected), Some(status)) = (expect.status, actual.status)
        && expected != status
    {
        let failed: Vec<String> = actual
            .steps
            .iter()
            .filter(|visit| visit.status.is_failure())
            .map(|visit| match &visit.error {
                Some(error) => format!("`{}`: {}", visit.step, error),
                None => format!("`{}` {}", visit.step, visit.status.as_str()),
            })
            .collect();
        let why = if failed.is_empty() { String::new() } else { format!(" ({})", failed.join("; ")) };
        failures.push(format!("status: expected {}, got {}{why}", expected.as_str(), status.as_str()));
    }
    if let Some(path) = &expect.path
        && *path != actual.path
    {
        failures.push(path_difference(path, &actual.path));
    }
    for (name, expected) in &expect.steps {
        let visit = match name.split_once('#') {
            Some((step, iteration)) => {
                actual.steps.iter().rev().find(|v| v.step == step && iteration.parse() == Ok(v.iteration))
            }
            None => actual.steps.iter().rev().find(|v| v.step == *name),
        };
        let Some(visit) = visit else {
            failures.push(format!("step `{name}`: expected to run, but it never did"));
            continue;
        };
        if let Some(status) = expected.status
            && status != visit.status
        {
            let error = visit.error.as_ref().map(|error| format!(": {error}")).unwrap_or_default();
            failures.push(format!("step `{name}`: expected {}, got {}{error}", status.as_str(), visit.status.as_str()));
        }
        if let Some(text) = &expected.error {
            match &visit.error {
                Some(error) if error.contains(text.as_str()) => {}
                Some(error) => failures.push(format!("step `{name}`: its error does not contain {text:?}: {error}")),
                None => failures.push(format!("step `{name}`: expected an error containing {text:?}, got none")),
            }
        }
        if let Some(attempts) = expected.attempts
            && attempts != visit.attempts
        {
            failures.push(format!("step `{name}`: expected {attempts} attempts, got {}", visit.attempts));
        }
        if let Some(outputs) = &expected.outputs
            && let Some(problem) = outputs_met(outputs, &visit.outputs)
        {
            failures.push(format!("step `{name}` outputs: {problem}"));
        }
    }
    if let Some(outputs) = &expect.outputs
        && let Some(problem) = outputs_met(outputs, &actual.outputs)
    {
        failures.push(format!("document outputs: {problem}"));
    }
    if let Some(calls) = &expect.calls {
        let made: Vec<&Made> = actual.calls.iter().collect();
        let first_difference = (0..calls.len().max(made.len()))
            .find(|&i| !matches!((calls.get(i), made.get(i)), (Some(e), Some(m)) if call_matches(e, m)));
        if let Some(i) = first_difference {
            let expected = calls.get(i).map_or("no more calls".to_owned(), call_text);
            let got = made.get(i).map_or("no more calls".to_owned(), |m| format!("{} with {}", m.call, m.params));
            failures.push(format!("AWS calls differ at call {}: expected {expected}, got {got}", i + 1));
        }
    }
    for forbidden in &expect.not_called {
        if let Some(made) = actual.calls.iter().find(|made| call_matches(forbidden, made)) {
            failures.push(format!("{} must not be called, but was, with {}", call_text(forbidden), made.params));
        }
    }
    failures
}

/// The expected and the actual path as a diff (`-` expected only, `+` actual only), after
/// a line naming the first step where they part.
pub fn path_difference(expected: &[String], actual: &[String]) -> String {
    let first = expected.iter().zip(actual).position(|(e, a)| e != a).unwrap_or(expected.len().min(actual.len()));
    let what = match (expected.get(first), actual.get(first)) {
        (Some(e), Some(a)) => format!("expected `{e}`, got `{a}`"),
        (Some(e), None) => format!("expected `{e}`, but the run ended"),
        (None, Some(a)) => format!("expected the run to end, got `{a}`"),
        (None, None) => "the same".to_owned(),
    };
    let mut text = format!("path differs at step {}: {what}\n", first + 1);
    for line in diff(expected, actual) {
        text.push_str("    ");
        text.push_str(&line);
        text.push('\n');
    }
    text.trim_end().to_owned()
}

/// A line diff of two short lists (longest common subsequence).
fn diff(a: &[String], b: &[String]) -> Vec<String> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut lines) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            lines.push(format!("  {}", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(format!("- {}", a[i]));
            i += 1;
        } else {
            lines.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn subsets_match_by_key_and_lists_by_element() {
        assert!(contains(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!contains(&json!({"a": 1, "c": 3}), &json!({"a": 1, "b": 2})));
        assert!(contains(&json!([{"k": "v"}]), &json!([{"k": "v", "x": 1}])));
        assert!(!contains(&json!([1]), &json!([1, 2])));
        assert!(contains(&json!(1), &json!(1.0)));
    }

    #[test]
    fn a_path_difference_names_the_first_step_and_shows_a_diff() {
        let expected: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let actual: Vec<String> = ["a", "x", "c"].map(String::from).to_vec();
        let text = path_difference(&expected, &actual);
        assert!(text.starts_with("path differs at step 2: expected `b`, got `x`"), "{text}");
        assert!(text.contains("- b") && text.contains("+ x") && text.contains("  c"), "{text}");
    }

    #[test]
    fn ranges_parse_numbers_and_spans() {
        use super::super::Range;
        assert_eq!(Range::parse(&json!(2)), Ok(Range { first: 2, last: Some(2) }));
        assert_eq!(Range::parse(&json!("1-2")), Ok(Range { first: 1, last: Some(2) }));
        let open = Range::parse(&json!("3-")).unwrap();
        assert!(open.contains(3) && open.contains(1000) && !open.contains(2));
        assert!(Range::parse(&json!("2-1")).is_err());
        assert!(Range::parse(&json!("0")).is_err());
        assert!(Range::parse(&json!("x")).is_err());
    }
}
