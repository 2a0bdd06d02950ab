//! The catalogue of Automation actions (reference section 6) and the registry of their
//! executors: one [`Action`] row per action with its facts (public or internal, timeouts,
//! built-in outputs, cancel rules, safe to repeat, how the runner walks it), its executor, its
//! dry-run description and its static check. Each public action lives in its own file under
//! `actions/` and is one line of [`ACTIONS`]. Every stage asks the catalogue what an action
//! is; no other module matches on action names.
//!
//! Executors see a narrow [`Context`]: the step, its attempt and iteration, the run's
//! [`Settings`], the timeline, a cancel signal, and two seams, [`Children`] for child runs and
//! [`Decider`] for people's decisions. They never see the runner, the journal or the CLI.

/// The [`Executor`] of an action's `execute` function: `executor!(execute)` for an
/// `async fn(&Context, &Map) -> Result`, `executor!(sync execute)` for a plain one.
macro_rules! executor {
    (sync $execute:path) => {{
        fn run<'c>(
            context: &'c $crate::actions::Context<'c>,
            inputs: &'c serde_json::Map<String, serde_json::Value>,
        ) -> $crate::actions::BoxFuture<'c, $crate::actions::Result> {
            Box::pin(async move { $execute(context, inputs) })
        }
        Some(run as $crate::actions::Executor)
    }};
    ($execute:path) => {{
        fn run<'c>(
            context: &'c $crate::actions::Context<'c>,
            inputs: &'c serde_json::Map<String, serde_json::Value>,
        ) -> $crate::actions::BoxFuture<'c, $crate::actions::Result> {
            Box::pin($execute(context, inputs))
        }
        Some(run as $crate::actions::Executor)
    }};
}

pub mod api;
pub mod approve;
pub mod assert_aws_resource_property;
pub mod branch;
pub mod change_instance_state;
pub mod copy_image;
pub mod create_image;
pub mod create_stack;
pub mod create_tags;
pub mod delete_image;
pub mod delete_stack;
pub mod execute_automation;
pub mod execute_aws_api;
pub mod execute_script;
pub mod execute_state_machine;
pub mod invoke_lambda_function;
pub mod invoke_webhook;
pub mod loop_;
pub mod pause;
pub mod run_command;
pub mod run_instances;
pub mod sleep;
pub mod update_variable;
pub mod wait_for_aws_resource_property;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::aws::Aws;
use crate::diagnostic::Diagnostic;
use crate::document::model::{Runbook, Step};
use crate::journal::{Decision, Status, WaitKind};
use crate::timeline::Timeline;

/// A future an executor or a seam returns; runs are single-threaded, so it need not be `Send`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// How far a cancel has gone: Ctrl-C (or SIGTERM, SIGHUP) asks for the cancel path; a second
/// one stops at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interrupt {
    None,
    Cancel,
    Stop,
}

/// What every step of one execution shares.
pub struct Settings<'a> {
    pub runbook: &'a Runbook,
    /// The runbook file: attachments are found beside it.
    pub runbook_path: &'a Path,
    /// The runbook's `assumeRole`, rendered; AWS calls are made as this role.
    pub assume_role: Option<&'a str>,
    /// The Python interpreter for `aws:executeScript`.
    pub python: &'a str,
    /// The AWS client every AWS action goes through.
    pub aws: &'a Aws,
    /// How often waiting actions ask again (`aws:waitForAwsResourceProperty`, ...).
    pub poll_interval: Duration,
    /// Webhook integrations given locally (`--integrations FILE`): name -> `{url, headers, payload}`.
    pub integrations: &'a Map<String, Value>,
    /// The wall clock (`aws:sleep` until a timestamp).
    pub clock: crate::timeline::Clock,
}

/// What an executor gets besides its rendered inputs.
pub struct Context<'a> {
    pub execution_id: &'a str,
    pub step: &'a Step,
    /// The loop iteration (1-based), 0 outside loops.
    pub iteration: u32,
    pub attempt: u32,
    pub settings: &'a Settings<'a>,
    pub timeline: &'a Timeline<'a>,
    /// Turns to `Cancel` on Ctrl-C and to `Stop` on a second one.
    pub cancel: watch::Receiver<Interrupt>,
    pub children: &'a dyn Children,
    pub decider: &'a dyn Decider,
}

/// What a successful attempt produced.
#[derive(Debug)]
pub struct Output {
    /// The object selectors read (reference 7.2): `{"Payload": ...}` for a script.
    pub root: Value,
    /// Built-in outputs (reference 5.5).
    pub builtins: Map<String, Value>,
    /// For a branch, the choice taken; `None` for everything else.
    pub choice: Option<Choice>,
    /// Other state changes: `{"variables": {name: value}}`.
    pub effects: Value,
    /// What the action printed (a script's stdout and stderr).
    pub log: Option<String>,
    /// Values that must not be shown or stored (an AWS response's sensitive members, such as
    /// a decrypted SecureString): redacted from here on.
    pub secrets: Vec<Value>,
}

