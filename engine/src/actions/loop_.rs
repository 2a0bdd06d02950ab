//! `aws:loop` (reference 4.5, 6.17): for-each over `Iterators` or do-while on
//! `LoopCondition`, at most `MaxIterations` times. The runner walks the body; this file reads
//! the loop's inputs and gives each iteration its values.

use serde_json::{Map, Value, json};

use crate::template::render::to_text;

/// The documented cap, also the default when `MaxIterations` is absent.
pub const MAX_ITERATIONS: u32 = 100;

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

fn typed(item: &Value, kind: &str) -> Result<Value, String> {
    let invalid = || format!("iterator value {item} is not a valid {kind}");
    Ok(match kind {
        "Integer" => match item {
            Value::Number(_) => item.clone(),
            Value::String(text) => json!(text.trim().parse::<i64>().map_err(|_| invalid())?),
            _ => return Err(invalid()),
        },
        "Boolean" => match item {
            Value::Bool(_) => item.clone(),
            Value::String(text) if text.eq_ignore_ascii_case("true") => json!(true),
            Value::String(text) if text.eq_ignore_ascii_case("false") => json!(false),
            _ => return Err(invalid()),
        },
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
