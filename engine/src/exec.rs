//! Stage 4, running: walks a plan through [`Plan::successor`], one executor per action
//! (`actions/`), every fact reported through the execution's [`Timeline`]. A resume replays
//! the journal: steps that finished are restored, never run again. [`dry_run`] explores the
//! same plan without running anything.
//!
//! - `runner.rs`: the walk (attempts, timeouts, cancels, loops, resume).
//! - `children.rs`: the [`Children`](crate::actions::Children) seam: child runbooks.
//! - `decide.rs`: the [`Decider`](crate::actions::Decider) seam, and [`decide`] for
//!   `runbook approve|reject|resume ID`.
//! - `scope.rs`: the values templates render with during a run.
//! - `dry_run.rs`: the exploration of every path.
//! - `fan_out.rs`, `targets.rs`: runs over targets with AWS's rate control.
//! - `remote.rs`: runs on SSM Automation, followed into the same timeline.
//!
//! [`Timeline`]: crate::timeline::Timeline

mod children;
pub mod controls;
mod decide;
pub mod dry_run;
pub mod fan_out;
pub mod remote;
mod runner;
pub mod scope;
pub mod targets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::actions::Executors;
use crate::document::{self, model::Runbook};
use crate::journal::{self, JournalWrite, Locks};
use crate::plan::{self, Plan};
use crate::validate::{self, Supplied, Validated};

pub use crate::actions::Interrupt;
pub use crate::journal::Status;
pub use crate::redact::{REDACTED, Redactor};
pub use crate::timeline::{Event, Observer, Silent};
pub use controls::Controls;
pub use decide::{Decided, decide};
pub use runner::{run, undo};
pub use scope::{Clock, RunScope, System};

/// A pre-set answer for `aws:approve` and `aws:pause` steps (CI has nobody at a prompt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Reject,
}

/// What to do when a step waits for a person and no answer is pre-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Record the execution as Waiting and return; `runbook approve|reject|resume` goes on.
    Exit,
    /// Wait for a decision recorded by another process (`runbook approve ID`).
    Poll,
    /// Ask at the terminal ([`Engine::prompt`]), and also take a decision recorded by another
    /// process.
    Prompt,
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Resume this execution instead of starting a new one.
    pub resume: Option<String>,
    /// Re-running with the same key resumes the execution that has it.
    pub idempotency_key: Option<String>,
    /// Resume even though the runbook changed since the execution started.
    pub force: bool,
    /// Resume even though the journal lost records of the execution (their steps run again).
    pub accept_lost_records: bool,
    /// Steps to run again on resume although their last attempt's outcome is unknown, or
    /// although they finished with a secret the journal does not keep.
    pub rerun: Vec<String>,
    pub answer: Option<Answer>,
    /// Pre-set answers for single steps, which win over `answer` (scenario tests).
    pub step_answers: std::collections::HashMap<String, Answer>,
    pub wait: WaitMode,
    /// The Python interpreter for `aws:executeScript`.
    pub python: String,
    pub system: System,
    /// The AWS client every AWS action and `{{ssm:...}}` default goes through.
    pub aws: Arc<crate::aws::Aws>,
    /// How often waiting actions ask AWS again (`aws:waitForAwsResourceProperty`, ...).
    pub poll_interval: std::time::Duration,
    /// Webhook integrations given locally (`--integrations FILE`): name -> definition.
    pub integrations: Arc<Map<String, Value>>,
    /// Nesting depth of `aws:executeAutomation` children.
    pub depth: u32,
    /// The execution and step that started this one, for a child.
    pub parent: Option<(String, String)>,
    /// Secrets known before the run starts: a child's parent's.
    pub secrets: Redactor,
    /// Who answers at a prompt or with a pre-set answer (journaled with the decision).
    pub user: String,
    /// Game-day controls (`--inject-failure`, `--from`, `--step`, ...); none for a child.
    pub controls: Controls,
    /// `--lock NAME` (exclusive, the default lease), besides the runbook's `x-locks`.
    pub locks: Vec<String>,
    /// How long to wait for a named lock another execution holds (`--lock-timeout`).
    pub lock_timeout: std::time::Duration,
    /// Where documents fetched from SSM by name are cached (`aws:executeAutomation` of a
    /// document found in no local folder); none: such a child is not looked for in SSM.
    pub documents: Option<PathBuf>,
    /// `run --plan`: the saved plan, checked under the locks before anything is recorded.
    pub saved_plan: Option<crate::plan::saved::SavedPlan>,
    /// A child runbook's: the named locks its parent holds (name, token), not taken again.
    pub inherited_locks: Vec<(String, u64)>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            resume: None,
            idempotency_key: None,
            force: false,
            accept_lost_records: false,
            rerun: Vec::new(),
            answer: None,
            step_answers: std::collections::HashMap::new(),
            wait: WaitMode::Exit,
            python: std::env::var("RUNBOOK_PYTHON").unwrap_or_else(|_| "python3".to_owned()),
            system: System::from_environment(),
            aws: crate::aws::Aws::new(crate::aws::Settings::default()),
            poll_interval: std::time::Duration::from_secs(5),
            integrations: Arc::default(),
            depth: 0,
            parent: None,
            secrets: Redactor::default(),
            user: current_user(),
            controls: Controls::default(),
            locks: Vec::new(),
            lock_timeout: std::time::Duration::ZERO,
            saved_plan: None,
            documents: None,
            inherited_locks: Vec::new(),
        }
    }
}

