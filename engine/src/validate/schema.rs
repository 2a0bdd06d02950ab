//! Shape checks with the published JSON Schema (`schemas/runbook.schema.json`, the same file
//! editors use), and the mapping of its errors to stable diagnostic codes.

use std::sync::OnceLock;

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, pointer_segments, short};

pub mod patterns;

/// The schema text, compiled into the binary so the validator and the published file can
/// never disagree.
pub const RUNBOOK_SCHEMA: &str = include_str!("../../../schemas/runbook.schema.json");

/// The schema compiled into the binary at build time: checking a runbook needs no schema
/// compilation at run time (it was most of the cost of validating one runbook). It is built
/// from the published schema with each `pattern` matched by hand ([`patterns`]): the same
/// file but for that keyword's name, which a test keeps so.
#[jsonschema::validator(
    path = "src/validate/schema/runbook.native.schema.json",
    validate_formats = false,
    keywords = { "x-runbook-pattern" => crate::validate::schema::patterns::keyword }
)]
struct RunbookSchema;

/// Checks `value` against the runbook schema; one diagnostic per distinct problem.
pub fn check(value: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // Most runbooks are valid; the boolean check is several times cheaper than collecting.
    if RunbookSchema::is_valid(value) {
        return out;
    }
    for error in RunbookSchema::iter_errors(value) {
        push_error(&error, value, &mut out);
    }
    out
}

/// Checks the item at `pointer` (`/mainSteps/N`) of a document whose steps are checked as
/// they are parsed: in a document of its own, with the findings the whole document's check
/// gives there, pointing into the real one. The item is handed back.
pub fn check_step(item: Value, pointer: &str, out: &mut Vec<Diagnostic>) -> Value {
    let mut root = Map::new();
    root.insert("schemaVersion".into(), Value::String("0.3".into()));
    root.insert("mainSteps".into(), Value::Array(vec![item]));
    let mut document = Value::Object(root);
    for mut diagnostic in check(&document) {
        let Some(rest) = diagnostic.pointer.as_deref().and_then(|at| at.strip_prefix(ALONE)) else { continue };
        diagnostic.pointer = Some(format!("{pointer}{rest}"));
        out.push(diagnostic);
    }
    document.pointer_mut(ALONE).map(Value::take).unwrap_or_default()
}

/// Where a step checked on its own is.
const ALONE: &str = "/mainSteps/0";

/// [`check`] of a document whose steps were checked as they were parsed (`taken`, the
/// indexes where its value holds `null`): the other items of `mainSteps` are checked on
/// their own, and the rest of the document with one valid stand-in step in the list, so the
/// list's own constraints still apply and no step is checked twice.
pub fn check_without_steps(document: &mut Value, taken: &[usize]) -> Vec<Diagnostic> {
    let Some(Value::Array(items)) = document.get_mut("mainSteps") else {
        return check(document);
    };
    let mut items = std::mem::take(items);
    let mut out = Vec::new();
    for (index, item) in items.iter_mut().enumerate() {
        if taken.binary_search(&index).is_err() {
            *item = check_step(item.take(), &format!("/mainSteps/{index}"), &mut out);
        }
    }
    let stand_in = serde_json::json!({"name": "StandIn", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}});
    document["mainSteps"] = Value::Array(if items.is_empty() { Vec::new() } else { vec![stand_in] });
    out.extend(
        check(document).into_iter().filter(|d| !d.pointer.as_deref().is_some_and(|at| at.starts_with("/mainSteps/"))),
    );
    document["mainSteps"] = Value::Array(items);
    out
}

/// The schema as JSON, for what its errors leave out (the inputs an action takes).
fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(RUNBOOK_SCHEMA).expect("the bundled schema is valid JSON"))
}

/// "did you mean" for an unknown input of the step whose inputs are at `pointer`.
fn input_suggestion(document: &Value, pointer: &str, unexpected: &str) -> Option<String> {
    let step = document.pointer(pointer.strip_suffix("/inputs")?)?;
    let action = step.get("action")?.as_str()?.strip_prefix("aws:")?;
    let known = schema_value().pointer(&format!("/$defs/inputs-{action}/properties"))?.as_object()?;
    crate::diagnostic::nearest(unexpected, known.keys().map(String::as_str))
        .map(|near| format!("did you mean `{near}`?"))
}

