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
    super::created_as(journal, execution_id, "remote", "the SSM run")
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
    let existing = super::runner::existing(config, engine.journal)?;
    let (execution_id, lease) = match &existing {
        Some(execution) => (execution.id.clone(), super::runner::lease_for(engine, config, execution)?),
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            let lease = engine.locks.acquire(&id)?;
            (id, lease)
        }
    };
    // Read again under the lease: another follower may have ended it meanwhile.
    let existing = match existing {
        Some(execution) => Some(engine.journal.execution(&execution.id)?),
        None => None,
    };
    if let Some(execution) = existing.as_ref().filter(|execution| execution.status.is_terminal()) {
        return Ok(Finished::recorded(execution));
    }
    // The recorded run wins on a resume: the same document, token and targets. An execution
    // that ran here is not followed on SSM.
    let remote = match &existing {
        Some(execution) => recorded(engine.journal, &execution.id)?.ok_or_else(|| {
            Error::Remote(format!("execution {} ran here, not on SSM: resume it without --on ssm", execution.id))
        })?,
        None => remote.clone(),
    };
    let mut redactor = config.secrets.clone();
    let runbook = request.plan.runbook;
    redactor.extend(runbook.secret_values(request.parameters.iter().map(|(n, v)| (n.as_str(), v))));
    let timeline = Timeline::new(&execution_id, engine.journal, engine.observer, redactor);
    match &existing {
        Some(_) => timeline.resumed(&request.path.display().to_string(), None)?,
        None => {
            let execution = super::runner::new_execution(request, config, &execution_id);
            timeline.created(&execution, &json!({ "remote": remote }))?;
        }
    }
    let mut ssm = Ssm { aws: &config.aws, timeline: &timeline, cancel, handled: Interrupt::None };
    let automation_id = match automation_id(engine.journal, &execution_id)? {
        Some(id) => Some(id),
        None => start(request, &mut ssm, &remote).await?,
    };
    let ended = match &automation_id {
        Some(automation_id) => {
            let mut follower = Follower::new(request, config, engine, &timeline, automation_id, &remote);
            follower.restore()?;
            follower.follow(&mut ssm).await.map(|ended| (ended, follower.failed_steps()))
        }
        // Interrupted before SSM answered the start.
        None => Ok((Ended::StoppedFollowing, Vec::new())),
    };
    let (ended, failed_steps) = match ended {
        Ok(ended) => ended,
        Err(error) => {
            lease.release(false);
            return Err(error);
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let followed_to_end = matches!(ended, Ended::Status(..));
    let (status, outputs) = match ended {
        Ended::Status(status, outputs) => (status, timeline.finished(status, &outputs, &failed_steps, duration_ms)?),
        // The execution goes on in AWS (being cancelled): the record stays resumable, and
        // the exit status says it was cancelled here.
        Ended::StoppedFollowing => {
            let text = match &automation_id {
                Some(id) => format!("stopped following; execution {id} goes on in AWS until it is cancelled"),
                None => "stopped before SSM answered the start; `runbook run --resume` follows it if it started \
                         (the same token starts nothing new)"
                    .to_owned(),
            };
            timeline.remote(&text, json!({}))?;
            timeline.stopped(&text)?;
            (Status::Cancelled, Value::Null)
        }
    };
    engine.journal.flush()?;
    lease.release(status.is_terminal() && followed_to_end);
    Ok(Finished { execution_id, status, outputs, failed_steps, duration_ms })
}

/// How following ended.
enum Ended {
    /// The execution ended in SSM, or waits for a person nobody here may be: its status and
    /// outputs.
    Status(Status, Value),
    /// A second Ctrl-C: this process stops following; the execution goes on in AWS.
    StoppedFollowing,
}

/// Sends the start (the token makes a second send find the first execution), and records the
/// id SSM gives it; `None` when interrupted before SSM answered.
async fn start(request: &Request<'_>, ssm: &mut Ssm<'_>, remote: &Remote) -> Result<Option<String>, Error> {
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
    let Some(answer) = ssm.call("StartAutomationExecution", &params).await? else { return Ok(None) };
    let Some(id) = answer["AutomationExecutionId"].as_str().filter(|id| !id.is_empty()) else {
        return Err(Error::Remote("StartAutomationExecution answered without an AutomationExecutionId".into()));
    };
    let region = ssm.aws.region().await.unwrap_or_default();
    let text = format!("started on SSM Automation as {id} ({} in {region})", remote.document);
    ssm.timeline.remote(&text, json!({ "automation_execution_id": id, "region": region }))?;
    Ok(Some(id.to_owned()))
}

/// SSM's API as a follower calls it: every call rides out a lost connection or throttling
/// for up to [`RECONNECT_FOR`] with backoff (said in the timeline), and gives way (`None`)
/// as soon as an interrupt beyond the one already handled arrives.
struct Ssm<'f> {
    aws: &'f aws::Aws,
    timeline: &'f Timeline<'f>,
    cancel: watch::Receiver<Interrupt>,
    /// The interrupt already acted on (a cancel once the stop is sent).
    handled: Interrupt,
}

