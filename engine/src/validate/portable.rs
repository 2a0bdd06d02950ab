//! Portability to SSM Automation: what this engine runs that SSM does not, found before
//! `runbook publish` sends a document (and by `runbook validate --for ssm`). SSM refuses a
//! document with keys it does not define, so every `x-` extension is refused, or removed with
//! `--strip-extensions` and a warning of the behaviour lost. What cannot be removed without
//! changing what the runbook does (an `x-expressions` expression, the fencing token) is
//! refused either way.

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Severity, pointer_push};
use crate::template::{self, Reference, render};

/// The findings, and the document with the extensions removed (when asked to remove them).
pub struct Portable {
    pub diagnostics: Vec<Diagnostic>,
    /// The document as SSM gets it; `None` when nothing was removed (send the text as it is).
    pub stripped: Option<Value>,
}

/// What running on SSM loses without an extension.
fn lost(key: &str) -> &'static str {
    match key {
        "x-locks" => "no named lock is taken, so two runs on SSM do not exclude each other",
        "x-rollback" => "a failure no longer rolls back the steps that succeeded",
        "x-undo" => "the step is not undone by a rollback, and `runbook undo` cannot reverse it",
        "x-secret" => "SSM shows the value in the execution's parameters (pass secrets as SecureString references)",
        "x-expressions" => "`{{ }}` expressions are not evaluated",
        _ => "SSM does not know it",
    }
}

/// Checks the loaded document `value`; with `strip`, removes the extensions that can go.
pub fn check(value: &Value, strip: bool) -> Portable {
    let mut diagnostics = Vec::new();
    let mut stripped = value.clone();
    let expressions = value.get("x-expressions").and_then(Value::as_bool) == Some(true);
    let mut places: Vec<String> = vec![String::new()];
    for section in ["parameters", "variables", "files"] {
        if let Some(Value::Object(entries)) = value.get(section) {
            places.extend(entries.keys().map(|name| pointer_push(&format!("/{section}"), name)));
        }
    }
    steps(value.get("mainSteps"), "/mainSteps", &mut places);
    for place in &places {
        let Some(Value::Object(object)) = pointer(&stripped, place) else { continue };
        let keys: Vec<String> = object.keys().filter(|key| key.starts_with("x-")).cloned().collect();
        for key in keys {
            let at = pointer_push(place, &key);
            let mut diagnostic = if strip {
                let mut removed = Diagnostic::new(Code::NotPortable, format!("`{key}` removed: {}", lost(&key)));
                removed.severity = Severity::Warning;
                removed
            } else {
                Diagnostic::new(
                    Code::NotPortable,
                    format!("`{key}` is an engine extension SSM does not run ({})", lost(&key)),
                )
            };
            if !strip {
                diagnostic.help = Some("remove it, or publish with --strip-extensions".to_owned());
            }
            diagnostics.push(diagnostic.at_key(at));
            if strip && let Some(Value::Object(object)) = pointer_mut(&mut stripped, place) {
                object.remove(&key);
            }
        }
    }
    // What stripping removed is not sent, so only what is left is looked at.
    let mut templates = Vec::new();
    template::collect_templates(if strip { &stripped } else { value }, "", &mut templates);
    let config = render::Config { strict: false, expressions };
    for (text, at) in templates {
        for (_, part) in render::parts(text, config) {
            let message = match part {
                render::Part::Expression(source) => {
                    format!("`{{{{ {} }}}}` is an expression (x-expressions): SSM would keep it as text", source.trim())
                }
                render::Part::Reference(Reference::Automation("FENCING_TOKEN")) => {
                    "`{{ automation:FENCING_TOKEN }}` comes from a named lock, which SSM does not take".to_owned()
                }
                render::Part::Reference(_) => continue,
            };
            diagnostics.push(Diagnostic::new(Code::NotPortable, message).at(at.clone()));
        }
    }
    let changed = strip && stripped != *value;
    Portable { diagnostics, stripped: changed.then_some(stripped) }
}

