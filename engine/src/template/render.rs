//! Substitution (reference section 5.4): whole-value references keep their type, list
//! elements that are whole references to lists are spliced, embedded references render as
//! text, and brace sequences that are not references pass through untouched. Values are
//! data: the text a reference produces is never scanned again.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{Reference, expression, references, whole_reference};

/// What a scope knows about one reference.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The value.
    Known(Cow<'a, Value>),
    /// There will be a value, but not yet: planning and dry-runs show the reference as is.
    Unknown,
    /// There is no value (a step that did not run, a selector that matched nothing): at run
    /// time the reference stays literal, or fails the step in strict mode.
    Missing,
}

/// Where references get their values: parameters, step outputs, variables, system values.
pub trait Scope {
    fn lookup(&self, reference: Reference<'_>) -> Lookup<'_>;
}

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// A reference with no value fails instead of staying literal.
    pub strict: bool,
    /// `{{ }}` content that is not a plain reference is evaluated as a minijinja expression
    /// (the opt-in `x-expressions` extension).
    pub expressions: bool,
}

/// A rendered value and the references whose values were unknown (left as written).
#[derive(Debug, Default, PartialEq)]
pub struct Rendered {
    pub value: Value,
    pub unknown: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("{{{{ {reference} }}}} has no value (strict mode)")]
    Missing { reference: String },
    #[error("failed to evaluate {{{{ {expression} }}}}: {message}")]
    Expression { expression: String, message: String },
    #[error("the value grows past {} MiB once its references are filled in (substitution budget)", MAX_RENDERED_BYTES >> 20)]
    Budget,
}

/// What one rendered value (a step's inputs, a default) may weigh, as JSON text: each
/// reference can bring in a large value, and a value can repeat a reference many times.
pub const MAX_RENDERED_BYTES: usize = 16 << 20;

/// The size of `value` as compact JSON text (close enough: quotes and escapes aside),
/// counted no further than `limit`.
pub fn text_size(value: &Value, limit: usize) -> usize {
    let mut total = 0usize;
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        total += match value {
            Value::String(text) => text.len() + 2,
            Value::Array(items) => {
                pending.extend(items);
                2 + items.len()
            }
            Value::Object(map) => {
                pending.extend(map.values());
                2 + map.keys().map(|key| key.len() + 4).sum::<usize>()
            }
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 20,
        };
        if total > limit {
            break;
        }
    }
    total
}

/// What a render has found and produced so far.
#[derive(Default)]
struct Progress {
    unknown: Vec<String>,
    /// Bytes brought in by references, against [`MAX_RENDERED_BYTES`].
    brought: usize,
}

impl Progress {
    /// Counts a value a reference brings in, before it is copied.
    fn bring(&mut self, value: &Value) -> Result<(), Error> {
        self.brought += text_size(value, MAX_RENDERED_BYTES);
        if self.brought > MAX_RENDERED_BYTES { Err(Error::Budget) } else { Ok(()) }
    }
}

/// Renders a value of a runbook (an input, a default, a condition operand).
pub fn render(value: &Value, scope: &dyn Scope, config: Config) -> Result<Rendered, Error> {
    let mut progress = Progress::default();
    let value = render_value(value, scope, config, &mut progress)?;
    let mut unknown = progress.unknown;
    unknown.sort();
    unknown.dedup();
    Ok(Rendered { value, unknown })
}

