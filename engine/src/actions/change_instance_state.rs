//! `aws:changeInstanceState` (reference 6.4): start, stop or terminate EC2 instances and wait
//! until every one is in the desired state (`running` also waits for both status checks);
//! with `CheckStateOnly` it only waits.

use serde_json::{Map, Value, json};

use super::{Action, Context, Failure, Output, Result, api};
use crate::document::model::Step;

pub const ACTION: Action = Action {
    default_timeout_seconds: Some(3600),
    execute: executor!(execute),
    describe,
    calls_aws: true,
    ..Action::new("aws:changeInstanceState")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let instances = api::texts(inputs, "InstanceIds")?;
    let desired = api::text(inputs, "DesiredState")?.to_string();
    let change = match desired.as_str() {
        "running" => "StartInstances",
        "stopped" => "StopInstances",
        "terminated" => "TerminateInstances",
        other => {
            return Err(Failure::error(format!(
                "`DesiredState` is {other:?}; it must be running, stopped or terminated"
            )));
        }
    };
    if !api::flag(inputs, "CheckStateOnly") {
        let mut params = Map::new();
        params.insert("InstanceIds".into(), json!(instances));
        if desired == "stopped" && api::flag(inputs, "Force") {
            params.insert("Force".into(), json!(true));
        }
        if let Some(info) = inputs.get("AdditionalInfo").filter(|_| desired == "running") {
            params.insert("AdditionalInfo".into(), info.clone());
        }
        api::call_or_fail(context, "ec2", change, &params).await?;
    }
    wait_for_state(context, &instances, &desired).await?;
    Ok(Output::empty())
}

/// Polls until every instance is in `desired` (and, for `running`, passes its status checks);
/// returns each instance's id and state as last described.
pub async fn wait_for_state(
    context: &Context<'_>,
    instances: &[String],
    desired: &str,
) -> std::result::Result<Vec<(String, String)>, Failure> {
    let params: Map<String, Value> = [("InstanceIds".to_string(), json!(instances))].into_iter().collect();
    api::poll(context, || async {
        let response = api::call_or_fail(context, "ec2", "DescribeInstances", &params).await?;
        let states = super::run_instances::states(&response);
        if states.len() < instances.len() || states.iter().any(|(_, state)| state != desired) {
            if desired != "terminated" && states.iter().any(|(_, state)| state == "terminated") {
                return Err(Failure::error(format!(
                    "an instance was terminated while waiting for {desired}: {states:?}"
                )));
            }
            return Ok(None);
        }
        if desired != "running" {
            return Ok(Some(states));
        }
        let status = api::call_or_fail(context, "ec2", "DescribeInstanceStatus", &params).await?;
        let checks = status["InstanceStatuses"].as_array().cloned().unwrap_or_default();
        let ok = |entry: &Value, key: &str| entry[key]["Status"].as_str() == Some("ok");
        let all_ok = checks.len() == instances.len()
            && checks.iter().all(|entry| ok(entry, "InstanceStatus") && ok(entry, "SystemStatus"));
        Ok(all_ok.then_some(states))
    })
    .await
}

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    let desired = super::shown_text(inputs, "DesiredState").unwrap_or_else(|| "?".into());
    Ok(format!("set instances {} to {desired}", super::shown_json(inputs, "InstanceIds")))
}
