//! The walk: from the entry step, visit a step (render its inputs, run its attempts with
//! timeouts, select its outputs), ask the plan for the successor, repeat until the run ends.
//! Loops walk their bodies once per iteration. Every fact goes through the execution's
//! timeline, which journals it (before and after each attempt) and redacts it; the runner
//! keeps the real values. A resume replays what the journal holds instead of running it
//! again. The clock is tokio's, so tests with paused time drive sleeps, waits and timeouts.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::children::ChildRuns;
use super::controls::{INJECTED, StepChoice, Walk};
use super::decide::Decisions;
use super::scope::RunScope;
use super::{Config, Engine, Error, Finished, Request, Status};
use crate::actions::{self, Ask, Choice, Context, Failure, Interrupt, Kind, Settings, loop_};
use crate::document::model::{Step, UNDO_PREFIX, lenient_bool};
use crate::document::outputs;
use crate::journal::named::{Grant, LockMode};
use crate::journal::{self, Answer, Attempt, EventKind, Execution, StepOutcome, StepRecord, WaitKind};
use crate::plan::{Next, Outcome, Plan, StepId};
use crate::redact::Redactor;
use crate::template::{self, Reference};
use crate::timeline::{self, Timeline, Waiting};

/// Cancellation paths (`onCancel: step:X`) get this long (reference 4.2, 8.4).
const CANCEL_PATH_LIMIT: Duration = Duration::from_secs(120);

/// Runs a planned runbook (or resumes an execution) to its end, or until it waits for a
/// person. `cancel` turning to `Cancel` is Ctrl-C; to `Stop`, a second one.
pub async fn run(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'_>,
    cancel: watch::Receiver<Interrupt>,
) -> Result<Finished, Error> {
    refuse_placeholders(request, config)?;
    let runbook = request.plan.runbook;
    // Checked for a new top-level execution: a resume may have nothing left that calls AWS,
    // and a child's parent checked already.
    let check_aws = config.resume.is_none() && config.parent.is_none();
    let (system, redactor) = set_up(request, config, engine, check_aws).await?;
    let (timeline, lease, opened) = open(request, config, engine, redactor)?;
    let started = Instant::now();
    let mut runner = Runner::new(request, config, engine, timeline, system, cancel.clone());
    let new = matches!(opened, Opened::New(_));
    match opened {
        Opened::Existing(execution) => {
            // A finished success has nothing left to do: its record is the answer.
            if execution.status == Status::Success {
                let outputs = execution.outputs.unwrap_or(Value::Null);
                runner.timeline.already_finished(&outputs);
                lease.release(true);
                let execution_id = execution.id;
                return Ok(Finished {
                    execution_id,
                    status: Status::Success,
                    outputs,
                    failed_steps: Vec::new(),
                    duration_ms: 0,
                });
            }
            // Read first: a journal that cannot be read leaves the execution as it was.
            runner.load_journal()?;
            let parent_id = config.parent.as_ref().map(|(id, _)| id.clone());
            runner.timeline.resumed(&request.path.display().to_string(), parent_id)?;
            if let Err(error) = runner.take_locks().await {
                let _ = runner.timeline.stopped(&error.to_string());
                return Err(error);
            }
        }
        Opened::New(execution) => {
            // Locks first, and a saved plan checked under them: a run refused either leaves
            // no execution behind.
            let taken = match runner.take_locks().await {
                Ok(()) => runner.check_saved_plan(),
                Err(error) => Err(error),
            };
            if let Err(error) = taken {
                runner.release_locks();
                lease.release(true);
                return Err(error);
            }
            // The part of the runbook it walks is recorded with the execution, in one commit.
            let walk = &config.controls.walk;
            let detail = if walk.is_empty() { Value::Null } else { json!({ "walk": walk }) };
            match runner.timeline.created(&execution, &detail) {
                Ok(()) => {}
                // Two processes started at once with the same new idempotency key, and the
                // other one recorded its execution first: go on as a second run with the key
                // does, which says who drives it if it still runs.
                Err(journal::Error::KeyTaken { .. }) => {
                    runner.release_locks();
                    lease.release(true);
                    return Box::pin(run(request, config, engine, cancel)).await;
                }
                Err(error) => {
                    // Nothing was recorded under this id: its lock file goes too.
                    runner.release_locks();
                    lease.release(true);
                    return Err(error.into());
                }
            }
        }
    }
    // What the run starts under, recorded; the locks go back if it cannot be.
    if let Err(error) = runner.start_records(new) {
        runner.release_locks();
        let _ = runner.timeline.stopped(&error.to_string());
        return Err(error);
    }
    let entry = runner.walk.from.as_deref().and_then(|step| request.plan.find(step)).or(request.plan.entry());
    let ended = async {
        // A rollback under way when the last process stopped goes on; the walk had ended.
        let status = match runner.rollback_started {
            Some(status) => {
                runner.restore_all();
                status
            }
            None => {
                let end = match entry {
                    Some(entry) => runner.walk(entry, 0, None).await?,
                    None => End::Completed,
                };
                runner.final_status(end)
            }
        };
        // The run's outputs are what its steps produced, before anything is undone.
        let outputs = runner.document_outputs();
        if runner.rollback_started.is_none() && !runner.rolls_back(status) {
            return Ok((status, outputs));
        }
        let why = format!("(x-rollback: {}): the run ended {status}", runbook.rollback.as_str());
        let failed = runner.roll_back(status, &why, false).await?;
        // A run that succeeded but could not be undone left something behind; `runbook undo`
        // leaves the status as it was.
        let keep = failed.is_empty() || status != Status::Success || runner.rollback_on_demand;
        Ok((if keep { status } else { Status::Failed }, outputs))
    }
    .await;
    let execution_id = runner.timeline.execution_id().to_owned();
    let duration_ms = || started.elapsed().as_millis() as u64;
    runner.release_locks();
    let (status, outputs) = match ended {
        Ok(ended) => ended,
        Err(Halt::Waiting) => {
            let failed_steps = runner.failed_steps;
            return Ok(Finished {
                execution_id,
                status: Status::Waiting,
                outputs: Value::Null,
                failed_steps,
                duration_ms: duration_ms(),
            });
        }
        Err(Halt::Error(error)) => {
            // The execution stays resumable (still InProgress); record why this process
            // stopped driving it.
            let _ = runner.timeline.stopped(&error.to_string());
            return Err(error);
        }
    };
    let outputs = runner.timeline.finished(status, &outputs, &runner.failed_steps, duration_ms())?;
    lease.release(true);
    Ok(Finished { execution_id, status, outputs, failed_steps: runner.failed_steps, duration_ms: duration_ms() })
}

/// What every run needs before its first step: the system values, and the secrets known so far
/// (the parent's, `x-secret` parameters, SecureString defaults). With `check_aws`, a runbook
/// that calls AWS (its undos included) needs a region and credentials: without them, one clear
/// error before the first step instead of a failed attempt per step.
async fn set_up(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'_>,
    check_aws: bool,
) -> Result<(super::System, Redactor), Error> {
    let runbook = request.plan.runbook;
    let (system, ssm_secrets) =
        super::scope::resolve_system(request.plan, &request.parameters, &config.system, &config.aws)
            .await
            .map_err(Error::Aws)?;
    if check_aws
        && !config.aws.is_mocked()
        && runbook
            .all_steps()
            .iter()
            .flat_map(|step| std::iter::once(*step).chain(step.undo.as_deref()))
            .any(|step| engine.executors.calls_aws(&step.action))
    {
        config.aws.check_ready().await.map_err(|error| Error::Aws(error.to_string()))?;
    }
    let mut redactor = config.secrets.clone();
    redactor.extend(runbook.secret_values(request.parameters.iter().map(|(name, value)| (name.as_str(), value))));
    redactor.extend(ssm_secrets);
    Ok((system, redactor))
}

