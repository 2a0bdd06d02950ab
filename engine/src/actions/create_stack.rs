//! `aws:createStack` (reference 6.7): create a CloudFormation stack and wait until its
//! creation ends; anything but `CREATE_COMPLETE` fails the step.

use serde_json::{Map, Value, json};

use super::{Action, Checked, Context, Failure, Output, Result, api};
use crate::diagnostic::{Code, Diagnostic, pointer_push};

pub const ACTION: Action = Action {
    cancel_target: false,
    builtin_outputs: &["StackId", "StackStatus", "StackStatusReason"],
    returns_data: true,
    execute: executor!(execute),
    check,
    calls_aws: true,
    ..Action::new("aws:createStack")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let name = api::text(inputs, "StackName")?.to_string();
    let created = api::call_or_fail(context, "cloudformation", "CreateStack", inputs).await?;
    let stack_id = created["StackId"].as_str().unwrap_or(&name).to_string();
    let stack = wait_for_stack(context, &stack_id).await?;
    let status = stack["StackStatus"].as_str().unwrap_or_default().to_string();
    let root = json!({
        "StackId": stack_id,
        "StackStatus": status,
        "StackStatusReason": stack.get("StackStatusReason").cloned().unwrap_or(json!("")),
    });
    if status != "CREATE_COMPLETE" {
        let reason = root["StackStatusReason"].as_str().unwrap_or_default();
        return Err(Failure::error(format!("stack {name} ended {status}: {reason}")));
    }
    Ok(Output { builtins: root.as_object().cloned().unwrap_or_default(), root, ..Output::empty() })
}

/// Polls `DescribeStacks` until the stack's status is no longer `*_IN_PROGRESS`, and returns
/// the stack; `Value::Null` when it is gone.
pub async fn wait_for_stack(context: &Context<'_>, stack: &str) -> std::result::Result<Value, Failure> {
    let params: Map<String, Value> = [("StackName".to_string(), json!(stack))].into_iter().collect();
    api::poll(context, || async {
        match api::call(context, "cloudformation", "DescribeStacks", &params).await {
            Ok(response) => {
                let stack = response["Stacks"][0].clone();
                let status = stack["StackStatus"].as_str().unwrap_or_default();
                Ok((!status.ends_with("_IN_PROGRESS")).then_some(stack))
            }
            Err(error) if error.code() == Some("ValidationError") => Ok(Some(Value::Null)),
            Err(error) => Err(error.into()),
        }
    })
    .await
}

fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let body = step.inputs.contains_key("TemplateBody");
    let url = step.inputs.contains_key("TemplateURL");
    if body == url {
        let message = match body {
            true => "aws:createStack takes `TemplateBody` or `TemplateURL`, not both",
            false => "aws:createStack needs `TemplateBody` or `TemplateURL`",
        };
        out.push(Diagnostic::new(Code::CreateStackTemplate, message).at(pointer_push(&step.pointer, "inputs")));
    }
}
