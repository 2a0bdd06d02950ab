//! `aws:updateVariable` (reference 3, 6.22): writes a declared runbook variable; the value
//! must have the variable's type, with no conversion.

use serde_json::{Map, Value, json};

use super::{Action, Checked, Context, Failure, Kind, Output, Result, shown_json, shown_text};
use crate::diagnostic::{Code, Diagnostic, describe_json};
use crate::document::model::Step;
use crate::template;

pub const ACTION: Action = Action {
    pure: true,
    kind: Kind::Variable,
    self_contained: true,
    on_cancel_allowed: false,
    safe_to_repeat: true,
    execute: executor!(sync execute),
    describe,
    check,
    ..Action::new("aws:updateVariable")
};

fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let name = inputs
        .get("Name")
        .and_then(Value::as_str)
        .and_then(|name| name.strip_prefix("variable:"))
        .ok_or_else(|| Failure::error("`Name` must be `variable:NAME`"))?;
    let Some(variable) = context.settings.runbook.variable(name) else {
        return Err(Failure::error(format!("no variable `{name}` is declared in `variables`")));
    };
    let value = inputs.get("Value").cloned().ok_or_else(|| Failure::error("`Value` is required"))?;
    if let Some(kind) = variable.kind
        && !kind.admits(&value)
    {
        return Err(Failure::error(format!("variable `{name}` is {}, and {value} is not", kind.a_name())));
    }
    Ok(Output { effects: json!({ "variables": { name: value } }), ..Output::empty() })
}

/// The variable a step writes, as written in its `Name` (`variable:NAME`).
pub fn target(step: &Step) -> Option<&str> {
    step.inputs.get("Name").and_then(Value::as_str).and_then(|name| name.strip_prefix("variable:"))
}

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    Ok(format!("set {} to {}", shown_text(inputs, "Name").unwrap_or_else(|| "?".into()), shown_json(inputs, "Value")))
}

fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let Some(Value::String(name)) = step.inputs.get("Name") else { return };
    let Some(variable_name) = name.strip_prefix("variable:") else {
        let message = format!("Name is `{name}`; write `variable:NAME`");
        out.push(Diagnostic::new(Code::UpdateVariable, message).at(step.input_pointer("Name")));
        return;
    };
    let Some(variable) = checked.runbook.variable(variable_name) else {
        let message = format!("variable `{variable_name}` is not declared under `variables`");
        out.push(Diagnostic::new(Code::UpdateVariable, message).at(step.input_pointer("Name")));
        return;
    };
    let (Some(kind), Some(value)) = (variable.kind, step.inputs.get("Value")) else { return };
    let templated = value.as_str().is_some_and(template::is_whole_template);
    if !templated && !kind.admits(value) {
        let message = format!(
            "Value is {}, but variable `{variable_name}` is {} ({}); aws:updateVariable does not convert types",
            describe_json(value),
            kind.a_name(),
            kind.description()
        );
        out.push(Diagnostic::new(Code::UpdateVariable, message).at(step.input_pointer("Value")));
    }
}