/// `runbook undo ID`: rolls back an execution that has ended, on demand: the undo of each
/// step visit that succeeded and was not undone yet runs, newest first, journaled in the
/// execution as a rollback is (so an interrupted undo goes on where it stopped when run
/// again). The execution keeps its status; the result says whether every undo succeeded.
pub async fn undo(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'_>,
    cancel: watch::Receiver<Interrupt>,
) -> Result<Finished, Error> {
    refuse_placeholders(request, config)?;
    if config.resume.is_none() {
        return Err(Error::NotWaiting("name the execution to undo".into()));
    }
    let (system, redactor) = set_up(request, config, engine, true).await?;
    // As a resume claims it: not a dry-run, the same runbook, no records lost, and this
    // process the only one that drives it (its status read again under the lock).
    let Some((execution, lease)) = claim(request, config, engine)? else {
        return Err(Error::NotWaiting("name the execution to undo".into()));
    };
    if !execution.status.is_terminal() {
        lease.release(false);
        return Err(Error::NotWaiting(format!(
            "execution {} is {}: it can be undone once it has ended (go on with `runbook run --resume {}`, or \
             cancel it)",
            execution.id, execution.status, execution.id
        )));
    }
    let timeline = Timeline::new(&execution.id, engine.journal, engine.observer, redactor);
    let started = Instant::now();
    let mut runner = Runner::new(request, config, engine, timeline, system, cancel);
    runner.load_journal()?;
    runner.restore_all();
    // Undoing changes what the locks guard, as the run did. (Refused, the execution keeps
    // its status and its record.)
    runner.take_locks().await?;
    runner.timeline.undoing(&request.path.display().to_string());
    if let Err(error) = runner.record_grants() {
        runner.release_locks();
        return Err(error);
    }
    let by = &config.user;
    let why = format!("on demand, by {by} (runbook undo), after the run ended {}", execution.status);
    // A rollback that this execution ran already is done again only where it did not finish.
    runner.rollback_started = None;
    let failed = match runner.roll_back(execution.status, &why, true).await {
        Ok(failed) => failed,
        Err(Halt::Waiting) => {
            runner.release_locks();
            let failed_steps = runner.failed_steps;
            return Ok(Finished {
                execution_id: execution.id,
                status: Status::Waiting,
                outputs: Value::Null,
                failed_steps,
                duration_ms: started.elapsed().as_millis() as u64,
            });
        }
        Err(Halt::Error(error)) => {
            runner.release_locks();
            return Err(error);
        }
    };
    runner.release_locks();
    lease.release(true);
    let status = if failed.is_empty() { Status::Success } else { Status::Failed };
    let duration_ms = started.elapsed().as_millis() as u64;
    runner.timeline.undone(status, &failed, duration_ms);
    Ok(Finished { execution_id: execution.id, status, outputs: Value::Null, failed_steps: failed, duration_ms })
}

/// A resume never passes the redaction mark on as a value: whoever drives it passes stored
/// values through `resume_parameters`, and a mark that still arrives here is refused.
fn refuse_placeholders(request: &Request<'_>, config: &Config) -> Result<(), Error> {
    if config.resume.is_none() {
        return Ok(());
    }
    let names: Vec<String> = request
        .parameters
        .iter()
        .filter(|(_, value)| super::holds_placeholder(value))
        .map(|(name, _)| name.clone())
        .collect();
    if names.is_empty() { Ok(()) } else { Err(Error::SecretNotKept { names }) }
}

/// What a run drives: an execution the journal holds, or a new one, recorded once its locks
/// are taken.
enum Opened {
    Existing(Execution),
    New(Execution),
}

/// The execution this run drives, with the right to drive it and its timeline: the one to
/// resume, the one with this idempotency key, or a new one (not recorded yet).
fn open<'a>(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'a>,
    redactor: Redactor,
) -> Result<(Timeline<'a>, journal::Lease, Opened), Error> {
    if let Some((execution, lease)) = claim(request, config, engine)? {
        let timeline = Timeline::new(&execution.id, engine.journal, engine.observer, redactor);
        return Ok((timeline, lease, Opened::Existing(execution)));
    }
    let execution_id = uuid::Uuid::new_v4().to_string();
    let lease = engine.locks.acquire(&execution_id)?;
    let timeline = Timeline::new(&execution_id, engine.journal, engine.observer, redactor);
    Ok((timeline, lease, Opened::New(new_execution(request, config, &execution_id))))
}

/// The execution a run goes on with, if any: the one to resume, or the one with this
/// idempotency key.
pub(super) fn existing(config: &Config, journal: &dyn journal::JournalWrite) -> Result<Option<Execution>, Error> {
    Ok(match (&config.resume, &config.idempotency_key) {
        (Some(id), _) => Some(journal.execution(id)?),
        (None, Some(key)) => journal.find_by_key(key)?,
        (None, None) => None,
    })
}

/// The right to drive `execution`. A child resumed on its own (no parent drives it here)
/// takes its top-most parent's lease first: that parent's driver drives its children (a run
/// over targets gives them no lease of their own), and the same order everywhere keeps two
/// processes from each holding one of the two.
pub(super) fn lease_for(engine: &Engine<'_>, config: &Config, execution: &Execution) -> Result<journal::Lease, Error> {
    let top = if config.parent.is_none() { top_parent(engine.journal, execution)? } else { None };
    let top = top.map(|top| engine.locks.acquire(&top)).transpose()?;
    let own = engine.locks.acquire(&execution.id)?;
    Ok(match top {
        Some(top) => own.with(top),
        None => own,
    })
}

/// The top-most execution above `execution`, if it has a parent.
fn top_parent(journal: &dyn journal::JournalWrite, execution: &Execution) -> Result<Option<String>, Error> {
    let mut top = None;
    let mut parent = execution.parent_id.clone();
    // Bounded: a record pointing in a circle must not hang the run.
    for _ in 0..64 {
        let Some(id) = parent else { break };
        parent = journal.execution(&id)?.parent_id;
        top = Some(id);
    }
    Ok(top)
}

/// The execution this run goes on with, if any: the one to resume or the one with this
/// idempotency key, with the right to drive it.
fn claim(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'_>,
) -> Result<Option<(Execution, journal::Lease)>, Error> {
    let Some(execution) = existing(config, engine.journal)? else { return Ok(None) };
    if super::remote::recorded(engine.journal, &execution.id)?.is_some() {
        return Err(Error::Remote(format!(
            "execution {} runs on SSM Automation: follow it with `runbook run --resume {}`",
            execution.id, execution.id
        )));
    }
    if execution.dry_run {
        return Err(Error::DryRunRecord { execution_id: execution.id });
    }
    if execution.runbook_hash != request.hash && !config.force {
        return Err(Error::RunbookChanged {
            execution_id: execution.id,
            recorded: execution.runbook_hash,
            now: request.hash.clone(),
        });
    }
    let lease = lease_for(engine, config, &execution)?;
    // Another process may have moved it on between reading and locking.
    let execution = engine.journal.execution(&execution.id)?;
    if let Some(what) = engine.journal.missing_records(&execution.id)?
        && !config.accept_lost_records
    {
        return Err(Error::LostRecords { execution_id: execution.id, what });
    }
    Ok(Some((execution, lease)))
}

/// The record of a new execution.
pub(super) fn new_execution(request: &Request<'_>, config: &Config, execution_id: &str) -> Execution {
    Execution {
        id: execution_id.to_owned(),
        runbook_path: request.path.display().to_string(),
        runbook_hash: request.hash.clone(),
        parameters: Value::Object(stored_parameters(request)),
        status: Status::InProgress,
        started_at: journal::now(),
        ended_at: None,
        idempotency_key: config.idempotency_key.clone(),
        parent_id: config.parent.as_ref().map(|(id, _)| id.clone()),
        parent_step: config.parent.as_ref().map(|(_, step)| step.clone()),
        dry_run: false,
        outputs: None,
        error: None,
    }
}

/// Supplied parameters as stored: a secret parameter's value is never stored (the timeline
/// redacts the rest).
fn stored_parameters(request: &Request<'_>) -> Map<String, Value> {
    request
        .parameters
        .iter()
        .map(|(name, value)| {
            let secret = request.plan.runbook.parameter(name).is_some_and(|parameter| parameter.secret);
            (name.clone(), if secret { Value::String(crate::redact::REDACTED.to_owned()) } else { value.clone() })
        })
        .collect()
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
    /// The step `--to` named ended: the run stops there.
    Stopped,
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
    config: &'a Config,
    engine: &'a Engine<'a>,
    /// Shared with the wait that journals a long pure step's start while it runs.
    timeline: Rc<Timeline<'a>>,
    scope: RunScope,
    assume_role: Option<String>,
    replay: HashMap<(String, u32), StepRecord>,
    open_attempts: HashMap<(String, u32), Attempt>,
    attempt_numbers: HashMap<(String, u32), u32>,
    /// Restored outputs (`step.Output`) and variables (`variable:Name`) whose values the
    /// journal kept redacted, with the step visit that produced them.
    sealed: HashMap<String, (StepId, u32)>,
    cancel: watch::Receiver<Interrupt>,
    /// When the cancellation path must be over, once a cancel was handled.
    cancelling: Option<Instant>,
    /// The first critical failure: the run ends Failed (or TimedOut) even if it goes on.
    critical_failure: Option<Status>,
    failed_steps: Vec<String>,
    /// The part of the runbook this execution walks (`--from`, `--to`, `--only`, `--skip`):
    /// the controls it was started with, also on a resume.
    walk: Walk,
    /// A cancel that a control brought (`--cancel-at`, an operator's abort at `--step`), which
    /// counts as Ctrl-C does; and an abort on the cancellation path, as a second Ctrl-C.
    injected_cancel: Cell<bool>,
    injected_stop: Cell<bool>,
    /// A producer runs again only to derive a value the journal kept sealed: no control acts.
    unsealing: bool,
    /// The rollback this execution started (in this process or an earlier one), with the
    /// status the walk ended with.
    rollback_started: Option<Status>,
    /// Undos run now: a first cancel does not stop them.
    rolling_back: bool,
    /// The rollback is `runbook undo`'s: the execution keeps its status.
    rollback_on_demand: bool,
    /// The real outputs of each step visit that succeeded in this process (the journal keeps
    /// secrets redacted), for the undo that reverses it.
    visit_outputs: HashMap<(String, u32), Map<String, Value>>,
    /// The named locks this execution holds, with their leases (renewed while a step runs).
    held: RefCell<Vec<Held>>,
    /// The grants are facts of the timeline (the execution is recorded).
    grants_recorded: bool,
    /// An operator's `fail` at `--step`: the next attempt of this step visit fails.
    operator_failure: Option<(String, u32, String)>,
}

