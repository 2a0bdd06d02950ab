//! `aws:approve` (reference 6.1): waits for a person's decision. The decision comes from a
//! pre-set answer (`--approve`/`--reject`, for CI), from the prompt on a terminal, or from
//! `runbook approve|reject ID` in another terminal; it is journaled with who made it.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Context, Failure, Output, Result};
use crate::exec::{Answer, Event, Status, WaitMode};
use crate::journal::{self, Decision};

/// How often a waiting step looks for a decision recorded by another process.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let message = inputs.get("Message").and_then(Value::as_str).map(str::to_owned);
    let approvers = inputs.get("Approvers").cloned().unwrap_or(Value::Null);
    let decision = wait_for_decision(context, Kind::Approve, message, approvers).await?;
    let record = json!([{
        "approver": decision.by, "decision": decision.decision, "comment": decision.comment, "at": decision.at,
    }]);
    match decision.decision.as_str() {
        "Approve" => {
            let mut builtins = Map::new();
            builtins.insert("ApprovalStatus".into(), json!("Approved"));
            builtins.insert("ApproverDecisions".into(), record);
            Ok(Output { root: Value::Object(builtins.clone()), builtins, ..Output::empty() })
        }
        // Rejection fails the step (reference 6.1), so its onFailure applies.
        _ => Err(Failure::error(format!("rejected by {}", decision.by))),
    }
}

/// Which kind of step waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Approve,
    Pause,
}

/// The answer words the prompt and `runbook approve|reject|resume` record.
pub fn decision_word(kind: Kind, answer: Answer) -> &'static str {
    match (kind, answer) {
        (Kind::Approve, Answer::Approve) => "Approve",
        (Kind::Pause, Answer::Approve) => "Resume",
        (_, Answer::Reject) => "Reject",
    }
}

fn journal_failure(error: journal::Error) -> Failure {
    Failure::error(format!("could not read or record the decision: {error}"))
}

/// The decision for this step visit: already journaled, pre-set, typed at the prompt, or
/// recorded by another process while this one waits.
pub async fn wait_for_decision(
    context: &Context<'_>,
    kind: Kind,
    message: Option<String>,
    approvers: Value,
) -> std::result::Result<Decision, Failure> {
    let (journal, execution_id, step) = (context.journal, context.execution_id, context.step.name.as_str());
    if let Some(decision) = journal.decision(execution_id, step, context.iteration).map_err(journal_failure)? {
        return Ok(decision);
    }
    if let Some(answer) = context.config.answer {
        return record(context, decision_word(kind, answer), format!("{} (pre-set answer)", context.config.user));
    }
    if context.config.wait == WaitMode::Exit {
        return Err(Failure::Waiting { message, approvers });
    }
    let detail = json!({ "iteration": context.iteration, "action": context.step.action, "message": message });
    journal.event(execution_id, "waiting", Some(step), &detail).map_err(journal_failure)?;
    journal.set_status(execution_id, Status::Waiting.as_str(), false, None, None).map_err(journal_failure)?;
    context.observer.event(&Event::Waiting {
        execution_id: execution_id.to_owned(),
        step: step.to_owned(),
        action: context.step.action.clone(),
        message,
        approvers,
    });
    let mut answers = (context.config.wait == WaitMode::Prompt).then(read_lines);
    let decision = loop {
        let line = match answers.as_mut() {
            Some(lines) => tokio::select! {
                line = lines.recv() => line,
                () = tokio::time::sleep(POLL_INTERVAL) => None,
            },
            None => {
                tokio::time::sleep(POLL_INTERVAL).await;
                None
            }
        };
        if let Some(line) = line {
            let answer = match line.trim().to_ascii_lowercase().as_str() {
                "a" | "approve" | "y" | "yes" => Some(Answer::Approve),
                "" if kind == Kind::Pause => Some(Answer::Approve),
                "r" | "reject" | "n" | "no" => Some(Answer::Reject),
                _ => None,
            };
            if let Some(answer) = answer {
                break record(context, decision_word(kind, answer), context.config.user.clone())?;
            }
        }
        if let Some(decision) = journal.decision(execution_id, step, context.iteration).map_err(journal_failure)? {
            break decision;
        }
    };
    journal.set_status(execution_id, Status::InProgress.as_str(), false, None, None).map_err(journal_failure)?;
    Ok(decision)
}

fn record(context: &Context<'_>, word: &str, by: String) -> std::result::Result<Decision, Failure> {
    let decision = Decision {
        step: context.step.name.clone(),
        iteration: context.iteration,
        decision: word.to_owned(),
        by,
        comment: None,
        at: journal::now(),
    };
    context.journal.decide(context.execution_id, &decision).map_err(journal_failure)?;
    // Another process may have answered first: its decision stands.
    let decision = context
        .journal
        .decision(context.execution_id, &decision.step, decision.iteration)
        .map_err(journal_failure)?
        .unwrap_or(decision);
    context.observer.event(&Event::Decision {
        execution_id: context.execution_id.to_owned(),
        step: decision.step.clone(),
        decision: decision.decision.clone(),
        by: decision.by.clone(),
    });
    Ok(decision)
}

/// Lines typed at the terminal. A plain thread: a blocked read cannot be cancelled, and the
/// process ends without joining it.
fn read_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|read| read > 0) {
            if sender.send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    });
    receiver
}
