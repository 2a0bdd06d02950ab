//! `aws:updateVariable` (reference 3, 6.22): writes a declared runbook variable; the value
//! must have the variable's type, with no conversion.

use serde_json::{Map, Value, json};

use super::{Context, Failure, Output, Result};

pub fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let name = inputs
        .get("Name")
        .and_then(Value::as_str)
        .and_then(|name| name.strip_prefix("variable:"))
        .ok_or_else(|| Failure::error("`Name` must be `variable:NAME`"))?;
    let Some(variable) = context.runbook.variable(name) else {
        return Err(Failure::error(format!("no variable `{name}` is declared in `variables`")));
    };
    let value = inputs.get("Value").cloned().ok_or_else(|| Failure::error("`Value` is required"))?;
    if let Some(kind) = variable.kind
        && !kind.admits(&value)
    {
        return Err(Failure::error(format!("variable `{name}` is a {}, and {value} is not", kind.name())));
    }
    Ok(Output { effects: json!({ "variables": { name: value } }), ..Output::empty() })
}
