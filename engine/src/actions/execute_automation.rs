//! `aws:executeAutomation` (reference 6.11): runs a child runbook through the [`Children`]
//! seam, which finds the document, runs it as its own execution linked to this one, and on a
//! resume goes on with the same child. Rate-controlled runs over targets (`Targets`,
//! `TargetMaps`, `MaxConcurrency`, `MaxErrors`) are not built yet: a run that would need them
//! is refused before it starts, never run as a single child.
//!
//! [`Children`]: super::Children

use serde_json::{Map, Value, json};

use super::{Action, Checked, Context, Failure, Kind, Output, Result, shown_json, shown_text};
use crate::diagnostic::{Code, Diagnostic};
use crate::document::model::Step;
use crate::journal::{Status, WaitKind};
use crate::template::render::to_text;

pub const ACTION: Action = Action {
    kind: Kind::Child,
    builtin_outputs: &["Output", "ExecutionId", "Status"],
    returns_data: true,
    safe_to_repeat: true,
    execute: executor!(execute),
    describe,
    check,
    ..Action::new("aws:executeAutomation")
};

/// The inputs of a rate-controlled run over targets.
const FAN_OUT_INPUTS: &[&str] = &["Targets", "TargetMaps", "MaxConcurrency", "MaxErrors"];

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    if let Some(input) = FAN_OUT_INPUTS.iter().find(|input| inputs.contains_key(**input)) {
        return Err(Failure::error(format!("`{input}` asks for a run over targets, which runs only on AWS for now")));
    }
    let name = inputs.get("DocumentName").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        return Err(Failure::error("`DocumentName` is required"));
    }
    let parameters = match inputs.get("RuntimeParameters") {
        Some(Value::Object(values)) => values.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Err(Failure::error(format!("`RuntimeParameters` must be a mapping, found {other}"))),
    };
    let child = context.children.run(context, name, parameters).await?;
    let id = child.execution_id;
    match child.status {
        Status::Success => {}
        Status::Waiting => {
            return Err(Failure::Waiting {
                kind: WaitKind::Child,
                message: Some(format!("child execution {id} waits for a decision")),
                approvers: Value::Null,
            });
        }
        Status::Cancelled => return Err(Failure::Cancelled),
        status => return Err(Failure::error(format!("child execution {id} ended {status}"))),
    }
    // `Output` is a StringList: the child's document outputs, each value as text.
    let output: Vec<Value> = match &child.outputs {
        Value::Object(outputs) => outputs
            .values()
            .flat_map(|values| match values {
                Value::Array(items) => items.iter().map(|item| Value::String(to_text(item))).collect(),
                other => vec![Value::String(to_text(other))],
            })
            .collect(),
        _ => Vec::new(),
    };
    let root = json!({ "Output": output, "ExecutionId": id, "Status": child.status.as_str() });
    let builtins = root.as_object().cloned().unwrap_or_default();
    Ok(Output { root, builtins, ..Output::empty() })
}

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    let document = shown_text(inputs, "DocumentName").unwrap_or_else(|| "?".into());
    Ok(format!("run child runbook {document} with {}", shown_json(inputs, "RuntimeParameters")))
}

fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let inputs = &step.inputs;
    if inputs.contains_key("Targets") && inputs.contains_key("TargetMaps") {
        let message = "aws:executeAutomation takes `Targets` or `TargetMaps`, not both";
        out.push(Diagnostic::new(Code::ExecuteAutomationTargets, message).at(step.input_pointer("TargetMaps")));
    }
    if inputs.contains_key("Targets") && !inputs.contains_key("TargetParameterName") {
        let message = "`Targets` needs `TargetParameterName`: the child parameter each target fills";
        out.push(Diagnostic::new(Code::ExecuteAutomationTargets, message).at(step.input_pointer("Targets")));
    }
    // AWS runs these children over targets at a rate; run locally as one child they would do
    // something else, so a run that reaches this step is refused before anything runs.
    if checked.starting
        && let Some(input) = FAN_OUT_INPUTS.iter().find(|input| inputs.contains_key(**input))
    {
        let message =
            format!("step `{}` runs its child over targets (`{input}`), which runs only on AWS for now", step.name);
        let help = "rate-controlled fan-out is not built yet; remove the target inputs to run one child \
                    here, or start this runbook on AWS";
        out.push(Diagnostic::new(Code::FanOut, message).at(step.input_pointer(input)).with_help(help));
    }
}
