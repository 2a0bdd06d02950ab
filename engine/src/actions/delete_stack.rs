//! `aws:deleteStack` (reference 6.10): delete a CloudFormation stack and wait until it is
//! gone; `DELETE_FAILED` fails the step.

use serde_json::{Map, Value, json};

use super::{Action, Context, Failure, Output, Result, api};

pub const ACTION: Action =
    Action { returns_data: true, execute: executor!(execute), calls_aws: true, ..Action::new("aws:deleteStack") };

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let name = api::text(inputs, "StackName")?.to_string();
    // Waiting by id: a deleted stack is no longer found by name.
    let described = api::call(
        context,
        "cloudformation",
        "DescribeStacks",
        &[("StackName".to_string(), json!(name))].into_iter().collect(),
    )
    .await;
    let stack_id = match &described {
        Ok(response) => response["Stacks"][0]["StackId"].as_str().unwrap_or(&name).to_string(),
        Err(error) if error.code() == Some("ValidationError") => return Ok(gone(&name)),
        Err(error) => return Err(Failure::error(error.to_string())),
    };
    api::call_or_fail(context, "cloudformation", "DeleteStack", inputs).await?;
    let stack = super::create_stack::wait_for_stack(context, &stack_id).await?;
    let status = stack["StackStatus"].as_str().unwrap_or("DELETE_COMPLETE").to_string();
    if status != "DELETE_COMPLETE" {
        let reason = stack["StackStatusReason"].as_str().unwrap_or_default();
        return Err(Failure::error(format!("stack {name} ended {status}: {reason}")));
    }
    Ok(gone(&name))
}

fn gone(name: &str) -> Output {
    Output { root: json!({ "StackName": name, "StackStatus": "DELETE_COMPLETE" }), ..Output::empty() }
}
