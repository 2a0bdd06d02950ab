//! Runs on SSM Automation (`runbook run --on ssm`, issue 17): the steps run in AWS, and this
//! follows them into the same timeline a local run writes (journal, events, exit status).
//!
//! - The execution is recorded first, with the ClientToken its StartAutomationExecution
//!   sends; the AutomationExecutionId is recorded as soon as SSM answers. A follower that lost
//!   its connection, or a resume after the process died, follows that id; where the id was
//!   never recorded, the start is sent again with the same token, and SSM answers with the
//!   execution it already started. No second execution is started.
//! - GetAutomationExecution and DescribeAutomationStepExecutions are polled with backoff:
//!   quickly while steps move, less often while nothing does (up to `--poll-interval`).
//!   Each step SSM reports becomes an attempt started and a step finished in the timeline.
//! - A step that waits for a person (`aws:approve`, `aws:pause`) is answered as a local one
//!   is (`--approve`, the prompt, `runbook approve ID`), and the answer is sent with
//!   SendAutomationSignal. Ctrl-C sends StopAutomationExecution (Cancel) and follows the
//!   execution to its end; a second Ctrl-C stops following (the execution goes on in AWS).
//! - A run over targets (`Targets`, `TargetMaps`) is SSM's own: each child execution that
//!   ends is a target finished in the timeline, with the counts so far.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::decide::Decisions;
use super::{Config, Engine, Error, Finished, Request, Status};
use crate::actions::{Ask, Failure, Interrupt};
use crate::aws;
use crate::journal::{self, Attempt, EventKind, StepOutcome, StepRecord, WaitKind};
use crate::timeline::Timeline;

/// The quickest poll, while steps move.
const QUICKEST_POLL: Duration = Duration::from_millis(50);

/// How long a follower keeps trying to reach SSM before it gives up (the execution goes on;
/// `runbook run --resume ID` follows it again).
const RECONNECT_FOR: Duration = Duration::from_secs(300);

/// A run on SSM, as recorded with its execution (a resume follows the same one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    /// The document's name in SSM, and the version started (none: its default version).
    pub document: String,
    pub version: Option<String>,
    /// StartAutomationExecution's ClientToken: a start sent again finds the same execution.
    pub client_token: String,
    /// The target inputs of a run over targets, as the API takes them (`TargetParameterName`,
    /// `Targets` or `TargetMaps`, `MaxConcurrency`, `MaxErrors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Map<String, Value>>,
}

impl Remote {
    pub fn new(document: String, version: Option<String>, targets: Option<Map<String, Value>>) -> Remote {
        Remote { document, version, client_token: uuid::Uuid::new_v4().to_string(), targets }
    }
}

/// The run on SSM an execution is, from its record, if it is one.
pub fn recorded(journal: &dyn journal::JournalRead, execution_id: &str) -> Result<Option<Remote>, Error> {
    let events = journal.events(execution_id)?;
    let created = events.iter().find(|event| event.kind == EventKind::ExecutionCreated);
    let Some(value) = created.map(|event| event.detail["remote"].clone()).filter(|value| !value.is_null()) else {
        return Ok(None);
    };
    serde_json::from_value(value)
        .map(Some)
        .map_err(|error| Error::Journal(journal::Error::Corrupt(format!("the SSM run of {execution_id}: {error}"))))
}

/// The AutomationExecutionId recorded for an execution, once SSM answered its start.
pub fn automation_id(journal: &dyn journal::JournalRead, execution_id: &str) -> Result<Option<String>, Error> {
    Ok(journal
        .events(execution_id)?
        .iter()
        .find_map(|event| event.detail["automation_execution_id"].as_str().map(str::to_owned)))
}

/// Parameter values as StartAutomationExecution takes them: each a list of strings.
pub fn api_parameters(parameters: &Map<String, Value>) -> Map<String, Value> {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    parameters
        .iter()
        .map(|(name, value)| {
            let values: Vec<Value> = match value {
                Value::Array(items) => items.iter().map(|item| Value::String(text(item))).collect(),
                other => vec![Value::String(text(other))],
            };
            (name.clone(), Value::Array(values))
        })
        .collect()
}

