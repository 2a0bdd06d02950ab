//! The opt-in expression extension (`x-expressions: true` at the top of a runbook): `{{ }}`
//! content that is not a plain reference is evaluated by minijinja, so `{{ Ids | length }}`
//! or `{{ Count > 3 }}` work. Names resolve through the same scope as plain references:
//! `Name` is a parameter, `step.Output` a step output, `global.REGION`, `automation.X` and
//! `variable.X` the prefixed forms. Runbooks without the key behave exactly as on AWS.

use std::borrow::Cow;
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use super::Reference;
use super::render::{Lookup, Scope};

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        // A name without a value is an error, never a silent empty string.
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment
    })
}

/// How deeply an expression may nest (brackets, and unary operators in a row): minijinja's
/// parser recurses once per level, and 7,000 minus signs overflowed the stack.
pub const MAX_NESTING: usize = 64;

/// Whether `source` nests deeper than [`MAX_NESTING`]; such a text is never handed to
/// minijinja (validation reports it).
pub fn too_deep(source: &str) -> bool {
    let (mut depth, mut deepest, mut unary_run) = (0usize, 0usize, 0usize);
    for word in source.split_inclusive(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let (name, separator) = match word.char_indices().last() {
            Some((at, c)) if !(c.is_alphanumeric() || c == '_') => (&word[..at], Some(c)),
            _ => (word, None),
        };
        if name == "not" {
            unary_run += 1;
        } else if !name.is_empty() {
            unary_run = 0;
        }
        match separator {
            Some('(' | '[' | '{') => depth += 1,
            Some(')' | ']' | '}') => depth = depth.saturating_sub(1),
            Some('-' | '+' | '~' | '!') if name.is_empty() => unary_run += 1,
            Some(c) if c.is_whitespace() => {}
            Some(_) => unary_run = 0,
            None => {}
        }
        deepest = deepest.max(depth + unary_run);
    }
    deepest > MAX_NESTING
}

/// Whether `source` is a minijinja expression (within the nesting budget).
pub fn compiles(source: &str) -> bool {
    !too_deep(source) && environment().compile_expression(source).is_ok()
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
    if too_deep(source) {
        return Err(format!("the expression nests deeper than {MAX_NESTING} levels"));
    }
    let expression = environment().compile_expression(source).map_err(|e| e.to_string())?;
    let mut context = Map::new();
    let mut names: Vec<String> = expression.undeclared_variables(true).into_iter().collect();
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
    let value = expression.eval(minijinja::value::Serde(&context)).map_err(|e| e.to_string())?;
    let value = serde_json::to_value(&value).map_err(|e| e.to_string())?;
    Ok(Lookup::Known(Cow::Owned(value)))
}