/// The way on a branch took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Choice `i` (0-based) held.
    Taken(usize),
    /// No choice held: `Default`, else the branch falls through.
    Default,
}

impl Output {
    pub fn empty() -> Output {
        Output {
            root: Value::Object(Map::new()),
            builtins: Map::new(),
            choice: None,
            effects: Value::Null,
            log: None,
            secrets: Vec::new(),
        }
    }
}

/// Why an attempt did not succeed.
#[derive(Debug)]
pub enum Failure {
    Error {
        message: String,
        log: Option<String>,
    },
    /// A person must answer first (`aws:approve`, `aws:pause`, a child that waits) and
    /// nobody here can.
    Waiting {
        kind: WaitKind,
        message: Option<String>,
        approvers: Value,
    },
    /// A child execution was cancelled.
    Cancelled,
}

impl Failure {
    pub fn error(message: impl Into<String>) -> Failure {
        Failure::Error { message: message.into(), log: None }
    }
}

/// An AWS call that failed fails the attempt with its message.
impl From<crate::aws::Error> for Failure {
    fn from(error: crate::aws::Error) -> Failure {
        Failure::error(error.to_string())
    }
}

pub type Result = std::result::Result<Output, Failure>;

/// Runs one attempt of a step with its rendered inputs. The runner asks this seam, so a test
/// runner can answer steps from mocks or inject failures; [`Catalogue`] runs the real ones.
pub trait Executors {
    fn execute<'c>(&'c self, context: &'c Context<'c>, inputs: &'c Map<String, Value>) -> BoxFuture<'c, Result>;

    /// Whether running a step of `action` calls AWS with the engine's credentials (a run
    /// checks for a region and credentials first). Executors that answer steps themselves
    /// call nothing.
    fn calls_aws(&self, _action: &str) -> bool {
        false
    }
}

/// The real executors: each action's own, from the catalogue.
pub struct Catalogue;

impl Executors for Catalogue {
    fn calls_aws(&self, action: &str) -> bool {
        has(action, |action| action.calls_aws)
    }

    fn execute<'c>(&'c self, context: &'c Context<'c>, inputs: &'c Map<String, Value>) -> BoxFuture<'c, Result> {
        let action = context.step.action.as_str();
        match lookup(action) {
            Some(Action { execute: Some(execute), .. }) => execute(context, inputs),
            found => {
                let message = match found {
                    Some(info) if info.internal => format!("`{action}` is internal to AWS and cannot run outside it"),
                    Some(_) => format!("`{action}` has no local executor"),
                    None => format!("unknown action `{action}`"),
                };
                Box::pin(async move { Err(Failure::error(message)) })
            }
        }
    }
}

/// A child execution as a step sees it.
#[derive(Debug)]
pub struct ChildRun {
    pub execution_id: String,
    pub status: Status,
    /// The child's document outputs, as shown (secrets redacted).
    pub outputs: Value,
}

/// Runs child executions (`aws:executeAutomation`): the runner's implementation finds the
/// document, runs it in this process with its own execution linked to the parent's, and on a
/// resume goes on with the same child instead of starting another.
pub trait Children {
    /// Runs `document` (`NAME`, or `NAME:VERSION` when the step names a version) with
    /// `parameters`; with `over` (the step's `Targets`, `TargetMaps`,
    /// `TargetParameterName`, `MaxConcurrency`, `MaxErrors`), as a run over targets.
    fn run<'a>(
        &'a self,
        context: &'a Context<'a>,
        document: &'a str,
        parameters: Map<String, Value>,
        over: Option<Map<String, Value>>,
    ) -> BoxFuture<'a, std::result::Result<ChildRun, Failure>>;
}

/// What a waiting step asks a person.
#[derive(Clone, Debug)]
pub struct Ask {
    pub kind: WaitKind,
    pub message: Option<String>,
    pub approvers: Value,
}

/// Answers steps that wait for a person: a decision already journaled, a pre-set answer, the
/// prompt on a terminal, or one recorded by another process. Fails with
/// [`Failure::Waiting`] when nobody here can answer.
pub trait Decider {
    fn decide<'a>(
        &'a self,
        context: &'a Context<'a>,
        ask: Ask,
    ) -> BoxFuture<'a, std::result::Result<Decision, Failure>>;
}

/// Runs one attempt of an action.
pub type Executor = for<'c> fn(&'c Context<'c>, &'c Map<String, Value>) -> BoxFuture<'c, Result>;

