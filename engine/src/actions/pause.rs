//! `aws:pause` (reference 6.18): waits until someone resumes the execution
//! (`runbook resume ID`, the prompt, or `--approve` given in advance).

use serde_json::{Map, Value};

use super::approve::{Kind, wait_for_decision};
use super::{Context, Failure, Output, Result};

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let message = inputs.get("Message").and_then(Value::as_str).map(str::to_owned);
    let decision = wait_for_decision(context, Kind::Pause, message, Value::Null).await?;
    match decision.decision.as_str() {
        "Reject" => Err(Failure::error(format!("the pause was ended by {} without resuming", decision.by))),
        _ => Ok(Output::empty()),
    }
}
