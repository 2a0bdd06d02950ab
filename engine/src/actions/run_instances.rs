//! `aws:runInstances` (reference 6.20): launch instances with EC2 `RunInstances` and wait
//! until they run. `ClientToken` defaults to a token derived from execution, step and
//! iteration, so a retried or resumed step does not launch a second set.

use serde_json::{Map, Value, json};

use super::{Action, Context, Output, Result, api};

/// Inputs whose names differ from the `RunInstances` request, or that need reshaping.
const RESHAPED: &[&str] =
    &["MinInstanceCount", "MaxInstanceCount", "IamInstanceProfileArn", "IamInstanceProfileName", "Monitoring"];

pub const ACTION: Action = Action {
    cancel_target: false,
    builtin_outputs: &["InstanceIds", "InstanceStates"],
    returns_data: true,
    execute: executor!(execute),
    calls_aws: true,
    ..Action::new("aws:runInstances")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let mut params: Map<String, Value> = inputs
        .iter()
        .filter(|(key, _)| !RESHAPED.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    params.entry("InstanceType").or_insert_with(|| json!("m1.small"));
    params.insert("MinCount".into(), inputs.get("MinInstanceCount").cloned().unwrap_or(json!(1)));
    params.insert("MaxCount".into(), inputs.get("MaxInstanceCount").cloned().unwrap_or(json!(1)));
    if let Some(arn) = inputs.get("IamInstanceProfileArn") {
        params.insert("IamInstanceProfile".into(), json!({ "Arn": arn }));
    } else if let Some(name) = inputs.get("IamInstanceProfileName") {
        params.insert("IamInstanceProfile".into(), json!({ "Name": name }));
    }
    if inputs.contains_key("Monitoring") {
        params.insert("Monitoring".into(), json!({ "Enabled": api::flag(inputs, "Monitoring") }));
    }
    let response = api::call_or_fail(context, "ec2", "RunInstances", &params).await?;
    let ids: Vec<String> = states(&json!({ "Reservations": [response] })).into_iter().map(|(id, _)| id).collect();
    let described = super::change_instance_state::wait_for_state(context, &ids, "running").await?;
    // In the order of the ids RunInstances returned.
    let states: Vec<String> = ids
        .iter()
        .map(|id| described.iter().find(|(seen, _)| seen == id).map(|(_, state)| state.clone()).unwrap_or_default())
        .collect();
    let root = json!({ "InstanceIds": ids, "InstanceStates": states });
    let builtins = root.as_object().cloned().unwrap_or_default();
    Ok(Output { root, builtins, ..Output::empty() })
}

/// Instance ids and state names in a `DescribeInstances`-shaped response.
pub fn states(response: &Value) -> Vec<(String, String)> {
    let reservations = response["Reservations"].as_array().into_iter().flatten();
    let instances = reservations.flat_map(|reservation| reservation["Instances"].as_array().into_iter().flatten());
    instances
        .map(|instance| {
            let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
            (text(&instance["InstanceId"]), text(&instance["State"]["Name"]))
        })
        .collect()
}
