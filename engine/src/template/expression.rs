//! The opt-in expression extension (`x-expressions: true` at the top of a runbook): `{{ }}`
//! content that is not a plain reference is evaluated by minijinja, so `{{ Ids | length }}`
//! or `{{ Count > 3 }}` work. Names resolve through the same scope as plain references:
//! `Name` is a parameter, `step.Output` a step output, `global.REGION`, `automation.X` and
//! `variable.X` the prefixed forms. Runbooks without the key behave exactly as on AWS.

pub mod budget;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use super::Reference;
use super::render::{Lookup, Scope};

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        // A name without a value is an error, never a silent empty string.
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        budget::install(&mut environment);
        environment
    })
}

/// How deeply an expression may nest (brackets, and unary operators in a row): minijinja's
/// parser recurses once per level, and 7,000 minus signs overflowed the stack.
pub const MAX_NESTING: usize = 64;
/// How many operators one expression may hold: minijinja builds `a + a + ...` as a tree one
/// level deeper per operator and walks it recursively.
pub const MAX_OPERATORS: usize = 256;

const KEYWORDS: &[&str] = &["not", "and", "or", "if", "else", "is", "in"];

/// Why `source` is past the budget of its shape (nesting, operators), before minijinja sees
/// it; the budget of its constants is checked when it compiles ([`budget::compile`]).
pub fn shape_problem(source: &str) -> Option<String> {
    let (mut depth, mut deepest, mut unary_run, mut operators) = (0usize, 0usize, 0usize, 0usize);
    let (mut quote, mut after_operand, mut escaped) = (None, false, false);
    let mut word = String::new();
    for c in source.chars().chain(std::iter::once(' ')) {
        if let Some(open) = quote {
            // minijinja's strings take backslash escapes: `'\''` is one quote inside one string.
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
                after_operand = true;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            if KEYWORDS.contains(&word.as_str()) {
                operators += 1;
                after_operand = false;
                unary_run = if word == "not" { unary_run + 1 } else { 0 };
            } else {
                after_operand = true;
                unary_run = 0;
            }
            word.clear();
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                after_operand = false;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                after_operand = true;
                unary_run = 0;
            }
            '-' | '+' | '~' | '!' if !after_operand => unary_run += 1,
            c if c.is_whitespace() => {}
            _ => {
                after_operand = false;
                unary_run = 0;
            }
        }
        if matches!(c, '+' | '-' | '*' | '/' | '%' | '~' | '|' | '.' | '[' | '(' | '<' | '>' | '=' | '!') {
            operators += 1;
        }
        deepest = deepest.max(depth + unary_run);
    }
    if deepest > MAX_NESTING {
        Some(format!("the expression nests deeper than {MAX_NESTING} levels (brackets and unary operators in a row)"))
    } else if operators > MAX_OPERATORS {
        Some(format!("the expression holds more than {MAX_OPERATORS} operators"))
    } else {
        None
    }
}

/// Why `source` is past the expression budget (its shape, or constants that would outgrow
/// the value budget when minijinja folds them), if it is.
pub fn budget_problem(source: &str) -> Option<String> {
    if let Some(problem) = shape_problem(source) {
        return Some(problem);
    }
    match budget::compile(source) {
        Err(error) if error.to_string().contains("expression budget") => Some(error.to_string()),
        _ => None,
    }
}

/// Whether `source` is a minijinja expression (within the nesting budget).
pub fn compiles(source: &str) -> bool {
    shape_problem(source).is_none() && budget::compile(source).is_ok()
}

/// The reference a name used by an expression stands for.
fn reference_of(name: &str) -> Reference<'_> {
    match name.split_once('.') {
        Some(("global", rest)) => Reference::Global(rest),
        Some(("automation", rest)) => Reference::Automation(rest),
        Some(("variable", rest)) => Reference::Variable(rest),
        Some((step, output)) => Reference::StepOutput { step, output },
        None => Reference::Parameter(name),
    }
}

