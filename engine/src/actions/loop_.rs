//! `aws:loop` (reference 4.5, 6.17): for-each over `Iterators` or do-while on
//! `LoopCondition`, at most `MaxIterations` times. The runner walks the body; this file reads
//! the loop's inputs and gives each iteration its values.

use serde_json::{Map, Value, json};

use super::branch::{Level, check_condition, describe_condition};
use super::{Action, Checked, Kind};
use crate::diagnostic::{Code, Diagnostic, pointer_push};
use crate::document::model::{OnFailure, Step, lenient_bool, lenient_integer};
use crate::template::render::to_text;

/// The documented cap, also the default when `MaxIterations` is absent.
pub const MAX_ITERATIONS: u32 = 100;

pub const ACTION: Action = Action {
    kind: Kind::Loop,
    self_contained: true,
    on_cancel_allowed: false,
    builtin_outputs: &["CurrentIteration", "CurrentIteratorValue"],
    safe_to_repeat: true,
    describe,
    check,
    ..Action::new("aws:loop")
};

/// A loop's inputs, read once at its start.
#[derive(Debug, PartialEq)]
pub struct Spec {
    /// For-each: the items, already typed by `IteratorDataType`.
    pub items: Option<Vec<Value>>,
    /// Do-while: the condition as written; it is rendered after every iteration.
    pub condition: Option<Value>,
    pub max_iterations: u32,
}

impl Spec {
    /// Reads the rendered inputs (`rendered`) and the condition as written (`raw`).
    pub fn parse(rendered: &Map<String, Value>, raw: &Map<String, Value>) -> Result<Spec, String> {
        let max_iterations = match rendered.get("MaxIterations") {
            None => MAX_ITERATIONS,
            Some(value) => {
                let number = match value {
                    Value::Number(number) => number.as_u64(),
                    Value::String(text) => text.trim().parse().ok(),
                    _ => None,
                };
                let number = number.ok_or_else(|| format!("`MaxIterations` must be a whole number, found {value}"))?;
                (number.min(u64::from(MAX_ITERATIONS))) as u32
            }
        };
        let kind = rendered.get("IteratorDataType").and_then(Value::as_str).unwrap_or("String");
        let items = match rendered.get("Iterators") {
            None => None,
            Some(Value::Array(items)) => Some(items.iter().map(|item| typed(item, kind)).collect::<Result<_, _>>()?),
            // A whole reference to a StringList renders as a list; text is a one-item list.
            Some(Value::String(text)) => Some(vec![typed(&Value::String(text.clone()), kind)?]),
            Some(other) => return Err(format!("`Iterators` must be a list, found {other}")),
        };
        let condition = raw.get("LoopCondition").cloned();
        if items.is_none() && condition.is_none() {
            return Err("a loop needs `Iterators` or `LoopCondition`".into());
        }
        Ok(Spec { items, condition, max_iterations })
    }

    /// How many iterations at most.
    pub fn iterations(&self) -> u32 {
        match &self.items {
            Some(items) => (items.len() as u32).min(self.max_iterations),
            None => self.max_iterations,
        }
    }

    /// `Loop.CurrentIteratorValue` of an iteration (1-based).
    pub fn iterator_value(&self, iteration: u32) -> Option<Value> {
        self.items.as_ref()?.get(iteration.checked_sub(1)? as usize).cloned()
    }

    /// The loop's inputs as shown in events and the journal.
    pub fn describe(&self) -> Value {
        json!({ "Iterators": self.items, "LoopCondition": self.condition, "MaxIterations": self.max_iterations })
    }
}

fn describe(step: &Step, inputs: &Value) -> Result<String, String> {
    // A list only the run will know (a step's output) is still its reference here.
    let unknown = inputs.get("Iterators").and_then(Value::as_str).filter(|text| crate::template::has_braces(text));
    Ok(match Spec::parse(inputs.as_object().unwrap_or(&Map::new()), &step.inputs) {
        Ok(spec) => match (&spec.items, &spec.condition, unknown) {
            (Some(_), _, Some(reference)) => format!(
                "repeat the body for each item of {} (known when the loop runs; at most {})",
                reference.trim(),
                spec.max_iterations
            ),
            (Some(items), _, None) => {
                let noun = if items.len() == 1 { "item" } else { "items" };
                format!("repeat the body for each of {} {noun} (at most {})", items.len(), spec.max_iterations)
            }
            (None, Some(condition), _) => format!(
                "repeat the body while {} (at most {} times)",
                describe_condition(condition),
                spec.max_iterations
            ),
            _ => "repeat the body".into(),
        },
        Err(_) => format!("repeat the body ({})", super::shown_json(inputs, "Iterators")),
    })
}