fn push_error(error: &ValidationError<'_>, document: &Value, out: &mut Vec<Diagnostic>) {
    let pointer = error.instance_path().as_str().to_owned();
    // anyOf/oneOf: when a branch failed deeper inside the value, that failure is the useful
    // one (the other branches are usually "or a {{ reference }}").
    if let ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } = error.kind() {
        let mut deeper =
            context.iter().flatten().filter(|inner| inner.instance_path().as_str().len() > pointer.len()).peekable();
        if deeper.peek().is_some() {
            for inner in deeper {
                push_error(inner, document, out);
            }
            return;
        }
    }
    let area = Area::of(&pointer);
    let (code, at_key) = code_for(area, error.kind());
    let message = message_for(error, area);
    let mut diagnostic = Diagnostic::new(code, message);
    // `schemaVersion: 0.3` is a number to YAML: AWS refuses it.
    if area == Area::SchemaVersion && error.instance().is_number() {
        diagnostic = diagnostic.with_help("quote it: `schemaVersion: '0.3'` (unquoted, YAML reads a number)");
    }
    if let (Area::Inputs, ValidationErrorKind::AdditionalProperties { unexpected }) = (area, error.kind())
        && let [unexpected] = unexpected.as_slice()
        && let Some(help) = input_suggestion(document, &pointer, unexpected)
    {
        diagnostic = diagnostic.with_help(help);
    }
    let diagnostic = match (at_key, error.kind()) {
        (_, ValidationErrorKind::AdditionalProperties { unexpected }) if unexpected.len() == 1 => {
            diagnostic.at_key(crate::diagnostic::pointer_push(&pointer, &unexpected[0]))
        }
        (true, _) => diagnostic.at_key(pointer),
        (false, _) => diagnostic.at(pointer),
    };
    if !out.contains(&diagnostic) {
        out.push(diagnostic);
    }
}

/// What part of a runbook a JSON pointer lands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Root,
    SchemaVersion,
    MainSteps,
    Step,
    StepName,
    StepAction,
    StepOnFailure,
    StepOnCancel,
    StepOutputs,
    StepField,
    Inputs,
    BranchCondition,
    Parameters,
    Variables,
    Files,
    DocumentOutputs,
    Other,
}

impl Area {
    pub fn of(pointer: &str) -> Area {
        let segments: Vec<String> = pointer_segments(pointer).map(std::borrow::Cow::into_owned).collect();
        let mut rest = segments.as_slice();
        match rest.first().map(String::as_str) {
            None => return Area::Root,
            Some("schemaVersion") => return Area::SchemaVersion,
            Some("parameters") => return Area::Parameters,
            Some("variables") => return Area::Variables,
            Some("files") => return Area::Files,
            Some("outputs") => return Area::DocumentOutputs,
            Some("mainSteps") => rest = &rest[1..],
            Some(_) => return Area::Other,
        }
        loop {
            // `rest` starts at a list of steps.
            if rest.is_empty() {
                return Area::MainSteps;
            }
            rest = &rest[1..];
            let Some(field) = rest.first() else {
                return Area::Step;
            };
            match field.as_str() {
                "name" => return Area::StepName,
                "action" => return Area::StepAction,
                "onFailure" => return Area::StepOnFailure,
                "onCancel" => return Area::StepOnCancel,
                "outputs" => return Area::StepOutputs,
                "inputs" => match rest.get(1).map(String::as_str) {
                    Some("Steps") => rest = &rest[2..],
                    Some("Choices" | "LoopCondition") => return Area::BranchCondition,
                    _ => return Area::Inputs,
                },
                _ => return Area::StepField,
            }
        }
    }
}

fn code_for(area: Area, kind: &ValidationErrorKind) -> (Code, bool) {
    use ValidationErrorKind as K;
    let required = |names: &[&str]| matches!(kind, K::Required { property } if names.iter().any(|n| property == n));
    match area {
        Area::Root if required(&["schemaVersion"]) => (Code::SchemaVersion, false),
        Area::Root if required(&["mainSteps"]) => (Code::MissingMainSteps, false),
        Area::Root if matches!(kind, K::AdditionalProperties { .. }) => (Code::UnknownKey, true),
        Area::SchemaVersion => (Code::SchemaVersion, false),
        Area::MainSteps => (Code::MissingMainSteps, false),
        Area::Step if matches!(kind, K::Required { .. }) => (Code::MissingStepProperty, false),
        Area::Step if matches!(kind, K::AdditionalProperties { .. }) => (Code::UnknownStepKey, true),
        Area::StepName => (Code::StepName, false),
        Area::StepAction => (Code::UnknownAction, false),
        Area::StepOnFailure => (Code::OnFailureValue, false),
        Area::StepOnCancel => (Code::OnCancelValue, false),
        Area::StepOutputs => (Code::StepOutputDefinition, false),
        Area::Inputs => (Code::ActionInput, false),
        Area::BranchCondition if matches!(kind, K::AdditionalProperties { .. }) => (Code::BranchOperator, true),
        Area::BranchCondition => (Code::BranchStructure, false),
        Area::Parameters => (Code::ParameterDefinition, false),
        Area::Variables => (Code::VariableDefinition, false),
        Area::Files => (Code::FilesDefinition, false),
        Area::DocumentOutputs => (Code::UnknownDocumentOutput, false),
        _ => (Code::Schema, false),
    }
}