/// What a static check sees.
pub struct Checked<'a> {
    pub runbook: &'a Runbook,
    pub step: &'a Step,
    /// The loop whose body holds the step.
    pub enclosing_loop: Option<&'a Step>,
    /// Validating for a run that starts now: also refuse what cannot run here.
    pub starting: bool,
}

/// How the runner and the dry-run walk a step of this action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Runs its executor.
    Task,
    /// `aws:branch`: its outcome is a choice.
    Branch,
    /// `aws:loop`: the runner walks its body, once per iteration.
    Loop,
    /// `aws:updateVariable`: its effect is a variable's new value.
    Variable,
    /// `aws:executeAutomation`: a child execution, which handles a cancel itself.
    Child,
    /// An API action: one call from `Service`, `Api` and the request parameters; with
    /// `property`, it compares `PropertySelector` with `DesiredValues`.
    Api { property: bool },
}

/// Everything the engine knows about an action.
pub struct Action {
    pub name: &'static str,
    pub kind: Kind,
    /// AWS-internal actions appear only in AWS-owned runbooks; they parse but cannot run.
    pub internal: bool,
    /// Whether `onCancel: step:X` may target a step with this action (V9).
    pub cancel_target: bool,
    /// Whether the step itself may carry `onCancel` (V9).
    pub on_cancel_allowed: bool,
    /// Timeout applied when `timeoutSeconds` is absent (section 8.4).
    pub default_timeout_seconds: Option<u64>,
    /// Hard maximum for `timeoutSeconds` (section 8.2 warnings, 8.4).
    pub max_timeout_seconds: Option<u64>,
    /// Outputs every step of this action has without an `outputs` entry (section 5.5).
    pub builtin_outputs: &'static [&'static str],
    /// Whether user-defined `outputs` are meaningful: the action returns data.
    pub returns_data: bool,
    /// Whether a step whose last attempt never finished may simply run again on resume: the
    /// action changes nothing outside the execution (or, for `aws:executeAutomation`, its
    /// child is found again by an idempotency key and resumed, not started twice).
    pub safe_to_repeat: bool,
    /// Whether an attempt changes nothing outside the engine and its journal, and returns at
    /// once or only waits: its start need not be durable before it runs. The runner journals
    /// start and end in one commit once it ran (a crash before that runs it again).
    pub pure: bool,
    /// What a step waits for when it waits for a person's answer (`aws:approve`, `aws:pause`).
    pub asks_person: Option<crate::journal::WaitKind>,
    /// Whether it runs a script in a local interpreter, whose return value is its `Payload`
    /// (and which takes real time even when a test's clock is virtual).
    pub runs_script: bool,
    /// Whether it touches nothing outside the engine: no AWS call, no process, no network. A
    /// scenario test needs no mock for it.
    pub self_contained: bool,
    /// Whether it calls AWS with the engine's credentials: a run checks, before its first
    /// step, that a region and credentials are there.
    pub calls_aws: bool,
    /// Runs one attempt; `None` where the runner does the work (`aws:loop`) or nothing can
    /// run locally (AWS-internal actions).
    pub execute: Option<Executor>,
    /// What a step would do, in one line, for dry-runs; `Err` says why it cannot be previewed.
    pub describe: fn(&Step, &Value) -> std::result::Result<String, String>,
    /// Checks a step's inputs beyond the schema (reference 8.1, 8.2).
    pub check: fn(&Checked<'_>, &mut Vec<Diagnostic>),
}

impl Action {
    /// A public action with the common facts; rows override what differs.
    pub const fn new(name: &'static str) -> Action {
        Action {
            name,
            kind: Kind::Task,
            internal: false,
            cancel_target: true,
            on_cancel_allowed: true,
            default_timeout_seconds: None,
            max_timeout_seconds: None,
            builtin_outputs: &[],
            returns_data: false,
            safe_to_repeat: false,
            pure: false,
            asks_person: None,
            runs_script: false,
            self_contained: false,
            calls_aws: false,
            execute: None,
            describe: describe_generic,
            check: check_nothing,
        }
    }