/// Lines a person types at the terminal, for approvals and pauses. The CLI owns the terminal.
pub trait Prompt {
    /// The next line typed (lines typed ahead wait their turn); `None` once input has ended.
    /// Dropping the future loses no line.
    fn next_line(&self) -> crate::actions::BoxFuture<'_, Option<String>>;

    /// A line that is no answer was typed: say what the answers are.
    fn not_an_answer(&self, _line: &str, _kind: journal::WaitKind) {}

    /// Under `--step`, before a step runs: ask what to do with it (`again`: the line typed
    /// last was no answer).
    fn ask_step(&self, _step: &str, _action: &str, _again: Option<&str>) {}
}

/// The parts a run talks to, each behind its seam.
#[derive(Clone, Copy)]
pub struct Engine<'a> {
    pub journal: &'a dyn JournalWrite,
    pub locks: &'a dyn Locks,
    /// Named locks (`x-locks`, `--lock`); `None` where a run takes none (scenarios).
    pub named: Option<&'a dyn journal::NamedLocks>,
    pub observer: &'a dyn Observer,
    pub executors: &'a dyn Executors,
    /// The terminal, for [`WaitMode::Prompt`].
    pub prompt: Option<&'a dyn Prompt>,
}

impl<'a> Engine<'a> {
    /// The real parts: the store for records and locks (the local journal or S3), the
    /// catalogue's executors.
    pub fn new(store: &'a journal::Store, observer: &'a dyn Observer) -> Engine<'a> {
        Engine {
            journal: store.journal(),
            locks: store.locks(),
            named: Some(store.named()),
            observer,
            executors: &crate::actions::Catalogue,
            prompt: None,
        }
    }
}

/// The name decisions are journaled under: `$USER@host`.
pub fn current_user() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_owned());
    match std::fs::read_to_string("/etc/hostname") {
        Ok(host) if !host.trim().is_empty() => format!("{user}@{}", host.trim()),
        _ => user,
    }
}

/// What to run: a planned runbook, where it came from, and the bound parameter values.
#[derive(Clone)]
pub struct Request<'a> {
    pub plan: &'a Plan<'a>,
    /// The runbook file; attachments and child runbooks are found beside it.
    pub path: PathBuf,
    /// SHA-256 of the runbook's bytes: a resume refuses a changed runbook.
    pub hash: String,
    /// Supplied values, typed (validation checked them).
    pub parameters: Map<String, Value>,
}

/// How a run ended (or paused, waiting for a person). Outputs are as shown: redacted.
#[derive(Clone, Debug, Serialize)]
pub struct Finished {
    pub execution_id: String,
    pub status: Status,
    pub outputs: Value,
    pub failed_steps: Vec<String>,
    pub duration_ms: u64,
}

impl Finished {
    /// An execution that had ended already, as the journal has it: nothing runs again.
    pub fn recorded(execution: &journal::Execution) -> Finished {
        Finished {
            execution_id: execution.id.clone(),
            status: execution.status,
            outputs: execution.outputs.clone().unwrap_or(Value::Null),
            failed_steps: Vec::new(),
            duration_ms: 0,
        }
    }
}

/// Who is at fault when a run or a decision cannot go on; the CLI turns it into an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The caller asked for something that does not exist or does not apply.
    Caller,
    /// The machine: the journal could not be read or written, AWS could not be reached.
    Environment,
    /// The engine refuses to go on: what happened is unknown, the runbook changed, another
    /// process drives the execution. The message says how to go on.
    Refused,
    /// The execution lost the lease of a named lock (paused, partitioned, released by force):
    /// it stopped before its next step, as another may hold the lock now.
    LockLost,
}

