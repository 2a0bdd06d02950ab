//! People's decisions. [`Decisions`] is the [`Decider`] the runner gives `aws:approve` and
//! `aws:pause`: a decision already journaled, a pre-set answer (`--approve`/`--reject`), the
//! prompt (through the CLI's [`Prompt`]), or one recorded by another process while this one
//! waits. [`decide`] is `runbook approve|reject|resume ID`: it records the decision for the
//! step an execution waits on and says which execution to go on with, so any driver, local
//! or remote, can reuse it.

use std::time::Duration;

use super::{Answer, Config, Error, Prompt, WaitMode};
use crate::actions::{Ask, BoxFuture, Context, Decider, Failure};
use crate::document::model::Step;
use crate::journal::{self, Decision, Execution, JournalWrite, Locks, Status, WaitKind};
use crate::redact::Redactor;
use crate::timeline::{Silent, Timeline, Waiting};

/// How often a waiting step looks for a decision recorded by another process.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The answer a pre-set or typed answer records for a kind of wait.
pub fn recorded_answer(kind: WaitKind, answer: Answer) -> journal::Answer {
    match (kind, answer) {
        (WaitKind::Pause, Answer::Approve) => journal::Answer::Resume,
        (_, Answer::Approve) => journal::Answer::Approve,
        (_, Answer::Reject) => journal::Answer::Reject,
    }
}

/// The runner's decider.
pub struct Decisions<'a> {
    answer: Option<Answer>,
    step_answers: &'a std::collections::HashMap<String, Answer>,
    wait: WaitMode,
    prompt: Option<&'a dyn Prompt>,
    user: &'a str,
}

impl<'a> Decisions<'a> {
    pub fn new(config: &'a Config, prompt: Option<&'a dyn Prompt>) -> Decisions<'a> {
        Decisions {
            answer: config.answer,
            step_answers: &config.step_answers,
            wait: config.wait,
            prompt,
            user: &config.user,
        }
    }
}

fn journal_failure(error: journal::Error) -> Failure {
    Failure::error(format!("could not read or record the decision: {error}"))
}

impl Decider for Decisions<'_> {
    fn decide<'c>(&'c self, context: &'c Context<'c>, ask: Ask) -> BoxFuture<'c, Result<Decision, Failure>> {
        Box::pin(self.decision_for(context.timeline, context.step, context.iteration, ask))
    }
}

impl Decisions<'_> {
    /// The decision for a visit of `step` (an `aws:approve` or `aws:pause` it runs, or a
    /// pause before it).
    pub async fn decision_for(
        &self,
        timeline: &Timeline<'_>,
        on: &Step,
        iteration: u32,
        ask: Ask,
    ) -> Result<Decision, Failure> {
        let step = on.name.as_str();
        let record = |answer, by| record(timeline, step, iteration, answer, by);
        if let Some(decision) = timeline.decided(step, iteration).map_err(journal_failure)? {
            return Ok(decision);
        }
        if let Some(&answer) = self.step_answers.get(step).or(self.answer.as_ref()) {
            let by = format!("{} (pre-set answer)", self.user);
            return record(recorded_answer(ask.kind, answer), by);
        }
        let prompt = match (self.wait, self.prompt) {
            (WaitMode::Exit, _) => {
                return Err(Failure::Waiting { kind: ask.kind, message: ask.message, approvers: ask.approvers });
            }
            (WaitMode::Prompt, Some(prompt)) => Some(prompt),
            _ => None,
        };
        let waiting = Waiting {
            step,
            iteration,
            action: &on.action,
            kind: ask.kind,
            message: ask.message.as_deref(),
            approvers: &ask.approvers,
        };
        timeline.waiting(&waiting, true).map_err(journal_failure)?;
        let mut prompt = prompt;
        let decision = loop {
            let line = match prompt {
                Some(terminal) => tokio::select! {
                    line = terminal.next_line() => match line {
                        Some(line) => Some(line),
                        // Input ended: wait for a decision from another process.
                        None => {
                            prompt = None;
                            None
                        }
                    },
                    () = tokio::time::sleep(POLL_INTERVAL) => None,
                },
                None => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                    None
                }
            };
            if let Some(line) = line.as_deref() {
                match typed_answer(ask.kind, line) {
                    Some(answer) => break record(recorded_answer(ask.kind, answer), self.user.to_owned())?,
                    None => {
                        if let Some(prompt) = prompt {
                            prompt.not_an_answer(line.trim(), ask.kind);
                        }
                    }
                }
            }
            if let Some(decision) = timeline.decided(step, iteration).map_err(journal_failure)? {
                break decision;
            }
        };
        timeline.running_again().map_err(journal_failure)?;
        Ok(decision)
    }
}