fn message_for(error: &ValidationError<'_>, area: Area) -> String {
    use ValidationErrorKind as K;
    let instance = error.instance();
    let shown = short(instance);
    match error.kind() {
        K::Required { property } => {
            let property = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            match area {
                Area::Inputs => format!("missing required input `{property}`"),
                _ => format!("missing required key `{property}`"),
            }
        }
        K::AdditionalProperties { unexpected } => {
            let what = match area {
                Area::Root => "top-level key",
                Area::Step => "step key",
                Area::Inputs => "input for this action",
                Area::BranchCondition => "branch operator",
                _ => "key",
            };
            let names: Vec<_> = unexpected.iter().map(|k| format!("`{k}`")).collect();
            format!("unknown {what} {}", names.join(", "))
        }
        K::Constant { expected_value } => format!("expected {expected_value}, found {shown}"),
        K::Enum { options } => format!("{shown} is not one of {}", short(options)),
        K::Type { kind } => format!("expected {}, found {shown}", type_name(kind)),
        K::Pattern { pattern } => pattern_message(area, &shown, pattern),
        // The schema's patterns, matched by hand: the message is the pattern.
        K::Custom { keyword, message } if keyword == patterns::KEYWORD => pattern_message(area, &shown, message),
        K::MinItems { limit } if area == Area::MainSteps => {
            format!("mainSteps needs at least {limit} step")
        }
        K::AnyOf { .. } | K::OneOfNotValid { .. } => format!("{shown} matches none of the accepted forms"),
        K::OneOfMultipleValid { .. } => format!("{shown} matches more than one exclusive form"),
        _ => error.to_string(),
    }
}

/// A value that does not match its pattern.
fn pattern_message(area: Area, shown: &str, pattern: &str) -> String {
    match area {
        Area::StepName => format!("step name {shown} may only contain letters, digits and `_`"),
        Area::StepAction => format!("{shown} is not an action name (aws:name)"),
        Area::StepOnFailure => format!("onFailure is {shown}; expected Abort, Continue or step:NAME"),
        Area::StepOnCancel => format!("onCancel is {shown}; expected Abort or step:NAME"),
        _ => format!("{shown} does not match `{pattern}`"),
    }
}

fn type_name(kind: &jsonschema::error::TypeKind) -> String {
    match kind {
        jsonschema::error::TypeKind::Single(t) => article(&t.to_string()),
        jsonschema::error::TypeKind::Multiple(types) => {
            let names: Vec<_> = types.iter().map(|t| t.to_string()).collect();
            names.join(" or ")
        }
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "an integer".into(),
        other => format!("a {other}"),
    }
}

