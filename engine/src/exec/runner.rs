//! The walk: from the entry step, visit a step (render its inputs, run its attempts with
//! timeouts, select its outputs), ask the plan for the successor, repeat until the run ends.
//! Loops walk their bodies once per iteration. Every attempt is journaled before and after it
//! runs; a resume replays what the journal holds instead of running it again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::outputs;
use super::scope::{Redactor, RunScope};
use super::{Config, Error, Event, Finished, Observer, Request, Status};
use crate::actions::{self, Context, Failure, loop_};
use crate::document::model::{Step, lenient_bool};
use crate::journal::{self, Journal, StepRecord};
use crate::plan::{Next, Outcome, Plan, StepId};
use crate::template;

/// Cancellation paths (`onCancel: step:X`) get this long (reference 4.2, 8.4).
const CANCEL_PATH_LIMIT: Duration = Duration::from_secs(120);

/// Runs a planned runbook (or resumes an execution) to its end, or until it waits for a
/// person. `cancel` turning true is Ctrl-C.
pub async fn run(
    request: &Request<'_>,
    config: &Config,
    journal: &Journal,
    observer: &dyn Observer,
    cancel: watch::Receiver<bool>,
) -> Result<Finished, Error> {
    let runbook = request.plan.runbook;
    let (system, ssm_secrets) =
        super::scope::resolve_system(request.plan, &request.parameters, &config.system, &config.aws)
            .await
            .map_err(Error::Aws)?;
    let mut secrets: Vec<Value> = runbook
        .parameters
        .iter()
        .filter(|parameter| parameter.secret)
        .filter_map(|parameter| request.parameters.get(&parameter.name).cloned())
        .collect();
    secrets.extend(ssm_secrets);
    let redactor = Redactor::new(secrets);

    // Which execution: the one to resume, the one with this idempotency key, or a new one.
    let existing = match (&config.resume, &config.idempotency_key) {
        (Some(id), _) => Some(journal.execution(id)?),
        (None, Some(key)) => journal.find_by_key(key)?,
        (None, None) => None,
    };
    let resumed = existing.is_some();
    let execution_id = match &existing {
        Some(execution) => {
            if execution.dry_run {
                return Err(Error::DryRunRecord { execution_id: execution.id.clone() });
            }
            if execution.runbook_hash != request.hash && !config.force {
                return Err(Error::RunbookChanged {
                    execution_id: execution.id.clone(),
                    recorded: execution.runbook_hash.clone(),
                    now: request.hash.clone(),
                });
            }
            execution.id.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let _lock = journal.lock(&execution_id)?;
    let started = Instant::now();

    if let Some(execution) = &existing {
        // A finished success has nothing left to do: its record is the answer.
        if execution.status == Status::Success.as_str() {
            let finished = Finished {
                execution_id: execution_id.clone(),
                status: Status::Success,
                outputs: execution.outputs.clone().unwrap_or(Value::Null),
                failed_steps: Vec::new(),
                duration_ms: 0,
            };
            observer.event(&Event::ExecutionFinished {
                execution_id: execution_id.clone(),
                status: Status::Success,
                duration_ms: 0,
                outputs: finished.outputs.clone(),
                failed_steps: Vec::new(),
            });
            return Ok(finished);
        }
        journal.set_status(&execution_id, Status::InProgress.as_str(), false, None, None)?;
    } else {
        let parameters: Map<String, Value> = request
            .parameters
            .iter()
            .map(|(name, value)| {
                let secret = runbook.parameter(name).is_some_and(|parameter| parameter.secret);
                let stored = if secret { Value::String(super::REDACTED.to_owned()) } else { redactor.value(value) };
                (name.clone(), stored)
            })
            .collect();
        journal.create_execution(&journal::Execution {
            id: execution_id.clone(),
            runbook_path: request.path.display().to_string(),
            runbook_hash: request.hash.clone(),
            parameters: Value::Object(parameters),
            status: Status::InProgress.as_str().to_owned(),
            started_at: journal::now(),
            ended_at: None,
            idempotency_key: config.idempotency_key.clone(),
            parent_id: config.parent.as_ref().map(|(id, _)| id.clone()),
            parent_step: config.parent.as_ref().map(|(_, step)| step.clone()),
            dry_run: false,
            outputs: None,
            error: None,
        })?;
    }
    observer.event(&Event::ExecutionStarted {
        execution_id: execution_id.clone(),
        runbook: request.path.display().to_string(),
        resumed,
        parent_id: config.parent.as_ref().map(|(id, _)| id.clone()),
    });

    // What the journal knows from earlier runs of this execution.
    let mut replay = HashMap::new();
    let mut open_attempts = HashMap::new();
    let mut attempt_numbers: HashMap<(String, u32), u32> = HashMap::new();
    if resumed {
        for record in journal.steps(&execution_id)? {
            replay.insert((record.step.clone(), record.iteration), record);
        }
        for attempt in journal.attempts(&execution_id)? {
            let key = (attempt.step.clone(), attempt.iteration);
            let number = attempt_numbers.entry(key.clone()).or_default();
            *number = (*number).max(attempt.attempt);
            if attempt.ended_at.is_none() {
                open_attempts.insert(key, attempt);
            } else {
                open_attempts.remove(&key);
            }
        }
    }

    let scope = RunScope {
        execution_id: execution_id.clone(),
        parameters: bound_parameters(request, &system, &execution_id),
        outputs: HashMap::new(),
        variables: runbook
            .variables
            .iter()
            .map(|variable| (variable.name.clone(), variable.default.clone().unwrap_or(Value::Null)))
            .collect(),
        system,
    };
    let assume_role = runbook
        .assume_role
        .as_ref()
        .and_then(|role| {
            template::render::render(&Value::String(role.clone()), &scope, template::config_for(runbook)).ok()
        })
        .and_then(|rendered| rendered.value.as_str().map(str::to_owned))
        .filter(|role| !role.trim().is_empty() && !template::has_braces(role));
    let mut runner = Runner {
        plan: request.plan,
        request,
        journal,
        observer,
        config,
        execution_id: execution_id.clone(),
        scope,
        redactor,
        assume_role,
        replay,
        open_attempts,
        attempt_numbers,
        cancel,
        cancelling: None,
        critical_failure: None,
        failed_steps: Vec::new(),
    };

    let end = match request.plan.entry() {
        Some(entry) => runner.walk(entry, 0, None).await,
        None => Ok(End::Completed),
    };
    let end = match end {
        Ok(end) => end,
        Err(Halt::Waiting) => {
            journal.set_status(&execution_id, Status::Waiting.as_str(), false, None, None)?;
            return Ok(Finished {
                execution_id,
                status: Status::Waiting,
                outputs: Value::Null,
                failed_steps: runner.failed_steps,
                duration_ms: started.elapsed().as_millis() as u64,
            });
        }
        Err(Halt::Error(error)) => {
            let message = error.to_string();
            // The execution stays resumable (still InProgress); record why this process
            // stopped driving it.
            let _ = journal.set_status(&execution_id, Status::InProgress.as_str(), false, None, Some(&message));
            return Err(error);
        }
    };
    let status = match end {
        End::Cancelled => Status::Cancelled,
        End::Aborted { timed_out: true } => Status::TimedOut,
        End::Aborted { timed_out: false } => Status::Failed,
        End::Completed | End::ExitTo(_) => match runner.critical_failure {
            Some(Status::TimedOut) => Status::TimedOut,
            Some(_) => Status::Failed,
            None => Status::Success,
        },
    };
    let outputs = runner.document_outputs();
    let error = (!runner.failed_steps.is_empty()).then(|| format!("failed steps: {}", runner.failed_steps.join(", ")));
    journal.set_status(&execution_id, status.as_str(), true, Some(&outputs), error.as_deref())?;
    let duration_ms = started.elapsed().as_millis() as u64;
    observer.event(&Event::ExecutionFinished {
        execution_id: execution_id.clone(),
        status,
        duration_ms,
        outputs: outputs.clone(),
        failed_steps: runner.failed_steps.clone(),
    });
    Ok(Finished { execution_id, status, outputs, failed_steps: runner.failed_steps, duration_ms })
}

/// Parameters with defaults rendered now that system values are known.
fn bound_parameters(request: &Request<'_>, system: &super::System, execution_id: &str) -> Map<String, Value> {
    struct SystemScope<'a>(&'a super::System, &'a str);
    impl template::Scope for SystemScope<'_> {
        fn lookup(&self, reference: template::Reference<'_>) -> template::Lookup<'_> {
            self.0.lookup(reference, self.1)
        }
    }
    let bound =
        crate::plan::values::bind(request.plan.runbook, &request.parameters, &SystemScope(system, execution_id));
    bound
        .parameters
        .into_iter()
        .filter(|binding| binding.origin != crate::plan::values::Origin::NotSupplied)
        .map(|binding| (binding.name, binding.value))
        .collect()
}

/// How a list of steps ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// `isEnd`, end of list, or a branch with nothing to take.
    Completed,
    /// A step failed with `onFailure: Abort`.
    Aborted {
        timed_out: bool,
    },
    Cancelled,
    /// A step in a loop body jumped to a step outside it.
    ExitTo(StepId),
}

/// Why this process stops driving the execution before it ends.
enum Halt {
    /// A step waits for a person and nobody here can answer.
    Waiting,
    Error(Error),
}

impl From<journal::Error> for Halt {
    fn from(error: journal::Error) -> Halt {
        Halt::Error(Error::Journal(error))
    }
}

/// What a visit of one step produced.
enum Visited {
    Outcome(Outcome),
    /// A loop whose body jumped out to this step.
    ExitTo(StepId),
    /// A loop whose body ended the run.
    Stop(End),
}

struct Runner<'a> {
    plan: &'a Plan<'a>,
    request: &'a Request<'a>,
    journal: &'a Journal,
    observer: &'a dyn Observer,
    config: &'a Config,
    execution_id: String,
    scope: RunScope,
    redactor: Redactor,
    assume_role: Option<String>,
    replay: HashMap<(String, u32), StepRecord>,
    open_attempts: HashMap<(String, u32), journal::Attempt>,
    attempt_numbers: HashMap<(String, u32), u32>,
    cancel: watch::Receiver<bool>,
    /// When the cancellation path must be over, once a cancel was handled.
    cancelling: Option<Instant>,
    /// The first critical failure: the run ends Failed (or TimedOut) even if it goes on.
    critical_failure: Option<Status>,
    failed_steps: Vec<String>,
}