/// Runs `request` on SSM as `remote` says, or follows the execution a resume names.
pub async fn run(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'_>,
    cancel: watch::Receiver<Interrupt>,
    remote: &Remote,
) -> Result<Finished, Error> {
    let started = tokio::time::Instant::now();
    let existing = match (&config.resume, &config.idempotency_key) {
        (Some(id), _) => Some(engine.journal.execution(id)?),
        (None, Some(key)) => engine.journal.find_by_key(key)?,
        (None, None) => None,
    };
    if let Some(execution) = existing.as_ref().filter(|execution| execution.status.is_terminal()) {
        let outputs = execution.outputs.clone().unwrap_or(Value::Null);
        let (execution_id, status) = (execution.id.clone(), execution.status);
        return Ok(Finished { execution_id, status, outputs, failed_steps: Vec::new(), duration_ms: 0 });
    }
    let execution_id = existing.as_ref().map_or_else(|| uuid::Uuid::new_v4().to_string(), |e| e.id.clone());
    let lease = engine.locks.acquire(&execution_id)?;
    let mut redactor = config.secrets.clone();
    let runbook = request.plan.runbook;
    redactor.extend(runbook.secret_values(request.parameters.iter().map(|(n, v)| (n.as_str(), v))));
    let timeline = Timeline::new(&execution_id, engine.journal, engine.observer, redactor);
    // The recorded run wins on a resume: the same document, token and targets.
    let remote = match &existing {
        Some(execution) => recorded(engine.journal, &execution.id)?.unwrap_or_else(|| remote.clone()),
        None => remote.clone(),
    };
    match &existing {
        Some(_) => timeline.resumed(&request.path.display().to_string(), None)?,
        None => {
            let execution = super::runner::new_execution(request, config, &execution_id);
            timeline.created(&execution, &json!({ "remote": remote }))?;
        }
    }
    let automation_id = match automation_id(engine.journal, &execution_id)? {
        Some(id) => id,
        None => start(request, config, &timeline, &remote).await?,
    };
    let mut follower = Follower {
        request,
        config,
        engine,
        timeline: &timeline,
        automation_id: &automation_id,
        steps: HashMap::new(),
        children: HashMap::new(),
        targets: remote.targets.is_some(),
        announced: false,
    };
    follower.restore()?;
    let result = follower.follow(cancel).await;
    let (status, outputs) = match result {
        Ok(ended) => ended,
        Err(error) => {
            lease.release(false);
            return Err(error);
        }
    };
    let failed_steps = follower.failed_steps();
    let duration_ms = started.elapsed().as_millis() as u64;
    let outputs = timeline.finished(status, &outputs, &failed_steps, duration_ms)?;
    engine.journal.flush()?;
    lease.release(status.is_terminal());
    Ok(Finished { execution_id, status, outputs, failed_steps, duration_ms })
}

/// Sends the start (the token makes a second send find the first execution), and records the
/// id SSM gives it.
async fn start(
    request: &Request<'_>,
    config: &Config,
    timeline: &Timeline<'_>,
    remote: &Remote,
) -> Result<String, Error> {
    let mut params = json!({
        "DocumentName": remote.document,
        "ClientToken": remote.client_token,
        "Parameters": api_parameters(&request.parameters),
    });
    if let Some(version) = &remote.version {
        params["DocumentVersion"] = json!(version);
    }
    if let Some(targets) = &remote.targets {
        for (name, value) in targets {
            params[name] = value.clone();
        }
    }
    let answer =
        with_reconnects(timeline, || config.aws.request("ssm", "StartAutomationExecution", params.clone())).await?;
    let Some(id) = answer["AutomationExecutionId"].as_str().filter(|id| !id.is_empty()) else {
        return Err(Error::Aws("StartAutomationExecution answered without an AutomationExecutionId".into()));
    };
    let region = config.aws.region().await.unwrap_or_default();
    let text = format!("started on SSM Automation as {id} ({} in {region})", remote.document);
    timeline.remote(&text, json!({ "automation_execution_id": id, "region": region }))?;
    Ok(id.to_owned())
}