    /// An AWS-internal action: it parses and validates, but cannot run or be previewed.
    const fn internal(name: &'static str) -> Action {
        Action { internal: true, describe: describe_internal, ..Action::new(name) }
    }
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Action").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// The registry: one line per action.
pub static ACTIONS: &[&Action] = &[
    &approve::ACTION,
    &assert_aws_resource_property::ACTION,
    &branch::ACTION,
    &change_instance_state::ACTION,
    &copy_image::ACTION,
    &create_image::ACTION,
    &create_stack::ACTION,
    &create_tags::ACTION,
    &delete_image::ACTION,
    &delete_stack::ACTION,
    &execute_automation::ACTION,
    &execute_aws_api::ACTION,
    &execute_script::ACTION,
    &execute_state_machine::ACTION,
    &invoke_lambda_function::ACTION,
    &invoke_webhook::ACTION,
    &loop_::ACTION,
    &pause::ACTION,
    &run_command::ACTION,
    &run_instances::ACTION,
    &sleep::ACTION,
    &update_variable::ACTION,
    &wait_for_aws_resource_property::ACTION,
    &Action::internal("aws:putServerUpgradeMetrics"),
    &Action { returns_data: true, ..Action::internal("aws:shareSQLMedia") },
    &Action::internal("aws:installDistributorPackageOnAzure"),
];

/// Command document plugins that people write as Automation actions by mistake.
const COMMAND_PLUGINS: &[&str] = &["aws:runShellScript", "aws:runPowerShellScript", "aws:runDocument"];

/// Looks an action up by its exact name (action names are case-sensitive).
pub fn lookup(name: &str) -> Option<&'static Action> {
    // Every stage asks, for every step: a map, built once.
    static BY_NAME: OnceLock<foldhash::HashMap<&'static str, &'static Action>> = OnceLock::new();
    BY_NAME.get_or_init(|| ACTIONS.iter().map(|action| (action.name, *action)).collect()).get(name).copied()
}

/// How the runner walks a step of this action (an unknown action is a plain task).
pub fn kind_of(name: &str) -> Kind {
    lookup(name).map_or(Kind::Task, |action| action.kind)
}

/// Whether any step of `runbook` calls AWS with the engine's credentials.
pub fn calls_aws(runbook: &crate::document::model::Runbook) -> bool {
    runbook.all_steps().iter().any(|step| has(&step.action, |action| action.calls_aws))
}

/// A fact of an action by name (`false` for an unknown one).
pub fn has(name: &str, fact: impl Fn(&Action) -> bool) -> bool {
    lookup(name).is_some_and(fact)
}

/// Whether a step's attempts may be journaled once, after each ran: its action is pure, or
/// it is an API call whose operation only reads (`x-idempotent` and `--rerun` do not make a
/// step pure: they say it may run again, not that it changes nothing).
pub fn is_pure(step: &Step) -> bool {
    lookup(&step.action)
        .is_some_and(|action| action.pure || (matches!(action.kind, Kind::Api { .. }) && api::only_reads(step)))
}

/// The public actions, for messages and `runbook --help`.
pub fn public_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().filter(|action| !action.internal).map(|action| action.name)
}

/// Whether `name` is a Command document plugin rather than an Automation action.
pub fn is_command_plugin(name: &str) -> bool {
    COMMAND_PLUGINS.contains(&name)
}

/// What a step would do, as a dry-run shows it: the action's own description, or why it
/// cannot be previewed.
pub fn describe(step: &Step, inputs: &Value) -> std::result::Result<String, String> {
    match lookup(&step.action) {
        Some(action) => (action.describe)(step, inputs),
        None => Err(format!("unknown action `{}`", step.action)),
    }
}

fn describe_generic(step: &Step, inputs: &Value) -> std::result::Result<String, String> {
    Ok(format!("run {} with {}", step.action, Value::Object(inputs.as_object().cloned().unwrap_or_default())))
}

fn describe_internal(step: &Step, _: &Value) -> std::result::Result<String, String> {
    Err(format!("`{}` is internal to AWS: its effect is unknown", step.action))
}

fn check_nothing(_: &Checked<'_>, _: &mut Vec<Diagnostic>) {}

/// A text input for a description: text as it is, anything else as JSON.
fn shown_text(inputs: &Value, key: &str) -> Option<String> {
    inputs.get(key).map(|value| value.as_str().map_or_else(|| value.to_string(), str::to_owned))
}

/// An input as compact JSON for a description (`{}` when absent).
fn shown_json(inputs: &Value, key: &str) -> String {
    inputs.get(key).map_or_else(|| "{}".to_owned(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_three_public_actions() {
        assert_eq!(public_names().count(), 23);
        assert!(lookup("aws:putServerUpgradeMetrics").unwrap().internal);
        assert!(lookup("aws:runShellScript").is_none());
        assert!(ACTIONS.iter().all(|action| action.internal || action.execute.is_some() || action.kind == Kind::Loop));
    }

    /// A pure action may run again (a crash before its one commit repeats it), asks nobody,
    /// and runs no script or child.
    #[test]
    fn pure_actions_are_safe_to_repeat_and_self_contained() {
        let pure: Vec<&str> = ACTIONS.iter().filter(|action| action.pure).map(|action| action.name).collect();
        assert_eq!(pure, ["aws:branch", "aws:sleep", "aws:updateVariable"]);
        for action in ACTIONS.iter().filter(|action| action.pure) {
            assert!(action.safe_to_repeat && action.self_contained && action.asks_person.is_none(), "{}", action.name);
            assert!(!action.runs_script && !matches!(action.kind, Kind::Loop | Kind::Child), "{}", action.name);
        }
    }
}
