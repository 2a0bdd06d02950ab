//! `aws:waitForAwsResourceProperty` (reference 6.23): calls the API every poll interval until
//! the selected property is among `DesiredValues`. AWS errors while polling (throttling, a
//! resource not visible yet) do not end the wait; the step's timeout does.

use serde_json::{Map, Value};

use super::{Context, Failure, Output, Result, api};
use crate::aws;

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let (service, operation, params) = api::split(inputs)?;
    api::poll(context, || async {
        let response = match api::call(context, &service, &operation, &params).await {
            Ok(response) => response,
            // A request that can never succeed fails now rather than at the timeout.
            Err(
                error @ (aws::Error::UnknownService { .. }
                | aws::Error::UnknownOperation { .. }
                | aws::Error::InvalidParameters { .. }
                | aws::Error::NoRegion
                | aws::Error::Credentials(_)
                | aws::Error::Request { .. }),
            ) => return Err(Failure::error(error.to_string())),
            Err(_) => return Ok(None),
        };
        let (matches, _) = api::property_matches(inputs, &response)?;
        let secrets = crate::aws::sensitive_values(&service, &operation, &response);
        Ok(matches.then(|| Output { root: response, secrets, ..Output::empty() }))
    })
    .await
}
