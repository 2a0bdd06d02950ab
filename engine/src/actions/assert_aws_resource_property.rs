//! `aws:assertAwsResourceProperty` (reference 6.2): one call; the step fails unless the
//! selected property is among `DesiredValues` (compared as section 7.4 says).

use serde_json::{Map, Value};

use super::{Context, Failure, Output, Result, api};

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let (service, operation, params) = api::split(inputs)?;
    let response = api::call_or_fail(context, &service, &operation, &params).await?;
    let (matches, found) = api::property_matches(inputs, &response)?;
    if !matches {
        let desired = inputs.get("DesiredValues").map(Value::to_string).unwrap_or_default();
        return Err(Failure::error(format!(
            "`{}` of {operation} is {found}, not one of {desired}",
            inputs["PropertySelector"].as_str().unwrap_or_default()
        )));
    }
    let secrets = crate::aws::sensitive_values(&service, &operation, &response);
    Ok(Output { root: response, secrets, ..Output::empty() })
}