/// The pointers of every step and of each of its `outputs` entries, loop bodies included.
fn steps(list: Option<&Value>, base: &str, out: &mut Vec<String>) {
    let Some(Value::Array(items)) = list else { return };
    for (index, step) in items.iter().enumerate() {
        let at = pointer_push(base, index);
        out.push(at.clone());
        if let Some(Value::Array(outputs)) = step.get("outputs") {
            out.extend((0..outputs.len()).map(|output| format!("{at}/outputs/{output}")));
        }
        steps(step.pointer("/inputs/Steps"), &format!("{at}/inputs/Steps"), out);
    }
}

fn pointer<'v>(value: &'v Value, at: &str) -> Option<&'v Value> {
    if at.is_empty() { Some(value) } else { value.pointer(at) }
}

fn pointer_mut<'v>(value: &'v mut Value, at: &str) -> Option<&'v mut Value> {
    if at.is_empty() { Some(value) } else { value.pointer_mut(at) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(yaml: &str) -> Value {
        crate::document::load("t.yaml".into(), yaml.as_bytes().to_vec(), None).value.unwrap()
    }

    const EXTENDED: &str = "schemaVersion: '0.3'
x-locks: [dns/zone]
parameters:
  Token: {type: String, x-secret: true}
mainSteps:
  - name: change
    action: aws:sleep
    inputs: {Duration: PT1S}
    x-undo: {action: aws:sleep, inputs: {Duration: PT1S}}
  - name: each
    action: aws:loop
    inputs:
      Iterators: [a]
      Steps:
        - {name: inner, action: aws:sleep, inputs: {Duration: PT1S, x-header: kept}, x-note: n}
  - name: read
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances}
    outputs:
      - {Name: Ids, Selector: $.Reservations, Type: MapList, x-doc: d}
";

    #[test]
    fn every_extension_is_refused_where_it_is() {
        let portable = check(&value(EXTENDED), false);
        let places: Vec<&str> = portable.diagnostics.iter().filter_map(|d| d.pointer.as_deref()).collect();
        assert_eq!(
            places,
            [
                "/x-locks",
                "/parameters/Token/x-secret",
                "/mainSteps/0/x-undo",
                "/mainSteps/1/inputs/Steps/0/x-note",
                "/mainSteps/2/outputs/0/x-doc",
            ]
        );
        assert!(portable.diagnostics.iter().all(|d| d.severity == Severity::Error));
        assert!(portable.stripped.is_none());
    }

    #[test]
    fn stripping_removes_extensions_and_keeps_inputs() {
        let portable = check(&value(EXTENDED), true);
        assert!(portable.diagnostics.iter().all(|d| d.severity == Severity::Warning));
        assert!(portable.diagnostics[0].message.contains("two runs on SSM do not exclude each other"));
        let stripped = portable.stripped.unwrap();
        assert!(!stripped.to_string().contains("x-locks") && !stripped.to_string().contains("x-undo"));
        assert_eq!(stripped.pointer("/mainSteps/1/inputs/Steps/0/inputs/x-header"), Some(&Value::from("kept")));
    }

    #[test]
    fn what_stripping_removes_is_not_checked_for_expressions() {
        let text = "schemaVersion: '0.3'
mainSteps:
  - name: a
    action: aws:sleep
    inputs: {Duration: PT1S}
    x-undo: {action: aws:sleep, inputs: {Duration: PT1S, Note: '{{ automation:FENCING_TOKEN }}'}}
";
        assert!(check(&value(text), false).diagnostics.iter().any(|d| d.message.contains("FENCING_TOKEN")));
        assert!(check(&value(text), true).diagnostics.iter().all(|d| d.severity == Severity::Warning));
    }

    #[test]
    fn expressions_and_the_fencing_token_cannot_be_stripped() {
        let text = "schemaVersion: '0.3'
x-expressions: true
mainSteps:
  - name: a
    action: aws:sleep
    inputs: {Duration: \"{{ 'PT' ~ 1 ~ 'S' }}\", Note: '{{ automation:FENCING_TOKEN }} {{ automation:EXECUTION_ID }}'}
";
        let portable = check(&value(text), true);
        let errors: Vec<&str> =
            portable.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.message.as_str()).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("is an expression"), "{errors:?}");
        assert!(errors[1].contains("FENCING_TOKEN"), "{errors:?}");
    }
}
