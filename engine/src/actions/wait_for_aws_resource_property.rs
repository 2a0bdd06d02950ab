//! `aws:waitForAwsResourceProperty` (reference 6.23): calls the API every poll interval until
//! the selected property is among `DesiredValues`. AWS errors while polling (throttling, a
//! resource not visible yet) do not end the wait; the step's timeout does.

use serde_json::{Map, Value};

use super::{Action, Context, Kind, Output, Result, api};
use crate::aws;
use crate::document::model::Step;

pub const ACTION: Action = Action {
    kind: Kind::Api { property: true },
    default_timeout_seconds: Some(3600),
    execute: executor!(execute),
    describe,
    check: api::check,
    calls_aws: true,
    ..Action::new("aws:waitForAwsResourceProperty")
};

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    api::describe("poll", inputs)
}

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let (service, operation, params) = api::split(inputs)?;
    api::poll(context, || async {
        let response = match api::call_for_response(context, &service, &operation, &params).await {
            Ok(response) => response,
            // The service answered with an error, or could not be reached: ask again. Any
            // other error is in the request itself and fails now rather than at the timeout.
            Err(aws::Error::Service { .. } | aws::Error::Transport { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let (matches, _) = api::property_matches(inputs, &response)?;
        Ok(matches.then(|| Output { root: response, ..Output::empty() }))
    })
    .await
}