/// A value shortened for messages: scripts can be kilobytes long.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas() {
        assert_eq!(Area::of(""), Area::Root);
        assert_eq!(Area::of("/mainSteps/0"), Area::Step);
        assert_eq!(Area::of("/mainSteps/0/inputs/Steps/1/name"), Area::StepName);
        assert_eq!(Area::of("/mainSteps/0/inputs/Steps/1/inputs/Choices/0"), Area::BranchCondition);
        assert_eq!(Area::of("/mainSteps/2/inputs/InstanceIds"), Area::Inputs);
        assert_eq!(Area::of("/parameters/X/type"), Area::Parameters);
    }

    /// The schema compiled at build time judges as the schema compiled at run time does, on
    /// two small documents and on every runbook this project ships, valid and broken.
    #[test]
    fn compiled_schema_agrees_with_the_runtime_one() {
        let runtime = jsonschema::draft202012::options().should_validate_formats(false).build(schema_value()).unwrap();
        let valid = serde_json::json!({
            "schemaVersion": "0.3",
            "mainSteps": [{"name": "wait", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}],
        });
        let invalid = serde_json::json!({
            "schemaVersion": 0.3,
            "mainSteps": [{"name": "wait", "action": "aws:sleep", "inputs": {"Duration": "PT1S", "Extra": 1}}],
        });
        assert!(RunbookSchema::is_valid(&valid) && runtime.is_valid(&valid));
        let messages = |errors: jsonschema::ErrorIterator<'_>| {
            // A pattern matched by hand says what a `pattern` failure says.
            let text = |e: &ValidationError<'_>| match e.kind() {
                ValidationErrorKind::Custom { keyword, message } if keyword == patterns::KEYWORD => {
                    format!(r#"{} does not match "{message}""#, e.instance())
                }
                _ => e.to_string(),
            };
            let mut all: Vec<String> = errors.map(|e| format!("{} {}", e.instance_path(), text(&e))).collect();
            all.sort();
            all
        };
        let compiled = messages(RunbookSchema::iter_errors(&invalid));
        assert!(!compiled.is_empty());
        assert_eq!(compiled, messages(runtime.iter_errors(&invalid)));
        // Every runbook this project ships, as written and broken in a few ways at once.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut documents = 0;
        for folder in ["examples", "runbooks"] {
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.to_string_lossy().into_owned();
                if !name.ends_with(".yaml") || name.ends_with(".test.yaml") {
                    continue;
                }
                let mut value = crate::document::load_path(&path).unwrap().value.unwrap();
                assert!(RunbookSchema::is_valid(&value) && runtime.is_valid(&value), "{name}");
                value["schemaVersion"] = serde_json::json!(0.3);
                value["x-unknown"] = serde_json::json!(true);
                for step in value["mainSteps"].as_array_mut().unwrap() {
                    step["inputs"]["Bogus"] = serde_json::json!(1);
                    step["onFailure"] = serde_json::json!("step:");
                }
                let compiled = messages(RunbookSchema::iter_errors(&value));
                assert!(compiled.len() > 2, "{name}: {compiled:?}");
                assert_eq!(compiled, messages(runtime.iter_errors(&value)), "{name}");
                documents += 1;
            }
        }
        assert!(documents >= 8, "{documents}");
    }

    /// The validator's schema: the published one, its patterns named for [`patterns`].
    fn native_schema(published: &str) -> String {
        published.replace("\"pattern\": \"", &format!("\"{}\": \"", patterns::KEYWORD))
    }

    /// The file the validator is built from is the published schema but for the name of its
    /// patterns, and every pattern has its matcher.
    #[test]
    fn the_native_schema_is_the_published_one() {
        let native = include_str!("schema/runbook.native.schema.json");
        assert!(
            native == native_schema(RUNBOOK_SCHEMA),
            "schemas/runbook.schema.json changed: write its derivation (`native_schema`) to \
             engine/src/validate/schema/runbook.native.schema.json"
        );
        let mut patterns = Vec::new();
        fn walk<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
            match value {
                Value::Object(map) => {
                    out.extend(map.get("pattern").and_then(Value::as_str));
                    map.values().for_each(|child| walk(child, out));
                }
                Value::Array(items) => items.iter().for_each(|child| walk(child, out)),
                _ => {}
            }
        }
        walk(schema_value(), &mut patterns);
        assert_eq!(patterns.len(), native.matches(patterns::KEYWORD).count());
        assert!(patterns.len() >= 20, "{patterns:?}");
        for pattern in patterns {
            assert!(patterns::native(pattern).is_some(), "no matcher for `{pattern}`");
        }
    }

    /// Each pattern's matcher gives the verdict of the regex engine the schema was compiled
    /// with before (fancy-regex, through `jsonschema`'s ECMA-262 translation), on strings made
    /// of the pieces those patterns are about.
    #[test]
    fn native_patterns_match_as_the_regex_engine_does() {
        const PIECES: [&str; 44] = [
            "a",
            "Z",
            "0",
            "7",
            "f",
            "_",
            ".",
            ",",
            ":",
            "-",
            "+",
            " ",
            "\n",
            "\r",
            "\t",
            "\u{a0}",
            "\u{2028}",
            "\u{3000}",
            "é",
            "{",
            "}",
            "{{",
            "}}",
            "{{ x }}",
            "aws:",
            "step:",
            "variable:",
            "Abort",
            "Continue",
            "python",
            "python3.",
            "PowerShell ",
            "PowerShell Core ",
            "TRUE",
            "fAlSe",
            "P",
            "T",
            "1Y",
            "2M",
            "3.5S",
            "1,5H",
            "2024-01-31T",
            "12:00:00",
            "+01:00",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut below = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap()
        };
        let mut strings: Vec<String> = PIECES.iter().map(|piece| piece.to_string()).collect();
        for _ in 0..6_000 {
            strings.push((0..1 + below(7)).map(|_| PIECES[below(PIECES.len())]).collect());
        }
        // Near misses of the fixed shapes: lengths at their limits.
        for n in [2, 3, 50, 51, 63, 64, 65] {
            strings.extend(["a", "0", "F"].map(|c| c.repeat(n)));
            strings.push(format!("aws:{}", "x".repeat(n)));
        }
        for native in patterns::PATTERNS {
            let regex = jsonschema::validator_for(&serde_json::json!({"pattern": native.pattern})).unwrap();
            let mut matched = 0;
            for text in &strings {
                let expected = regex.is_valid(&Value::String(text.clone()));
                assert_eq!((native.matches)(text), expected, "`{}` on {text:?}", native.pattern);
                matched += usize::from(expected);
            }
            // Both verdicts were seen, or the comparison proved little.
            assert!(matched > 0 && matched < strings.len(), "`{}`: {matched} of {}", native.pattern, strings.len());
        }
    }
}
