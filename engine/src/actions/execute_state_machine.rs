//! `aws:executeStateMachine` (reference 6.14): start a Step Functions execution and wait for
//! it to end; outputs select from its description. Anything but `SUCCEEDED` fails the step.

use serde_json::{Map, Value, json};

use super::{Action, Context, Failure, Output, Result, api};

pub const ACTION: Action = Action {
    builtin_outputs: &["executionArn", "input", "name", "output", "startDate", "stateMachineArn", "status", "stopDate"],
    returns_data: true,
    execute: executor!(execute),
    calls_aws: true,
    ..Action::new("aws:executeStateMachine")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let mut params = Map::new();
    for key in ["stateMachineArn", "name", "input"] {
        if let Some(value) = inputs.get(key) {
            let value = if key == "input" && !value.is_string() { json!(value.to_string()) } else { value.clone() };
            params.insert(key.into(), value);
        }
    }
    let started = api::call_or_fail(context, "stepfunctions", "StartExecution", &params).await?;
    let arn = started["executionArn"].as_str().unwrap_or_default().to_string();
    let query: Map<String, Value> = [("executionArn".to_string(), json!(arn))].into_iter().collect();
    let description = api::poll(context, || async {
        let description = api::call_or_fail(context, "stepfunctions", "DescribeExecution", &query).await?;
        Ok((description["status"].as_str() != Some("RUNNING")).then_some(description))
    })
    .await?;
    let status = description["status"].as_str().unwrap_or_default().to_string();
    let builtins: Map<String, Value> = super::lookup("aws:executeStateMachine")
        .map(|info| info.builtin_outputs)
        .unwrap_or_default()
        .iter()
        .filter_map(|key| description.get(*key).map(|value| (key.to_string(), value.clone())))
        .collect();
    if status != "SUCCEEDED" {
        let cause = description.get("cause").or(description.get("error")).and_then(Value::as_str).unwrap_or_default();
        return Err(Failure::error(format!("execution {arn} ended {status}: {cause}")));
    }
    Ok(Output { root: description, builtins, ..Output::empty() })
}