impl Ssm<'_> {
    fn interrupted(&self) -> bool {
        *self.cancel.borrow() > self.handled
    }

    async fn call(&mut self, api: &str, params: &Value) -> Result<Option<Value>, Error> {
        let mut wait = Duration::from_millis(250);
        let mut lost_since: Option<tokio::time::Instant> = None;
        loop {
            if self.interrupted() {
                return Ok(None);
            }
            match self.aws.request("ssm", api, params.clone()).await {
                Ok(answer) => {
                    if lost_since.is_some() {
                        self.timeline.remote("reached SSM again; following the same execution", json!({}))?;
                    }
                    return Ok(Some(answer));
                }
                Err(error) if error.is_transient() => {
                    let since = match lost_since {
                        Some(since) => since,
                        None => {
                            let text =
                                format!("lost SSM ({error}); trying again for up to {} s", RECONNECT_FOR.as_secs());
                            self.timeline.remote(&text, json!({}))?;
                            *lost_since.insert(tokio::time::Instant::now())
                        }
                    };
                    if since.elapsed() > RECONNECT_FOR {
                        return Err(Error::Aws(format!(
                            "{error} (for {} s; the execution goes on in AWS: follow it again with `runbook run \
                             --resume`)",
                            RECONNECT_FOR.as_secs()
                        )));
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = self.cancel.changed() => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(error) => return Err(Error::Aws(error.to_string())),
            }
        }
    }

    /// Every page of a listing: the items under `field` of each.
    async fn pages(&mut self, api: &str, params: Value, field: &str) -> Result<Option<Vec<Value>>, Error> {
        let mut params = params;
        let mut items = Vec::new();
        loop {
            let Some(page) = self.call(api, &params).await? else { return Ok(None) };
            items.extend(page[field].as_array().cloned().unwrap_or_default());
            match page["NextToken"].as_str().filter(|token| !token.is_empty()) {
                Some(token) => params["NextToken"] = json!(token),
                None => return Ok(Some(items)),
            }
        }
    }

    /// Waits `wait`, or less if an interrupt arrives.
    async fn pause(&mut self, wait: Duration) {
        if self.interrupted() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = self.cancel.changed() => {}
        }
    }
}

/// One step execution as the timeline has it so far.
struct Seen {
    attempt: Attempt,
    finished: bool,
    started: tokio::time::Instant,
}

/// Puts what SSM reports of one execution into its timeline, poll by poll.
struct Follower<'f> {
    request: &'f Request<'f>,
    config: &'f Config,
    engine: &'f Engine<'f>,
    timeline: &'f Timeline<'f>,
    automation_id: &'f str,
    /// By step name and visit (SSM lists step executions in the order they started), so a
    /// resumed follower knows the ones already in the timeline.
    steps: HashMap<(String, u32), Seen>,
    /// The step visits whose wait was answered from here: not answered twice.
    signalled: std::collections::HashSet<(String, u32)>,
    /// Children of a run over targets that ended, by id: their target.
    children: HashMap<String, String>,
    /// How many targets the run was started over, as far as the start says (SSM resolves
    /// tags itself, and may truncate the list it reports).
    targets: Option<usize>,
    /// The run over targets was announced (once its count is known).
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

/// A step SSM reports waiting for a signal.
struct WaitingStep {
    name: String,
    iteration: u32,
    action: String,
}

impl<'f> Follower<'f> {
    fn new(
        request: &'f Request<'f>,
        config: &'f Config,
        engine: &'f Engine<'f>,
        timeline: &'f Timeline<'f>,
        automation_id: &'f str,
        remote: &Remote,
    ) -> Follower<'f> {
        let targets = remote.targets.as_ref().map(|targets| match targets.get("TargetMaps") {
            Some(Value::Array(maps)) => maps.len(),
            _ => targets["Targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|key| key["Key"] == "ParameterValues")
                .map(|key| key["Values"].as_array().map_or(0, Vec::len))
                .sum(),
        });
        Follower {
            request,
            config,
            engine,
            timeline,
            automation_id,
            steps: HashMap::new(),
            signalled: std::collections::HashSet::new(),
            children: HashMap::new(),
            targets,
            announced: false,
        }
    }