fn render_value(value: &Value, scope: &dyn Scope, config: Config, progress: &mut Progress) -> Result<Value, Error> {
    Ok(match value {
        Value::String(text) => render_text(text, scope, config, progress)?,
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match render_value(item, scope, config, progress)? {
                    // Rule 2: a whole reference to a list inside a list is spliced in.
                    Value::Array(spliced) if is_whole_reference(item, config) => out.extend(spliced),
                    rendered => out.push(rendered),
                }
            }
            Value::Array(out)
        }
        // Keys are literal (V14): only values are rendered.
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, item) in object {
                out.insert(key.clone(), render_value(item, scope, config, progress)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn is_whole_reference(value: &Value, config: Config) -> bool {
    value.as_str().is_some_and(|text| whole(text, config).is_some())
}

/// One `{{ ... }}` that has a meaning: a reference, or (opt-in) an expression.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    Reference(Reference<'a>),
    Expression(&'a str),
}

/// The part when the whole string (blanks aside) is one.
fn whole(text: &str, config: Config) -> Option<Part<'_>> {
    if !config.expressions {
        return whole_reference(text).map(Part::Reference);
    }
    let trimmed = text.trim();
    let (range, part) = parts(trimmed, config).next()?;
    (range == (0..trimmed.len())).then_some(part)
}

/// Every meaningful `{{ ... }}` of `text`, in order, with its byte range.
pub fn parts(text: &str, config: Config) -> Box<dyn Iterator<Item = (std::ops::Range<usize>, Part<'_>)> + '_> {
    if config.expressions {
        Box::new(super::braces(text).filter_map(|(range, inner)| match super::parse_reference(inner) {
            // The lenient output-name rule (AWS allows spaces) would read `a.b | f` as the
            // output `b | f`; with expressions on, what compiles is an expression.
            Some(Reference::StepOutput { output, .. }) if !super::is_ident(output) && expression::compiles(inner) => {
                Some((range, Part::Expression(inner.trim())))
            }
            Some(reference) => Some((range, Part::Reference(reference))),
            None => expression::compiles(inner).then_some((range, Part::Expression(inner.trim()))),
        }))
    } else {
        Box::new(references(text).map(|(range, reference)| (range, Part::Reference(reference))))
    }
}

fn resolve<'s>(part: Part<'_>, scope: &'s dyn Scope) -> Result<Lookup<'s>, Error> {
    match part {
        Part::Reference(reference) => Ok(scope.lookup(reference)),
        Part::Expression(source) => expression::evaluate(source, scope)
            .map_err(|message| Error::Expression { expression: source.to_owned(), message }),
    }
}

fn part_text(part: Part<'_>) -> String {
    match part {
        Part::Reference(reference) => reference.to_string(),
        Part::Expression(source) => source.to_owned(),
    }
}

fn render_text(text: &str, scope: &dyn Scope, config: Config, progress: &mut Progress) -> Result<Value, Error> {
    if !super::has_braces(text) {
        return Ok(Value::String(text.to_owned()));
    }
    // Rule 1: a whole-value reference keeps the type of its value.
    if let Some(part) = whole(text, config) {
        return match resolve(part, scope)? {
            Lookup::Known(value) => {
                progress.bring(&value)?;
                Ok(value.into_owned())
            }
            Lookup::Unknown => {
                progress.unknown.push(part_text(part));
                Ok(Value::String(text.to_owned()))
            }
            Lookup::Missing if config.strict => Err(Error::Missing { reference: part_text(part) }),
            Lookup::Missing => Ok(Value::String(text.to_owned())),
        };
    }
    // Rule 3: embedded references become text; rule 4: everything else stays as written.
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (range, part) in parts(text, config) {
        match resolve(part, scope)? {
            Lookup::Known(value) => {
                progress.bring(&value)?;
                out.push_str(&text[copied..range.start]);
                push_text(&mut out, &value);
                copied = range.end;
            }
            Lookup::Unknown => progress.unknown.push(part_text(part)),
            Lookup::Missing if config.strict => return Err(Error::Missing { reference: part_text(part) }),
            Lookup::Missing => {}
        }
    }
    out.push_str(&text[copied..]);
    Ok(Value::String(out))
}

/// The text of a value embedded in a longer string: strings verbatim, numbers in decimal,
/// booleans as `true`/`false`, null as nothing, lists and maps as compact JSON.
pub fn push_text(out: &mut String, value: &Value) {
    match value {
        Value::String(text) => out.push_str(text),
        Value::Null => {}
        Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => out.push_str(&value.to_string()),
    }
}

/// A value as text, the way it is embedded in a longer string.
pub fn to_text(value: &Value) -> String {
    let mut out = String::new();
    push_text(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A scope over a JSON object: `Name`, `step.Output`, `global:X`, `variable:X` keys;
    /// the string "?" stands for an unknown value.
    struct Fixture(Value);

    impl Scope for Fixture {
        fn lookup(&self, reference: Reference<'_>) -> Lookup<'_> {
            match self.0.get(reference.to_string()) {
                Some(Value::String(text)) if text == "?" => Lookup::Unknown,
                Some(value) => Lookup::Known(Cow::Borrowed(value)),
                None => Lookup::Missing,
            }
        }
    }

    fn scope() -> Fixture {
        Fixture(json!({
            "Name": "web",
            "Count": 3,
            "Flag": true,
            "Ids": ["i-1", "i-2"],
            "Map": {"a": 1},
            "Nothing": null,
            "Injected": "{{ Count }}",
            "describe.Groups": ["sg-1", "sg-2"],
            "describe.State": "?",
            "global:REGION": "eu-west-1",
            "variable:Token": "",
        }))
    }

    fn check(input: Value, expected: Value) {
        let rendered = render(&input, &scope(), Config::default()).unwrap();
        assert_eq!(rendered.value, expected, "rendering {input}");
    }

    #[test]
    fn whole_value_references_keep_their_type() {
        check(json!("{{ Count }}"), json!(3));
        check(json!("{{Flag}}"), json!(true));
        check(json!(" {{ Ids }} "), json!(["i-1", "i-2"]));
        check(json!("{{ Map }}"), json!({"a": 1}));
        check(json!("{{ Nothing }}"), json!(null));
        check(json!("{{ global:REGION }}"), json!("eu-west-1"));
        check(json!("{{ variable:Token }}"), json!(""));
    }

    #[test]
    fn lists_splice_whole_list_references() {
        check(json!(["{{ describe.Groups }}", "sg-3"]), json!(["sg-1", "sg-2", "sg-3"]));
        check(json!(["{{ Name }}"]), json!(["web"]));
        // Only whole references splice: a literal nested list stays nested.
        check(json!([["a"], "{{ Ids }}"]), json!([["a"], "i-1", "i-2"]));
    }

    #[test]
    fn embedded_references_render_as_text() {
        check(json!("name-{{ Name }}-{{Count}}"), json!("name-web-3"));
        check(json!("flag={{ Flag }}"), json!("flag=true"));
        check(json!("{\"lb_map\": {{ Map }}}"), json!("{\"lb_map\": {\"a\":1}}"));
        check(json!("ids: {{ Ids }}"), json!("ids: [\"i-1\",\"i-2\"]"));
        check(json!("[{{ Nothing }}]"), json!("[]"));
        check(json!({"Key-{{ Name }}": "{{ Name }}"}), json!({"Key-{{ Name }}": "web"}));
    }

    #[test]
    fn non_references_pass_through() {
        for text in ["awk '{{print $2}}'", "}} catch {{", "\"{{{}}}\"", "{{ }}", "'{0}'.format(x) {{", "{{a b}}"] {
            check(json!(text), json!(text));
        }
        check(json!("{{{ Name }}}"), json!("{web}"));
    }

    #[test]
    fn parameter_values_are_data() {
        // A value that looks like a template is inserted as is, never evaluated.
        check(json!("{{ Injected }}"), json!("{{ Count }}"));
        check(json!("x {{ Injected }} y"), json!("x {{ Count }} y"));
    }

    #[test]
    fn unknown_values_stay_as_written_and_are_listed() {
        let rendered =
            render(&json!(["{{ describe.State }}", "at {{ describe.State }}"]), &scope(), Config::default()).unwrap();
        assert_eq!(rendered.value, json!(["{{ describe.State }}", "at {{ describe.State }}"]));
        assert_eq!(rendered.unknown, vec!["describe.State".to_owned()]);
    }

    #[test]
    fn missing_values_stay_literal_or_fail_in_strict_mode() {
        check(json!("{{ other.Out }}"), json!("{{ other.Out }}"));
        check(json!("v={{ other.Out }}!"), json!("v={{ other.Out }}!"));
        let strict = Config { strict: true, ..Config::default() };
        assert_eq!(
            render(&json!("v={{ other.Out }}"), &scope(), strict),
            Err(Error::Missing { reference: "other.Out".into() })
        );
        assert_eq!(render(&json!("{{ Name }}"), &scope(), strict).unwrap().value, json!("web"));
    }

    #[test]
    fn expressions_are_opt_in() {
        let on = Config { expressions: true, ..Config::default() };
        let text = json!("{{ Ids | length }}");
        assert_eq!(render(&text, &scope(), Config::default()).unwrap().value, text);
        assert_eq!(render(&text, &scope(), on).unwrap().value, json!(2));
        assert_eq!(render(&json!("n={{ Count * 2 }}"), &scope(), on).unwrap().value, json!("n=6"));
        assert_eq!(render(&json!("{{ Name | upper }}"), &scope(), on).unwrap().value, json!("WEB"));
        assert_eq!(render(&json!("{{ global.REGION | lower }}"), &scope(), on).unwrap().value, json!("eu-west-1"));
        // An unknown input makes the whole expression unknown; scripts still pass through.
        let rendered = render(&json!("{{ describe.State == 'ok' }}"), &scope(), on).unwrap();
        assert_eq!(rendered.unknown, vec!["describe.State == 'ok'".to_owned()]);
        assert_eq!(render(&json!("awk '{{print $2}}'"), &scope(), on).unwrap().value, json!("awk '{{print $2}}'"));
        // Values stay data inside expressions too.
        assert_eq!(render(&json!("{{ Injected ~ '!' }}"), &scope(), on).unwrap().value, json!("{{ Count }}!"));
    }
}
