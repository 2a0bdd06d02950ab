//! `aws:executeAwsApi` (reference 6.12): one call of any operation of any service, its
//! boto3-shaped response the root that outputs select from.

use serde_json::{Map, Value};

use super::{Context, Output, Result, api};

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let (service, operation, params) = api::split(inputs)?;
    let response = api::call_or_fail(context, &service, &operation, &params).await?;
    let secrets = crate::aws::sensitive_values(&service, &operation, &response);
    Ok(Output { root: response, secrets, ..Output::empty() })
}