impl From<&journal::Error> for Fault {
    fn from(error: &journal::Error) -> Fault {
        if matches!(error, journal::Error::LeaseLost { .. }) {
            Fault::LockLost
        } else if error.is_refusal() {
            Fault::Refused
        } else if error.is_caller_fault() {
            Fault::Caller
        } else {
            Fault::Environment
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Journal(#[from] journal::Error),
    #[error(
        "step `{step}` (iteration {iteration}, attempt {attempt}) of execution {execution_id} started at {started_at} \
         and never finished: whether it took effect is unknown"
    )]
    UnknownOutcome { execution_id: String, step: String, iteration: u32, attempt: u32, started_at: String },
    #[error("the runbook changed since execution {execution_id} started (hash {recorded} then, {now} now)")]
    RunbookChanged { execution_id: String, recorded: String, now: String },
    #[error("execution {execution_id} was a dry-run and cannot be resumed")]
    DryRunRecord { execution_id: String },
    /// The journal lost records of the execution: resuming would run finished steps again.
    #[error("the journal is missing records of execution {execution_id}: {what}")]
    LostRecords { execution_id: String, what: String },
    /// A system value the runbook needs could not be read from AWS.
    #[error("{0}")]
    Aws(String),
    /// A step finished with a secret output that the journal does not keep, and a later step
    /// reads it: feeding it the redaction mark would change what the run does.
    #[error(
        "step `{step}` of execution {execution_id} finished with a secret in {}, which the journal does not \
         keep, and a step that runs now needs it",
        .names.join(", ")
    )]
    Sealed { execution_id: String, step: String, names: Vec<String> },
    /// `runbook approve|reject|resume` for an execution that waits for nothing of the kind.
    #[error("{0}")]
    NotWaiting(String),
    /// Going on with an execution needs values the journal does not keep (secrets).
    #[error(
        "{} a secret the journal does not keep: pass {} again with {}",
        names_list(.names),
        if .names.len() == 1 { "it" } else { "them" },
        .names.iter().map(|name| format!("-p {name}=VALUE")).collect::<Vec<_>>().join(" ")
    )]
    SecretNotKept { names: Vec<String> },
    /// A decision could not be read or recorded.
    #[error("{0}")]
    Decision(String),
    /// The part of the runbook an execution walks (`--from`, `--to`, `--only`, `--skip`)
    /// cannot be walked again as it was recorded.
    #[error("execution {execution_id} cannot go on with the part of the runbook it was started with: {why}")]
    Walk { execution_id: String, why: String },
    /// A named lock cannot be taken as named: the name its parameters give is malformed.
    #[error("{0}")]
    LockName(String),
    /// A run over targets that cannot run as asked.
    #[error("{0}")]
    Targets(String),
    /// A run on SSM Automation that cannot be started or followed as asked, or an execution
    /// that ran on SSM asked to run here (or the reverse).
    #[error("{0}")]
    Remote(String),
    /// `run --plan`: the saved plan no longer describes the world (Terraform's stale plan).
    #[error(transparent)]
    StalePlan(#[from] crate::plan::saved::Stale),
}

fn names_list(names: &[String]) -> String {
    match names {
        [one] => format!("`{one}` is"),
        _ => format!("{} are", names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")),
    }
}

/// The parameters to go on with an execution: those it stored, with the newly supplied ones on
/// top. A stored value that holds the redaction mark (a secret, or a value that held one) is
/// never passed on as if it were the value: it must be supplied again.
pub fn resume_parameters(stored: &Value, supplied: Vec<(String, Supplied)>) -> Result<Vec<(String, Supplied)>, Error> {
    let stored = stored.as_object().cloned().unwrap_or_default();
    let missing: Vec<String> = stored
        .iter()
        .filter(|(name, value)| holds_placeholder(value) && !supplied.iter().any(|(given, _)| given == *name))
        .map(|(name, _)| name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::SecretNotKept { names: missing });
    }
    let mut merged: Vec<(String, Supplied)> =
        stored.into_iter().map(|(name, value)| (name, Supplied::Json(value))).collect();
    for (name, value) in supplied {
        merged.retain(|(existing, _)| *existing != name);
        merged.push((name, value));
    }
    Ok(merged)
}

/// Whether a value holds the redaction mark anywhere.
fn holds_placeholder(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains(REDACTED),
        Value::Array(items) => items.iter().any(holds_placeholder),
        Value::Object(object) => object.values().any(holds_placeholder),
        _ => false,
    }
}