    /// What an earlier follower already put in the timeline is not put there again.
    fn restore(&mut self) -> Result<(), Error> {
        let execution_id = self.timeline.execution_id();
        for attempt in self.engine.journal.attempts(execution_id)? {
            let finished = attempt.ended_at.is_some();
            let key = (attempt.step.clone(), attempt.iteration);
            self.steps.insert(key, Seen { attempt, finished, started: tokio::time::Instant::now() });
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

    /// The steps that failed, in the order they started.
    fn failed_steps(&self) -> Vec<String> {
        let mut failed: Vec<&Seen> =
            self.steps.values().filter(|seen| seen.finished && seen.attempt.status == Status::Failed).collect();
        failed.sort_by(|a, b| a.attempt.started_at.cmp(&b.attempt.started_at));
        failed.into_iter().map(|seen| seen.attempt.step.clone()).collect()
    }

    /// The visit of a step SSM reports for the `occurrence`th time: numbered as a local run
    /// numbers it (1, 2, ... in a loop's body; 0, then 1, ... for a step run again elsewhere).
    fn iteration(&self, step: &str, occurrence: u32) -> u32 {
        let in_loop = self.request.plan.find(step).is_some_and(|id| self.request.plan.node(id).parent.is_some());
        if in_loop { occurrence } else { occurrence - 1 }
    }

    /// Polls until the execution ends (or waits, when nobody here may answer), or until a
    /// second Ctrl-C.
    async fn follow(&mut self, ssm: &mut Ssm<'_>) -> Result<Ended, Error> {
        let slowest = self.config.poll_interval.max(QUICKEST_POLL);
        let mut wait = QUICKEST_POLL;
        loop {
            let interrupt = *ssm.cancel.borrow();
            if interrupt >= Interrupt::Stop {
                return Ok(Ended::StoppedFollowing);
            }
            if interrupt >= Interrupt::Cancel && ssm.handled < Interrupt::Cancel {
                ssm.handled = Interrupt::Cancel;
                self.timeline.cancel_requested()?;
                let params = json!({ "AutomationExecutionId": self.automation_id, "Type": "Cancel" });
                match self.config.aws.request("ssm", "StopAutomationExecution", params.clone()).await {
                    Ok(_) => {}
                    // It ended before the stop arrived: its end is what the next poll reads.
                    Err(error) if error.code() == Some("InvalidAutomationStatusUpdateException") => {}
                    Err(error) if error.is_transient() => {
                        if ssm.call("StopAutomationExecution", &params).await?.is_none() {
                            continue;
                        }
                    }
                    Err(error) => return Err(Error::Aws(error.to_string())),
                }
            }
            let Some(observed) = self.observe(ssm).await? else { continue };
            let moved = self.apply(&observed)?;
            if let Some(status) = final_status(&observed.status) {
                let failure = observed.failure.filter(|_| status != Status::Success);
                if let Some(failure) = failure {
                    self.timeline.remote(&format!("SSM: {failure}"), json!({}))?;
                }
                return Ok(Ended::Status(status, observed.outputs));
            }
            if ssm.handled < Interrupt::Cancel
                && let Some(waiting) = self.waiting_step(&observed)
                && !self.signalled.contains(&(waiting.name.clone(), waiting.iteration))
            {
                if let Some(status) = self.answer(&waiting, ssm).await? {
                    return Ok(Ended::Status(status, Value::Null));
                }
                wait = QUICKEST_POLL;
                continue;
            }
            wait = if moved { QUICKEST_POLL } else { (wait * 2).min(slowest) };
            ssm.pause(wait).await;
        }
    }

    /// One poll: the execution, every page of its steps, and over targets its children.
    async fn observe(&self, ssm: &mut Ssm<'_>) -> Result<Option<Observed>, Error> {
        let id = json!({ "AutomationExecutionId": self.automation_id });
        let Some(answer) = ssm.call("GetAutomationExecution", &id).await? else { return Ok(None) };
        let execution = &answer["AutomationExecution"];
        let Some(steps) = ssm.pages("DescribeAutomationStepExecutions", id.clone(), "StepExecutions").await? else {
            return Ok(None);
        };
        let mut children = Vec::new();
        if self.targets.is_some() {
            let params = json!({ "Filters": [{ "Key": "ParentExecutionId", "Values": [self.automation_id] }] });
            let Some(listed) =
                ssm.pages("DescribeAutomationExecutions", params, "AutomationExecutionMetadataList").await?
            else {
                return Ok(None);
            };
            children = listed;
        }
        let resolved = &execution["ResolvedTargets"];
        let reported = resolved["ParameterValues"].as_array().map_or(0, Vec::len);
        // A truncated or empty report (target maps) counts less than the start asked for.
        let target_count = match resolved["Truncated"].as_bool() {
            Some(true) => reported.max(self.targets.unwrap_or(0)),
            _ if reported == 0 => self.targets.unwrap_or(0),
            _ => reported,
        };
        Ok(Some(Observed {
            status: execution["AutomationExecutionStatus"].as_str().unwrap_or("Pending").to_owned(),
            outputs: document_outputs(&execution["Outputs"]),
            failure: execution["FailureMessage"].as_str().filter(|m| !m.is_empty()).map(str::to_owned),
            steps,
            children,
            target_count,
        }))
    }

    /// Puts what moved since the last poll in the timeline; whether anything did.
    fn apply(&mut self, observed: &Observed) -> Result<bool, Error> {
        let mut moved = false;
        let mut occurrences: HashMap<String, u32> = HashMap::new();
        for step in &observed.steps {
            let name = step["StepName"].as_str().unwrap_or_default();
            let occurrence = occurrences.entry(name.to_owned()).or_default();
            *occurrence += 1;
            let status = step["StepStatus"].as_str().unwrap_or("Pending");
            if status == "Pending" {
                continue;
            }
            let key = (name.to_owned(), self.iteration(name, *occurrence));
            if !self.steps.contains_key(&key) {
                moved = true;
                self.started(step, key.clone())?;
            }
            let Some(status) = final_status(status) else { continue };
            let Some(seen) = self.steps.get_mut(&key).filter(|seen| !seen.finished) else { continue };
            moved = true;
            seen.finished = true;
            seen.attempt.status = status;
            seen.attempt.ended_at = Some(time(&step["ExecutionEndTime"]));
            let record = step_record(step, &seen.attempt, status);
            let duration_ms = seen.started.elapsed().as_millis() as u64;
            let finished =
                crate::timeline::Finished { record, attempt: Some(&mut seen.attempt), log: None, duration_ms };
            self.timeline.step_finished(finished)?;
        }
        moved |= self.children_ended(observed)?;
        Ok(moved)
    }

    /// A step SSM started: an attempt started in the timeline.
    fn started(&mut self, step: &Value, (name, iteration): (String, u32)) -> Result<(), Error> {
        let mut attempt = Attempt {
            step: name.clone(),
            iteration,
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
        self.steps.insert((name, iteration), seen);
        Ok(())
    }

    /// Over targets: the run announced once its count is known, and each child that ended a
    /// target finished in the timeline. Whether anything moved.
    fn children_ended(&mut self, observed: &Observed) -> Result<bool, Error> {
        let mut moved = false;
        if self.targets.is_some() && !self.announced && observed.target_count > 0 {
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
        let status_of = |child: &Value| child["AutomationExecutionStatus"].as_str().and_then(final_status);
        let ended = |wanted: bool| {
            observed
                .children
                .iter()
                .filter(|child| {
                    let id = child["AutomationExecutionId"].as_str().unwrap_or_default();
                    self.children.contains_key(id) && status_of(child).is_some_and(|s| (s == Status::Success) == wanted)
                })
                .count()
        };
        let mut counts = super::fan_out::Scheduler::new(observed.target_count, Default::default());
        counts.launched = observed.children.len();
        counts.succeeded = ended(true);
        counts.failed = ended(false);
        counts.running = observed.children.iter().filter(|child| status_of(child).is_none()).count();
        counts
    }

    /// The step visit SSM says waits for a signal.
    fn waiting_step(&self, observed: &Observed) -> Option<WaitingStep> {
        let mut occurrences: HashMap<&str, u32> = HashMap::new();
        observed.steps.iter().find_map(|step| {
            let name = step["StepName"].as_str().unwrap_or_default();
            let occurrence = occurrences.entry(name).or_default();
            *occurrence += 1;
            (step["StepStatus"].as_str() == Some("Waiting")).then(|| WaitingStep {
                name: name.to_owned(),
                iteration: self.iteration(name, *occurrence),
                action: step["Action"].as_str().unwrap_or_default().to_owned(),
            })
        })
    }

    /// Answers the waiting step as a local run would (a recorded decision, a pre-set answer,
    /// the prompt, a decision another process records) and sends the answer to SSM, while
    /// still watching SSM (someone may answer in the console). `Some(Waiting)`: nobody here
    /// may answer, so the follower stops with the execution waiting.
    async fn answer(&mut self, waiting: &WaitingStep, ssm: &mut Ssm<'_>) -> Result<Option<Status>, Error> {
        let WaitingStep { name, iteration, action } = waiting;
        let kind = crate::actions::lookup(action).and_then(|action| action.asks_person).unwrap_or(WaitKind::Approval);
        let Some(on) = self.request.plan.find(name).map(|id| self.request.plan.step(id)) else {
            return Err(Error::Remote(format!("SSM waits on step `{name}`, which the runbook here does not have")));
        };
        let message = on.inputs.get("Message").and_then(Value::as_str).map(str::to_owned);
        let ask = Ask { kind, message, approvers: on.inputs.get("Approvers").cloned().unwrap_or(Value::Null) };
        let decisions = Decisions::new(self.config, self.engine.prompt);
        let decided = tokio::select! {
            decided = decisions.decision_for(self.timeline, on, *iteration, ask) => decided,
            answered = self.until_not_waiting(name, ssm) => {
                answered?;
                // Answered elsewhere (the console), or interrupted: the wait is over here.
                self.timeline.running_again()?;
                return Ok(None);
            }
        };
        let decision = match decided {
            Ok(decision) => decision,
            Err(Failure::Waiting { kind, message, approvers }) => {
                let waiting = crate::timeline::Waiting {
                    step: name,
                    iteration: *iteration,
                    action,
                    kind,
                    message: message.as_deref(),
                    approvers: &approvers,
                };
                self.timeline.waiting(&waiting, true)?;
                return Ok(Some(Status::Waiting));
            }
            Err(Failure::Error { message, .. }) => return Err(Error::Decision(message)),
            Err(Failure::Cancelled) => return Ok(None),
        };
        signal(&self.config.aws, self.automation_id, kind, decision.decision, decision.comment.as_deref()).await?;
        // SSM may keep the step waiting (more approvers needed): it is not answered again.
        self.signalled.insert((name.clone(), *iteration));
        Ok(None)
    }

    /// Returns once SSM no longer reports `step` waiting, or an interrupt arrives.
    async fn until_not_waiting(&self, step: &str, ssm: &mut Ssm<'_>) -> Result<(), Error> {
        let mut wait = QUICKEST_POLL;
        loop {
            ssm.pause(wait).await;
            let params = json!({
                "AutomationExecutionId": self.automation_id,
                "Filters": [{ "Key": "StepName", "Values": [step] }],
            });
            let Some(steps) = ssm.pages("DescribeAutomationStepExecutions", params, "StepExecutions").await? else {
                return Ok(());
            };
            if !steps.iter().any(|s| s["StepStatus"].as_str() == Some("Waiting")) {
                return Ok(());
            }
            wait = (wait * 2).min(self.config.poll_interval.max(QUICKEST_POLL));
        }
    }
}

/// A step record from what SSM reports of a step that ended.
fn step_record(step: &Value, attempt: &Attempt, status: Status) -> StepRecord {
    let outcome = match status {
        Status::Success => StepOutcome::Succeeded,
        Status::TimedOut => StepOutcome::TimedOut,
        Status::Cancelled => StepOutcome::Cancelled,
        _ => StepOutcome::Failed,
    };
    StepRecord {
        step: attempt.step.clone(),
        iteration: attempt.iteration,
        action: attempt.action.clone(),
        status,
        outcome,
        outputs: step_outputs(&step["Outputs"]),
        effects: json!({}),
        error: step["FailureMessage"].as_str().filter(|m| !m.is_empty()).map(str::to_owned),
        attempts: 1,
        critical: step["IsCritical"].as_bool().unwrap_or(true),
        started_at: attempt.started_at.clone(),
        ended_at: attempt.ended_at.clone().unwrap_or_else(journal::now),
        sealed: Vec::new(),
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

/// The local status for SSM's status of an execution or a step; `None` while it is not over.
fn final_status(ssm: &str) -> Option<Status> {
    match ssm {
        "Success" | "CompletedWithSuccess" => Some(Status::Success),
        "Failed" | "CompletedWithFailure" | "Rejected" | "ChangeCalendarOverrideRejected" => Some(Status::Failed),
        "TimedOut" => Some(Status::TimedOut),
        "Cancelled" => Some(Status::Cancelled),
        // SSM ended it early (a Change Calendar closed, say): not a success.
        "Exited" => Some(Status::Failed),
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