type Boxed<'f, T> = Pin<Box<dyn Future<Output = T> + 'f>>;

/// A named lock this execution holds.
struct Held {
    grant: Grant,
    lease: Duration,
    /// When its grant or renewal was last a fact of the timeline.
    noted: Instant,
    /// Its renewal failed while a step ran: the next step is refused.
    lost: bool,
}

/// Renews every grant still held; the first one lost is an error (and a fact of the
/// timeline, once). With `always_note` every renewal is noted (a step runs, and shows none).
/// A store that cannot be reached is an error too, the lease kept: a keeper tries again.
fn renew_all(
    named: &dyn journal::NamedLocks,
    held: &RefCell<Vec<Held>>,
    timeline: &Timeline<'_>,
    always_note: bool,
) -> Result<(), journal::Error> {
    for held in held.borrow_mut().iter_mut() {
        if held.lost {
            return Err(journal::Error::LeaseLost { name: held.grant.name.clone(), token: held.grant.token });
        }
        match named.renew(&held.grant, held.lease) {
            Ok(renewed) => {
                held.grant = renewed;
                if always_note || held.noted.elapsed() >= held.lease / 3 {
                    held.noted = Instant::now();
                    let grant = &held.grant;
                    let text = format!("lock `{}` renewed (token {})", grant.name, grant.token);
                    // The lease is held whether or not the note could be written: a failed
                    // note never stops the renewals.
                    let _ = timeline.control(None, 0, "lock-renewed", &text, json!({ "name": grant.name }));
                }
            }
            Err(error @ journal::Error::LeaseLost { .. }) => {
                held.lost = true;
                let text = format!("lock `{}` (token {}) lost: {error}", held.grant.name, held.grant.token);
                let _ = timeline.control(None, 0, "lock-lost", &text, json!({ "name": held.grant.name }));
                return Err(error);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// How long a pure step runs before its start is journaled on its own.
const PURE_START_LATE: Duration = Duration::from_millis(50);

/// Write-ahead under group commit (children side by side): the attempt's start is committed
/// before its executor runs. The other children get one turn first, to add their writes to the
/// same commit: one sync for many attempts.
async fn durable(journal: &dyn journal::JournalWrite) -> Result<(), journal::Error> {
    let Some(batch) = journal.pending() else { return Ok(()) };
    tokio::task::yield_now().await;
    if journal.pending() == Some(batch) {
        journal.flush()?;
    }
    Ok(())
}

/// Keeps the leases while a step runs: each renewed at a third of the shortest lease. Never
/// ends; a lease lost stops the renewals (the next step is refused).
async fn keep_leases(named: Option<&dyn journal::NamedLocks>, held: &RefCell<Vec<Held>>, timeline: &Timeline<'_>) {
    let shortest = held.borrow().iter().map(|held| held.lease).min();
    let (Some(named), Some(shortest)) = (named, shortest) else { return std::future::pending().await };
    loop {
        tokio::time::sleep(shortest / 3).await;
        // Lost: nothing to keep (the next step is refused). A store out of reach is asked
        // again at the next third of the lease.
        if let Err(journal::Error::LeaseLost { .. }) = renew_all(named, held, timeline, true) {
            return std::future::pending().await;
        }
    }
}

impl<'a> Runner<'a> {
    fn new(
        request: &'a Request<'a>,
        config: &'a Config,
        engine: &'a Engine<'a>,
        timeline: Timeline<'a>,
        system: super::System,
        cancel: watch::Receiver<Interrupt>,
    ) -> Runner<'a> {
        let runbook = request.plan.runbook;
        let execution_id = timeline.execution_id().to_owned();
        let scope = RunScope {
            parameters: bound_parameters(request, &system, &execution_id),
            execution_id,
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
        Runner {
            plan: request.plan,
            request,
            config,
            engine,
            timeline: Rc::new(timeline),
            scope,
            assume_role,
            replay: HashMap::new(),
            open_attempts: HashMap::new(),
            attempt_numbers: HashMap::new(),
            sealed: HashMap::new(),
            cancel,
            cancelling: None,
            critical_failure: None,
            failed_steps: Vec::new(),
            walk: config.controls.walk.clone(),
            injected_cancel: Cell::new(false),
            injected_stop: Cell::new(false),
            unsealing: false,
            rollback_started: None,
            rolling_back: false,
            rollback_on_demand: false,
            visit_outputs: HashMap::new(),
            held: RefCell::new(Vec::new()),
            grants_recorded: false,
            operator_failure: None,
        }
    }

    /// A new execution records the part of the runbook it walks, and starts with the outputs
    /// given for the steps it leaves out.
    fn record_walk(&mut self) -> Result<(), journal::Error> {
        if self.walk.is_empty() {
            return Ok(());
        }
        let walk = &self.walk;
        let mut parts = Vec::new();
        if let Some(from) = &walk.from {
            let given = match &walk.outputs_from {
                Some(execution) => format!(", earlier outputs from execution {execution}"),
                None if walk.outputs.is_empty() => String::new(),
                None => ", earlier outputs given with --mock".to_owned(),
            };
            parts.push(format!("starts at `{from}` (--from{given})"));
        }
        if let Some(to) = &walk.to {
            parts.push(format!("stops after `{to}` (--to)"));
        }
        if !walk.only.is_empty() {
            parts.push(format!("runs only {} (--only)", walk.only.join(", ")));
        }
        if !walk.skip.is_empty() {
            parts.push(format!("skips {} (--skip)", walk.skip.join(", ")));
        }
        let text = format!("the run {}", parts.join("; "));
        self.timeline.control(None, 0, "walk", &text, Value::Null)?;
        self.give_outputs();
        Ok(())
    }

    /// The outputs given for steps the walk leaves out, in scope before the first step.
    fn give_outputs(&mut self) {
        for (step, outputs) in &self.walk.outputs {
            if let Value::Object(outputs) = outputs {
                self.scope.set_outputs(step, outputs.clone());
            }
        }
    }

    /// The controls this process was given (faults, pauses, `--step`), in the timeline.
    fn record_controls(&self) -> Result<(), journal::Error> {
        for line in self.config.controls.describe() {
            self.timeline.control(None, 0, "controls", &line, Value::Null)?;
        }
        Ok(())
    }

    /// What the journal knows from earlier runs of this execution.
    fn load_journal(&mut self) -> Result<(), Error> {
        let execution_id = self.timeline.execution_id().to_owned();
        let created = self
            .engine
            .journal
            .events(&execution_id)?
            .into_iter()
            .find(|event| event.kind == EventKind::ExecutionCreated);
        if let Some(walk) = created.map(|event| event.detail["walk"].clone()).filter(|walk| !walk.is_null()) {
            let refused = |why: String| Error::Walk { execution_id: execution_id.clone(), why };
            let walk: Walk = serde_json::from_value(walk)
                .map_err(|error| refused(format!("its record cannot be read ({error})")))?;
            // The runbook may have changed (`--force`): the recorded walk must still make sense.
            let controls = super::Controls { walk, ..super::Controls::default() };
            controls.check(self.plan).map_err(refused)?;
            let secret: Vec<String> = controls
                .walk
                .outputs
                .iter()
                .flat_map(|(step, outputs)| {
                    outputs
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(_, value)| super::holds_placeholder(value))
                        .map(move |(name, _)| format!("{step}.{name}"))
                })
                .collect();
            if !secret.is_empty() {
                return Err(refused(format!(
                    "the outputs given for the steps it leaves out held a secret ({}), which the journal does not \
                     keep: start a new run",
                    secret.join(", ")
                )));
            }
            self.walk = controls.walk;
            self.give_outputs();
        }
        for event in self.engine.journal.events(&execution_id)? {
            if event.kind == EventKind::Control && event.detail["control"] == "rollback" {
                let status = event.detail["status"].as_str().and_then(Status::parse);
                self.rollback_on_demand = event.detail["on_demand"] == true;
                self.rollback_started = Some(status.ok_or_else(|| Error::Walk {
                    execution_id: execution_id.clone(),
                    why: format!("its rollback record cannot be read ({})", event.detail),
                })?);
            }
        }
        for record in self.engine.journal.steps(&execution_id)? {
            self.replay.insert((record.step.clone(), record.iteration), record);
        }
        for attempt in self.engine.journal.attempts(&execution_id)? {
            let key = (attempt.step.clone(), attempt.iteration);
            let number = self.attempt_numbers.entry(key.clone()).or_default();
            *number = (*number).max(attempt.attempt);
            if attempt.ended_at.is_none() {
                self.open_attempts.insert(key, attempt);
            } else {
                self.open_attempts.remove(&key);
            }
        }
        Ok(())
    }

    fn walk(&mut self, start: StepId, iteration: u32, within: Option<StepId>) -> Boxed<'_, Result<End, Halt>> {
        Box::pin(async move {
            let mut current = start;
            loop {
                if self.stopped() || self.cancelling.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Ok(End::Cancelled);
                }
                let outcome = match self.visit(current, iteration).await? {
                    Visited::Outcome(outcome) => outcome,
                    Visited::ExitTo(target) => {
                        if self.is_last(current) {
                            return self.stop_after(current, iteration);
                        }
                        current = target;
                        continue;
                    }
                    Visited::Stop(end) => return Ok(end),
                };
                if outcome == Outcome::Cancelled && self.cancelling.is_none() {
                    self.cancelling = Some(Instant::now() + CANCEL_PATH_LIMIT);
                    self.timeline.cancel_requested()?;
                }
                let next = self.plan.successor(current, outcome);
                // `--to`: the run stops after the step, wherever it would go next; an abort or
                // a cancellation path still ends the run as it would.
                if self.is_last(current) && self.cancelling.is_none() && !matches!(next, Next::Abort | Next::Cancel) {
                    return self.stop_after(current, iteration);
                }
                match next {
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

    /// `x-locks` and `--lock`: each named lock is granted before the first step, names rendered
    /// from the parameters and taken in name order (two runs never wait on each other
    /// crosswise), waiting up to `--lock-timeout` with backoff for one another execution holds.
    /// The first lock's fencing token is `{{ automation:FENCING_TOKEN }}`. The grants become
    /// facts of the timeline with [`Runner::record_grants`], once the execution is recorded.
    async fn take_locks(&mut self) -> Result<(), Error> {
        let Some(named) = self.engine.named else { return Ok(()) };
        let refused = Error::LockName;
        let config = template::config_for(self.plan.runbook);
        let mut wanted: Vec<(String, bool, u64)> = Vec::new();
        for spec in &self.plan.runbook.locks {
            let rendered = template::render::render(&Value::String(spec.name.clone()), &self.scope, config)
                .map_err(|error| refused(error.to_string()))?;
            let name = rendered.value.as_str().unwrap_or_default().to_owned();
            if let Err(why) = crate::journal::named::check_name(&name) {
                return Err(refused(format!("the lock `{}` renders to {name:?}: {why}", spec.name)));
            }
            wanted.push((name, spec.shared, spec.lease_seconds));
        }
        for name in &self.config.locks {
            wanted.push((name.clone(), false, crate::document::model::DEFAULT_LEASE_SECONDS));
        }
        wanted.sort();
        wanted.dedup_by(|a, b| a.0 == b.0);
        // A child runbook runs under its parent's grants: a lock the parent holds is not
        // taken again (it would wait for itself).
        wanted.retain(|(name, ..)| !self.config.inherited_locks.iter().any(|(held, _)| held == name));
        let holder = self.timeline.execution_id().to_owned();
        let deadline = Instant::now() + self.config.lock_timeout;
        for (name, shared, lease_seconds) in wanted {
            let mode = if shared { LockMode::Shared } else { LockMode::Exclusive };
            let lease = Duration::from_secs(lease_seconds.max(1));
            let mut wait = Duration::from_millis(100);
            let granted = loop {
                match named.grant(&name, &holder, mode, lease) {
                    Err(journal::Error::LockHeld { .. }) if Instant::now() + wait <= deadline => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                        // The locks taken already are kept while this one is waited for.
                        let renewed: Result<(), journal::Error> = self.held.get_mut().iter_mut().try_for_each(|held| {
                            held.grant = named.renew(&held.grant, held.lease)?;
                            Ok(())
                        });
                        if let Err(error) = renewed {
                            break Err(error);
                        }
                    }
                    granted => break granted,
                }
            };
            match granted {
                Ok(grant) => self.held.get_mut().push(Held { grant, lease, noted: Instant::now(), lost: false }),
                Err(error) => {
                    // What was granted already goes back: nothing ran under it.
                    self.release_locks();
                    return Err(error.into());
                }
            }
        }
        let own = self.held.get_mut().first().map(|held| held.grant.token);
        self.scope.system.fencing_token = own.or(self.config.inherited_locks.first().map(|(_, token)| *token));
        Ok(())
    }

    /// The records a run starts with: the part of the runbook it walks (a new execution), the
    /// locks it holds, the controls given.
    fn start_records(&mut self, new: bool) -> Result<(), Error> {
        if new {
            self.record_walk()?;
        }
        self.record_grants()?;
        self.record_controls()?;
        Ok(())
    }

    /// Every grant as a fact of the timeline; and, the run going on under them, each lock
    /// marked applied (plans saved before now are stale).
    fn record_grants(&mut self) -> Result<(), Error> {
        let Some(named) = self.engine.named else { return Ok(()) };
        self.grants_recorded = true;
        for held in self.held.get_mut().iter() {
            let grant = &held.grant;
            let text = format!(
                "lock `{}` granted ({}, token {}, lease {} s)",
                grant.name,
                grant.mode.as_str(),
                grant.token,
                held.lease.as_secs()
            );
            self.timeline.control(None, 0, "lock", &text, json!({ "name": grant.name, "token": grant.token }))?;
            named.mark_applied(grant)?;
        }
        Ok(())
    }

    /// `run --plan`: the saved plan still describes this run. Checked under the locks, so no
    /// other holder can apply between the check and the first step.
    fn check_saved_plan(&mut self) -> Result<(), Error> {
        let Some(saved) = &self.config.saved_plan else { return Ok(()) };
        let Some(named) = self.engine.named else { return Ok(()) };
        let held: Vec<String> = self.held.get_mut().iter().map(|held| held.grant.name.clone()).collect();
        saved.check_locks(&held, |name| named.applied(name)).map_err(Error::StalePlan)
    }

    /// Before every step: each lease is still held, and renewed; a lease lost (the process was
    /// paused, a clean-up released it by force) stops the run before the step. A renewal is a
    /// fact of the timeline once a third of its lease has passed since the last one noted.
    fn renew_locks(&mut self) -> Result<(), Halt> {
        let Some(named) = self.engine.named else { return Ok(()) };
        renew_all(named, &self.held, &self.timeline, false).map_err(|error| Halt::Error(Error::Journal(error)))
    }

    /// At the end (and when this process stops driving the execution): every grant given up.
    fn release_locks(&mut self) {
        let Some(named) = self.engine.named else { return };
        for held in std::mem::take(self.held.get_mut()) {
            let grant = held.grant;
            if named.release(&grant).is_ok() && self.grants_recorded {
                let text = format!("lock `{}` released (token {})", grant.name, grant.token);
                let _ = self.timeline.control(None, 0, "lock-released", &text, json!({ "name": grant.name }));
            }
        }
    }

    /// Whether a run that ended `status` rolls back (`x-rollback`).
    fn rolls_back(&self, status: Status) -> bool {
        self.plan.runbook.rollback.applies(status.as_str())
    }

    /// The walk ended in an earlier run: every step's result is put back in scope (outputs,
    /// variables, failures), in the order the steps ended, without running anything.
    fn restore_all(&mut self) {
        let mut records: Vec<StepRecord> =
            self.replay.values().filter(|record| !record.step.starts_with(UNDO_PREFIX)).cloned().collect();
        records.sort_by(|a, b| a.ended_at.cmp(&b.ended_at));
        for record in records {
            let Some(id) = self.plan.find(&record.step) else { continue };
            let step = self.plan.step(id);
            if let Value::Object(outputs) = &record.outputs {
                self.scope.set_outputs(&step.name, outputs.clone());
            }
            self.apply_effects(&record.effects);
            self.note_failure(step, record.status);
            self.replay.remove(&(record.step.clone(), record.iteration));
        }
    }

    /// Undoes the step visits that succeeded, newest first: each step's `x-undo` runs as the
    /// step `undo:NAME` of the same iteration, with the outputs of the visit it reverses, and
    /// is journaled like any step, so a resume never runs an undo twice. An undo that fails
    /// does not stop the others. Returns the undos that did not succeed.
    async fn roll_back(&mut self, status: Status, why: &str, on_demand: bool) -> Result<Vec<String>, Halt> {
        if self.rollback_started.is_none() {
            let text = format!("rolling back {why}");
            let detail = json!({ "status": status, "on_demand": on_demand });
            self.timeline.control(None, 0, "rollback", &text, detail)?;
            self.rollback_started = Some(status);
            self.rollback_on_demand = on_demand;
        }
        self.rolling_back = true;
        let execution_id = self.timeline.execution_id().to_owned();
        let records = self.engine.journal.steps(&execution_id)?;
        let mut done: Vec<(usize, StepRecord)> = records
            .into_iter()
            .enumerate()
            .filter(|(_, record)| record.status == Status::Success && !record.step.starts_with(UNDO_PREFIX))
            .collect();
        // Newest first; steps that ended in the same millisecond in reverse journal order.
        done.sort_by(|(a_at, a), (b_at, b)| b.ended_at.cmp(&a.ended_at).then(b_at.cmp(a_at)));
        let mut failed = Vec::new();
        for (_, record) in done {
            let Some(id) = self.plan.find(&record.step) else { continue };
            let step = self.plan.step(id);
            let Some(undo) = step.undo.as_deref() else { continue };
            let key = (undo.name.clone(), record.iteration);
            // Undone in an earlier run of this execution. An undo that failed or was stopped
            // is not done: it runs again.
            if let Some(undone) = self.replay.remove(&key)
                && undone.status == Status::Success
            {
                self.timeline.step_restored(&undone);
                continue;
            }
            if self.stopped() {
                failed.push(undo.name.clone());
                continue;
            }
            if let Some(mut open) = self.open_attempts.remove(&key) {
                if !self.safe_to_repeat(undo) {
                    return Err(Halt::Error(Error::UnknownOutcome {
                        execution_id,
                        step: undo.name.clone(),
                        iteration: record.iteration,
                        attempt: open.attempt,
                        started_at: open.started_at,
                    }));
                }
                self.timeline.attempt_interrupted(&mut open, "the undo runs again (safe to repeat)")?;
            }
            self.scope_of_visit(id, &record)?;
            if self.run_step(undo, record.iteration).await? != Outcome::Succeeded {
                failed.push(undo.name.clone());
            }
        }
        self.rolling_back = false;
        Ok(failed)
    }

    /// Before an undo: the scope of the visit it reverses. The step's own outputs (as this
    /// process saw them, or as the journal kept them), and in a loop body the iteration's
    /// `Loop` values. A value the journal kept redacted is never fed to an undo.
    fn scope_of_visit(&mut self, id: StepId, record: &StepRecord) -> Result<(), Halt> {
        let step = self.plan.step(id);
        let outputs = match self.visit_outputs.get(&(record.step.clone(), record.iteration)) {
            Some(outputs) => outputs.clone(),
            None => record.outputs.as_object().cloned().unwrap_or_default(),
        };
        self.scope.set_outputs(&step.name, outputs);
        if let Some(loop_id) = self.plan.node(id).parent {
            let looped = self.plan.step(loop_id);
            let spec = self.render_inputs(looped).and_then(|inputs| loop_::Spec::parse(&inputs, &looped.inputs));
            let mut loop_outputs = Map::new();
            loop_outputs.insert("CurrentIteration".into(), json!(record.iteration));
            if let Some(value) = spec.ok().and_then(|spec| spec.iterator_value(record.iteration)) {
                loop_outputs.insert("CurrentIteratorValue".into(), value);
            }
            self.scope.set_outputs(&looped.name, loop_outputs.clone());
            self.scope.set_outputs("Loop", loop_outputs);
        }
        let undo = step.undo.as_deref().expect("only steps with an undo are undone");
        let redacted = match self.render_inputs(undo) {
            Ok(inputs) => super::holds_placeholder(&Value::Object(inputs)),
            Err(_) => false,
        };
        if redacted {
            return Err(Halt::Error(Error::Sealed {
                execution_id: self.timeline.execution_id().to_owned(),
                step: step.name.clone(),
                names: record.sealed.clone(),
            }));
        }
        Ok(())
    }

    /// Whether `--to` names this step.
    fn is_last(&self, id: StepId) -> bool {
        self.walk.to.as_ref() == Some(&self.plan.step(id).name)
    }

    fn stop_after(&self, id: StepId, iteration: u32) -> Result<End, Halt> {
        let name = &self.plan.step(id).name;
        let text = format!("the run stops after `{name}` (--to)");
        self.timeline.control(Some(name), iteration, "to", &text, Value::Null)?;
        Ok(End::Stopped)
    }

    fn interrupt(&self) -> Interrupt {
        let real = *self.cancel.borrow();
        if self.injected_stop.get() {
            Interrupt::Stop
        } else if self.injected_cancel.get() && real < Interrupt::Cancel {
            Interrupt::Cancel
        } else {
            real
        }
    }

    /// A cancel that this execution has not handled yet. A rollback goes on after a first
    /// cancel: it puts things back.
    fn cancel_requested(&self) -> bool {
        self.interrupt() >= Interrupt::Cancel && self.cancelling.is_none() && !self.rolling_back
    }

    /// A second cancel: nothing more runs.
    fn stopped(&self) -> bool {
        self.interrupt() == Interrupt::Stop
    }

    async fn visit(&mut self, id: StepId, iteration: u32) -> Result<Visited, Halt> {
        self.renew_locks()?;
        let step = self.plan.step(id);
        let key = (step.name.clone(), iteration);
        let kind = actions::kind_of(&step.action);
        // A loop is walked again on resume: its body steps replay themselves, with the
        // variables they wrote.
        if let Some(record) = self.replay.remove(&key)
            && kind != Kind::Loop
            && let Some(outcome) = self.restorable(id, &record)
        {
            for name in &record.sealed {
                let key = match name.strip_prefix("variable:") {
                    Some(_) => name.clone(),
                    None => format!("{}.{name}", step.name),
                };
                self.sealed.insert(key, (id, iteration));
            }
            self.restore(step, &record);
            return Ok(Visited::Outcome(outcome));
        }
        if let Some(mut open) = self.open_attempts.remove(&key) {
            if !self.safe_to_repeat(step) {
                return Err(Halt::Error(Error::UnknownOutcome {
                    execution_id: self.timeline.execution_id().to_owned(),
                    step: step.name.clone(),
                    iteration,
                    attempt: open.attempt,
                    started_at: open.started_at,
                }));
            }
            self.timeline.attempt_interrupted(&mut open, "the step runs again (safe to repeat)")?;
        }
        if self.walk.leaves_out(self.plan, id) {
            let control = if self.walk.skip.contains(&step.name) { "--skip" } else { "--only" };
            return self.skip(step, iteration, &format!("`{}` is skipped ({control})", step.name), "skip");
        }
        if let Some(outcome) = self.before_step(step, iteration).await? {
            return Ok(outcome);
        }
        if kind == Kind::Loop {
            return self.visit_loop(id).await;
        }
        Ok(Visited::Outcome(self.run_step(step, iteration).await?))
    }

    /// A step the walk leaves out: recorded as skipped, with the outputs given for it; the
    /// walk goes on as after a success (a skipped branch takes its default).
    fn skip(&mut self, step: &Step, iteration: u32, text: &str, control: &str) -> Result<Visited, Halt> {
        self.timeline.control(Some(&step.name), iteration, control, text, Value::Null)?;
        let outputs = self.walk.outputs.get(&step.name).cloned().unwrap_or_else(|| json!({}));
        let now = journal::now();
        let record = StepRecord {
            step: step.name.clone(),
            iteration,
            action: step.action.clone(),
            status: Status::Skipped,
            outcome: StepOutcome::Succeeded,
            outputs: outputs.clone(),
            effects: Value::Null,
            error: None,
            attempts: 0,
            critical: step.effective_is_critical(),
            started_at: now.clone(),
            ended_at: now,
            sealed: Vec::new(),
        };
        self.timeline.step_finished(timeline::Finished { record, attempt: None, log: None, duration_ms: 0 })?;
        if let Value::Object(outputs) = outputs {
            self.scope.set_outputs(&step.name, outputs);
        }
        Ok(Visited::Outcome(Outcome::Succeeded))
    }

    /// Before a step runs: a pause (`--pause-before`) and the operator's answer (`--step`).
    /// `Some` when the step does not run as usual. Ctrl-C while either waits cancels the step
    /// without running it.
    async fn before_step(&mut self, step: &'a Step, iteration: u32) -> Result<Option<Visited>, Halt> {
        self.operator_failure = None;
        let asks_person = actions::lookup(&step.action).is_some_and(|action| action.asks_person.is_some());
        // A pause before this visit answered while no process drove it (`runbook reject ID`)
        // stands, whether or not this process was given the control. Only an execution this
        // process goes on with can hold one: a new run asks the journal nothing per step.
        let answered =
            !asks_person && self.config.resume.is_some() && self.timeline.decided(&step.name, iteration)?.is_some();
        if !asks_person && (self.config.controls.pauses_before(&step.name) || answered) {
            let ask = Ask {
                kind: WaitKind::Pause,
                message: Some(format!("paused before `{}` (--pause-before)", step.name)),
                approvers: Value::Null,
            };
            let decisions = Decisions::new(self.config, self.engine.prompt);
            let (mut cancel, stops_at) = self.cancel_signal();
            let decided = tokio::select! {
                decided = decisions.decision_for(&self.timeline, step, iteration, ask) => decided,
                _ = cancel.wait_for(|interrupt| *interrupt >= stops_at) => {
                    let error = format!("cancelled while paused before `{}`", step.name);
                    return Ok(Some(Visited::Outcome(self.end_unrun(step, iteration, Status::Cancelled, error)?)));
                }
            };
            match decided {
                Ok(decision) if decision.decision == Answer::Reject => {
                    let error =
                        format!("the pause before `{}` was ended by {} (--pause-before)", step.name, decision.by);
                    return Ok(Some(Visited::Outcome(self.end_unrun(step, iteration, Status::Failed, error)?)));
                }
                Ok(_) => {}
                Err(Failure::Waiting { kind, message, approvers }) => {
                    let asked = Asked { kind, message, approvers };
                    self.timeline.waiting(&asked.waiting(step, iteration), true)?;
                    return Err(Halt::Waiting);
                }
                Err(Failure::Error { message, .. }) => return Err(Halt::Error(Error::Decision(message))),
                Err(Failure::Cancelled) => {
                    let error = format!("cancelled while paused before `{}`", step.name);
                    return Ok(Some(Visited::Outcome(self.end_unrun(step, iteration, Status::Cancelled, error)?)));
                }
            }
        }
        if !self.config.controls.confirm_each {
            return Ok(None);
        }
        let Some(prompt) = self.engine.prompt else { return Ok(None) };
        prompt.ask_step(&step.name, &step.action, None);
        let (mut cancel, stops_at) = self.cancel_signal();
        let choice = loop {
            let line = tokio::select! {
                line = prompt.next_line() => line,
                // Ctrl-C at the question: the attempt that follows sees the cancel.
                _ = cancel.wait_for(|interrupt| *interrupt >= stops_at) => return Ok(None),
            };
            match line {
                // The terminal closed: nobody is there to answer.
                None => break StepChoice::Abort,
                Some(line) => match StepChoice::parse(&line) {
                    Some(choice) => break choice,
                    None => prompt.ask_step(&step.name, &step.action, Some(line.trim())),
                },
            }
        };
        let by = &self.config.user;
        let text = format!("{by} chose to {} `{}` (--step)", choice.as_str(), step.name);
        let detail = json!({ "choice": choice.as_str(), "by": by });
        if choice == StepChoice::Skip {
            return self.skip(step, iteration, &text, "step").map(Some);
        }
        self.timeline.control(Some(&step.name), iteration, "step", &text, detail)?;
        match choice {
            StepChoice::Fail => {
                let error = format!("OperatorFailure: failed by {by} at --step {INJECTED}");
                // A loop runs no attempt of its own: it fails as a whole.
                if actions::kind_of(&step.action) == Kind::Loop {
                    return Ok(Some(Visited::Outcome(self.end_unrun(step, iteration, Status::Failed, error)?)));
                }
                self.operator_failure = Some((step.name.clone(), iteration, error));
            }
            // As Ctrl-C; on the cancellation path already, as a second one.
            StepChoice::Abort if self.cancelling.is_some() => self.injected_stop.set(true),
            StepChoice::Abort => self.injected_cancel.set(true),
            StepChoice::Run | StepChoice::Skip => {}
        }
        Ok(None)
    }

    /// The cancel signal, and the level that stops what runs now: a cancel, or on the
    /// cancellation path a second one.
    fn cancel_signal(&self) -> (watch::Receiver<Interrupt>, Interrupt) {
        let stops_at =
            if self.cancelling.is_none() && !self.rolling_back { Interrupt::Cancel } else { Interrupt::Stop };
        (self.cancel.clone(), stops_at)
    }

    /// `--cancel-at`: the cancel comes as the step's first attempt starts (the check that
    /// follows stops the attempt, as Ctrl-C would).
    fn cancel_at(&self, step: &Step, iteration: u32, attempt: u32) -> Result<(), Halt> {
        let name = step.name.as_str();
        let controls = &self.config.controls;
        if self.unsealing
            || controls.cancel_at.as_deref() != Some(name)
            || self.injected_cancel.get()
            || self.cancelling.is_some()
        {
            return Ok(());
        }
        self.injected_cancel.set(true);
        let text = format!("a cancel comes as `{name}` attempt {attempt} starts, as Ctrl-C would {INJECTED}");
        self.timeline.control(Some(name), iteration, "cancel-at", &text, json!({ "attempt": attempt }))?;
        Ok(())
    }

    /// A fault a control injects into this attempt (`tries`: its number within this visit),
    /// journaled as such; `None` when the attempt runs as usual.
    fn injected(&mut self, step: &Step, iteration: u32, attempt: u32, tries: u32) -> Result<Option<Attempted>, Halt> {
        if self.unsealing {
            return Ok(None);
        }
        let name = step.name.as_str();
        if let Some((_, _, error)) = self.operator_failure.take_if(|(s, i, _)| s == name && *i == iteration) {
            return Ok(Some(Attempted::Failed(error, None)));
        }
        let controls = &self.config.controls;
        let detail = json!({ "attempt": attempt });
        if let Some(failure) = controls.failure(name, tries) {
            let error = failure.error();
            let text = format!("`{name}` attempt {attempt} fails: {error}");
            self.timeline.control(Some(name), iteration, "inject-failure", &text, detail)?;
            return Ok(Some(Attempted::Failed(error, None)));
        }
        if controls.times_out(name) {
            let text = format!("`{name}` attempt {attempt} times out {INJECTED}");
            self.timeline.control(Some(name), iteration, "inject-timeout", &text, detail)?;
            return Ok(Some(Attempted::TimedOut(format!("timed out {INJECTED}"))));
        }
        Ok(None)
    }

    /// A step that ends before any attempt of it runs: a pause before it was ended, or
    /// cancelled; an operator failed a loop.
    fn end_unrun(&mut self, step: &Step, iteration: u32, status: Status, error: String) -> Result<Outcome, Halt> {
        let outcome = if status == Status::Cancelled { Outcome::Cancelled } else { Outcome::Failed };
        let now = journal::now();
        let record = StepRecord {
            step: step.name.clone(),
            iteration,
            action: step.action.clone(),
            status,
            outcome: outcome.into(),
            outputs: json!({}),
            effects: Value::Null,
            error: Some(error),
            attempts: 0,
            critical: step.effective_is_critical(),
            started_at: now.clone(),
            ended_at: now,
            sealed: Vec::new(),
        };
        self.timeline.step_finished(timeline::Finished { record, attempt: None, log: None, duration_ms: 0 })?;
        self.note_failure(step, status);
        Ok(outcome)
    }

    /// The outcome to replay for a finished step, or `None` when it must run again: the
    /// failure or cancellation that stopped the run is retried by a resume.
    fn restorable(&self, id: StepId, record: &StepRecord) -> Option<Outcome> {
        // A loop that was left by a jump is walked again: its body steps replay themselves.
        let outcome = record.outcome.as_outcome()?;
        match self.plan.successor(id, outcome) {
            Next::Abort | Next::Cancel => None,
            _ => Some(outcome),
        }
    }

    /// Before `step` runs: a restored value it reads that the journal kept redacted is derived
    /// again by running its producer once more, where that is safe; otherwise the resume
    /// stops and names the producer. A step is never fed the redaction mark.
    async fn unseal(&mut self, step: &Step) -> Result<(), Halt> {
        if self.sealed.is_empty() {
            return Ok(());
        }
        let config = template::config_for(self.plan.runbook);
        let mut producers: Vec<(StepId, u32)> = Vec::new();
        step.visit_input_templates(|text, _| {
            for (_, reference) in template::references_in(text, config) {
                let key = match reference {
                    Reference::StepOutput { step, output } => format!("{step}.{output}"),
                    Reference::Variable(name) => format!("variable:{name}"),
                    _ => continue,
                };
                if let Some(producer) = self.sealed.get(&key).filter(|producer| !producers.contains(producer)) {
                    producers.push(*producer);
                }
            }
        });
        for (id, iteration) in producers {
            let producer = self.plan.step(id);
            let names: Vec<String> = self
                .sealed
                .iter()
                .filter(|(_, (sealed_by, _))| *sealed_by == id)
                .map(|(name, _)| name.clone())
                .collect();
            let execution_id = self.timeline.execution_id().to_owned();
            let refused = || Halt::Error(Error::Sealed { execution_id, step: producer.name.clone(), names });
            if !self.safe_to_repeat(producer) {
                return Err(refused());
            }
            // Its outcome was decided in the run that journaled it; this visit only brings its
            // values back, and the walk stays where it is.
            self.sealed.retain(|_, (sealed_by, _)| *sealed_by != id);
            self.unsealing = true;
            let outcome = Box::pin(self.run_step(producer, iteration)).await;
            self.unsealing = false;
            if outcome? != Outcome::Succeeded {
                return Err(refused());
            }
        }
        Ok(())
    }

    fn restore(&mut self, step: &Step, record: &StepRecord) {
        if let Value::Object(outputs) = &record.outputs {
            self.scope.set_outputs(&step.name, outputs.clone());
        }
        self.apply_effects(&record.effects);
        self.note_failure(step, record.status);
        self.timeline.step_restored(record);
    }

    fn apply_effects(&mut self, effects: &Value) {
        if let Some(variables) = effects.get("variables").and_then(Value::as_object) {
            for (name, value) in variables {
                self.scope.variables.insert(name.clone(), value.clone());
            }
        }
    }

    fn note_failure(&mut self, step: &Step, status: Status) {
        if status.is_failure() {
            self.failed_steps.push(step.name.clone());
            if status != Status::Cancelled && step.effective_is_critical() && self.critical_failure.is_none() {
                self.critical_failure = Some(status);
            }
        }
    }

    /// Whether a step whose last attempt never finished (or whose secret the journal did not
    /// keep) may simply run again: its action is safe to repeat, its operation only reads,
    /// it says `x-idempotent: true`, or the user named it with `--rerun`.
    fn safe_to_repeat(&self, step: &Step) -> bool {
        actions::has(&step.action, |action| action.safe_to_repeat)
            || actions::is_pure(step)
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
        let info = actions::lookup(&step.action);
        let seconds = step.timeout_seconds.or_else(|| info.and_then(|info| info.default_timeout_seconds));
        let seconds = match (seconds, info.and_then(|info| info.max_timeout_seconds)) {
            (Some(seconds), Some(max)) => Some(seconds.min(max)),
            (None, Some(max)) => Some(max),
            (seconds, None) => seconds,
        };
        let limit = seconds.map(Duration::from_secs);
        match self.cancelling.filter(|_| !self.rolling_back) {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                Some(limit.map_or(left, |limit| limit.min(left)))
            }
            None => limit,
        }
    }

    /// A step visit: its attempts, each journaled before and after it runs (a pure step's
    /// once, after it ran), retried as `maxAttempts` and `x-retry` say; then its result.
    async fn run_step(&mut self, step: &'a Step, iteration: u32) -> Result<Outcome, Halt> {
        self.unseal(step).await?;
        let key = (step.name.clone(), iteration);
        let started_at = journal::now();
        let started = Instant::now();
        let max_attempts = step.max_attempts.unwrap_or(1).clamp(1, 1000) as u32;
        let rendered = self.render_inputs(step);
        let inputs = Value::Object(rendered.clone().unwrap_or_default());
        let mut attempt_number = self.attempt_numbers.get(&key).copied().unwrap_or(0) + 1;
        let mut tries = 0;
        let pure = actions::is_pure(step);
        let (settled, mut attempt) = loop {
            tries += 1;
            // Each attempt runs under the locks: a retry after a wait, and an undo (which no
            // visit checked), are refused once a lease is lost.
            if tries > 1 || self.rolling_back {
                self.renew_locks()?;
            }
            let mut attempt = Attempt {
                step: step.name.clone(),
                iteration,
                attempt: attempt_number,
                action: step.action.clone(),
                status: Status::InProgress,
                inputs: inputs.clone(),
                outputs: None,
                error: None,
                log: None,
                started_at: journal::now(),
                ended_at: None,
            };
            // A pure step's start is journaled with its end, in one commit: a crash before
            // that runs it again, which changes nothing. One still running after a moment has
            // its start journaled then, so that `executions show` sees it running.
            if pure {
                self.timeline.attempt_announced(&mut attempt, max_attempts);
            } else {
                self.timeline.attempt_started(&mut attempt, max_attempts)?;
                durable(self.engine.journal).await?;
            }
            let result = match &rendered {
                Err(message) => Attempted::Failed(format!("inputs could not be rendered: {message}"), None),
                Ok(inputs) if pure => {
                    let timeline = Rc::clone(&self.timeline);
                    let journal = self.engine.journal;
                    let run = self.attempt(step, iteration, attempt_number, tries, inputs);
                    tokio::pin!(run);
                    tokio::select! {
                        result = &mut run => result?,
                        () = tokio::time::sleep(PURE_START_LATE) => {
                            timeline.attempt_start_journaled(&attempt)?;
                            durable(journal).await?;
                            run.await?
                        }
                    }
                }
                Ok(inputs) => self.attempt(step, iteration, attempt_number, tries, inputs).await?,
            };
            let settled = match self.settle(step, result) {
                Ok(settled) => settled,
                Err(asked) => {
                    self.timeline.attempt_waiting(&mut attempt, &asked.waiting(step, iteration))?;
                    return Err(Halt::Waiting);
                }
            };
            attempt.status = settled.status;
            attempt.ended_at = Some(journal::now());
            let retry = tries < max_attempts
                && matches!(settled.status, Status::Failed | Status::TimedOut)
                && !self.cancel_requested()
                && !self.stopped();
            if !retry {
                break (settled, attempt);
            }
            attempt.error = settled.error;
            attempt.log = settled.log;
            let delay = retry_delay(step, tries);
            self.timeline.attempt_retried(&mut attempt, delay.as_millis() as u64)?;
            if !delay.is_zero() {
                let (mut cancel, stops_at) = self.cancel_signal();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = cancel.wait_for(|interrupt| *interrupt >= stops_at) => {}
                    () = keep_leases(self.engine.named, &self.held, &self.timeline) => unreachable!("keeps leases forever"),
                }
            }
            attempt_number += 1;
        };
        let Settled { status, outcome, outputs, effects, error, log } = settled;
        let record = StepRecord {
            step: step.name.clone(),
            iteration,
            action: step.action.clone(),
            status,
            outcome: outcome.into(),
            outputs: Value::Object(outputs.clone()),
            effects: effects.clone(),
            error,
            attempts: tries,
            critical: step.effective_is_critical(),
            started_at,
            ended_at: journal::now(),
            sealed: Vec::new(),
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        self.timeline.step_finished(timeline::Finished { record, attempt: Some(&mut attempt), log, duration_ms })?;
        self.attempt_numbers.insert(key, attempt_number);
        if status == Status::Success {
            if step.undo.is_some() {
                self.visit_outputs.insert((step.name.clone(), iteration), outputs.clone());
            }
            self.scope.set_outputs(&step.name, outputs);
            self.apply_effects(&effects);
        }
        self.note_failure(step, status);
        Ok(outcome)
    }

    /// What an attempt came to, as the journal records it; `Err` when it waits for a person.
    fn settle(&self, step: &Step, result: Attempted) -> Result<Settled, Asked> {
        let failed = |status, outcome, error: String, log| Settled {
            status,
            outcome,
            outputs: Map::new(),
            effects: Value::Null,
            error: Some(error),
            log,
        };
        Ok(match result {
            Attempted::Done(output) => {
                // Secrets first: nothing of this output is recorded before they are known.
                self.timeline.learn(output.secrets);
                match outputs::step_outputs(&step.outputs, &output.root) {
                    Ok(declared) => {
                        let mut outputs = output.builtins;
                        outputs.extend(declared);
                        let outcome = match output.choice {
                            None => Outcome::Succeeded,
                            Some(Choice::Taken(index)) => Outcome::Chose(index),
                            Some(Choice::Default) => Outcome::NoChoice,
                        };
                        let (effects, log) = (output.effects, output.log);
                        Settled { status: Status::Success, outcome, outputs, effects, error: None, log }
                    }
                    Err(error) => failed(Status::Failed, Outcome::Failed, error.to_string(), output.log),
                }
            }
            Attempted::Failed(message, log) => failed(Status::Failed, Outcome::Failed, message, log),
            Attempted::TimedOut(message) => failed(Status::TimedOut, Outcome::TimedOut, message, None),
            Attempted::Cancelled => failed(Status::Cancelled, Outcome::Cancelled, "cancelled".to_owned(), None),
            Attempted::Waiting(asked) => return Err(asked),
        })
    }

    /// One attempt: the executor under the step's time limit, stopped by a cancel.
    async fn attempt(
        &mut self,
        step: &Step,
        iteration: u32,
        attempt: u32,
        tries: u32,
        inputs: &Map<String, Value>,
    ) -> Result<Attempted, Halt> {
        self.cancel_at(step, iteration, attempt)?;
        if self.cancel_requested() || self.stopped() {
            return Ok(Attempted::Cancelled);
        }
        if let Some(injected) = self.injected(step, iteration, attempt, tries)? {
            return Ok(injected);
        }
        let settings = Settings {
            runbook: self.plan.runbook,
            runbook_path: &self.request.path,
            assume_role: self.assume_role.as_deref(),
            python: &self.config.python,
            aws: &self.config.aws,
            poll_interval: self.config.poll_interval,
            integrations: &self.config.integrations,
            clock: self.scope.system.clock,
        };
        let inherited: Vec<(String, u64)> = self
            .config
            .inherited_locks
            .iter()
            .cloned()
            .chain(self.held.borrow().iter().map(|held| (held.grant.name.clone(), held.grant.token)))
            .collect();
        let children = ChildRuns { engine: self.engine, config: self.config, inherited_locks: inherited };
        let decider = Decisions::new(self.config, self.engine.prompt);
        // An undo (a child runbook's too) sees only a second cancel: the first one, which may
        // have started the rollback, does not stop it.
        let (cancel, _forwarding) =
            if self.rolling_back { stops_only(&self.cancel) } else { (self.cancel.clone(), None) };
        let context = Context {
            execution_id: self.timeline.execution_id(),
            step,
            iteration,
            attempt,
            settings: &settings,
            timeline: &self.timeline,
            cancel,
            children: &children,
            decider: &decider,
        };
        let limit = self.attempt_limit(step);
        let delay = self.config.controls.delay(&step.name).filter(|_| !self.unsealing);
        if let Some(delay) = delay {
            let text = format!("`{}` attempt {attempt} starts {delay:?} late {INJECTED}", step.name);
            self.timeline.control(Some(&step.name), iteration, "inject-delay", &text, Value::Null)?;
        }
        let executors = self.engine.executors;
        let execute = async {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            executors.execute(&context, inputs).await
        };
        let timed = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, execute).await.map_err(|_| limit),
                None => Ok(execute.await),
            }
        };
        // A first cancel stops the step, unless it is on the cancellation path already; a
        // second stops any step. A child execution sees the cancel itself and runs its own
        // cancellation paths, so the journal of the child says what happened.
        let stops_at =
            if self.cancelling.is_none() && !self.rolling_back { Interrupt::Cancel } else { Interrupt::Stop };
        let cancellable = actions::kind_of(&step.action) != Kind::Child;
        let mut cancel = self.cancel.clone();
        Ok(tokio::select! {
            result = timed => match result {
                Ok(Ok(output)) => Attempted::Done(output),
                Ok(Err(Failure::Error { message, log })) => Attempted::Failed(message, log),
                Ok(Err(Failure::Waiting { kind, message, approvers })) => {
                    Attempted::Waiting(Asked { kind, message, approvers })
                }
                Ok(Err(Failure::Cancelled)) => Attempted::Cancelled,
                Err(limit) => Attempted::TimedOut(format!("timed out after {} s", limit.as_secs_f64())),
            },
            _ = cancel.wait_for(|interrupt| *interrupt >= stops_at), if cancellable => Attempted::Cancelled,
            // A step longer than a lease keeps it: renewed while the step runs.
            () = keep_leases(self.engine.named, &self.held, &self.timeline) => unreachable!("keeps leases forever"),
        })
    }

    async fn visit_loop(&mut self, id: StepId) -> Result<Visited, Halt> {
        let step = self.plan.step(id);
        self.unseal(step).await?;
        let started = Instant::now();
        let started_at = journal::now();
        let finish = |runner: &mut Runner<'_>, status: Status, outcome: StepOutcome, error: Option<String>| {
            let record = StepRecord {
                step: step.name.clone(),
                iteration: 0,
                action: step.action.clone(),
                status,
                outcome,
                outputs: runner.scope.outputs.get(&step.name).cloned().map_or(Value::Null, Value::Object),
                effects: Value::Null,
                error,
                attempts: 1,
                critical: step.effective_is_critical(),
                started_at: started_at.clone(),
                ended_at: journal::now(),
                sealed: Vec::new(),
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            runner.timeline.step_finished(timeline::Finished { record, attempt: None, log: None, duration_ms })?;
            runner.note_failure(step, status);
            Ok::<(), Halt>(())
        };
        let spec = self.render_inputs(step).and_then(|inputs| loop_::Spec::parse(&inputs, &step.inputs));
        let spec = match spec {
            Ok(spec) => spec,
            Err(message) => {
                finish(self, Status::Failed, StepOutcome::Failed, Some(message))?;
                return Ok(Visited::Outcome(Outcome::Failed));
            }
        };
        self.timeline.loop_started(&step.name, &step.action, &spec.describe());
        let Some(body) = self.plan.node(id).body_entry else {
            finish(self, Status::Success, StepOutcome::Succeeded, None)?;
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
                    let outcome = StepOutcome::Exited(self.plan.step(target).name.clone());
                    finish(self, Status::Exited, outcome, None)?;
                    return Ok(Visited::ExitTo(target));
                }
                end @ (End::Aborted { .. } | End::Cancelled) => {
                    let status = if end == End::Cancelled { Status::Cancelled } else { Status::Failed };
                    finish(self, status, StepOutcome::Failed, None)?;
                    return Ok(Visited::Stop(end));
                }
                End::Stopped => {
                    finish(self, Status::Success, StepOutcome::Succeeded, None)?;
                    return Ok(Visited::Stop(End::Stopped));
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
                        finish(self, Status::Failed, StepOutcome::Failed, Some(message))?;
                        return Ok(Visited::Outcome(Outcome::Failed));
                    }
                }
            }
        }
        finish(self, Status::Success, StepOutcome::Succeeded, None)?;
        Ok(Visited::Outcome(Outcome::Succeeded))
    }

    /// The execution's status once the walk ended (reference 4.6).
    fn final_status(&self, end: End) -> Status {
        match end {
            End::Cancelled => Status::Cancelled,
            End::Aborted { timed_out: true } => Status::TimedOut,
            End::Aborted { timed_out: false } => Status::Failed,
            End::Completed | End::ExitTo(_) | End::Stopped => match self.critical_failure {
                Some(Status::TimedOut) => Status::TimedOut,
                Some(_) => Status::Failed,
                None => Status::Success,
            },
        }
    }

    /// The document's outputs from the real values; the timeline redacts them.
    fn document_outputs(&self) -> Value {
        let outputs = outputs::document_outputs(&self.plan.runbook.outputs, |step, output| {
            self.scope.outputs.get(step).and_then(|outputs| outputs.get(output)).cloned()
        });
        Value::Object(outputs)
    }
}

