//! The one timeline of an execution: every fact a run reports (execution started, attempt
//! started and finished, step restored, waiting, decision, cancel, child linked, execution
//! finished) passes through here once. Each call writes the journal row and emits the event
//! to the observer, both redacted by the execution's [`Redactor`], so no printed or stored
//! byte can bypass it. The runner keeps the real values; only what leaves goes through here.

use std::cell::RefCell;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::journal::{self, Attempt, Decision, EventKind, Execution, JournalWrite, Status, StepRecord, WaitKind};
use crate::redact::Redactor;

/// Something a run reports as it goes; the CLI renders them. Values are already redacted.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ExecutionStarted {
        execution_id: String,
        runbook: String,
        resumed: bool,
        parent_id: Option<String>,
    },
    StepStarted {
        execution_id: String,
        step: String,
        action: String,
        iteration: u32,
        attempt: u32,
        max_attempts: u32,
        inputs: Value,
    },
    /// A step that finished in an earlier run of this execution: restored, not run.
    StepRestored {
        execution_id: String,
        step: String,
        iteration: u32,
        status: Status,
    },
    AttemptFailed {
        execution_id: String,
        step: String,
        iteration: u32,
        attempt: u32,
        error: String,
        retry_in_ms: Option<u64>,
    },
    /// An attempt whose engine died was found on resume and closed as interrupted.
    AttemptInterrupted {
        execution_id: String,
        step: String,
        iteration: u32,
        attempt: u32,
    },
    /// A line an attempt printed (a script's stdout or stderr), as it came: shown live; the
    /// whole log is journaled with the attempt when it ends.
    Output {
        execution_id: String,
        step: String,
        iteration: u32,
        attempt: u32,
        /// `stdout` or `stderr`.
        stream: &'static str,
        line: String,
        /// When the line came (RFC 3339, UTC).
        at: String,
    },
    StepFinished {
        execution_id: String,
        step: String,
        action: String,
        iteration: u32,
        status: Status,
        attempts: u32,
        duration_ms: u64,
        outputs: Value,
        error: Option<String>,
        log: Option<String>,
    },
    Waiting {
        execution_id: String,
        step: String,
        action: String,
        kind: WaitKind,
        message: Option<String>,
        approvers: Value,
    },
    Decision {
        execution_id: String,
        step: String,
        decision: journal::Answer,
        by: String,
    },
    CancelRequested {
        execution_id: String,
    },
    ChildLinked {
        execution_id: String,
        step: String,
        child_id: String,
    },
    /// A run over targets: how it runs (targets, rate), or that launching stopped.
    FanOut {
        execution_id: String,
        text: String,
        /// How many targets, when the run starts.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<usize>,
    },
    /// A run on SSM Automation (`run --on ssm`): started there, connection lost or found
    /// again, no longer followed.
    Remote {
        execution_id: String,
        text: String,
    },
    /// A run over targets (`--targets`, `aws:executeAutomation` with `Targets`): one target's
    /// child ended, with the counts so far.
    TargetFinished {
        execution_id: String,
        target: String,
        child_id: String,
        status: Status,
        error: Option<String>,
        succeeded: usize,
        failed: usize,
        running: usize,
        total: usize,
    },
    /// A game-day control acted (`exec::controls`): a fault injected, a step skipped, an
    /// operator's pause or choice, where the walk started or stopped. Marked as such
    /// everywhere, so a rehearsal is never taken for a real failure.
    Control {
        execution_id: String,
        step: Option<String>,
        iteration: u32,
        /// `inject-failure`, `inject-timeout`, `inject-delay`, `cancel-at`, `from`, `to`,
        /// `skip`, `pause-before`, `step` (an operator's answer).
        control: String,
        /// What it did, in a sentence.
        text: String,
    },
    ExecutionFinished {
        execution_id: String,
        status: Status,
        duration_ms: u64,
        outputs: Value,
        failed_steps: Vec<String>,
    },
}

/// The wall clock a run reads (`global:DATE_TIME`, `aws:sleep` until a timestamp): the
/// system's, or a fixed instant moved on by tokio's clock, so that a scenario with paused
/// time reads the same dates on every run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    fixed: Option<(jiff::Timestamp, tokio::time::Instant)>,
}