/// Evaluates `source` with the values its names have in `scope`. Unknown when any input is
/// unknown, missing when any input is missing.
pub fn evaluate<'s>(source: &str, scope: &'s dyn Scope) -> Result<Lookup<'s>, String> {
    if let Some(problem) = shape_problem(source) {
        return Err(problem);
    }
    // Compiled with the budget first: minijinja folds constants while it compiles.
    let instructions = budget::compile(source).map_err(|e| e.to_string())?;
    let expression = environment().compile_expression(source).map_err(|e| e.to_string())?;
    let mut context = Map::new();
    // Functions (`range`, `dict`) are the environment's, not the runbook's names.
    let mut names: Vec<String> = expression
        .undeclared_variables(true)
        .into_iter()
        .filter(|name| {
            let head = name.split('.').next().unwrap_or(name);
            !environment().globals().any(|(global, _)| global == head)
                || !matches!(scope.lookup(reference_of(name)), Lookup::Missing)
        })
        .collect();
    names.sort();
    for name in &names {
        let value = match scope.lookup(reference_of(name)) {
            Lookup::Known(value) => value.into_owned(),
            Lookup::Unknown => return Ok(Lookup::Unknown),
            Lookup::Missing => return Ok(Lookup::Missing),
        };
        match name.split_once('.') {
            Some((head, rest)) => {
                let entry = context.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(members) = entry {
                    members.insert(rest.to_owned(), value);
                }
            }
            None => {
                context.insert(name.clone(), value);
            }
        }
    }
    budget::start();
    let root: minijinja::Value = minijinja::value::Serde(&context).into();
    let mut ignored = String::new();
    let (value, _) = minijinja::machinery::eval(
        environment(),
        &instructions,
        root,
        &BTreeMap::new(),
        &mut minijinja::machinery::make_string_output(&mut ignored),
        AutoEscape::None,
    )
    .map_err(|e| e.to_string())?;
    let value = serde_json::to_value(value.unwrap_or_default()).map_err(|e| e.to_string())?;
    Ok(Lookup::Known(Cow::Owned(value)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Fixture;

    impl Scope for Fixture {
        fn lookup(&self, reference: Reference<'_>) -> Lookup<'_> {
            match reference {
                Reference::Parameter("Count") => Lookup::Known(Cow::Owned(json!(7))),
                Reference::Parameter("Ids") => Lookup::Known(Cow::Owned(json!(["i-1", "i-2"]))),
                _ => Lookup::Missing,
            }
        }
    }

    fn value(source: &str) -> Result<Value, String> {
        match evaluate(source, &Fixture)? {
            Lookup::Known(value) => Ok(value.into_owned()),
            other => panic!("{source} evaluated to {other:?}"),
        }
    }

    #[test]
    fn expressions_keep_minijinja_semantics_under_the_budget() {
        assert_eq!(value("Count * 3"), Ok(json!(21)));
        assert_eq!(value("2.5 * 2"), Ok(json!(5.0)));
        assert_eq!(value("'ab' * 3"), Ok(json!("ababab")));
        assert_eq!(value("Ids * 2"), Ok(json!(["i-1", "i-2", "i-1", "i-2"])));
        assert_eq!(value("Ids | length"), Ok(json!(2)));
        assert_eq!(value("'yes' if Count > 3 else 'no'"), Ok(json!("yes")));
        assert_eq!(value("Count > 9 or Ids | join(',')"), Ok(json!("i-1,i-2")));
        assert_eq!(value("range(4) | map('string') | join('-')"), Ok(json!("0-1-2-3")));
        assert_eq!(value("'a-b' | replace('-', '+')"), Ok(json!("a+b")));
    }

    /// Each expression builds far more than the budget from a few bytes of text.
    #[test]
    fn expressions_that_would_build_too_much_end_with_the_budget() {
        for source in [
            "[1] * 100000000",
            "[1] * (100000000 * 1)",
            "'ab' * (50000000 + 0)",
            "'x' * (10 ** 8)",
            "(1,) * 100000000",
            "'ab' * 50000000",
            "range(100000) | join('x' * 1000)",
            "('x' * 1000000) | replace('', 'yyyyyy')",
            "('x' * 3000000) | list",
            "[Ids ~ 'x' * 3000000, Ids ~ 'x' * 3000000, Ids ~ 'x' * 3000000, Ids ~ 'x' * 3000000] * 3",
            "range(9) | map('string') | join('x' * 4000000)",
        ] {
            let Err(message) = value(source) else { panic!("{source} evaluated") };
            assert!(message.contains("expression budget"), "{source}: {message}");
        }
        // A quote escaped inside a string does not end it: the operators after it count.
        assert!(shape_problem(&format!("'\\'' {}", "+ Count ".repeat(300))).is_some());
        let message = value("[1] | indent(3)").unwrap_err();
        assert!(message.contains("unknown filter"), "{message}");
    }
}
