//! `aws:approve` (reference 6.1): waits for a person's decision, which the [`Decider`] gives:
//! a pre-set answer (`--approve`/`--reject`, for CI), the prompt on a terminal, or
//! `runbook approve|reject ID` from another terminal. A rejection fails the step.
//!
//! [`Decider`]: super::Decider

use serde_json::{Map, Value, json};

use super::{Action, Ask, Checked, Context, Failure, Output, Result, shown_json};
use crate::diagnostic::{Code, Diagnostic};
use crate::document::model::{Step, lenient_integer};
use crate::journal::{Answer, WaitKind};

const DAY: u64 = 24 * 3600;

pub const ACTION: Action = Action {
    asks_person: Some(WaitKind::Approval),
    self_contained: true,
    cancel_target: false,
    default_timeout_seconds: Some(7 * DAY),
    max_timeout_seconds: Some(30 * DAY),
    builtin_outputs: &["ApprovalStatus", "ApproverDecisions"],
    safe_to_repeat: true,
    execute: executor!(execute),
    describe,
    check,
    ..Action::new("aws:approve")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let ask = Ask {
        kind: WaitKind::Approval,
        message: inputs.get("Message").and_then(Value::as_str).map(str::to_owned),
        approvers: inputs.get("Approvers").cloned().unwrap_or(Value::Null),
    };
    let decision = context.decider.decide(context, ask).await?;
    let record = json!([{
        "approver": decision.by, "decision": decision.decision, "comment": decision.comment, "at": decision.at,
    }]);
    match decision.decision {
        Answer::Approve | Answer::Resume => {
            let mut builtins = Map::new();
            builtins.insert("ApprovalStatus".into(), json!("Approved"));
            builtins.insert("ApproverDecisions".into(), record);
            Ok(Output { root: Value::Object(builtins.clone()), builtins, ..Output::empty() })
        }
        // Rejection fails the step (reference 6.1), so its onFailure applies.
        Answer::Reject => Err(Failure::error(format!("rejected by {}", decision.by))),
    }
}

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    Ok(format!("wait for approval by {}", shown_json(inputs, "Approvers")))
}

fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let (Some(Value::Array(approvers)), Some(minimum)) =
        (step.inputs.get("Approvers"), step.inputs.get("MinRequiredApprovals").and_then(lenient_integer))
    else {
        return;
    };
    if minimum as usize > approvers.len() {
        let message = format!("MinRequiredApprovals is {minimum}, but only {} approvers are listed", approvers.len());
        out.push(Diagnostic::new(Code::ApproversCount, message).at(step.input_pointer("MinRequiredApprovals")));
    }
}