type Boxed<'f, T> = Pin<Box<dyn Future<Output = T> + 'f>>;

impl<'a> Runner<'a> {
    fn walk(&mut self, start: StepId, iteration: u32, within: Option<StepId>) -> Boxed<'_, Result<End, Halt>> {
        Box::pin(async move {
            let mut current = start;
            loop {
                if self.cancelling.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Ok(End::Cancelled);
                }
                let outcome = match self.visit(current, iteration).await? {
                    Visited::Outcome(outcome) => outcome,
                    Visited::ExitTo(target) => {
                        current = target;
                        continue;
                    }
                    Visited::Stop(end) => return Ok(end),
                };
                if outcome == Outcome::Cancelled && self.cancelling.is_none() {
                    self.cancelling = Some(Instant::now() + CANCEL_PATH_LIMIT);
                    self.observer.event(&Event::CancelRequested { execution_id: self.execution_id.clone() });
                }
                match self.plan.successor(current, outcome) {
                    Next::Step { step, .. } => {
                        if within.is_some() && self.plan.node(step).parent != within {
                            return Ok(End::ExitTo(step));
                        }
                        current = step;
                    }
                    Next::End(_) if self.cancelling.is_some() && within.is_none() => return Ok(End::Cancelled),
                    Next::End(_) => return Ok(End::Completed),
                    Next::Abort => return Ok(End::Aborted { timed_out: outcome == Outcome::TimedOut }),
                    Next::Cancel => return Ok(End::Cancelled),
                    // Validation refuses jumps to steps that do not exist.
                    Next::Unknown { .. } => return Ok(End::Aborted { timed_out: false }),
                }
            }
        })
    }

    fn cancel_requested(&self) -> bool {
        *self.cancel.borrow() && self.cancelling.is_none()
    }

    async fn visit(&mut self, id: StepId, iteration: u32) -> Result<Visited, Halt> {
        let step = self.plan.step(id);
        let key = (step.name.clone(), iteration);
        // A loop is walked again on resume: its body steps replay themselves, with the
        // variables they wrote.
        if let Some(record) = self.replay.remove(&key)
            && step.action != "aws:loop"
            && let Some(outcome) = self.restorable(id, &record)
        {
            self.restore(step, &record);
            return Ok(Visited::Outcome(outcome));
        }
        if let Some(open) = self.open_attempts.remove(&key)
            && !self.safe_to_repeat(step)
        {
            return Err(Halt::Error(Error::UnknownOutcome {
                execution_id: self.execution_id.clone(),
                step: step.name.clone(),
                iteration,
                attempt: open.attempt,
                started_at: open.started_at,
            }));
        }
        if step.action == "aws:loop" {
            return self.visit_loop(id).await;
        }
        Ok(Visited::Outcome(self.run_step(step, iteration).await?))
    }

    /// The outcome to replay for a finished step, or `None` when it must run again: the
    /// failure or cancellation that stopped the run is retried by a resume.
    fn restorable(&self, id: StepId, record: &StepRecord) -> Option<Outcome> {
        let outcome = parse_outcome(&record.outcome)?;
        match self.plan.successor(id, outcome) {
            Next::Abort | Next::Cancel => None,
            _ => Some(outcome),
        }
    }

    fn restore(&mut self, step: &Step, record: &StepRecord) {
        if let Value::Object(outputs) = &record.outputs {
            self.scope.set_outputs(&step.name, outputs.clone());
        }
        self.apply_effects(&record.effects);
        let status = Status::parse(&record.status).unwrap_or(Status::Success);
        self.note_failure(step, status);
        self.observer.event(&Event::StepRestored {
            execution_id: self.execution_id.clone(),
            step: step.name.clone(),
            iteration: record.iteration,
            status,
        });
    }

    fn apply_effects(&mut self, effects: &Value) {
        if let Some(variables) = effects.get("variables").and_then(Value::as_object) {
            for (name, value) in variables {
                self.scope.variables.insert(name.clone(), value.clone());
            }
        }
    }

    fn note_failure(&mut self, step: &Step, status: Status) {
        if matches!(status, Status::Failed | Status::TimedOut | Status::Cancelled) {
            self.failed_steps.push(step.name.clone());
            if status != Status::Cancelled && step.effective_is_critical() && self.critical_failure.is_none() {
                self.critical_failure = Some(status);
            }
        }
    }

    /// Whether a step whose last attempt never finished may simply run again.
    fn safe_to_repeat(&self, step: &Step) -> bool {
        actions::lookup(&step.action).is_some_and(|info| info.safe_to_repeat)
            || step.extensions.get("x-idempotent").and_then(lenient_bool) == Some(true)
            || self.config.rerun.contains(&step.name)
    }

    fn render_inputs(&self, step: &Step) -> Result<Map<String, Value>, String> {
        crate::plan::render_inputs(step, &self.scope, template::config_for(self.plan.runbook))
            .map(|(inputs, _)| inputs)
            .map_err(|error| error.to_string())
    }

    /// The time one attempt may take: `timeoutSeconds`, else the action's default, capped
    /// by the action's maximum (reference 8.4), and by what is left of a cancellation path.
    fn attempt_limit(&self, step: &Step) -> Option<Duration> {
        let info = crate::actions::lookup(&step.action);
        let seconds = step.timeout_seconds.or_else(|| info.and_then(|info| info.default_timeout_seconds));
        let seconds = match (seconds, info.and_then(|info| info.max_timeout_seconds)) {
            (Some(seconds), Some(max)) => Some(seconds.min(max)),
            (None, Some(max)) => Some(max),
            (seconds, None) => seconds,
        };
        let limit = seconds.map(Duration::from_secs);
        match self.cancelling {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                Some(limit.map_or(left, |limit| limit.min(left)))
            }
            None => limit,
        }
    }

    async fn run_step(&mut self, step: &'a Step, iteration: u32) -> Result<Outcome, Halt> {
        let key = (step.name.clone(), iteration);
        let started_at = journal::now();
        let started = Instant::now();
        let max_attempts = step.max_attempts.unwrap_or(1).clamp(1, 1000) as u32;
        let first = self.attempt_numbers.get(&key).copied().unwrap_or(0) + 1;
        let rendered = self.render_inputs(step);
        let shown_inputs = match &rendered {
            Ok(inputs) => self.redactor.value(&Value::Object(inputs.clone())),
            Err(_) => Value::Object(Map::new()),
        };
        let mut attempt_number = first;
        let mut tries = 0;
        let (status, outcome, outputs, shown_outputs, effects, error, log) = loop {
            tries += 1;
            let mut attempt = journal::Attempt {
                step: step.name.clone(),
                iteration,
                attempt: attempt_number,
                action: step.action.clone(),
                status: Status::InProgress.as_str().to_owned(),
                inputs: shown_inputs.clone(),
                outputs: None,
                error: None,
                log: None,
                started_at: journal::now(),
                ended_at: None,
            };
            self.journal.attempt_started(&self.execution_id, &attempt)?;
            self.observer.event(&Event::StepStarted {
                execution_id: self.execution_id.clone(),
                step: step.name.clone(),
                action: step.action.clone(),
                iteration,
                attempt: attempt_number,
                max_attempts,
                inputs: shown_inputs.clone(),
            });
            let result = match &rendered {
                Err(message) => Attempted::Failed(format!("inputs could not be rendered: {message}"), None),
                Ok(inputs) => self.attempt(step, iteration, attempt_number, inputs).await,
            };
            let last = tries >= max_attempts;
            let (status, outcome, outputs, effects, error, log) = match result {
                Attempted::Done(output) => match self.redact_and_select(step, &output) {
                    Ok(declared) => {
                        let mut all = output.builtins;
                        all.extend(declared);
                        (Status::Success, output.outcome, all, output.effects, None, output.log)
                    }
                    Err(error) => {
                        (Status::Failed, Outcome::Failed, Map::new(), Value::Null, Some(error.to_string()), output.log)
                    }
                },
                Attempted::Failed(message, log) => {
                    (Status::Failed, Outcome::Failed, Map::new(), Value::Null, Some(message), log)
                }
                Attempted::TimedOut(limit) => (
                    Status::TimedOut,
                    Outcome::TimedOut,
                    Map::new(),
                    Value::Null,
                    Some(format!("timed out after {} s", limit.as_secs_f64())),
                    None,
                ),
                Attempted::Cancelled => {
                    (Status::Cancelled, Outcome::Cancelled, Map::new(), Value::Null, Some("cancelled".to_owned()), None)
                }
                Attempted::Waiting { message, approvers } => {
                    attempt.status = Status::Waiting.as_str().to_owned();
                    attempt.ended_at = Some(journal::now());
                    self.journal.attempt_finished(&self.execution_id, &attempt, None)?;
                    let detail = json!({ "iteration": iteration, "action": step.action, "message": message });
                    self.journal.event(&self.execution_id, "waiting", Some(&step.name), &detail)?;
                    self.observer.event(&Event::Waiting {
                        execution_id: self.execution_id.clone(),
                        step: step.name.clone(),
                        action: step.action.clone(),
                        message,
                        approvers,
                    });
                    return Err(Halt::Waiting);
                }
            };
            let error = error.map(|error| self.redactor.text(&error));
            let log = log.map(|log| self.redactor.text(&log));
            let shown_outputs = self.redactor.value(&Value::Object(outputs.clone()));
            attempt.status = status.as_str().to_owned();
            attempt.outputs = (status == Status::Success).then(|| shown_outputs.clone());
            attempt.error = error.clone();
            attempt.log = log.clone();
            attempt.ended_at = Some(journal::now());
            let retry = !last && matches!(status, Status::Failed | Status::TimedOut) && !self.cancel_requested();
            if retry {
                self.journal.attempt_finished(&self.execution_id, &attempt, None)?;
                let delay = retry_delay(step, tries);
                self.observer.event(&Event::AttemptFailed {
                    execution_id: self.execution_id.clone(),
                    step: step.name.clone(),
                    iteration,
                    attempt: attempt_number,
                    error: error.clone().unwrap_or_default(),
                    retry_in_ms: Some(delay.as_millis() as u64),
                });
                if !delay.is_zero() {
                    let mut cancel = self.cancel.clone();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = cancel.wait_for(|cancelled| *cancelled) => {}
                    }
                }
                attempt_number += 1;
                continue;
            }
            let record = StepRecord {
                step: step.name.clone(),
                iteration,
                action: step.action.clone(),
                status: status.as_str().to_owned(),
                outcome: outcome_text(outcome),
                outputs: shown_outputs.clone(),
                effects: effects.clone(),
                error: error.clone(),
                attempts: tries,
                critical: step.effective_is_critical(),
                started_at: started_at.clone(),
                ended_at: journal::now(),
            };
            self.journal.attempt_finished(&self.execution_id, &attempt, Some(&record))?;
            break (status, outcome, outputs, shown_outputs, effects, error, log);
        };
        self.attempt_numbers.insert(key, attempt_number);
        if status == Status::Success {
            self.scope.set_outputs(&step.name, outputs);
            self.apply_effects(&effects);
        }
        self.note_failure(step, status);
        self.observer.event(&Event::StepFinished {
            execution_id: self.execution_id.clone(),
            step: step.name.clone(),
            action: step.action.clone(),
            iteration,
            status,
            attempts: tries,
            duration_ms: started.elapsed().as_millis() as u64,
            outputs: shown_outputs,
            error,
            log,
        });
        Ok(outcome)
    }

    /// The declared outputs of a successful attempt, once its secrets are known to the redactor.
    fn redact_and_select(
        &mut self,
        step: &Step,
        output: &actions::Output,
    ) -> Result<Map<String, Value>, outputs::Error> {
        self.redactor.extend(output.secrets.iter().cloned());
        outputs::step_outputs(&step.outputs, &output.root)
    }

    /// One attempt: the executor under the step's time limit, stopped by a cancel.
    async fn attempt(&self, step: &Step, iteration: u32, attempt: u32, inputs: &Map<String, Value>) -> Attempted {
        if self.cancel_requested() {
            return Attempted::Cancelled;
        }
        let context = Context {
            execution_id: &self.execution_id,
            step,
            iteration,
            attempt,
            runbook: self.plan.runbook,
            assume_role: self.assume_role.as_deref(),
            runbook_path: &self.request.path,
            journal: self.journal,
            config: self.config,
            observer: self.observer,
            redactor: &self.redactor,
            cancel: self.cancel.clone(),
        };
        let limit = self.attempt_limit(step);
        let execute = actions::execute(&context, inputs);
        let timed = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, execute).await.map_err(|_| limit),
                None => Ok(execute.await),
            }
        };
        let mut cancel = self.cancel.clone();
        // During a cancellation path a second Ctrl-C does not stop the path's steps. A child
        // execution sees the cancel itself and runs its own cancellation paths.
        let cancellable = self.cancelling.is_none() && step.action != "aws:executeAutomation";
        tokio::select! {
            result = timed => match result {
                Ok(Ok(output)) => Attempted::Done(output),
                Ok(Err(Failure::Error { message, log })) => Attempted::Failed(message, log),
                Ok(Err(Failure::Waiting { message, approvers })) => Attempted::Waiting { message, approvers },
                Ok(Err(Failure::Cancelled)) => Attempted::Cancelled,
                Err(limit) => Attempted::TimedOut(limit),
            },
            _ = cancel.wait_for(|cancelled| *cancelled), if cancellable => Attempted::Cancelled,
        }
    }

    async fn visit_loop(&mut self, id: StepId) -> Result<Visited, Halt> {
        let step = self.plan.step(id);
        let started = Instant::now();
        let started_at = journal::now();
        let finish = |runner: &mut Runner<'_>, status: Status, outcome: String, error: Option<String>| {
            let record = StepRecord {
                step: step.name.clone(),
                iteration: 0,
                action: step.action.clone(),
                status: status.as_str().to_owned(),
                outcome,
                outputs: runner.scope.outputs.get(&step.name).cloned().map_or(Value::Null, Value::Object),
                effects: Value::Null,
                error: error.clone(),
                attempts: 1,
                critical: step.effective_is_critical(),
                started_at: started_at.clone(),
                ended_at: journal::now(),
            };
            runner.journal.step_finished(&runner.execution_id, &record)?;
            runner.note_failure(step, status);
            runner.observer.event(&Event::StepFinished {
                execution_id: runner.execution_id.clone(),
                step: step.name.clone(),
                action: step.action.clone(),
                iteration: 0,
                status,
                attempts: 1,
                duration_ms: started.elapsed().as_millis() as u64,
                outputs: record.outputs,
                error,
                log: None,
            });
            Ok::<(), Halt>(())
        };
        let spec = self.render_inputs(step).and_then(|inputs| loop_::Spec::parse(&inputs, &step.inputs));
        let spec = match spec {
            Ok(spec) => spec,
            Err(message) => {
                finish(self, Status::Failed, outcome_text(Outcome::Failed), Some(message))?;
                return Ok(Visited::Outcome(Outcome::Failed));
            }
        };
        self.observer.event(&Event::StepStarted {
            execution_id: self.execution_id.clone(),
            step: step.name.clone(),
            action: step.action.clone(),
            iteration: 0,
            attempt: 1,
            max_attempts: 1,
            inputs: self.redactor.value(&spec.describe()),
        });
        let Some(body) = self.plan.node(id).body_entry else {
            finish(self, Status::Success, outcome_text(Outcome::Succeeded), None)?;
            return Ok(Visited::Outcome(Outcome::Succeeded));
        };
        for iteration in 1..=spec.iterations() {
            let mut loop_outputs = Map::new();
            loop_outputs.insert("CurrentIteration".into(), json!(iteration));
            if let Some(value) = spec.iterator_value(iteration) {
                loop_outputs.insert("CurrentIteratorValue".into(), value);
            }
            self.scope.set_outputs(&step.name, loop_outputs.clone());
            self.scope.set_outputs("Loop", loop_outputs);
            match self.walk(body, iteration, Some(id)).await? {
                End::Completed => {}
                End::ExitTo(target) => {
                    finish(self, Status::Exited, format!("exited:{}", self.plan.step(target).name), None)?;
                    return Ok(Visited::ExitTo(target));
                }
                end @ (End::Aborted { .. } | End::Cancelled) => {
                    let status = if end == End::Cancelled { Status::Cancelled } else { Status::Failed };
                    finish(self, status, outcome_text(Outcome::Failed), None)?;
                    return Ok(Visited::Stop(end));
                }
            }
            if let Some(condition) = &spec.condition {
                let config = template::config_for(self.plan.runbook);
                let holds = actions::branch::evaluate(condition, &mut |leaf| {
                    template::render(leaf, &self.scope, config).map(|r| Some(r.value)).map_err(|e| e.to_string())
                });
                match holds {
                    Ok(Some(true)) => {}
                    Ok(_) => break,
                    Err(message) => {
                        finish(self, Status::Failed, outcome_text(Outcome::Failed), Some(message))?;
                        return Ok(Visited::Outcome(Outcome::Failed));
                    }
                }
            }
        }
        finish(self, Status::Success, outcome_text(Outcome::Succeeded), None)?;
        Ok(Visited::Outcome(Outcome::Succeeded))
    }

    fn document_outputs(&self) -> Value {
        let outputs = outputs::document_outputs(&self.plan.runbook.outputs, |step, output| {
            self.scope.outputs.get(step).and_then(|outputs| outputs.get(output)).cloned()
        });
        self.redactor.value(&Value::Object(outputs))
    }
}