impl Error {
    /// How the user can go on, printed under the error.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::UnknownOutcome { execution_id, step, .. }
                if step.starts_with(crate::document::model::UNDO_PREFIX) =>
            {
                Some(format!(
                    "check whether `{step}` took effect, then run it again with `runbook undo {execution_id} --rerun \
                     {step}` (or `runbook run --resume {execution_id} --rerun {step}` for a rollback the run \
                     started), or declare the undo safe to repeat with `x-idempotent: true` in its x-undo"
                ))
            }
            Error::UnknownOutcome { execution_id, step, .. } => Some(format!(
                "check whether `{step}` took effect, then either run it again with \
                 `runbook run --resume {execution_id} --rerun {step}`, or declare the step safe to repeat \
                 with `x-idempotent: true`"
            )),
            Error::RunbookChanged { execution_id, .. } => Some(format!(
                "resume with the runbook as it was, or pass `--force` to resume {execution_id} with the changed one"
            )),
            Error::LostRecords { execution_id, .. } => Some(format!(
                "see what the journal still holds with `runbook executions show {execution_id}` and check which \
                 steps already took effect; then resume with `--accept-lost-records` (steps whose records are lost \
                 run again) or start a new execution"
            )),
            Error::Sealed { execution_id, step, .. } => Some(format!(
                "run the step again to get the value back: `runbook run --resume {execution_id} --rerun {step}` \
                 (check first that running it twice is safe)"
            )),
            Error::StalePlan(stale) => Some(stale.help().to_owned()),
            Error::Journal(journal::Error::Locked { .. } | journal::Error::KeyTaken { .. }) => {
                Some("wait for the other process to finish, or stop it first".to_owned())
            }
            _ => None,
        }
    }

    /// Who is at fault, which decides the exit code.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Journal(error) => Fault::from(error),
            Error::Aws(_) | Error::Decision(_) => Fault::Environment,
            Error::Remote(_) => Fault::Caller,
            Error::DryRunRecord { .. }
            | Error::NotWaiting(_)
            | Error::SecretNotKept { .. }
            | Error::LockName(_)
            | Error::Targets(_) => Fault::Caller,
            Error::UnknownOutcome { .. }
            | Error::RunbookChanged { .. }
            | Error::Sealed { .. }
            | Error::LostRecords { .. }
            | Error::Walk { .. }
            | Error::StalePlan(_) => Fault::Refused,
        }
    }
}

/// What an execution was started as, from the detail of its creation under `key` (`fan_out`,
/// `remote`): `None` for an execution started otherwise; `what` names it in an error.
fn created_as<T: serde::de::DeserializeOwned>(
    journal: &dyn journal::JournalRead,
    execution_id: &str,
    key: &str,
    what: &str,
) -> Result<Option<T>, Error> {
    let events = journal.events(execution_id)?;
    let created = events.iter().find(|event| event.kind == journal::EventKind::ExecutionCreated);
    let Some(value) = created.map(|event| event.detail[key].clone()).filter(|value| !value.is_null()) else {
        return Ok(None);
    };
    serde_json::from_value(value)
        .map(Some)
        .map_err(|error| Error::Journal(journal::Error::Corrupt(format!("{what} of {execution_id}: {error}"))))
}

/// Hex SHA-256 of a runbook's bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A runbook read, validated with its parameter values, and ready to plan.
pub struct Prepared {
    /// Diagnostics (warnings only, since it prepared) and the typed parameter values.
    pub validated: Validated,
    pub runbook: Runbook,
    pub path: PathBuf,
    pub hash: String,
}

impl Prepared {
    /// What to run: this runbook's plan with its bound parameter values.
    pub fn request<'a>(&self, plan: &'a Plan<'a>) -> Request<'a> {
        Request {
            plan,
            path: self.path.clone(),
            hash: self.hash.clone(),
            parameters: self.validated.parameters.clone(),
        }
    }

    /// The values of the parameters declared `x-secret`, for the redactor.
    pub fn secrets(&self) -> Vec<Value> {
        self.runbook.secret_values(self.validated.parameters.iter().map(|(name, value)| (name.as_str(), value)))
    }
}

/// Why a runbook could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Io(#[from] document::Error),
    /// The runbook or its parameter values have errors; the diagnostics say which.
    #[error("{} is invalid", .0.source().name)]
    Invalid(Box<Validated>),
}

/// Reads, validates (schema, rules, parameter values, graph checks) and hashes a runbook.
/// For a run (`run: true`) every required parameter needs a value and what cannot run here is
/// refused; a dry-run passes `false`: a parameter nobody supplied is an unknown value.
pub fn prepare(path: &Path, supplied: Vec<(String, Supplied)>, run: bool) -> Result<Prepared, PrepareError> {
    let bytes = document::read(path)?;
    let hash = content_hash(&bytes);
    let loading = validate::load(path.display().to_string(), bytes, document::format_of(path));
    let config = validate::Config { parameters: Some(supplied) };
    let mut validated = if run { loading.validate_to_start(&config) } else { loading.validate(&config) };
    plan::check(&mut validated);
    if !run {
        validated.diagnostics.retain(|d| d.code != crate::diagnostic::Code::MissingParameter);
    }
    match validated.runbook.take() {
        Some(runbook) if validated.errors() == 0 => Ok(Prepared { validated, runbook, path: path.to_owned(), hash }),
        _ => Err(PrepareError::Invalid(Box::new(validated))),
    }
}
