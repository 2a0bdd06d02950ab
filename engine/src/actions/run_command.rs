//! `aws:runCommand` (reference 6.19): send a Command document to managed nodes with SSM
//! `SendCommand`, then poll the command until every invocation ends. The step fails unless
//! the command succeeded on every node. Every call goes through the model-driven client, so
//! the request is checked against the SSM model and retried like any other.

use serde_json::{Map, Value, json};

use super::{Action, Checked, Context, Failure, Output, Result, api};
use crate::diagnostic::{Code, Diagnostic, pointer_push};
use crate::document::model::{Runbook, Shape};
use crate::template::{self, Reference};

pub const ACTION: Action = Action {
    builtin_outputs: &["CommandId", "Status", "ResponseCode", "Output", "OutputPayload"],
    returns_data: true,
    execute: executor!(execute),
    check,
    calls_aws: true,
    ..Action::new("aws:runCommand")
};

/// The inputs passed to `SendCommand` as they are (the model types them).
const PASSED: &[&str] = &[
    "DocumentName",
    "InstanceIds",
    "Comment",
    "DocumentVersion",
    "DocumentHash",
    "DocumentHashType",
    "MaxConcurrency",
    "MaxErrors",
    "OutputS3BucketName",
    "OutputS3KeyPrefix",
    "OutputS3Region",
    "ServiceRoleArn",
    "TimeoutSeconds",
    "CloudWatchOutputConfig",
];

/// Command statuses that are not over yet.
const RUNNING: &[&str] = &["Pending", "InProgress", "Cancelling"];

/// A value as the list of strings SSM takes for targets and document parameters.
fn strings(value: &Value) -> Value {
    match value {
        Value::Array(items) => items.iter().map(|item| json!(api::python_text(item))).collect(),
        other => json!([api::python_text(other)]),
    }
}

fn send_request(inputs: &Map<String, Value>) -> std::result::Result<Map<String, Value>, Failure> {
    api::text(inputs, "DocumentName")?;
    let mut request: Map<String, Value> =
        PASSED.iter().filter_map(|key| inputs.get(*key).map(|value| ((*key).to_owned(), value.clone()))).collect();
    if let Some(Value::String(id)) = request.get("InstanceIds") {
        request.insert("InstanceIds".into(), json!([id]));
    }
    if let Some(targets) = inputs.get("Targets").and_then(Value::as_array) {
        let targets: Vec<Value> = targets
            .iter()
            .map(|target| json!({ "Key": target.get("Key").map(api::python_text), "Values": target.get("Values").map(strings) }))
            .collect();
        request.insert("Targets".into(), Value::Array(targets));
    }
    if let Some(parameters) = inputs.get("Parameters").and_then(Value::as_object) {
        let parameters: Map<String, Value> =
            parameters.iter().map(|(name, value)| (name.clone(), strings(value))).collect();
        request.insert("Parameters".into(), Value::Object(parameters));
    }
    Ok(request)
}

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let sent = api::call_or_fail(context, "ssm", "SendCommand", &send_request(inputs)?).await?;
    let command_id = sent["Command"]["CommandId"].as_str().unwrap_or_default().to_owned();
    let mut note = Map::new();
    note.insert("command_id".into(), json!(command_id));
    // Kept in the journal, so after a crash the command can be found and looked at.
    let _ = context.timeline.note(&context.step.name, context.iteration, &note);
    let by_id: Map<String, Value> = [("CommandId".to_owned(), json!(command_id))].into_iter().collect();

    let (status, instances) = api::poll(context, || async {
        let listed = api::call_or_fail(context, "ssm", "ListCommands", &by_id).await?;
        let Some(command) = listed["Commands"].as_array().and_then(|commands| commands.first()) else {
            return Ok(None);
        };
        let status = command["Status"].as_str().unwrap_or("Pending").to_owned();
        if RUNNING.contains(&status.as_str()) {
            return Ok(None);
        }
        let instances: Vec<String> = command["InstanceIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        Ok(Some((status, instances)))
    })
    .await?;
    let Invocations { output, response_code, failed } = invocations(context, &by_id, &instances).await?;
    if status != "Success" || !failed.is_empty() {
        return Err(Failure::Error {
            message: format!("command {command_id} ended {status}: {}", failed.join("; ")),
            log: Some(output),
        });
    }
    let mut root = json!({
        "CommandId": command_id,
        "Status": status,
        "ResponseCode": response_code,
        "Output": output,
    });
    if let Ok(payload @ Value::Object(_)) = serde_json::from_str::<Value>(&output) {
        root["Payload"] = payload;
    }
    root["OutputPayload"] = json!(root.to_string());
    let builtins = root.as_object().cloned().unwrap_or_default();
    Ok(Output { root, builtins, ..Output::empty() })
}

/// What the command did on its nodes.
#[derive(Default)]
struct Invocations {
    /// Every node's output, in order.
    output: String,
    /// The last node's response code.
    response_code: i64,
    /// `node: why` for each node where it did not succeed.
    failed: Vec<String>,
}

