//! `aws:executeAutomation` (reference 6.11): runs a child runbook through the [`Children`]
//! seam, which finds the document, runs it as its own execution linked to this one, and on a
//! resume goes on with the same child. With `Targets` or `TargetMaps` the child is a run over
//! targets at the rate `MaxConcurrency` and `MaxErrors` ask (`exec::fan_out`): one grandchild
//! per target.
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
    // The target inputs, for a run over targets.
    let over: Option<Map<String, Value>> = FAN_OUT_INPUTS.iter().any(|input| inputs.contains_key(*input)).then(|| {
        ["Targets", "TargetMaps", "TargetParameterName", "MaxConcurrency", "MaxErrors"]
            .iter()
            .filter_map(|input| Some((input.to_string(), inputs.get(*input)?.clone())))
            .collect()
    });
    let name = inputs.get("DocumentName").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        return Err(Failure::error("`DocumentName` is required"));
    }
    let parameters = match inputs.get("RuntimeParameters") {
        Some(Value::Object(values)) => values.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Err(Failure::error(format!("`RuntimeParameters` must be a mapping, found {other}"))),
    };
    // `NAME:VERSION`, as `ssm:NAME:VERSION` names a document.
    let document = match inputs.get("DocumentVersion").map(to_text).filter(|version| !version.is_empty()) {
        Some(version) => format!("{name}:{version}"),
        None => name.to_owned(),
    };
    let child = context.children.run(context, &document, parameters, over).await?;
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
    if (inputs.contains_key("MaxConcurrency") || inputs.contains_key("MaxErrors"))
        && !inputs.contains_key("Targets")
        && !inputs.contains_key("TargetMaps")
    {
        let input = if inputs.contains_key("MaxConcurrency") { "MaxConcurrency" } else { "MaxErrors" };
        let message = format!("`{input}` rates a run over targets, but the step gives no `Targets` or `TargetMaps`");
        out.push(Diagnostic::new(Code::FanOut, message).at(step.input_pointer(input)));
    }
    for input in ["MaxConcurrency", "MaxErrors"] {
        let Some(value) = inputs.get(input) else { continue };
        let text = crate::template::render::to_text(value);
        if crate::template::has_braces(&text) {
            continue;
        }
        if let Err(problem) = Limit::parse(&text) {
            let message = format!("`{input}`: {problem}");
            out.push(Diagnostic::new(Code::FanOut, message).at(step.input_pointer(input)));
        }
    }
}

/// A limit given as a number or a percent of the targets (`10`, `10%`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Limit {
    Count(u64),
    Percent(u8),
}

impl Limit {
    /// Reads `10` or `10%` (a percent from 0 to 100), as the API takes them.
    pub fn parse(text: &str) -> std::result::Result<Limit, String> {
        let text = text.trim();
        let wrong = || format!("`{text}` is neither a number (10) nor a percent (10%)");
        match text.strip_suffix('%') {
            Some(percent) => match percent.parse::<u8>() {
                Ok(percent) if percent <= 100 => Ok(Limit::Percent(percent)),
                _ => Err(format!("`{text}` is not a percent from 0% to 100%")),
            },
            None => text.parse::<u64>().map(Limit::Count).map_err(|_| wrong()),
        }
    }

    /// How many children may run at once over `targets` targets: a percent rounded up, and
    /// at least one.
    pub fn concurrency(self, targets: usize) -> usize {
        let limit = match self {
            Limit::Count(count) => usize::try_from(count).unwrap_or(usize::MAX),
            Limit::Percent(percent) => (targets * usize::from(percent)).div_ceil(100),
        };
        limit.max(1)
    }

    /// How many errors are allowed before launching stops: a percent rounded down.
    pub fn errors(self, targets: usize) -> usize {
        match self {
            Limit::Count(count) => usize::try_from(count).unwrap_or(usize::MAX),
            Limit::Percent(percent) => targets * usize::from(percent) / 100,
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Count(count) => write!(f, "{count}"),
            Limit::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}
