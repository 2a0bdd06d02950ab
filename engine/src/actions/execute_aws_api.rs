//! `aws:executeAwsApi` (reference 6.12): one call of any operation of any service, its
//! boto3-shaped response the root that outputs select from.

use serde_json::{Map, Value};

use super::{Action, Context, Kind, Output, Result, api};
use crate::document::model::Step;

pub const ACTION: Action = Action {
    kind: Kind::Api { property: false },
    // AWS limits each API call to 25 s, not the step: timeoutSeconds may be longer (245
    // AWS-owned steps set it so), so no step maximum applies.
    returns_data: true,
    execute: executor!(execute),
    describe,
    check: api::check,
    calls_aws: true,
    ..Action::new("aws:executeAwsApi")
};

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    api::describe("call", inputs)
}

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let (service, operation, params) = api::split(inputs)?;
    let response = api::call_for_response(context, &service, &operation, &params).await?;
    Ok(Output { root: response, ..Output::empty() })
}
