//! What the AWS actions share: one API call from a step (with its role and idempotency
//! seed), the `Service`/`Api`/parameters split of the API actions, their static check against
//! the bundled models and their dry-run description, the comparison of
//! `aws:assertAwsResourceProperty` and `aws:waitForAwsResourceProperty` (reference 7.4), and
//! polling until a condition holds.

use std::future::Future;

use serde_json::{Map, Value};

use super::{Checked, Context, Failure, shown_json, shown_text};
use crate::aws::{self, Call};
use crate::diagnostic::{Code, Diagnostic, nearest};
use crate::document::model::{Step, lenient_bool};
use crate::document::outputs;

/// Calls `service`.`api` for the step, as the runbook's `assumeRole` when it has one.
pub async fn call(
    context: &Context<'_>,
    service: &str,
    api: &str,
    params: &Map<String, Value>,
) -> Result<Value, aws::Error> {
    let seed = format!("{}/{}/{}", context.execution_id, context.step.name, context.iteration);
    let call = Call { service, api, params, role: context.settings.assume_role, token_seed: &seed };
    context.settings.aws.call(&call).await
}

/// The call of an API action (`Service`, `Api`, the request parameters), whose response the
/// runbook selects from: its sensitive members (a decrypted SecureString) are secrets from
/// this moment on, learnt before any message built from the response can be recorded.
pub async fn call_for_response(
    context: &Context<'_>,
    service: &str,
    api: &str,
    params: &Map<String, Value>,
) -> Result<Value, aws::Error> {
    let response = call(context, service, api, params).await?;
    context.timeline.learn(aws::sensitive_values(service, api, &response));
    Ok(response)
}

/// [`call`] with the error turned into the step's failure.
pub async fn call_or_fail(
    context: &Context<'_>,
    service: &str,
    api: &str,
    params: &Map<String, Value>,
) -> Result<Value, Failure> {
    Ok(call(context, service, api, params).await?)
}

/// The keys an API action reads itself; every other input is a request parameter.
const ACTION_KEYS: &[&str] = &["Service", "Api", "PropertySelector", "DesiredValues"];

/// `Service`, `Api` and the request parameters of an API action's inputs.
pub fn split(inputs: &Map<String, Value>) -> Result<(String, String, Map<String, Value>), Failure> {
    let text = |key: &str| match inputs.get(key) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(other) => Err(Failure::error(format!("`{key}` must be text, found {other}"))),
        None => Err(Failure::error(format!("`{key}` is required"))),
    };
    Ok((text("Service")?, text("Api")?, request_params(inputs)))
}