/// Each node's invocation of a command that ended: the nodes it was sent to by id, or (sent to
/// targets) the ones its invocations name.
async fn invocations(
    context: &Context<'_>,
    by_id: &Map<String, Value>,
    instances: &[String],
) -> std::result::Result<Invocations, Failure> {
    let mut found = Invocations { response_code: -1, ..Invocations::default() };
    let mut record = |instance: &str, invocation_status: &str, details: Option<&str>, out: &str, code: i64| {
        if invocation_status != "Success" {
            found.failed.push(format!("{instance}: {}", details.unwrap_or("failed")));
        }
        found.output.push_str(out);
        found.response_code = code;
    };
    if instances.is_empty() {
        // Sent to targets: the invocations name the nodes.
        let mut request = by_id.clone();
        request.insert("Details".into(), json!(true));
        let listed = api::call_or_fail(context, "ssm", "ListCommandInvocations", &request).await?;
        for invocation in listed["CommandInvocations"].as_array().into_iter().flatten() {
            let plugin = invocation["CommandPlugins"].as_array().and_then(|plugins| plugins.last());
            record(
                invocation["InstanceId"].as_str().unwrap_or_default(),
                invocation["Status"].as_str().unwrap_or_default(),
                invocation["StatusDetails"].as_str(),
                plugin.and_then(|p| p["Output"].as_str()).unwrap_or_default(),
                plugin.and_then(|p| p["ResponseCode"].as_i64()).unwrap_or(-1),
            );
        }
    }
    for instance in instances {
        let mut request = by_id.clone();
        request.insert("InstanceId".into(), json!(instance));
        let invocation = api::call_or_fail(context, "ssm", "GetCommandInvocation", &request).await?;
        record(
            instance,
            invocation["Status"].as_str().unwrap_or_default(),
            invocation["StatusDetails"].as_str(),
            invocation["StandardOutputContent"].as_str().unwrap_or_default(),
            invocation["ResponseCode"].as_i64().unwrap_or(-1),
        );
    }
    Ok(found)
}

/// The inputs whose values V15 compares with the types of the parameters they name.
const EXPECTED: &[(&str, &[Shape])] = &[
    ("DocumentName", &[Shape::String]),
    ("InstanceIds", &[Shape::StringList]),
    ("Targets", &[Shape::MapList]),
    ("Parameters", &[Shape::StringMap]),
    ("CloudWatchOutputConfig", &[Shape::StringMap]),
    ("Comment", &[Shape::String]),
    ("OutputS3BucketName", &[Shape::String]),
    ("OutputS3KeyPrefix", &[Shape::String]),
    ("ServiceRoleArn", &[Shape::String]),
    ("TimeoutSeconds", &[Shape::Integer, Shape::String]),
];

/// 8.2 targets rule and V15 input types.
fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let inputs = &step.inputs;
    if !inputs.contains_key("InstanceIds") && !inputs.contains_key("Targets") {
        let message = "aws:runCommand needs `InstanceIds` or `Targets`";
        out.push(Diagnostic::new(Code::RunCommandTargets, message).at(pointer_push(&step.pointer, "inputs")));
    }
    if let Some(Value::Array(ids)) = inputs.get("InstanceIds")
        && ids.len() > 50
    {
        let message = format!("{} InstanceIds; aws:runCommand takes at most 50 (use Targets for more)", ids.len());
        out.push(Diagnostic::new(Code::RunCommandTargets, message).at(step.input_pointer("InstanceIds")));
    }
    for (input, shapes) in EXPECTED {
        if let Some(Value::String(text)) = inputs.get(*input) {
            check_reference(checked.runbook, text, shapes, &step.input_pointer(input), input, out);
        }
    }
    if let Some(Value::Object(parameters)) = inputs.get("Parameters") {
        let shapes = &[Shape::String, Shape::StringList, Shape::Integer, Shape::Boolean];
        for (name, value) in parameters {
            if let Value::String(text) = value {
                let pointer = pointer_push(&step.input_pointer("Parameters"), name);
                check_reference(checked.runbook, text, shapes, &pointer, name, out);
            }
        }
    }
}

fn check_reference(
    runbook: &Runbook,
    text: &str,
    shapes: &[Shape],
    pointer: &str,
    input: &str,
    out: &mut Vec<Diagnostic>,
) {
    let Some(Reference::Parameter(name)) = template::whole_reference(text) else { return };
    let Some(kind) = runbook.parameter(name).and_then(|p| p.kind) else { return };
    let shape = kind.shape();
    // A String parameter is accepted where a list is expected: it becomes one item.
    let fits = shapes.contains(&shape) || (shape == Shape::String && shapes.contains(&Shape::StringList));
    if !fits {
        let expected: Vec<_> = shapes.iter().map(|s| s.name()).collect();
        let message =
            format!("`{input}` takes {}, but parameter `{name}` is {}", expected.join(" or "), shape.a_name());
        out.push(Diagnostic::new(Code::RunCommandInputType, message).at(pointer));
    }
}
