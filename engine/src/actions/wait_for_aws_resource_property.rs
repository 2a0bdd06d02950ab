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
            // The service answered with an error, or could not be reached: ask again. Any
            // other error is in the request itself and fails now rather than at the timeout.
            Err(aws::Error::Service { .. } | aws::Error::Transport { .. }) => return Ok(None),
            Err(error) => return Err(Failure::error(error.to_string())),
        };
        let (matches, _) = api::property_matches(inputs, &response)?;
        let secrets = crate::aws::sensitive_values(&service, &operation, &response);
        Ok(matches.then(|| Output { root: response, secrets, ..Output::empty() }))
    })
    .await
}