/// The request parameters of an API action: every input but the action's own keys.
pub fn request_params(inputs: &Map<String, Value>) -> Map<String, Value> {
    inputs.iter().filter(|(key, _)| !ACTION_KEYS.contains(&key.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Whether the value `PropertySelector` picks from `response` is among `DesiredValues`, and
/// the value as text for messages. A list matches when it is not empty and every element
/// matches (reference 7.4).
pub fn property_matches(inputs: &Map<String, Value>, response: &Value) -> Result<(bool, String), Failure> {
    let selector = inputs
        .get("PropertySelector")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::error("`PropertySelector` must be text"))?;
    let desired: Vec<String> = match inputs.get("DesiredValues") {
        Some(Value::Array(values)) => values.iter().map(python_text).collect(),
        Some(other) => return Err(Failure::error(format!("`DesiredValues` must be a list, found {other}"))),
        None => return Err(Failure::error("`DesiredValues` is required")),
    };
    let selected = outputs::select(selector, response).map_err(|error| Failure::error(error.to_string()))?;
    let matches = |value: &Value| desired.contains(&python_text(value));
    Ok(match selected {
        None => (false, "nothing".to_string()),
        Some(Value::Array(items)) => {
            let shown = format!("[{}]", items.iter().map(python_text).collect::<Vec<_>>().join(", "));
            (!items.is_empty() && items.iter().all(matches), shown)
        }
        Some(value) => (matches(&value), python_text(&value)),
    })
}

/// A value as text the way AWS compares it: Python-style booleans, numbers in decimal.
pub fn python_text(value: &Value) -> String {
    match value {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(text) => text.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Runs `probe` until it returns `Some`, sleeping the configured poll interval in between.
/// The step's time limit ends the wait.
pub async fn poll<T, F, Fut>(context: &Context<'_>, mut probe: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Failure>>,
{
    loop {
        if let Some(done) = probe().await? {
            return Ok(done);
        }
        tokio::time::sleep(context.settings.poll_interval).await;
    }
}

/// What an API step would do, for dry-runs: `verb` the call (`call`, `check once`, `poll`).
pub fn describe(verb: &str, inputs: &Value) -> Result<String, String> {
    let or = |value: Option<String>| value.unwrap_or_else(|| "?".into());
    let request = inputs.as_object().map(request_params).unwrap_or_default();
    let mut line = format!(
        "{verb} {}.{} {}",
        or(shown_text(inputs, "Service")),
        or(shown_text(inputs, "Api")),
        Value::Object(request)
    );
    if let Some(selector) = shown_text(inputs, "PropertySelector") {
        line.push_str(&format!(" until {selector} is one of {}", shown_json(inputs, "DesiredValues")));
    }
    Ok(line)
}

/// 7.1: the `Service`, `Api` and request parameters of an API action, checked against the
/// bundled AWS models. Warnings: the service itself only finds out at run time.
pub fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let literal = |key: &str| match step.inputs.get(key) {
        Some(Value::String(text)) if !text.contains("{{") => Some(text.as_str()),
        _ => None,
    };
    let Some(service) = literal("Service") else { return };
    let Some(model) = aws::model::service(service) else {
        let mut diagnostic =
            Diagnostic::new(Code::AwsService, format!("`{service}` is not an AWS service the engine knows"))
                .at(step.input_pointer("Service"));
        if let Some(suggestion) = nearest(service, aws::model::service_names().into_iter()) {
            diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
        }
        out.push(diagnostic);
        return;
    };
    if aws::model::canonical_service(service) != Some(service) {
        let canonical = aws::model::canonical_service(service).unwrap_or(service);
        let message = format!("the boto3 client name is `{canonical}`, not `{service}`");
        out.push(Diagnostic::new(Code::AwsService, message).at(step.input_pointer("Service")));
    }
    let Some(api) = literal("Api") else { return };
    let Some(operation) = model.operation(api) else {
        let message = format!("{} has no operation `{api}`", model.metadata.service_id);
        let mut diagnostic = Diagnostic::new(Code::AwsOperation, message).at(step.input_pointer("Api"));
        if let Some(suggestion) = nearest(api, model.operations.keys()) {
            diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
        }
        out.push(diagnostic);
        return;
    };
    let params = request_params(&step.inputs);
    let (_, problems) = aws::check::check(&model, operation, &params, &[]);
    for problem in problems {
        let top = problem.path.split(['.', '[']).next().unwrap_or_default();
        let pointer = if params.contains_key(top) { step.input_pointer(top) } else { step.field_pointer("inputs") };
        let message = format!("{}: {problem}", operation.name);
        out.push(Diagnostic::new(Code::AwsParameter, message).at(pointer));
    }
}

/// Whether an API step's call may simply be made again, as a resume may: `Service` and `Api`
/// are literal, the models know the operation and it only reads, and it reads the same thing
/// twice (`GetRandomPassword` reads, but a new value each time).
pub fn only_reads(step: &Step) -> bool {
    let literal = |key: &str| step.inputs.get(key).and_then(Value::as_str).filter(|text| !text.contains("{{"));
    let (Some(service), Some(api)) = (literal("Service"), literal("Api")) else { return false };
    aws::resolve(service, api)
        .is_ok_and(|(model, operation)| model.operations[&operation].read_only() && !operation.starts_with("GetRandom"))
}

/// A text input, required.
pub fn text<'a>(inputs: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    match inputs.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(Failure::error(format!("`{key}` must be text, found {other}"))),
        None => Err(Failure::error(format!("`{key}` is required"))),
    }
}

/// A list-of-text input, required; a single text is a list of one.
pub fn texts(inputs: &Map<String, Value>, key: &str) -> Result<Vec<String>, Failure> {
    match inputs.get(key) {
        Some(Value::Array(items)) => Ok(items.iter().map(python_text).collect()),
        Some(Value::String(text)) => Ok(vec![text.clone()]),
        Some(other) => Err(Failure::error(format!("`{key}` must be a list, found {other}"))),
        None => Err(Failure::error(format!("`{key}` is required"))),
    }
}

/// A boolean input (`true`, `"True"`), false when absent.
pub fn flag(inputs: &Map<String, Value>, key: &str) -> bool {
    inputs.get(key).and_then(lenient_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(selector: &str, desired: Value, response: Value) -> bool {
        let inputs = json!({"PropertySelector": selector, "DesiredValues": desired});
        property_matches(inputs.as_object().unwrap(), &response).unwrap().0
    }

    #[test]
    fn comparisons_follow_section_7_4() {
        let response = json!({"Table": {"Status": "ACTIVE", "Enabled": true, "Count": 3}});
        assert!(check("$.Table.Status", json!(["CREATING", "ACTIVE"]), response.clone()));
        assert!(check("$.Table.Enabled", json!(["True"]), response.clone()));
        assert!(!check("$.Table.Enabled", json!(["true"]), response.clone()));
        assert!(check("$.Table.Count", json!(["3"]), response.clone()));
        assert!(!check("$.Table.Missing", json!(["None"]), response));
        let instances = json!({"DB": [{"S": "available"}, {"S": "available"}]});
        assert!(check("$.DB..S", json!(["available"]), instances));
        let mixed = json!({"DB": [{"S": "available"}, {"S": "modifying"}]});
        assert!(!check("$.DB..S", json!(["available"]), mixed));
        assert!(!check("$.DB..S", json!(["available"]), json!({"DB": []})));
    }
}