/// What one attempt came to.
enum Attempted {
    Done(actions::Output),
    Failed(String, Option<String>),
    TimedOut(Duration),
    Cancelled,
    Waiting { message: Option<String>, approvers: Value },
}

/// The pause before the next attempt: none by default, as AWS; `x-retry` on the step asks
/// for exponential backoff with jitter: `{delaySeconds: 1, multiplier: 2, maxDelaySeconds: 60, jitter: true}`.
fn retry_delay(step: &Step, tries: u32) -> Duration {
    let Some(retry) = step.extensions.get("x-retry").and_then(Value::as_object) else {
        return Duration::ZERO;
    };
    let number = |key: &str, default: f64| retry.get(key).and_then(Value::as_f64).unwrap_or(default);
    let base = number("delaySeconds", 1.0).max(0.0);
    let multiplier = number("multiplier", 2.0).max(1.0);
    let max = number("maxDelaySeconds", 60.0).max(0.0);
    let mut delay = (base * multiplier.powi(tries.saturating_sub(1) as i32)).min(max);
    if retry.get("jitter").and_then(Value::as_bool).unwrap_or(true) {
        // Full jitter: anywhere between half and all of the delay.
        delay *= 0.5 + 0.5 * random_unit();
    }
    Duration::from_secs_f64(delay)
}

pub(crate) fn random_unit() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    f64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])) / f64::from(u32::MAX)
}

/// The journal's name for an outcome.
pub fn outcome_text(outcome: Outcome) -> String {
    match outcome {
        Outcome::Succeeded => "succeeded".into(),
        Outcome::Chose(i) => format!("chose:{i}"),
        Outcome::NoChoice => "no_choice".into(),
        Outcome::Failed => "failed".into(),
        Outcome::TimedOut => "timed_out".into(),
        Outcome::Cancelled => "cancelled".into(),
    }
}

fn parse_outcome(text: &str) -> Option<Outcome> {
    Some(match text {
        "succeeded" => Outcome::Succeeded,
        "no_choice" => Outcome::NoChoice,
        "failed" => Outcome::Failed,
        "timed_out" => Outcome::TimedOut,
        "cancelled" => Outcome::Cancelled,
        // A loop that was left by a jump is walked again: its body steps replay themselves.
        _ if text.starts_with("exited:") => return None,
        _ => Outcome::Chose(text.strip_prefix("chose:")?.parse().ok()?),
    })
}
