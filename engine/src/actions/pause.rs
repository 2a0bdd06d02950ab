//! `aws:pause` (reference 6.18): waits until someone resumes the execution
//! (`runbook resume ID`, the prompt, or `--approve` given in advance).

use serde_json::{Map, Value};

use super::{Action, Ask, Context, Failure, Output, Result};
use crate::document::model::Step;
use crate::journal::{Answer, WaitKind};

pub const ACTION: Action = Action {
    asks_person: Some(WaitKind::Pause),
    self_contained: true,
    cancel_target: false,
    safe_to_repeat: true,
    execute: executor!(execute),
    describe,
    ..Action::new("aws:pause")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let message = inputs.get("Message").and_then(Value::as_str).map(str::to_owned);
    let ask = Ask { kind: WaitKind::Pause, message, approvers: Value::Null };
    let decision = context.decider.decide(context, ask).await?;
    match decision.decision {
        Answer::Reject => Err(Failure::error(format!("the pause was ended by {} without resuming", decision.by))),
        Answer::Approve | Answer::Resume => Ok(Output::empty()),
    }
}

fn describe(_: &Step, _: &Value) -> std::result::Result<String, String> {
    Ok("wait until someone resumes the execution".into())
}