/// Calls `call` until it answers, riding out a lost connection or throttling for up to
/// [`RECONNECT_FOR`] with backoff (said once in the timeline); other errors end the follow.
async fn with_reconnects<F, Fut>(timeline: &Timeline<'_>, mut call: F) -> Result<Value, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, aws::Error>>,
{
    let mut wait = Duration::from_millis(250);
    let mut lost_since: Option<tokio::time::Instant> = None;
    loop {
        match call().await {
            Ok(answer) => {
                if lost_since.is_some() {
                    timeline.remote("reached SSM again; following the same execution", json!({}))?;
                }
                return Ok(answer);
            }
            Err(error) if error.is_transient() => {
                let since = *lost_since.get_or_insert_with(|| {
                    let text = format!("lost SSM ({error}); trying again for up to {} s", RECONNECT_FOR.as_secs());
                    let _ = timeline.remote(&text, json!({}));
                    tokio::time::Instant::now()
                });
                if since.elapsed() > RECONNECT_FOR {
                    return Err(Error::Aws(format!(
                        "{error} (for {} s; the execution goes on in AWS: follow it again with runbook run --resume)",
                        RECONNECT_FOR.as_secs()
                    )));
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(error) => return Err(Error::Aws(error.to_string())),
        }
    }
}

/// One step execution as the timeline has it so far.
struct Seen {
    attempt: Attempt,
    finished: bool,
    started: tokio::time::Instant,
}

struct Follower<'f> {
    request: &'f Request<'f>,
    config: &'f Config,
    engine: &'f Engine<'f>,
    timeline: &'f Timeline<'f>,
    automation_id: &'f str,
    /// By step name and how many times it ran before (SSM lists step executions in the order
    /// they started), so a resumed follower knows the ones already in the timeline.
    steps: HashMap<String, Seen>,
    /// Children of a run over targets that ended, by id: their target.
    children: HashMap<String, String>,
    targets: bool,
    /// The run over targets was announced (once SSM resolved its targets).
    announced: bool,
}

/// What one poll found.
struct Observed {
    status: String,
    outputs: Value,
    failure: Option<String>,
    steps: Vec<Value>,
    children: Vec<Value>,
    target_count: usize,
}

impl Follower<'_> {
    /// What an earlier follower already put in the timeline is not put there again.
    fn restore(&mut self) -> Result<(), Error> {
        let execution_id = self.timeline.execution_id();
        let mut occurrences: HashMap<String, usize> = HashMap::new();
        for attempt in self.engine.journal.attempts(execution_id)? {
            let key = occurrence(&mut occurrences, &attempt.step);
            let finished = attempt.ended_at.is_some();
            let seen = Seen { attempt, finished, started: tokio::time::Instant::now() };
            self.steps.insert(key, seen);
        }
        for event in self.engine.journal.events(execution_id)? {
            self.announced |= event.kind == EventKind::Note && event.detail["targets"].is_u64();
            if event.kind == EventKind::ChildLinked
                && let (Some(child), Some(target)) =
                    (event.detail["child_id"].as_str(), event.detail["target"].as_str())
            {
                self.children.insert(child.to_owned(), target.to_owned());
            }
        }
        Ok(())
    }

    fn failed_steps(&self) -> Vec<String> {
        let mut failed: Vec<&Seen> =
            self.steps.values().filter(|seen| seen.finished && seen.attempt.status == Status::Failed).collect();
        failed.sort_by(|a, b| a.attempt.started_at.cmp(&b.attempt.started_at));
        failed.into_iter().map(|seen| seen.attempt.step.clone()).collect()
    }

    /// Polls until the execution ends (or waits, when nobody here may answer): its status and
    /// outputs.
    async fn follow(&mut self, mut cancel: watch::Receiver<Interrupt>) -> Result<(Status, Value), Error> {
        let slowest = self.config.poll_interval.max(QUICKEST_POLL);
        let mut wait = QUICKEST_POLL;
        let mut stop_sent = false;
        loop {
            if *cancel.borrow() >= Interrupt::Stop {
                let text = format!("stopped following; execution {} goes on in AWS", self.automation_id);
                self.timeline.remote(&text, json!({}))?;
                return Ok((Status::Interrupted, Value::Null));
            }
            if *cancel.borrow() >= Interrupt::Cancel && !stop_sent {
                stop_sent = true;
                self.timeline.cancel_requested()?;
                let params = json!({ "AutomationExecutionId": self.automation_id, "Type": "Cancel" });
                match self.config.aws.request("ssm", "StopAutomationExecution", params).await {
                    Ok(_) => {}
                    // It ended before the stop arrived: its end is what the next poll reads.
                    Err(error) if error.code() == Some("InvalidAutomationStatusUpdateException") => {}
                    Err(error) => return Err(Error::Aws(error.to_string())),
                }
            }
            let observed = self.observe().await?;
            let moved = self.apply(&observed)?;
            if let Some(status) = final_status(&observed.status) {
                let failure = observed.failure.filter(|_| status != Status::Success);
                if let Some(failure) = failure {
                    self.timeline.remote(&format!("SSM: {failure}"), json!({}))?;
                }
                return Ok((status, observed.outputs));
            }
            if !stop_sent && let Some(waiting) = self.waiting_step(&observed) {
                match self.answer(&waiting, &mut cancel).await? {
                    Some(status) => return Ok((status, Value::Null)),
                    None => {
                        wait = QUICKEST_POLL;
                        continue;
                    }
                }
            }
            wait = if moved { QUICKEST_POLL } else { (wait * 2).min(slowest) };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    async fn observe(&self) -> Result<Observed, Error> {
        let aws = &self.config.aws;
        let id = json!({ "AutomationExecutionId": self.automation_id });
        let answer =
            with_reconnects(self.timeline, || aws.request("ssm", "GetAutomationExecution", id.clone())).await?;
        let execution = &answer["AutomationExecution"];
        let mut steps = Vec::new();
        let mut params = id.clone();
        loop {
            let page = with_reconnects(self.timeline, || {
                aws.request("ssm", "DescribeAutomationStepExecutions", params.clone())
            })
            .await?;
            steps.extend(page["StepExecutions"].as_array().cloned().unwrap_or_default());
            match page["NextToken"].as_str().filter(|token| !token.is_empty()) {
                Some(token) => params["NextToken"] = json!(token),
                None => break,
            }
        }
        let mut children = Vec::new();
        if self.targets {
            let mut params = json!({ "Filters": [{ "Key": "ParentExecutionId", "Values": [self.automation_id] }] });
            loop {
                let page = with_reconnects(self.timeline, || {
                    aws.request("ssm", "DescribeAutomationExecutions", params.clone())
                })
                .await?;
                children.extend(page["AutomationExecutionMetadataList"].as_array().cloned().unwrap_or_default());
                match page["NextToken"].as_str().filter(|token| !token.is_empty()) {
                    Some(token) => params["NextToken"] = json!(token),
                    None => break,
                }
            }
        }
        let target_count = execution["ResolvedTargets"]["ParameterValues"].as_array().map_or(0, Vec::len);
        Ok(Observed {
            status: execution["AutomationExecutionStatus"].as_str().unwrap_or("Pending").to_owned(),
            outputs: document_outputs(&execution["Outputs"]),
            failure: execution["FailureMessage"].as_str().filter(|m| !m.is_empty()).map(str::to_owned),
            steps,
            children,
            target_count,
        })
    }

    /// Puts what moved since the last poll in the timeline; whether anything did.
    fn apply(&mut self, observed: &Observed) -> Result<bool, Error> {
        let mut moved = false;
        let mut occurrences: HashMap<String, usize> = HashMap::new();
        for step in &observed.steps {
            let status = step["StepStatus"].as_str().unwrap_or("Pending");
            if status == "Pending" {
                continue;
            }
            let key = occurrence(&mut occurrences, step["StepName"].as_str().unwrap_or_default());
            if !self.steps.contains_key(&key) {
                moved = true;
                let mut attempt = Attempt {
                    step: step["StepName"].as_str().unwrap_or_default().to_owned(),
                    iteration: 0,
                    attempt: 1,
                    action: step["Action"].as_str().unwrap_or_default().to_owned(),
                    status: Status::InProgress,
                    inputs: step_inputs(&step["Inputs"]),
                    outputs: None,
                    error: None,
                    log: None,
                    started_at: time(&step["ExecutionStartTime"]),
                    ended_at: None,
                };
                let max_attempts = step["MaxAttempts"].as_u64().unwrap_or(1).max(1) as u32;
                self.timeline.attempt_started(&mut attempt, max_attempts)?;
                let seen = Seen { attempt, finished: false, started: tokio::time::Instant::now() };
                self.steps.insert(key.clone(), seen);
            }
            let Some(seen) = self.steps.get_mut(&key) else { continue };
            let Some(status) = final_status(status) else { continue };
            if seen.finished {
                continue;
            }
            moved = true;
            seen.finished = true;
            seen.attempt.status = status;
            seen.attempt.ended_at = Some(time(&step["ExecutionEndTime"]));
            let error = step["FailureMessage"].as_str().filter(|m| !m.is_empty()).map(str::to_owned);
            let outcome = match status {
                Status::Success => StepOutcome::Succeeded,
                Status::TimedOut => StepOutcome::TimedOut,
                Status::Cancelled => StepOutcome::Cancelled,
                _ => StepOutcome::Failed,
            };
            let record = StepRecord {
                step: seen.attempt.step.clone(),
                iteration: 0,
                action: seen.attempt.action.clone(),
                status,
                outcome,
                outputs: step_outputs(&step["Outputs"]),
                effects: json!({}),
                error,
                attempts: 1,
                critical: step["IsCritical"].as_bool().unwrap_or(true),
                started_at: seen.attempt.started_at.clone(),
                ended_at: seen.attempt.ended_at.clone().unwrap_or_else(journal::now),
                sealed: Vec::new(),
            };
            let duration_ms = seen.started.elapsed().as_millis() as u64;
            let finished =
                crate::timeline::Finished { record, attempt: Some(&mut seen.attempt), log: None, duration_ms };
            self.timeline.step_finished(finished)?;
        }
        if self.targets && !self.announced && observed.target_count > 0 {
            self.announced = true;
            let total = observed.target_count;
            let text = format!("runs over {total} target{} on SSM", if total == 1 { "" } else { "s" });
            self.timeline.fan_out(&text, json!({ "targets": total }))?;
        }
        for child in &observed.children {
            let id = child["AutomationExecutionId"].as_str().unwrap_or_default();
            let Some(status) = child["AutomationExecutionStatus"].as_str().and_then(final_status) else { continue };
            if id.is_empty() || self.children.contains_key(id) {
                continue;
            }
            moved = true;
            let target = child["Target"].as_str().unwrap_or(id).to_owned();
            self.children.insert(id.to_owned(), target.clone());
            let error = child["FailureMessage"].as_str().filter(|m| !m.is_empty());
            let counts = self.counts(observed);
            self.timeline.target_finished(&target, id, status, error, &counts)?;
        }
        Ok(moved)
    }

    /// The counts of a run over targets so far, as a local one keeps them.
    fn counts(&self, observed: &Observed) -> super::fan_out::Scheduler {
        let ended = |wanted: bool| {
            observed
                .children
                .iter()
                .filter(|child| {
                    let id = child["AutomationExecutionId"].as_str().unwrap_or_default();
                    let status = child["AutomationExecutionStatus"].as_str().and_then(final_status);
                    self.children.contains_key(id) && status.is_some_and(|status| (status == Status::Success) == wanted)
                })
                .count()
        };
        let running = observed
            .children
            .iter()
            .filter(|child| child["AutomationExecutionStatus"].as_str().and_then(final_status).is_none())
            .count();
        let mut counts = super::fan_out::Scheduler::new(observed.target_count, Default::default());
        counts.launched = observed.children.len();
        counts.succeeded = ended(true);
        counts.failed = ended(false);
        counts.running = running;
        counts
    }

    /// The step SSM says waits for a signal, with what it waits for.
    fn waiting_step(&self, observed: &Observed) -> Option<(String, String)> {
        observed.steps.iter().find_map(|step| {
            (step["StepStatus"].as_str() == Some("Waiting")).then(|| {
                let name = step["StepName"].as_str().unwrap_or_default().to_owned();
                let action = step["Action"].as_str().unwrap_or_default().to_owned();
                (name, action)
            })
        })
    }

    /// Answers the waiting step as a local run would (a recorded decision, a pre-set answer,
    /// the prompt, a decision another process records) and sends the answer to SSM, while
    /// still watching SSM (someone may answer in the console). `Some(Waiting)`: nobody here
    /// may answer, so the follower stops with the execution waiting.
    async fn answer(
        &mut self,
        (step, action): &(String, String),
        cancel: &mut watch::Receiver<Interrupt>,
    ) -> Result<Option<Status>, Error> {
        let kind = crate::actions::lookup(action).and_then(|action| action.asks_person).unwrap_or(WaitKind::Approval);
        let Some(on) = self.request.plan.find(step).map(|id| self.request.plan.step(id)) else {
            return Err(Error::Aws(format!("SSM waits on step `{step}`, which the runbook here does not have")));
        };
        let message = on.inputs.get("Message").and_then(Value::as_str).map(str::to_owned);
        let ask = Ask { kind, message, approvers: on.inputs.get("Approvers").cloned().unwrap_or(Value::Null) };
        let decisions = Decisions::new(self.config, self.engine.prompt);
        let decided = tokio::select! {
            decided = decisions.decision_for(self.timeline, on, 0, ask) => decided,
            moved = self.until_not_waiting(step) => {
                moved?;
                return Ok(None);
            }
            _ = cancel.changed() => return Ok(None),
        };
        let decision = match decided {
            Ok(decision) => decision,
            Err(Failure::Waiting { kind, message, approvers }) => {
                let waiting = crate::timeline::Waiting {
                    step,
                    iteration: 0,
                    action,
                    kind,
                    message: message.as_deref(),
                    approvers: &approvers,
                };
                self.timeline.waiting(&waiting, true)?;
                return Ok(Some(Status::Waiting));
            }
            Err(failure) => return Err(Error::Decision(format!("{failure:?}"))),
        };
        signal(&self.config.aws, self.automation_id, kind, decision.decision, decision.comment.as_deref()).await?;
        Ok(None)
    }

    /// Returns once SSM no longer reports `step` waiting.
    async fn until_not_waiting(&self, step: &str) -> Result<(), Error> {
        let mut wait = QUICKEST_POLL;
        loop {
            tokio::time::sleep(wait).await;
            let params = json!({
                "AutomationExecutionId": self.automation_id,
                "Filters": [{ "Key": "StepName", "Values": [step] }],
            });
            let aws = &self.config.aws;
            let page = with_reconnects(self.timeline, || {
                aws.request("ssm", "DescribeAutomationStepExecutions", params.clone())
            })
            .await?;
            let still = page["StepExecutions"]
                .as_array()
                .is_some_and(|steps| steps.iter().any(|s| s["StepStatus"].as_str() == Some("Waiting")));
            if !still {
                return Ok(());
            }
            wait = (wait * 2).min(self.config.poll_interval.max(QUICKEST_POLL));
        }
    }
}

/// Sends a decision to SSM: Approve or Reject for `aws:approve`, Resume for `aws:pause` (a
/// rejected pause cancels the execution, as it ends a local run). A signal SSM no longer
/// waits for (answered elsewhere first) is no error.
pub async fn signal(
    client: &aws::Aws,
    automation_id: &str,
    kind: WaitKind,
    answer: journal::Answer,
    comment: Option<&str>,
) -> Result<(), Error> {
    let (api, mut params) = match (kind, answer) {
        (WaitKind::Pause, journal::Answer::Reject) => {
            ("StopAutomationExecution", json!({ "AutomationExecutionId": automation_id, "Type": "Cancel" }))
        }
        (_, answer) => {
            let signal = match answer {
                journal::Answer::Approve => "Approve",
                journal::Answer::Reject => "Reject",
                journal::Answer::Resume => "Resume",
            };
            ("SendAutomationSignal", json!({ "AutomationExecutionId": automation_id, "SignalType": signal }))
        }
    };
    if let Some(comment) = comment
        && api == "SendAutomationSignal"
    {
        params["Payload"] = json!({ "Comment": [comment] });
    }
    match client.request("ssm", api, params).await {
        Ok(_) => Ok(()),
        Err(error)
            if matches!(
                error.code(),
                Some("InvalidAutomationSignalException" | "InvalidAutomationStatusUpdateException")
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(Error::Aws(error.to_string())),
    }
}

/// A time SSM reports, as the journal writes times; now, where SSM gives none.
fn time(ssm: &Value) -> String {
    ssm.as_str().and_then(journal::time_of).unwrap_or_else(journal::now)
}

/// `NAME#N`: the Nth run of step NAME.
fn occurrence(seen: &mut HashMap<String, usize>, step: &str) -> String {
    let count = seen.entry(step.to_owned()).or_default();
    *count += 1;
    format!("{step}#{count}")
}

/// The local status for SSM's status of an execution or a step; `None` while it is not over.
fn final_status(ssm: &str) -> Option<Status> {
    match ssm {
        "Success" | "CompletedWithSuccess" => Some(Status::Success),
        "Failed" | "CompletedWithFailure" | "Rejected" | "ChangeCalendarOverrideRejected" => Some(Status::Failed),
        "TimedOut" => Some(Status::TimedOut),
        "Cancelled" => Some(Status::Cancelled),
        "Exited" => Some(Status::Exited),
        _ => None,
    }
}

/// A step's inputs: SSM gives each as JSON text.
fn step_inputs(inputs: &Value) -> Value {
    let Value::Object(inputs) = inputs else { return json!({}) };
    let parsed = inputs.iter().map(|(name, value)| {
        let value = match value.as_str().map(serde_json::from_str::<Value>) {
            Some(Ok(parsed)) => parsed,
            _ => value.clone(),
        };
        (name.clone(), value)
    });
    Value::Object(parsed.collect())
}

/// A step's outputs: each a list of strings; one value stands for itself.
fn step_outputs(outputs: &Value) -> Value {
    let Value::Object(outputs) = outputs else { return json!({}) };
    let single = outputs.iter().map(|(name, values)| {
        let value = match values.as_array().map(Vec::as_slice) {
            Some([one]) => one.clone(),
            _ => values.clone(),
        };
        (name.clone(), value)
    });
    Value::Object(single.collect())
}

/// The document's outputs as SSM reports them (`step.Output` -> list of strings).
fn document_outputs(outputs: &Value) -> Value {
    match outputs {
        Value::Object(outputs) => Value::Object(outputs.clone()),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_go_to_ssm_as_lists_of_strings() {
        let typed = json!({"Id": "i-1", "Ids": ["a", "b"], "Count": 3, "Force": true, "Tags": {"k": "v"}});
        let api = api_parameters(typed.as_object().unwrap());
        assert_eq!(
            Value::Object(api),
            json!({"Id": ["i-1"], "Ids": ["a", "b"], "Count": ["3"], "Force": ["true"], "Tags": ["{\"k\":\"v\"}"]})
        );
    }

    #[test]
    fn ssm_statuses_map_to_the_local_ones() {
        assert_eq!(final_status("CompletedWithSuccess"), Some(Status::Success));
        assert_eq!(final_status("Rejected"), Some(Status::Failed));
        assert_eq!(final_status("Cancelling"), None);
        assert_eq!(final_status("Waiting"), None);
        assert_eq!(
            step_inputs(&json!({"Duration": "\"PT1S\"", "Count": "3"})),
            json!({"Duration": "PT1S", "Count": 3})
        );
        assert_eq!(step_outputs(&json!({"Id": ["x"], "Ids": ["a", "b"]})), json!({"Id": "x", "Ids": ["a", "b"]}));
    }
}