/// A cancel signal that turns only when `cancel` turns to `Stop`, and the task that passes it
/// on (aborted when dropped).
fn stops_only(cancel: &watch::Receiver<Interrupt>) -> (watch::Receiver<Interrupt>, Option<Forwarding>) {
    let (sender, receiver) = watch::channel(Interrupt::None);
    let mut source = cancel.clone();
    let task = tokio::spawn(async move {
        if source.wait_for(|interrupt| *interrupt == Interrupt::Stop).await.is_ok() {
            sender.send_replace(Interrupt::Stop);
        }
    });
    (receiver, Some(Forwarding(task)))
}

struct Forwarding(tokio::task::JoinHandle<()>);

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one attempt came to.
enum Attempted {
    Done(actions::Output),
    Failed(String, Option<String>),
    TimedOut(String),
    Cancelled,
    Waiting(Asked),
}

/// What a step that waits for a person asked.
struct Asked {
    kind: WaitKind,
    message: Option<String>,
    approvers: Value,
}

impl Asked {
    /// The wait as the timeline records it.
    fn waiting<'a>(&'a self, step: &'a Step, iteration: u32) -> Waiting<'a> {
        Waiting {
            step: &step.name,
            iteration,
            action: &step.action,
            kind: self.kind,
            message: self.message.as_deref(),
            approvers: &self.approvers,
        }
    }
}

/// An attempt's result as the journal records it.
struct Settled {
    status: Status,
    outcome: Outcome,
    outputs: Map<String, Value>,
    effects: Value,
    error: Option<String>,
    log: Option<String>,
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
        delay *= 0.5 + 0.5 * crate::aws::random_unit();
    }
    Duration::from_secs_f64(delay)
}