/// An answer typed at the prompt; Enter resumes a pause.
fn typed_answer(kind: WaitKind, line: &str) -> Option<Answer> {
    match line.trim().to_ascii_lowercase().as_str() {
        "a" | "approve" | "y" | "yes" => Some(Answer::Approve),
        "" if kind == WaitKind::Pause => Some(Answer::Approve),
        "r" | "reject" | "n" | "no" => Some(Answer::Reject),
        _ => None,
    }
}

/// Records a decision; another process may have answered first, and then its decision stands.
fn record(
    timeline: &Timeline<'_>,
    step: &str,
    iteration: u32,
    answer: journal::Answer,
    by: String,
) -> Result<Decision, Failure> {
    let decision =
        Decision { step: step.to_owned(), iteration, decision: answer, by, comment: None, at: journal::now() };
    timeline.decision(decision).map(|(standing, _)| standing).map_err(journal_failure)
}

/// What `runbook approve|reject|resume ID` did.
#[derive(Debug)]
pub struct Decided {
    /// The decision for the waiting step, and whether it is the one just made (`false`: an
    /// earlier one stands). `None` for a plain resume after a crash.
    pub decision: Option<(Decision, bool)>,
    /// The top-most execution to go on with here; `None` when another process drives it or
    /// it is over.
    pub go_on: Option<Execution>,
}

/// Records `answer` for the step `execution_id` waits on (`resume` also goes on with an
/// execution that waits for nothing, after a crash) and finds the execution to go on with.
pub fn decide(
    journal: &dyn JournalWrite,
    locks: &dyn Locks,
    execution_id: &str,
    answer: Answer,
    resume: bool,
    by: &str,
    comment: Option<String>,
) -> Result<Decided, Error> {
    let execution = journal.execution(execution_id)?;
    let mut decided = None;
    match journal.waiting_on(&execution.id)? {
        Some(waiting) if execution.status == Status::Waiting => {
            if waiting.kind == WaitKind::Child {
                let children = journal.children(&execution.id)?;
                let child = children.iter().find(|child| child.status == Status::Waiting).map_or("?", |c| &c.id);
                return Err(Error::NotWaiting(format!(
                    "execution {} waits on its child execution {child}: answer that one",
                    execution.id
                )));
            }
            if resume && waiting.kind == WaitKind::Approval {
                return Err(Error::NotWaiting(format!(
                    "step `{}` waits for approval: use `runbook approve` or `runbook reject`",
                    waiting.step
                )));
            }
            let decision = Decision {
                step: waiting.step.clone(),
                iteration: waiting.iteration,
                decision: recorded_answer(waiting.kind, answer),
                by: by.to_owned(),
                comment,
                at: journal::now(),
            };
            let timeline = Timeline::new(&execution.id, journal, &Silent, Redactor::default());
            decided = Some(timeline.decision(decision)?);
        }
        _ if !resume => {
            return Err(Error::NotWaiting(format!(
                "execution {} is {} and waits for no decision",
                execution.id, execution.status
            )));
        }
        _ => {}
    }
    // Go on with the top-most execution: a parent resumes its children itself.
    let mut top = execution;
    while let Some(parent) = top.parent_id.clone() {
        top = journal.execution(&parent)?;
    }
    let go_on = (!locks.is_held(&top.id) && !top.status.is_terminal()).then_some(top);
    Ok(Decided { decision: decided, go_on })
}
