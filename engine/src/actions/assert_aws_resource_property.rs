//! `aws:assertAwsResourceProperty` (reference 6.2): one call; the step fails unless the
//! selected property is among `DesiredValues` (compared as section 7.4 says).

use serde_json::{Map, Value};

use super::{Action, Context, Failure, Kind, Output, Result, api};
use crate::document::model::Step;

pub const ACTION: Action = Action {
    kind: Kind::Api { property: true },
    returns_data: true,
    execute: executor!(execute),
    describe,
    check: api::check,
    calls_aws: true,
    ..Action::new("aws:assertAwsResourceProperty")
};

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    api::describe("check once", inputs)
}

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let (service, operation, params) = api::split(inputs)?;
    let response = api::call_for_response(context, &service, &operation, &params).await?;
    let (matches, found) = api::property_matches(inputs, &response)?;
    if !matches {
        let desired = inputs.get("DesiredValues").map(Value::to_string).unwrap_or_default();
        return Err(Failure::error(format!(
            "`{}` of {operation} is {found}, not one of {desired}",
            inputs["PropertySelector"].as_str().unwrap_or_default()
        )));
    }
    Ok(Output { root: response, ..Output::empty() })
}
