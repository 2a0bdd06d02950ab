//! `aws:invokeLambdaFunction` (reference 6.15): invoke a function; outputs select from the
//! JSON the function returned. A function error fails the step.

use serde_json::{Map, Value, json};

use super::{Action, Context, Failure, Output, Result, api};

pub const ACTION: Action = Action {
    max_timeout_seconds: Some(300),
    builtin_outputs: &["StatusCode", "FunctionError", "LogResult", "Payload", "OutputPayload"],
    returns_data: true,
    execute: executor!(execute),
    calls_aws: true,
    ..Action::new("aws:invokeLambdaFunction")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let mut params = Map::new();
    for key in ["FunctionName", "Qualifier", "InvocationType", "LogType"] {
        if let Some(value) = inputs.get(key) {
            params.insert(key.into(), value.clone());
        }
    }
    if let Some(client_context) = inputs.get("ClientContext").and_then(Value::as_str) {
        params.insert("ClientContext".into(), json!(aws_smithy_types::base64::encode(client_context)));
    }
    // `InputPayload` wins over `Payload` when both are given.
    let payload = match (inputs.get("InputPayload"), inputs.get("Payload")) {
        (Some(object), _) => Some(object.to_string()),
        (None, Some(Value::String(text))) => Some(text.clone()),
        (None, Some(other)) => Some(other.to_string()),
        (None, None) => None,
    };
    if let Some(payload) = payload {
        params.insert("Payload".into(), json!(payload));
    }
    let response = api::call_or_fail(context, "lambda", "Invoke", &params).await?;
    let text = response["Payload"].as_str().unwrap_or_default().to_string();
    let returned: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if let Some(error) = response.get("FunctionError").and_then(Value::as_str) {
        return Err(Failure::error(format!("the function failed ({error}): {text}")));
    }
    let mut builtins = Map::new();
    builtins.insert("StatusCode".into(), response.get("StatusCode").cloned().unwrap_or(json!(200)));
    builtins.insert("Payload".into(), json!(text));
    builtins.insert("OutputPayload".into(), json!(text));
    if let Some(log) = response.get("LogResult") {
        builtins.insert("LogResult".into(), log.clone());
    }
    Ok(Output { root: returned, builtins, ..Output::empty() })
}
