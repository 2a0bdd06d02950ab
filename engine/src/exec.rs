//! Stage 4, running: walks a plan through [`Plan::successor`], one executor per action
//! (`actions/`), every attempt recorded in the journal before and after it runs. A resume
//! replays the journal: steps that finished are restored, never run again. [`dry_run`]
//! explores the same plan without running anything.

pub mod dry_run;
pub mod outputs;
mod runner;
pub mod scope;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::document::{self, model::Runbook};
use crate::journal;
use crate::plan::{self, Plan};
use crate::validate::{self, Supplied, Validated};

pub(crate) use runner::random_unit;
pub use runner::run;
pub use scope::{REDACTED, Redactor, RunScope, System};

/// Step and execution statuses (reference 4.6), as the API spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    Pending,
    InProgress,
    Waiting,
    Success,
    Failed,
    TimedOut,
    Cancelled,
    /// An `aws:loop` left by a jump from its body.
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "Pending",
            Status::InProgress => "InProgress",
            Status::Waiting => "Waiting",
            Status::Success => "Success",
            Status::Failed => "Failed",
            Status::TimedOut => "TimedOut",
            Status::Cancelled => "Cancelled",
            Status::Exited => "Exited",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::InProgress,
            Status::Waiting,
            Status::Success,
            Status::Failed,
            Status::TimedOut,
            Status::Cancelled,
            Status::Exited,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// Whether an execution with this status is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::TimedOut | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// Ask at the terminal, and also take a decision recorded by another process.
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
    /// Steps to run again on resume although their last attempt's outcome is unknown.
    pub rerun: Vec<String>,
    pub answer: Option<Answer>,
    pub wait: WaitMode,
    /// The Python interpreter for `aws:executeScript`.
    pub python: String,
    pub system: System,
    /// The AWS client every AWS action and `{{ssm:...}}` default goes through.
    pub aws: std::sync::Arc<crate::aws::Aws>,
    /// How often waiting actions ask AWS again (`aws:waitForAwsResourceProperty`, ...).
    pub poll_interval: std::time::Duration,
    /// Nesting depth of `aws:executeAutomation` children.
    pub depth: u32,
    /// The execution and step that started this one, for a child.
    pub parent: Option<(String, String)>,
    /// Who answers at a prompt or with a pre-set answer (journaled with the decision).
    pub user: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            resume: None,
            idempotency_key: None,
            force: false,
            rerun: Vec::new(),
            answer: None,
            wait: WaitMode::Exit,
            python: std::env::var("RUNBOOK_PYTHON").unwrap_or_else(|_| "python3".to_owned()),
            system: System::from_environment(),
            aws: crate::aws::Aws::new(crate::aws::Settings::default()),
            poll_interval: std::time::Duration::from_secs(5),
            depth: 0,
            parent: None,
            user: current_user(),
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
pub struct Request<'a> {
    pub plan: &'a Plan<'a>,
    /// The runbook file; attachments and child runbooks are found beside it.
    pub path: PathBuf,
    /// SHA-256 of the runbook's bytes: a resume refuses a changed runbook.
    pub hash: String,
    /// Supplied values, typed (validation checked them).
    pub parameters: Map<String, Value>,
}

/// Something a run reports as it goes; the CLI renders them.
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
        message: Option<String>,
        approvers: Value,
    },
    Decision {
        execution_id: String,
        step: String,
        decision: String,
        by: String,
    },
    CancelRequested {
        execution_id: String,
    },
    ExecutionFinished {
        execution_id: String,
        status: Status,
        duration_ms: u64,
        outputs: Value,
        failed_steps: Vec<String>,
    },
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

/// How a run ended (or paused, waiting for a person).
#[derive(Clone, Debug, Serialize)]
pub struct Finished {
    pub execution_id: String,
    pub status: Status,
    pub outputs: Value,
    pub failed_steps: Vec<String>,
    pub duration_ms: u64,
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
    /// A system value the runbook needs could not be read from AWS.
    #[error("{0}")]
    Aws(String),
}

impl Error {
    /// How the user can go on, printed under the error.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::UnknownOutcome { execution_id, step, .. } => Some(format!(
                "check whether `{step}` took effect, then either run it again with \
                 `runbook run --resume {execution_id} --rerun {step}`, or declare the step safe to repeat \
                 with `x-idempotent: true`"
            )),
            Error::RunbookChanged { execution_id, .. } => Some(format!(
                "resume with the runbook as it was, or pass `--force` to resume {execution_id} with the changed one"
            )),
            Error::Journal(journal::Error::Locked { .. }) => {
                Some("wait for the other process to finish, or stop it first".to_owned())
            }
            _ => None,
        }
    }
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
/// A dry-run passes `require_all: false`: a parameter nobody supplied is an unknown value.
pub fn prepare(path: &Path, supplied: Vec<(String, Supplied)>, require_all: bool) -> Result<Prepared, PrepareError> {
    let bytes = std::fs::read(path).map_err(|source| document::Error { path: path.display().to_string(), source })?;
    let hash = content_hash(&bytes);
    let loaded = document::load(path.display().to_string(), bytes, document::format_of(path));
    let mut validated = validate::validate(loaded, &validate::Config { parameters: Some(supplied) });
    plan::check(&mut validated);
    if !require_all {
        validated.diagnostics.retain(|d| d.code != crate::diagnostic::Code::MissingParameter);
    }
    match validated.runbook.take() {
        Some(runbook) if validated.errors() == 0 => Ok(Prepared { validated, runbook, path: path.to_owned(), hash }),
        _ => Err(PrepareError::Invalid(Box::new(validated))),
    }
}