impl Clock {
    /// `start` now; from here on, the time moves as tokio's clock does.
    pub fn starting_at(start: jiff::Timestamp) -> Clock {
        Clock { fixed: Some((start, tokio::time::Instant::now())) }
    }

    pub fn now(&self) -> jiff::Timestamp {
        match self.fixed {
            None => jiff::Timestamp::now(),
            Some((start, since)) => {
                let elapsed = jiff::SignedDuration::try_from(since.elapsed()).unwrap_or(jiff::SignedDuration::MAX);
                start.checked_add(elapsed).unwrap_or(jiff::Timestamp::MAX)
            }
        }
    }
}

/// Receives events as they happen.
pub trait Observer {
    fn event(&self, event: &Event);
}

/// An observer that drops everything.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event) {}
}

/// A step visit's result as the runner knows it, real values included.
pub struct Finished<'a> {
    pub record: StepRecord,
    /// The attempt that ended the visit; `None` for a loop, which has no attempt of its own.
    pub attempt: Option<&'a mut Attempt>,
    pub log: Option<String>,
    pub duration_ms: u64,
}

/// The timeline of one execution.
pub struct Timeline<'a> {
    execution_id: String,
    journal: &'a dyn JournalWrite,
    observer: &'a dyn Observer,
    redactor: RefCell<Redactor>,
    /// Attempts shown as started whose start is not journaled yet (pure steps): their end
    /// is journaled with their start, in one commit.
    unjournaled: RefCell<Vec<(String, u32, u32)>>,
}

