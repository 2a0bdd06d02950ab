//! `aws:createTags` (reference 6.8): tag EC2 resources (`CreateTags`), or a managed instance,
//! maintenance window or parameter (SSM `AddTagsToResource`, one resource at a time).

use serde_json::{Map, Value, json};

use super::{Action, Checked, Context, Failure, Output, Result, api};
use crate::diagnostic::{Code, Diagnostic};

pub const ACTION: Action = Action {
    cancel_target: false,
    execute: executor!(execute),
    check,
    calls_aws: true,
    ..Action::new("aws:createTags")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let resources = api::texts(inputs, "ResourceIds")?;
    let tags = inputs.get("Tags").cloned().ok_or_else(|| Failure::error("`Tags` is required"))?;
    let kind = inputs.get("ResourceType").and_then(Value::as_str).unwrap_or("EC2");
    match kind {
        "EC2" => {
            let params = json!({ "Resources": resources, "Tags": tags });
            api::call_or_fail(context, "ec2", "CreateTags", params.as_object().expect("object")).await?;
        }
        "ManagedInstance" | "MaintenanceWindow" | "Parameter" => {
            for resource in &resources {
                let params = json!({ "ResourceType": kind, "ResourceId": resource, "Tags": tags });
                api::call_or_fail(context, "ssm", "AddTagsToResource", params.as_object().expect("object")).await?;
            }
        }
        other => {
            return Err(Failure::error(format!(
                "`ResourceType` is {other:?}; it must be EC2, ManagedInstance, MaintenanceWindow or Parameter"
            )));
        }
    }
    Ok(Output::empty())
}

fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let Some(Value::String(resource_type)) = step.inputs.get("ResourceType") else { return };
    if resource_type == "EC2" || resource_type.contains("{{") {
        return;
    }
    if let Some(Value::Array(ids)) = step.inputs.get("ResourceIds")
        && ids.len() > 1
    {
        let message = format!("ResourceType {resource_type} takes a single ResourceId, found {}", ids.len());
        out.push(Diagnostic::new(Code::CreateTagsResources, message).at(step.input_pointer("ResourceIds")));
    }
}