/// V18 and the loop limits.
fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let inputs_pointer = pointer_push(&step.pointer, "inputs");
    if let Some(outer) = checked.enclosing_loop {
        let message = format!("loop `{}` is inside loop `{}`; loops cannot be nested", step.name, outer.name);
        out.push(Diagnostic::new(Code::NestedLoop, message).at(step.field_pointer("action")));
    }
    match step.inputs.get("Steps") {
        Some(Value::Array(steps)) if !steps.is_empty() => {}
        Some(_) => out.push(
            Diagnostic::new(Code::LoopStructure, "`Steps` must be a non-empty list of steps")
                .at(step.input_pointer("Steps")),
        ),
        None => {
            out.push(Diagnostic::new(Code::LoopStructure, "aws:loop needs `Steps`, the loop body").at(&inputs_pointer))
        }
    }
    // AWS applies a loop's own onFailure to failures of the loop machinery only: a body step
    // that fails goes by its own onFailure (Abort by default), so this one is never taken.
    if let Some(on_failure) = step.on_failure.as_ref().filter(|policy| **policy != OnFailure::Abort) {
        let shown = match on_failure {
            OnFailure::Step(target) => format!("step:{target}"),
            _ => "Continue".to_owned(),
        };
        let message = format!(
            "`onFailure: {shown}` on loop `{}` is not taken when a step of its body fails: AWS applies a loop's \
             onFailure only to errors of the loop itself",
            step.name
        );
        let help = format!("put `onFailure: {shown}` on the body steps that can fail, where it is taken");
        out.push(Diagnostic::new(Code::LoopOnFailure, message).at(step.field_pointer("onFailure")).with_help(help));
    }
    let iterators = step.inputs.get("Iterators");
    let condition = step.inputs.get("LoopCondition");
    match (iterators, condition) {
        (Some(_), Some(_)) => {
            let message = "aws:loop takes either `Iterators` (for-each) or `LoopCondition` (do-while), not both";
            out.push(Diagnostic::new(Code::LoopStructure, message).at(&inputs_pointer));
        }
        (None, None) => {
            let message = "aws:loop needs `Iterators` (for-each) or `LoopCondition` (do-while)";
            out.push(Diagnostic::new(Code::LoopStructure, message).at(&inputs_pointer));
        }
        (None, Some(condition)) => {
            if step.inputs.contains_key("IteratorDataType") {
                let message = "`IteratorDataType` only applies with `Iterators`";
                out.push(Diagnostic::new(Code::LoopStructure, message).at_key(step.input_pointer("IteratorDataType")));
            }
            check_condition(condition, &step.input_pointer("LoopCondition"), Level::LoopCondition, out);
        }
        (Some(_), None) => {}
    }
    if let Some(Value::Array(items)) = iterators
        && items.len() > 100
    {
        let message = format!("{} Iterators; a loop runs at most 100 iterations", items.len());
        out.push(Diagnostic::new(Code::LoopLimit, message).at(step.input_pointer("Iterators")));
    }
    if let Some(max) = step.inputs.get("MaxIterations").and_then(lenient_integer)
        && max > 100
    {
        let message = format!("MaxIterations is {max}; the maximum is 100");
        out.push(Diagnostic::new(Code::LoopLimit, message).at(step.input_pointer("MaxIterations")));
    }
}

fn typed(item: &Value, kind: &str) -> Result<Value, String> {
    let invalid = || format!("iterator value {item} is not a valid {kind}");
    Ok(match kind {
        "Integer" => match item {
            Value::Number(_) => item.clone(),
            Value::String(text) => json!(text.trim().parse::<i64>().map_err(|_| invalid())?),
            _ => return Err(invalid()),
        },
        "Boolean" => json!(lenient_bool(item).ok_or_else(invalid)?),
        "StringMap" => match item {
            Value::Object(_) => item.clone(),
            Value::String(text) => {
                serde_json::from_str::<Map<String, Value>>(text).map(Value::Object).map_err(|_| invalid())?
            }
            _ => return Err(invalid()),
        },
        _ => Value::String(to_text(item)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(inputs: Value) -> Result<Spec, String> {
        let inputs = inputs.as_object().unwrap().clone();
        Spec::parse(&inputs, &inputs)
    }

    #[test]
    fn for_each_types_items_and_stops_at_max() {
        let spec =
            parse(json!({"Iterators": ["1", "2", "3"], "IteratorDataType": "Integer", "MaxIterations": "2"})).unwrap();
        assert_eq!(spec.iterations(), 2);
        assert_eq!(spec.iterator_value(1), Some(json!(1)));
        assert_eq!(spec.iterator_value(3), Some(json!(3)));
    }

    #[test]
    fn do_while_defaults_to_the_documented_cap() {
        let spec = parse(json!({"LoopCondition": {"Variable": "{{ variable:Go }}", "BooleanEquals": true}})).unwrap();
        assert_eq!(spec.iterations(), MAX_ITERATIONS);
        assert_eq!(spec.iterator_value(1), None);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(parse(json!({"MaxIterations": 3})), Err("a loop needs `Iterators` or `LoopCondition`".into()));
        assert!(parse(json!({"Iterators": ["x"], "IteratorDataType": "Integer"})).is_err());
        assert!(parse(json!({"Iterators": ["a"], "MaxIterations": "many"})).is_err());
    }
}