impl<'a> Timeline<'a> {
    pub fn new(
        execution_id: &str,
        journal: &'a dyn JournalWrite,
        observer: &'a dyn Observer,
        redactor: Redactor,
    ) -> Timeline<'a> {
        Timeline {
            execution_id: execution_id.to_owned(),
            journal,
            observer,
            redactor: RefCell::new(redactor),
            unjournaled: RefCell::default(),
        }
    }

    pub fn execution_id(&self) -> &str {
        &self.execution_id
    }

    /// Every secret known so far (a child execution starts with its parent's).
    pub fn redactor(&self) -> Redactor {
        self.redactor.borrow().clone()
    }

    /// Adds secrets learnt on the way: from here on they are redacted too.
    pub fn learn(&self, secrets: impl IntoIterator<Item = Value>) {
        self.redactor.borrow_mut().extend(secrets);
    }

    fn redact_text(&self, text: &str) -> String {
        self.redactor.borrow().text(text)
    }

    fn redact(&self, value: &Value) -> Value {
        self.redactor.borrow().value(value)
    }

    fn emit(&self, event: Event) {
        self.observer.event(&event);
    }

    /// A line an attempt printed, redacted, shown as it came (not journaled one by one).
    pub fn output(&self, step: &str, iteration: u32, attempt: u32, stream: &'static str, line: &str) {
        self.emit(Event::Output {
            execution_id: self.execution_id.clone(),
            step: step.to_owned(),
            iteration,
            attempt,
            stream,
            line: self.redact_text(line),
            at: journal::now(),
        });
    }

    /// A new execution: its row (parameters redacted) with the detail of its creation, then
    /// the start event.
    pub fn created(&self, execution: &Execution, detail: &Value) -> journal::Result<()> {
        let mut stored = execution.clone();
        stored.parameters = self.redact(&stored.parameters);
        self.journal.create_execution(&stored, &self.redact(detail))?;
        self.started(&execution.runbook_path, false, execution.parent_id.clone());
        Ok(())
    }

    /// An execution this process goes on with.
    pub fn resumed(&self, runbook: &str, parent_id: Option<String>) -> journal::Result<()> {
        self.journal.set_status(&self.execution_id, Status::InProgress, false, None, None)?;
        self.started(runbook, true, parent_id);
        Ok(())
    }

    fn started(&self, runbook: &str, resumed: bool, parent_id: Option<String>) {
        self.emit(Event::ExecutionStarted {
            execution_id: self.execution_id.clone(),
            runbook: runbook.to_owned(),
            resumed,
            parent_id,
        });
    }

    /// An attempt about to run: committed before its executor starts.
    pub fn attempt_started(&self, attempt: &mut Attempt, max_attempts: u32) -> journal::Result<()> {
        self.redactor.borrow().value_in_place(&mut attempt.inputs);
        self.journal.attempt_started(&self.execution_id, attempt)?;
        self.announce(attempt, max_attempts);
        Ok(())
    }

    /// An attempt of a pure step about to run ([`crate::actions::is_pure`]): shown, but not
    /// journaled until it ends, or until [`Timeline::attempt_start_journaled`] if it runs long.
    pub fn attempt_announced(&self, attempt: &mut Attempt, max_attempts: u32) {
        self.redactor.borrow().value_in_place(&mut attempt.inputs);
        self.unjournaled.borrow_mut().push(attempt_key(attempt));
        self.announce(attempt, max_attempts);
    }

    /// A pure step's attempt still running: its start committed now, so that another reader
    /// of the journal sees it running. Its end is then journaled as any attempt's.
    pub fn attempt_start_journaled(&self, attempt: &Attempt) -> journal::Result<()> {
        self.journal.attempt_started(&self.execution_id, attempt)?;
        let key = attempt_key(attempt);
        self.unjournaled.borrow_mut().retain(|kept| *kept != key);
        Ok(())
    }

    /// Commits an attempt's end: with its start when that was not journaled yet.
    fn attempt_ended(&self, attempt: &Attempt, step: Option<&StepRecord>) -> journal::Result<()> {
        let key = attempt_key(attempt);
        let unjournaled = {
            let mut pending = self.unjournaled.borrow_mut();
            let found = pending.iter().position(|kept| *kept == key);
            found.map(|at| pending.swap_remove(at)).is_some()
        };
        if unjournaled {
            self.journal.attempt_done(&self.execution_id, attempt, step)
        } else {
            self.journal.attempt_finished(&self.execution_id, attempt, step)
        }
    }

    fn announce(&self, attempt: &Attempt, max_attempts: u32) {
        self.emit(Event::StepStarted {
            execution_id: self.execution_id.clone(),
            step: attempt.step.clone(),
            action: attempt.action.clone(),
            iteration: attempt.iteration,
            attempt: attempt.attempt,
            max_attempts,
            inputs: attempt.inputs.clone(),
        });
    }

    /// An attempt that failed and will be tried again.
    pub fn attempt_retried(&self, attempt: &mut Attempt, retry_in_ms: u64) -> journal::Result<()> {
        self.redact_attempt(attempt);
        self.attempt_ended(attempt, None)?;
        self.emit(Event::AttemptFailed {
            execution_id: self.execution_id.clone(),
            step: attempt.step.clone(),
            iteration: attempt.iteration,
            attempt: attempt.attempt,
            error: attempt.error.clone().unwrap_or_default(),
            retry_in_ms: Some(retry_in_ms),
        });
        Ok(())
    }

    /// An attempt left open by an engine that died, closed by a resume.
    pub fn attempt_interrupted(&self, attempt: &mut Attempt, how: &str) -> journal::Result<()> {
        attempt.status = Status::Interrupted;
        attempt.ended_at = Some(journal::now());
        attempt.error = Some(format!("the engine stopped while this attempt ran; {how}"));
        self.redact_attempt(attempt);
        self.journal.attempt_finished(&self.execution_id, attempt, None)?;
        let detail =
            json!({ "iteration": attempt.iteration, "attempt": attempt.attempt, "started_at": attempt.started_at });
        self.journal.event(&self.execution_id, EventKind::AttemptInterrupted, Some(&attempt.step), &detail)?;
        self.emit(Event::AttemptInterrupted {
            execution_id: self.execution_id.clone(),
            step: attempt.step.clone(),
            iteration: attempt.iteration,
            attempt: attempt.attempt,
        });
        Ok(())
    }

    fn redact_attempt(&self, attempt: &mut Attempt) {
        let redactor = self.redactor.borrow();
        redactor.value_in_place(&mut attempt.inputs);
        if let Some(outputs) = &mut attempt.outputs {
            redactor.value_in_place(outputs);
        }
        for text in [&mut attempt.error, &mut attempt.log].into_iter().flatten() {
            redactor.text_in_place(text);
        }
    }

    /// An attempt that stopped to wait for a person: closed as Waiting, and the execution
    /// recorded as Waiting on it.
    pub fn attempt_waiting(&self, attempt: &mut Attempt, waiting: &Waiting<'_>) -> journal::Result<()> {
        attempt.status = Status::Waiting;
        attempt.ended_at = Some(journal::now());
        self.redact_attempt(attempt);
        self.attempt_ended(attempt, None)?;
        self.waiting(waiting, true)
    }

    /// A loop starts its iterations (a loop has no attempt row: its body steps have theirs).
    pub fn loop_started(&self, step: &str, action: &str, inputs: &Value) {
        self.emit(Event::StepStarted {
            execution_id: self.execution_id.clone(),
            step: step.to_owned(),
            action: action.to_owned(),
            iteration: 0,
            attempt: 1,
            max_attempts: 1,
            inputs: self.redact(inputs),
        });
    }

    /// A step visit's end: the attempt and the step result in one commit, then the event.
    /// Outputs and variables that held a secret are listed in the record as sealed.
    pub fn step_finished(&self, finished: Finished<'_>) -> journal::Result<StepRecord> {
        let Finished { mut record, attempt, log, duration_ms } = finished;
        let log = {
            let redactor = self.redactor.borrow();
            record.sealed = sealed(&redactor, &mut record.outputs, &mut record.effects);
            if let Some(error) = &mut record.error {
                redactor.text_in_place(error);
            }
            log.map(|log| redactor.text(&log))
        };
        match attempt {
            Some(attempt) => {
                // Its inputs were redacted when it started; the rest comes from the record.
                attempt.outputs = (record.status == Status::Success).then(|| record.outputs.clone());
                attempt.error = record.error.clone();
                attempt.log = log.clone();
                self.attempt_ended(attempt, Some(&record))?;
            }
            None => self.journal.step_finished(&self.execution_id, &record)?,
        }
        self.emit(Event::StepFinished {
            execution_id: self.execution_id.clone(),
            step: record.step.clone(),
            action: record.action.clone(),
            iteration: record.iteration,
            status: record.status,
            attempts: record.attempts,
            duration_ms,
            outputs: record.outputs.clone(),
            error: record.error.clone(),
            log,
        });
        Ok(record)
    }

    /// A step that finished in an earlier run of this execution, restored.
    pub fn step_restored(&self, record: &StepRecord) {
        self.emit(Event::StepRestored {
            execution_id: self.execution_id.clone(),
            step: record.step.clone(),
            iteration: record.iteration,
            status: record.status,
        });
    }

    /// A step waits for a person (or for a child that does). With `status`, the execution
    /// is recorded as Waiting too.
    pub fn waiting(&self, waiting: &Waiting<'_>, status: bool) -> journal::Result<()> {
        let message = waiting.message.map(|message| self.redact_text(message));
        let approvers = self.redact(waiting.approvers);
        let detail = json!({
            "iteration": waiting.iteration, "action": waiting.action, "kind": waiting.kind, "message": message,
        });
        self.journal.event(&self.execution_id, EventKind::Waiting, Some(waiting.step), &detail)?;
        if status {
            self.journal.set_status(&self.execution_id, Status::Waiting, false, None, None)?;
        }
        self.emit(Event::Waiting {
            execution_id: self.execution_id.clone(),
            step: waiting.step.to_owned(),
            action: waiting.action.to_owned(),
            kind: waiting.kind,
            message,
            approvers,
        });
        Ok(())
    }

    /// The execution is driven again after a wait.
    pub fn running_again(&self) -> journal::Result<()> {
        self.journal.set_status(&self.execution_id, Status::InProgress, false, None, None)
    }

    /// Records a decision. The first one for a step visit stands: that one is returned, with
    /// whether it is the one just made.
    pub fn decision(&self, decision: Decision) -> journal::Result<(Decision, bool)> {
        let fresh = self.journal.decide(&self.execution_id, &decision)?;
        let standing =
            self.journal.decision(&self.execution_id, &decision.step, decision.iteration)?.unwrap_or(decision);
        self.emit(Event::Decision {
            execution_id: self.execution_id.clone(),
            step: standing.step.clone(),
            decision: standing.decision,
            by: standing.by.clone(),
        });
        Ok((standing, fresh))
    }

    pub fn cancel_requested(&self) -> journal::Result<()> {
        self.journal.event(&self.execution_id, EventKind::CancelRequested, None, &Value::Null)?;
        self.emit(Event::CancelRequested { execution_id: self.execution_id.clone() });
        Ok(())
    }

    /// A step started (or found again) a child execution.
    pub fn child_linked(&self, step: &str, iteration: u32, child_id: &str) -> journal::Result<()> {
        let detail = json!({ "iteration": iteration, "child_id": child_id });
        self.journal.event(&self.execution_id, EventKind::ChildLinked, Some(step), &detail)?;
        self.emit(Event::ChildLinked {
            execution_id: self.execution_id.clone(),
            step: step.to_owned(),
            child_id: child_id.to_owned(),
        });
        Ok(())
    }

    /// What a run over targets does (its targets and rate, launching stopped): a note in the
    /// journal, and shown.
    pub fn fan_out(&self, text: &str, detail: Value) -> journal::Result<()> {
        let (text, detail) = self.noted(text, detail)?;
        let total = detail["targets"].as_u64().map(|total| total as usize);
        self.emit(Event::FanOut { execution_id: self.execution_id.clone(), text, total });
        Ok(())
    }

    /// A note of the execution with its text, journaled redacted; the text and detail as kept.
    fn noted(&self, text: &str, detail: Value) -> journal::Result<(String, Value)> {
        let text = self.redact_text(text);
        let mut detail = self.redact(&detail);
        detail["text"] = json!(text);
        self.journal.event(&self.execution_id, EventKind::Note, None, &detail)?;
        Ok((text, detail))
    }

    /// What a run on SSM did that steps do not show (`exec::remote`): a note in the journal
    /// with `detail` (the AutomationExecutionId once started), and shown.
    pub fn remote(&self, text: &str, detail: Value) -> journal::Result<()> {
        let (text, _) = self.noted(text, detail)?;
        self.emit(Event::Remote { execution_id: self.execution_id.clone(), text });
        Ok(())
    }

    /// One target's child of a run over targets ended (`exec::fan_out`): linked in the journal
    /// with its status, and shown with the counts so far.
    pub fn target_finished(
        &self,
        target: &str,
        child_id: &str,
        status: Status,
        error: Option<&str>,
        counts: &crate::exec::fan_out::Scheduler,
    ) -> journal::Result<()> {
        let error = error.map(|error| self.redact_text(error));
        let detail = json!({ "target": target, "child_id": child_id, "status": status, "error": error });
        self.journal.event(&self.execution_id, EventKind::ChildLinked, None, &detail)?;
        self.emit(Event::TargetFinished {
            execution_id: self.execution_id.clone(),
            target: target.to_owned(),
            child_id: child_id.to_owned(),
            status,
            error,
            succeeded: counts.succeeded,
            failed: counts.failed,
            running: counts.running,
            total: counts.total,
        });
        Ok(())
    }

    /// A game-day control acted: journaled with `detail` (and `control`, `text`, `iteration`),
    /// then shown.
    pub fn control(
        &self,
        step: Option<&str>,
        iteration: u32,
        control: &str,
        text: &str,
        detail: Value,
    ) -> journal::Result<()> {
        let text = self.redact_text(text);
        let mut detail = match self.redact(&detail) {
            Value::Object(detail) => detail,
            _ => Map::new(),
        };
        detail.insert("control".into(), json!(control));
        detail.insert("text".into(), json!(text));
        detail.insert("iteration".into(), json!(iteration));
        self.journal.event(&self.execution_id, EventKind::Control, step, &Value::Object(detail))?;
        self.emit(Event::Control {
            execution_id: self.execution_id.clone(),
            step: step.map(str::to_owned),
            iteration,
            control: control.to_owned(),
            text,
        });
        Ok(())
    }

    /// Something an action reports on its way, kept in the journal.
    pub fn note(&self, step: &str, iteration: u32, detail: &Map<String, Value>) -> journal::Result<()> {
        let mut detail = Value::Object(detail.clone());
        detail["iteration"] = json!(iteration);
        self.journal.event(&self.execution_id, EventKind::Note, Some(step), &self.redact(&detail))
    }

    /// The execution ended (or, `Waiting`, paused for a person): its status, outputs and
    /// error, then the finish event. Returns the outputs as shown.
    pub fn finished(
        &self,
        status: Status,
        outputs: &Value,
        failed_steps: &[String],
        duration_ms: u64,
    ) -> journal::Result<Value> {
        let outputs = self.redact(outputs);
        let error = (!failed_steps.is_empty()).then(|| format!("failed steps: {}", failed_steps.join(", ")));
        let ended = status.is_terminal();
        self.journal.set_status(&self.execution_id, status, ended, ended.then_some(&outputs), error.as_deref())?;
        if ended {
            self.emit(Event::ExecutionFinished {
                execution_id: self.execution_id.clone(),
                status,
                duration_ms,
                outputs: outputs.clone(),
                failed_steps: failed_steps.to_vec(),
            });
        }
        Ok(outputs)
    }

    /// `runbook undo`: an ended execution is rolled back; its status stays as it is.
    pub fn undoing(&self, runbook: &str) {
        self.started(runbook, true, None);
    }

    /// `runbook undo` is over: whether every undo succeeded (the execution's own status
    /// does not change).
    pub fn undone(&self, status: Status, failed: &[String], duration_ms: u64) {
        self.emit(Event::ExecutionFinished {
            execution_id: self.execution_id.clone(),
            status,
            duration_ms,
            outputs: Value::Null,
            failed_steps: failed.to_vec(),
        });
    }

    /// An execution that had already succeeded: its record is the answer, nothing runs.
    pub fn already_finished(&self, outputs: &Value) {
        self.emit(Event::ExecutionFinished {
            execution_id: self.execution_id.clone(),
            status: Status::Success,
            duration_ms: 0,
            outputs: self.redact(outputs),
            failed_steps: Vec::new(),
        });
    }

    /// This process stops driving the execution, which stays resumable; the reason is kept.
    pub fn stopped(&self, reason: &str) -> journal::Result<()> {
        let reason = self.redact_text(reason);
        self.journal.set_status(&self.execution_id, Status::InProgress, false, None, Some(&reason))
    }

    pub fn decided(&self, step: &str, iteration: u32) -> journal::Result<Option<Decision>> {
        self.journal.decision(&self.execution_id, step, iteration)
    }
}

/// A step that waits, as the timeline records it.
pub struct Waiting<'a> {
    pub step: &'a str,
    pub iteration: u32,
    pub action: &'a str,
    pub kind: WaitKind,
    pub message: Option<&'a str>,
    pub approvers: &'a Value,
}

/// Redacts outputs and effects in place; returns the names whose values held a secret
/// (outputs by name, variables as `variable:NAME`).
fn sealed(redactor: &Redactor, outputs: &mut Value, effects: &mut Value) -> Vec<String> {
    let mut names = Vec::new();
    if redactor.is_empty() {
        return names;
    }
    if let Value::Object(outputs) = outputs {
        for (name, value) in outputs.iter_mut() {
            if redactor.value_in_place(value) {
                names.push(name.clone());
            }
        }
    }
    if let Some(Value::Object(variables)) = effects.get_mut("variables") {
        for (name, value) in variables.iter_mut() {
            if redactor.value_in_place(value) {
                names.push(format!("variable:{name}"));
            }
        }
    }
    names
}

/// Which attempt of which step visit an attempt is.
fn attempt_key(attempt: &Attempt) -> (String, u32, u32) {
    (attempt.step.clone(), attempt.iteration, attempt.attempt)
}
