//! `runbook run`, `runbook executions`, `runbook approve|reject|resume`: the command-line side
//! of running. Progress is drawn here; the engine only emits events.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{ColourChoice, ParameterArgs, UsageError, ci, exit, exit_for_fault};
use crate::exec::controls::{self, Controls, InjectedFailure, Walk};
use crate::exec::{self, Answer, Engine, Event, Interrupt, Observer, PrepareError, Status, WaitMode, dry_run};
use crate::journal::{self, EventKind, Journal, Store, WaitKind};
use crate::plan;
use crate::timeline::{Silent, Timeline};

/// Set by `main` when a person sits at the terminal (stdin and stderr are terminals).
pub static INTERACTIVE: AtomicBool = AtomicBool::new(false);

/// Where the journal lives.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The state directory holding the journal (default: $RUNBOOK_STATE_DIR, else
    /// $XDG_STATE_HOME/runbook, else ~/.local/state/runbook).
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Keep the journal and the locks in S3 instead, shared by every machine that names the
    /// same place: s3://BUCKET/PREFIX (default: $RUNBOOK_STATE). Credentials, region and
    /// endpoint come from the standard AWS configuration (AWS_PROFILE, AWS_REGION,
    /// AWS_ENDPOINT_URL_S3).
    #[arg(long, value_name = "s3://BUCKET/PREFIX", global = true, conflicts_with = "state_dir")]
    state: Option<String>,
}

impl StateArgs {
    /// The shared store named with --state or $RUNBOOK_STATE (--state-dir wins over the
    /// variable).
    fn shared(&self) -> Option<String> {
        if self.state_dir.is_some() {
            return None;
        }
        self.state.clone().or_else(|| std::env::var(journal::s3::STATE_VARIABLE).ok().filter(|url| !url.is_empty()))
    }

    pub fn open(&self) -> anyhow::Result<Store> {
        self.open_to(true)
    }

    /// Where documents fetched from SSM by name are cached: `documents/` in the state
    /// directory (on this machine, with an S3 store too).
    pub fn documents_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(journal::default_dir).join("documents")
    }

    /// The store; `write`: a new S3 store's format is written (a reader writes nothing).
    fn open_to(&self, write: bool) -> anyhow::Result<Store> {
        if let Some(url) = self.shared() {
            journal::s3::Location::parse(&url).map_err(UsageError)?;
            let client = crate::aws::Aws::new(crate::aws::Settings::default());
            return Ok(Store::S3(Box::new(journal::S3Store::open_with(&url, client, write)?)));
        }
        let dir = self.state_dir.clone().unwrap_or_else(journal::default_dir);
        let journal =
            Journal::open(&dir).with_context(|| format!("failed to open the journal in {}", dir.display()))?;
        Ok(Store::Local(journal))
    }

    /// The journal for reading, `None` where there is none yet (reading creates nothing):
    /// opened as usual, or, where it cannot be written (a read-only mount, another user's
    /// files), read-only, with a warning of what that cannot show.
    pub fn open_for_reading(&self, stderr: &mut dyn Write) -> anyhow::Result<Option<Store>> {
        if self.shared().is_some() {
            return self.open_to(false).map(Some);
        }
        let dir = self.state_dir.clone().unwrap_or_else(journal::default_dir);
        if !dir.join(journal::FILE_NAME).exists() {
            return Ok(None);
        }
        match self.open() {
            Ok(journal) => Ok(Some(journal)),
            Err(error) => match Journal::open_read_only(&dir) {
                Ok((journal, note)) => {
                    if let Some(note) = note {
                        writeln!(stderr, "warning: {note}")?;
                    }
                    Ok(Some(Store::Local(journal)))
                }
                Err(_) => Err(error),
            },
        }
    }

    fn dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(journal::default_dir)
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook file, or ssm:NAME[:VERSION] for an Automation document in SSM, fetched
    /// with GetDocument and cached in the state directory (with --resume, defaults to the file
    /// the execution ran; with --plan, to the file planned).
    #[arg(value_name = "FILE", required_unless_present_any = ["resume", "plan"])]
    path: Option<PathBuf>,
    #[command(flatten)]
    parameters: ParameterArgs,
    #[command(flatten)]
    state: StateArgs,
    /// Output: text for people (live progress on a terminal), one JSON event per line, or
    /// text for GitHub Actions (a log group per step, failures annotated at their line, a job
    /// summary).
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    format: RunFormat,
    /// Also write a JUnit XML report: one test case per step visit, failures with their error.
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    junit: Option<PathBuf>,
    /// Take this named lock (exclusive) before the first step, besides the runbook's x-locks;
    /// the run is refused while another execution holds it (repeatable).
    #[arg(long, value_name = "NAME", conflicts_with = "dry_run", value_parser = parse_lock_name)]
    lock: Vec<String>,
    /// Run exactly the plan `runbook plan FILE -p ... --out PLAN.json` saved: its runbook and
    /// parameters (give secret ones again with -p). Refused when the runbook or a parameter
    /// changed, or when another run applied under one of its locks since it was saved.
    #[arg(
        long,
        value_name = "PLAN.json",
        conflicts_with_all = [
            "dry_run", "resume", "idempotency_key", "params_file", "from", "outputs_from", "to", "only", "skip", "mock",
        ]
    )]
    plan: Option<PathBuf>,
    /// Wait up to this long (30s, 5m) for a lock another execution holds, with backoff.
    #[arg(long, value_name = "DURATION", value_parser = controls::parse_duration, default_value = "0s")]
    lock_timeout: std::time::Duration,
    /// Go on with an execution that stopped (crash, Ctrl-C, failure, waiting): steps that
    /// succeeded are restored from the journal, never run again. The id, a unique prefix of it,
    /// or `last`.
    #[arg(long, value_name = "EXECUTION_ID", conflicts_with = "dry_run")]
    resume: Option<String>,
    /// Run at most once per key: a second run with the same key resumes the first execution
    /// (or, if it succeeded, reports its result without running anything).
    #[arg(long, value_name = "KEY", conflicts_with = "dry_run")]
    idempotency_key: Option<String>,
    /// Resume even though the runbook file changed since the execution started.
    #[arg(long)]
    force: bool,
    /// Resume even though the journal lost records of the execution (a lost write-ahead log,
    /// deleted rows): steps whose records are lost run again.
    #[arg(long, requires = "resume")]
    accept_lost_records: bool,
    /// On resume, run this step again although its last attempt's outcome is unknown (repeatable).
    #[arg(long, value_name = "STEP")]
    rerun: Vec<String>,
    /// Answer every aws:approve with Approve and resume every aws:pause (for CI).
    #[arg(long, conflicts_with = "reject")]
    approve: bool,
    /// Answer every aws:approve with Reject (for CI).
    #[arg(long)]
    reject: bool,
    /// When a step waits for a person, keep waiting for `runbook approve|reject|resume` from
    /// another terminal instead of exiting with status 7 (on a terminal, the prompt also waits).
    #[arg(long)]
    wait: bool,
    /// Show what would run, every path it could take, without running anything. With
    /// `--dry-run=read-only`, API steps whose operation only reads (Describe, Get, List, an
    /// HTTP GET) are called for real so branches see real values; nothing else is called.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "offline", value_name = "MODE")]
    dry_run: Option<DryRunMode>,
    /// In a dry-run, or for a step that --from, --skip or --only leave out, the value of a
    /// step output: STEP.OUTPUT=JSON (repeatable; text that is not JSON is taken as a string).
    #[arg(long, value_name = "STEP.OUTPUT=JSON", value_parser = parse_mock)]
    mock: Vec<(String, String, Value)>,
    /// In a dry-run, a JSON or YAML file of mocked outputs: {STEP: {OUTPUT: VALUE}}.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    mocks: Option<PathBuf>,
    /// Keep a record of the dry-run in the journal (nothing else is written).
    #[arg(long, requires = "dry_run")]
    record: bool,
    /// With --dry-run: also write the paths explored as one self-contained HTML page (the
    /// plan graph with the steps some path reaches, each step's ways on, the rollback).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    report: Option<PathBuf>,
    #[command(flatten)]
    targets: TargetArgs,
    /// Where the steps run: here, or on SSM Automation (the runbook is published first, unless
    /// it is given as ssm:NAME; the execution is followed into the journal as a local one is).
    #[arg(
        long,
        value_enum,
        default_value_t = RunOn::Local,
        help_heading = "Runs on SSM",
        conflicts_with_all = [
            "dry_run", "plan", "lock", "from", "outputs_from", "to", "only", "skip", "mock", "inject_failure",
            "inject_timeout", "inject_delay", "cancel_at", "confirm_each", "pause_before", "rerun",
            "accept_lost_records",
        ],
    )]
    on: RunOn,
    #[command(flatten)]
    publish: super::publish::PublishTarget,
    #[command(flatten)]
    game_day: GameDayArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Colour diagnostics: auto, always, never.
    #[arg(long, value_enum, default_value_t = ColourChoice::Auto)]
    color: ColourChoice,
}

/// A run over targets, as StartAutomationExecution takes it: one child execution per target,
/// linked to a parent execution, at most MaxConcurrency at once.
#[derive(Debug, Args)]
#[command(next_help_heading = "Targets and rate control")]
pub struct TargetArgs {
    /// The parameter each target fills (StartAutomationExecution's TargetParameterName).
    #[arg(long, value_name = "PARAMETER", requires = "targets")]
    target_parameter_name: Option<String>,
    /// Targets, as the AWS CLI writes them: Key=ParameterValues,Values=i-1,i-2;
    /// Key=tag:NAME,Values=V1,V2 (resources with the tag, through the Resource Groups Tagging
    /// API); Key=ResourceGroup,Values=NAME (repeatable: tag keys must all match).
    #[arg(
        long,
        value_name = "Key=K,Values=V1,V2",
        value_parser = exec::targets::TargetKey::parse,
        requires = "target_parameter_name",
        conflicts_with_all = ["target_maps", "dry_run", "resume", "plan", "lock"]
    )]
    targets: Vec<exec::targets::TargetKey>,
    /// A JSON or YAML file with a list of maps, each the parameters of one child
    /// ([{InstanceId: [i-1], Mode: [fast]}, ...]).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "resume", "plan", "lock"])]
    target_maps: Option<PathBuf>,
    /// How many children run at once: a number, or a percent of the targets (default 10).
    #[arg(long, value_name = "N|N%", value_parser = exec::fan_out::Limit::parse, default_value = "10")]
    max_concurrency: exec::fan_out::Limit,
    /// How many children may fail before no more are launched: a number, or a percent of the
    /// targets (default 0: stop at the first error). Children already running finish.
    #[arg(long, value_name = "N|N%", value_parser = exec::fan_out::Limit::parse, default_value = "0")]
    max_errors: exec::fan_out::Limit,
}

impl TargetArgs {
    fn given(&self) -> bool {
        !self.targets.is_empty() || self.target_maps.is_some()
    }

    /// The targets, resolved (tags and groups through AWS) and typed by `runbook`.
    fn resolve(
        &self,
        runbook: &crate::document::model::Runbook,
        aws: &crate::aws::Aws,
    ) -> anyhow::Result<exec::fan_out::FanOut> {
        let control = exec::fan_out::RateControl { max_concurrency: self.max_concurrency, max_errors: self.max_errors };
        let (targets, described) = if let Some((file, maps)) = self.maps()? {
            let targets = exec::targets::from_maps(runbook, &maps).map_err(UsageError)?;
            (targets, format!("target maps from {}", file.display()))
        } else {
            let parameter = self.target_parameter_name.clone().unwrap_or_default();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (values, described) =
                runtime.block_on(exec::targets::resolve(aws, &self.targets)).map_err(anyhow::Error::msg)?;
            let targets = exec::targets::from_values(runbook, &parameter, &values).map_err(UsageError)?;
            (targets, format!("{parameter} over {described}"))
        };
        if targets.is_empty() {
            bail!(UsageError(format!("no targets: {described} resolved to none")));
        }
        Ok(exec::fan_out::FanOut { targets, control, described })
    }

    /// The target inputs of StartAutomationExecution, for a run over targets on SSM (SSM
    /// resolves tags and groups itself).
    fn to_api(&self) -> anyhow::Result<Option<serde_json::Map<String, Value>>> {
        if !self.given() {
            return Ok(None);
        }
        let mut inputs = serde_json::Map::new();
        if let Some((file, maps)) = self.maps()? {
            let api: Vec<Value> = maps
                .iter()
                .map(|map| match map {
                    Value::Object(map) => Ok(Value::Object(exec::remote::api_parameters(map))),
                    other => Err(UsageError(format!("target maps {}: {other} is not a map", file.display()))),
                })
                .collect::<Result<_, _>>()?;
            inputs.insert("TargetMaps".into(), Value::Array(api));
        } else {
            inputs.insert("TargetParameterName".into(), json!(self.target_parameter_name));
            inputs.insert("Targets".into(), self.targets.iter().map(exec::targets::TargetKey::to_api).collect());
        }
        inputs.insert("MaxConcurrency".into(), json!(self.max_concurrency.to_string()));
        inputs.insert("MaxErrors".into(), json!(self.max_errors.to_string()));
        Ok(Some(inputs))
    }

    /// `--target-maps FILE`, read: the file and its list of maps.
    fn maps(&self) -> anyhow::Result<Option<(&std::path::Path, Vec<Value>)>> {
        let Some(file) = &self.target_maps else { return Ok(None) };
        let loaded = crate::document::load_path(file).map_err(|e| UsageError(format!("{e:#}: {}", e.source)))?;
        if let Some(diagnostic) = loaded.diagnostics.iter().find(|d| d.is_error()) {
            bail!(UsageError(format!("target maps {}: {}", file.display(), diagnostic.message)));
        }
        let Some(Value::Array(maps)) = loaded.value else {
            bail!(UsageError(format!("target maps {}: expected a list of maps", file.display())));
        };
        Ok(Some((file, maps)))
    }
}

/// Where a run's steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunOn {
    /// In this process.
    Local,
    /// On SSM Automation, followed from here.
    Ssm,
}

/// Rehearsal controls: each is journaled and shown as injected or as an operator's action,
/// so a rehearsal is never taken for a real failure. Checked against the runbook before
/// anything runs.
#[derive(Debug, Args)]
#[command(next_help_heading = "Game day")]
pub struct GameDayArgs {
    /// STEP fails as if its action had failed: its retries, onFailure path and isCritical
    /// apply as for a real failure. `=CODE:MESSAGE` sets the error (default InjectedFailure);
    /// `@N` fails only its first N attempts, so a retry can succeed (repeatable).
    #[arg(long, value_name = "STEP[=CODE:MESSAGE][@N]", value_parser = InjectedFailure::parse, conflicts_with = "dry_run")]
    inject_failure: Vec<InjectedFailure>,
    /// STEP times out as if it ran past its timeoutSeconds (repeatable).
    #[arg(long, value_name = "STEP", conflicts_with = "dry_run")]
    inject_timeout: Vec<String>,
    /// STEP starts DURATION late (30s, 2m, 500ms), inside its time limit: a delay longer than
    /// timeoutSeconds times it out (repeatable).
    #[arg(long, value_name = "STEP=DURATION", value_parser = controls::parse_delay, conflicts_with = "dry_run")]
    inject_delay: Vec<(String, std::time::Duration)>,
    /// As if Ctrl-C came as STEP starts: the step is cancelled and the onCancel path runs.
    #[arg(long, value_name = "STEP", conflicts_with = "dry_run")]
    cancel_at: Option<String>,
    /// Start at STEP (a top-level step). Outputs of steps before it that later steps read come
    /// from --outputs-from or --mock STEP.OUTPUT=VALUE.
    #[arg(long, value_name = "STEP", conflicts_with_all = ["dry_run", "resume", "only", "idempotency_key"])]
    from: Option<String>,
    /// With --from, --skip or --only: the outputs of the steps left out, as a finished
    /// execution recorded them (its id, a unique prefix, or `last`).
    #[arg(long, value_name = "EXECUTION_ID", conflicts_with_all = ["dry_run", "resume"])]
    outputs_from: Option<String>,
    /// Stop after STEP ends.
    #[arg(long, value_name = "STEP", conflicts_with_all = ["dry_run", "resume", "idempotency_key"])]
    to: Option<String>,
    /// Run only STEP; every other step is skipped, loops around it excepted (repeatable).
    #[arg(long, value_name = "STEP", conflicts_with_all = ["dry_run", "resume", "skip", "idempotency_key"])]
    only: Vec<String>,
    /// Do not run STEP: it is recorded as Skipped and the walk goes on as after a success (a
    /// skipped branch takes its Default) (repeatable).
    #[arg(long, value_name = "STEP", conflicts_with_all = ["dry_run", "resume", "idempotency_key"])]
    skip: Vec<String>,
    /// On a terminal, before each step: run it, skip it, fail it or abort (as Ctrl-C).
    /// Each answer is journaled with who gave it.
    #[arg(long = "step", conflicts_with = "dry_run")]
    confirm_each: bool,
    /// Wait before STEP as aws:pause does: Enter on the terminal, or `runbook resume ID`
    /// from another (repeatable).
    #[arg(long, value_name = "STEP", conflicts_with = "dry_run")]
    pause_before: Vec<String>,
}

/// What steps reach while they run; shared by `run` and by `approve|reject|resume`, which go
/// on with an execution.
#[derive(Debug, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    aws: AwsArgs,
    /// Webhook integrations for aws:invokeWebhook, as a JSON or YAML file of
    /// {NAME: {url, headers, payload}}; a name found here is not looked up in Parameter Store.
    #[arg(long, value_name = "FILE")]
    integrations: Option<PathBuf>,
    /// How often steps that wait on AWS (waitForAwsResourceProperty, changeInstanceState,
    /// runCommand, ...) ask again, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    poll_interval: f64,
}

impl EngineArgs {
    /// The run's configuration with these settings.
    fn config(&self) -> anyhow::Result<exec::Config> {
        let poll_interval = std::time::Duration::try_from_secs_f64(self.poll_interval)
            .map_err(|_| UsageError(format!("--poll-interval {} is not a number of seconds", self.poll_interval)))?;
        Ok(exec::Config {
            aws: crate::aws::Aws::new(self.aws.settings()),
            poll_interval,
            integrations: std::sync::Arc::new(integrations(self.integrations.as_deref())?),
            ..exec::Config::default()
        })
    }
}

/// How to reach AWS; without these, the standard AWS configuration applies (AWS_PROFILE,
/// AWS_REGION, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, ~/.aws/config, SSO, IMDS).
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// Send every AWS call to this URL (an emulator such as moto, a VPC endpoint).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// The AWS region (else AWS_REGION or the profile's region).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The AWS profile from ~/.aws/config (else AWS_PROFILE).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

impl AwsArgs {
    pub fn settings(&self) -> crate::aws::Settings {
        crate::aws::Settings {
            endpoint_url: self.endpoint_url.clone(),
            profile: self.profile.clone(),
            region: self.region.clone(),
        }
    }
}

/// What a dry-run may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DryRunMode {
    /// Call nothing at all.
    Offline,
    /// Make the calls that only read, for real.
    ReadOnly,
}

/// What a run prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// For people: one line per fact, a live line on a terminal.
    Text,
    /// One JSON event per line.
    Json,
    /// For GitHub Actions: the text lines, a log group per step, an error annotation at the
    /// line of each step that failed, and a job summary in Markdown when GITHUB_STEP_SUMMARY
    /// is set.
    Github,
}

/// What `runbook executions list|show` print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
}

/// A `--lock` name, checked as an `x-locks` name is.
pub fn parse_lock_name(text: &str) -> Result<String, String> {
    journal::named::check_name(text).map(|()| text.to_owned())
}

fn parse_mock(text: &str) -> Result<(String, String, Value), String> {
    let (target, value) = text.split_once('=').ok_or_else(|| format!("expected STEP.OUTPUT=JSON, found `{text}`"))?;
    let (step, output) =
        target.split_once('.').ok_or_else(|| format!("expected STEP.OUTPUT before `=`, found `{target}`"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((step.to_owned(), output.to_owned(), value))
}

impl RunArgs {
    pub fn json(&self) -> bool {
        self.format == RunFormat::Json
    }
}

impl DecideArgs {
    pub fn json(&self) -> bool {
        self.format == RunFormat::Json
    }
}

impl ExecutionsCommand {
    pub fn json(&self) -> bool {
        match self {
            ExecutionsCommand::List { format, .. } | ExecutionsCommand::Show { format, .. } => {
                *format == ShowFormat::Json
            }
        }
    }
}

/// `runbook locks list --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LocksFormat {
    Text,
    Json,
}

/// `runbook locks`.
#[derive(Debug, Subcommand)]
pub enum LocksCommand {
    /// Every named lock held now: name, holder (an execution id), mode, fencing token, lease.
    List {
        /// text for people, or json: an array of grants (name, holder, mode, token,
        /// granted_at and expires_at in Unix milliseconds).
        #[arg(long, value_enum, default_value_t = LocksFormat::Text)]
        format: LocksFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Take a lock from its holder (as `terraform force-unlock`): the holder's next step is
    /// refused, its lease being lost.
    Release {
        name: String,
        /// The holder's execution id, as `runbook locks list` shows it.
        #[arg(long, value_name = "HOLDER")]
        force: String,
        #[command(flatten)]
        state: StateArgs,
    },
}

pub fn locks_command(command: LocksCommand, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    match command {
        LocksCommand::List { format, state } => {
            let journal = state.open()?;
            let grants = journal.named().grants()?;
            if format == LocksFormat::Json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&grants)?)?;
                return Ok(exit::SUCCESS);
            }
            for grant in grants {
                let left = (grant.expires_at - jiff::Timestamp::now().as_millisecond()).max(0) as f64 / 1000.0;
                writeln!(
                    stdout,
                    "{}  {}  {}  token {}  lease {left:.1} s left",
                    grant.name,
                    grant.holder,
                    grant.mode.as_str(),
                    grant.token
                )?;
            }
            Ok(exit::SUCCESS)
        }
        LocksCommand::Release { name, force, state } => {
            let journal = state.open()?;
            if !journal.named().force_release(&name, &force)? {
                bail!(UsageError(format!(
                    "lock `{name}` is not held by {force}: `runbook locks list` shows who holds it"
                )));
            }
            writeln!(stdout, "released lock `{name}` from {force}")?;
            Ok(exit::SUCCESS)
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ExecutionsCommand {
    /// The most recent executions, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// The timeline of one execution: each step with status, attempts, duration, outputs, error.
    Show {
        /// The execution's id, a unique prefix of it (`3f2a`), or `last`.
        #[arg(value_name = "EXECUTION_ID")]
        execution_id: String,
        /// Print what STEP printed (each attempt's stdout and stderr, whole as journaled)
        /// instead of the timeline.
        #[arg(long, value_name = "STEP")]
        logs: Option<String>,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The execution's id, a unique prefix of it, or `last`.
    #[arg(value_name = "EXECUTION_ID")]
    execution_id: String,
    /// Values the journal does not keep (secrets), for going on with the execution.
    #[command(flatten)]
    parameters: ParameterArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// A note journaled with the decision.
    #[arg(long)]
    comment: Option<String>,
    /// Only record the decision; do not go on with the execution here.
    #[arg(long)]
    no_continue: bool,
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    format: RunFormat,
    #[command(flatten)]
    state: StateArgs,
}

/// Exit status of a finished (or waiting) execution.
pub fn exit_code(status: Status) -> u8 {
    match status {
        Status::Success => exit::SUCCESS,
        Status::Failed
        | Status::Exited
        | Status::Pending
        | Status::InProgress
        | Status::Interrupted
        | Status::DryRun
        | Status::Skipped => exit::FAILED,
        Status::TimedOut => exit::TIMED_OUT,
        Status::Cancelled => exit::CANCELLED,
        Status::Waiting => exit::WAITING,
    }
}

pub fn run_command(
    args: RunArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    terminal_colour: bool,
) -> anyhow::Result<u8> {
    let colour = args.color.resolve(terminal_colour);
    let mut supplied = args.parameters.supplied()?.unwrap_or_default();
    let journal = if args.dry_run.is_some() && !args.record { None } else { Some(args.state.open()?) };
    let mut path = args.path.clone();
    let resume = match (&args.resume, &journal) {
        (Some(given), Some(journal)) => Some(journal.resolve_id(given)?),
        _ => None,
    };
    if let (Some(id), Some(journal)) = (&resume, &journal) {
        let execution = journal.execution(id)?;
        path.get_or_insert_with(|| PathBuf::from(&execution.runbook_path));
        supplied = exec::resume_parameters(&execution.parameters, supplied)?;
    }
    // An execution found again (resumed, or by its key) goes on as it ran: over the targets it
    // was started with, and here or on SSM.
    let found = match (&resume, &args.idempotency_key, &journal) {
        (Some(id), _, Some(_)) => Some(id.clone()),
        (None, Some(key), Some(journal)) => journal.find_by_key(key)?.map(|execution| execution.id),
        _ => None,
    };
    let mut fan_out = match (&found, &journal) {
        // Targets given again with the key start a new run over them.
        (Some(id), Some(journal)) if resume.is_some() || !args.targets.given() => {
            exec::fan_out::recorded(journal.journal(), id)?
        }
        _ => None,
    };
    let saved = match &args.plan {
        Some(plan_path) => Some(read_saved_plan(plan_path, &mut path, &mut supplied)?),
        None => None,
    };
    let Some(given_path) = path else { bail!(UsageError("give the runbook FILE".into())) };
    let mut remote = match (&found, &journal) {
        (Some(id), Some(journal)) => exec::remote::recorded(journal.journal(), id)?,
        _ => None,
    };
    if let Some(id) = &found
        && remote.is_none()
        && args.on == RunOn::Ssm
    {
        bail!(UsageError(format!("execution {id} ran here, not on SSM: go on with it without --on ssm")));
    }
    let on_ssm = remote.is_some() || args.on == RunOn::Ssm;
    let engine_config = args.engine.config()?;
    let (path, fetched) = named_document(given_path.clone(), &args.state, &engine_config.aws, stderr)?;
    if args.targets.given() && !on_ssm {
        // The runbook as written, to resolve and type the targets by.
        let written = match exec::prepare(&path, supplied.clone(), false) {
            Ok(written) => written,
            Err(PrepareError::Io(error)) => return Err(error).context("failed to read the runbook"),
            Err(PrepareError::Invalid(validated)) => {
                return super::report_invalid(&validated, args.format == RunFormat::Json, colour, stdout, stderr);
            }
        };
        fan_out = Some(args.targets.resolve(&written.runbook, &engine_config.aws)?);
    }
    // Each child gets its target's values; the runbook is checked with the first target's.
    if let Some(first) = fan_out.as_ref().and_then(|fan_out| fan_out.targets.first()) {
        for (name, value) in &first.parameters {
            supplied.retain(|(given, _)| given != name);
            supplied.push((name.clone(), crate::validate::Supplied::Json(value.clone())));
        }
    }
    // On SSM, the target parameter is SSM's to give.
    let ssm_targets = remote.as_ref().map_or(on_ssm && args.targets.given(), |remote| remote.targets.is_some());
    let required = args.dry_run.is_none() && !ssm_targets;
    let mut prepared = match exec::prepare(&path, supplied, required) {
        Ok(prepared) => prepared,
        Err(PrepareError::Io(error)) => return Err(error).context("failed to read the runbook"),
        Err(PrepareError::Invalid(validated)) => {
            return super::report_invalid(&validated, args.format == RunFormat::Json, colour, stdout, stderr);
        }
    };
    // Published (when given as a file) only once the runbook and its values are known good.
    if remote.is_none() && args.on == RunOn::Ssm {
        remote = match run_on_ssm(&args, &given_path, fetched, &engine_config.aws, stdout, stderr)? {
            Ok(remote) => Some(remote),
            Err(code) => return Ok(code),
        };
    }
    if args.dry_run.is_some() {
        // Valid: a dry-run reports nothing more from the text.
        prepared.validated.release_text();
    }
    let planned = plan::plan(&prepared.runbook);
    if args.dry_run.is_some() {
        return dry_run_command(&args, &prepared, &planned, journal.as_ref(), stdout);
    }
    let mut locks = args.lock.clone();
    if let Some(saved) = &saved {
        check_saved_plan(saved, &prepared)?;
        if let Some(journal) = &journal
            && !journal.named().plan_recorded(&saved.digest)?
        {
            let shown = args.plan.as_ref().map(|path| path.display().to_string()).unwrap_or_default();
            let now = journal.describe();
            return Err(exec::Error::StalePlan(plan::saved::Stale::Unknown {
                path: shown,
                saved: saved.store.clone(),
                now,
            })
            .into());
        }
        // The locks it was planned with that are not the runbook's own came from --lock.
        let own =
            plan::saved::lock_names(&prepared.runbook, &prepared.validated.parameters, &[]).map_err(UsageError)?;
        locks.extend(saved.locks.iter().map(|lock| lock.name.clone()).filter(|name| !own.contains(name)));
    }
    let Some(journal) = journal else { unreachable!("a real run opens the journal") };
    let (controls, given_secrets) = game_day_controls(&args, &journal, &planned)?;
    if remote.is_some() && (!controls.is_empty() || !args.rerun.is_empty() || args.accept_lost_records) {
        bail!(UsageError(
            "game-day controls, --rerun and --accept-lost-records act on local runs; this one runs on SSM".into()
        ));
    }
    controls.check(&planned).map_err(UsageError)?;
    let mut config = exec::Config {
        resume,
        idempotency_key: args.idempotency_key.clone(),
        force: args.force,
        accept_lost_records: args.accept_lost_records,
        rerun: args.rerun.clone(),
        answer: match (args.approve, args.reject) {
            (true, _) => Some(Answer::Approve),
            (_, true) => Some(Answer::Reject),
            _ => None,
        },
        wait: wait_mode(args.wait),
        controls,
        locks,
        lock_timeout: args.lock_timeout,
        saved_plan: saved,
        documents: Some(args.state.documents_dir()),
        ..engine_config
    };
    config.secrets.extend(given_secrets);
    let report = Report {
        undo: false,
        fan_out: fan_out.as_ref(),
        remote: remote.as_ref(),
        format: args.format,
        junit: args.junit.as_deref(),
        prepared: &prepared,
    };
    drive(&prepared.request(&planned), &config, &journal, &report, stdout, stderr)
}

/// `run --on ssm`: the document to start: `ssm:NAME` at the version fetched (what the plan
/// here is), or FILE published first; `Err(code)` after saying why FILE cannot be published.
fn run_on_ssm(
    args: &RunArgs,
    path: &std::path::Path,
    fetched: Option<crate::ssm::documents::Fetched>,
    aws: &crate::aws::Aws,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<Result<exec::remote::Remote, u8>> {
    let targets = args.targets.to_api()?;
    if let Some(fetched) = fetched {
        return Ok(Ok(exec::remote::Remote::new(fetched.name, Some(fetched.version), targets)));
    }
    let json = args.format == RunFormat::Json;
    let ready = match super::publish::ready(path, &args.publish, json, stdout, stderr)? {
        Ok(ready) => ready,
        Err(code) => return Ok(Err(code)),
    };
    for warning in &ready.warnings {
        writeln!(stderr, "warning: {warning}")?;
    }
    let published = super::publish::publish_ready(&ready, &args.publish, aws)?;
    writeln!(stderr, "{} version {} ({})", ready.name, published.version(), published.action())?;
    Ok(Ok(exec::remote::Remote::new(ready.name, Some(published.version().to_owned()), targets)))
}

/// FILE as given, or for `ssm:NAME[:VERSION]`, the document fetched from SSM into the cache
/// (a numbered version already there is not fetched again).
pub fn named_document(
    path: PathBuf,
    state: &StateArgs,
    aws: &crate::aws::Aws,
    stderr: &mut dyn Write,
) -> anyhow::Result<(PathBuf, Option<crate::ssm::documents::Fetched>)> {
    use crate::ssm::documents;
    let Some(reference) = path.to_str().and_then(documents::Reference::parse) else { return Ok((path, None)) };
    let reference = reference.map_err(|error| UsageError(error.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let fetched = runtime.block_on(documents::fetch(aws, &state.documents_dir(), &reference))?;
    let how = if fetched.cached { "cached" } else { "fetched" };
    writeln!(stderr, "{reference}: version {} {how} as {}", fetched.version, fetched.path.display())?;
    Ok((fetched.path.clone(), Some(fetched)))
}

/// `run --plan`: the saved plan read (refused when edited), its runbook and parameters taken,
/// with the values given again with -p on top (checked once typed).
fn read_saved_plan(
    plan_path: &std::path::Path,
    path: &mut Option<PathBuf>,
    supplied: &mut Vec<(String, crate::validate::Supplied)>,
) -> anyhow::Result<plan::saved::SavedPlan> {
    let shown = plan_path.display().to_string();
    let text = std::fs::read_to_string(plan_path).with_context(|| format!("failed to read the plan {shown}"))?;
    let saved = plan::saved::SavedPlan::read(&shown, &text).map_err(exec::Error::StalePlan)?;
    path.get_or_insert_with(|| PathBuf::from(&saved.runbook));
    let given = std::mem::take(supplied);
    let missing: Vec<String> =
        saved.secrets.iter().filter(|name| !given.iter().any(|(given, _)| given == *name)).cloned().collect();
    if !missing.is_empty() {
        return Err(exec::Error::SecretNotKept { names: missing }.into());
    }
    supplied.extend(
        saved.parameters.iter().map(|(name, value)| (name.clone(), crate::validate::Supplied::Json(value.clone()))),
    );
    for (name, value) in given {
        supplied.retain(|(existing, _)| *existing != name);
        supplied.push((name, value));
    }
    Ok(saved)
}

/// The runbook is the one planned, and every value is the one planned (once typed).
fn check_saved_plan(saved: &plan::saved::SavedPlan, prepared: &exec::Prepared) -> Result<(), exec::Error> {
    saved.check_runbook(&prepared.hash)?;
    for (name, value) in &prepared.validated.parameters {
        saved.check_parameter(name, value)?;
    }
    Ok(())
}

/// The game-day controls given, with the outputs of the steps the walk leaves out.
/// Also returns the values given with `--mock` for outputs that held a secret in the
/// `--outputs-from` execution: they are secrets of this run too.
fn game_day_controls(
    args: &RunArgs,
    journal: &Store,
    planned: &plan::Plan<'_>,
) -> anyhow::Result<(Controls, Vec<Value>)> {
    let game = &args.game_day;
    let mut walk = Walk {
        from: game.from.clone(),
        to: game.to.clone(),
        only: game.only.clone(),
        skip: game.skip.clone(),
        ..Walk::default()
    };
    let leaves_out = walk.from.is_some() || !walk.only.is_empty() || !walk.skip.is_empty();
    if !leaves_out && (game.outputs_from.is_some() || !args.mock.is_empty()) {
        bail!(UsageError(
            "--mock and --outputs-from give the outputs of steps a run leaves out: use them with --dry-run, \
             --from, --skip or --only"
                .into()
        ));
    }
    let mut sealed: Vec<String> = Vec::new();
    if let Some(given) = &game.outputs_from {
        let id = journal.resolve_id(given)?;
        if journal.execution(&id)?.dry_run {
            bail!(UsageError(format!("--outputs-from {given}: execution {id} was a dry-run, which has no outputs")));
        }
        for record in journal.steps(&id)? {
            // Steps of another runbook, or renamed since, give nothing.
            if record.status != Status::Success || record.iteration != 0 || planned.find(&record.step).is_none() {
                continue;
            }
            let Value::Object(mut outputs) = record.outputs else { continue };
            // An output that held a secret was not kept: it counts as not given.
            sealed.extend(record.sealed.iter().map(|name| format!("{}.{name}", record.step)));
            outputs.retain(|name, _| !record.sealed.contains(name));
            walk.outputs.insert(record.step, Value::Object(outputs));
        }
        walk.outputs_from = Some(id);
    }
    let mut secrets = Vec::new();
    for (step, output, value) in &args.mock {
        let outputs = walk.outputs.entry(step.clone()).or_insert_with(|| json!({}));
        outputs[output.as_str()] = value.clone();
        if sealed.contains(&format!("{step}.{output}")) {
            secrets.push(value.clone());
        }
    }
    if game.confirm_each && !INTERACTIVE.load(Ordering::Relaxed) {
        bail!(UsageError(
            "--step asks before each step on a terminal, and this is none: run it on one, or pause at chosen steps \
             with --pause-before STEP"
                .into()
        ));
    }
    let controls = Controls {
        failures: game.inject_failure.clone(),
        timeouts: game.inject_timeout.clone(),
        delays: game.inject_delay.clone(),
        cancel_at: game.cancel_at.clone(),
        walk,
        confirm_each: game.confirm_each,
        pause_before: game.pause_before.clone(),
    };
    Ok((controls, secrets))
}

/// The local webhook integrations file: `{NAME: {url, headers, payload}}`.
fn integrations(path: Option<&std::path::Path>) -> anyhow::Result<serde_json::Map<String, Value>> {
    let Some(path) = path else { return Ok(serde_json::Map::new()) };
    let loaded = crate::document::load_path(path).map_err(|e| UsageError(format!("{e:#}: {}", e.source)))?;
    match loaded.value {
        Some(Value::Object(integrations)) if integrations.values().all(Value::is_object) => Ok(integrations),
        _ => bail!(UsageError(format!(
            "integrations file {} must hold {{NAME: {{url: ..., headers: ..., payload: ...}}}}",
            path.display()
        ))),
    }
}

fn wait_mode(wait: bool) -> WaitMode {
    if INTERACTIVE.load(Ordering::Relaxed) {
        WaitMode::Prompt
    } else if wait {
        WaitMode::Poll
    } else {
        WaitMode::Exit
    }
}

/// How a run reports, besides its events, and what it does.
struct Report<'a> {
    /// `runbook undo`: roll the execution back instead of running it.
    undo: bool,
    /// A run over targets: a child per target instead of one execution.
    fan_out: Option<&'a exec::fan_out::FanOut>,
    /// A run on SSM Automation, followed from here.
    remote: Option<&'a exec::remote::Remote>,
    format: RunFormat,
    junit: Option<&'a std::path::Path>,
    /// The runbook as validated: where its steps are, for annotations.
    prepared: &'a exec::Prepared,
}

/// Runs on a current-thread runtime with Ctrl-C, SIGTERM and SIGHUP wired to the cancel
/// signal: the first cancels (the cancel path runs), a second stops at once. Either way the
/// journal says what happened and no script outlives the run.
fn drive(
    request: &exec::Request<'_>,
    config: &exec::Config,
    journal: &Store,
    report: &Report<'_>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (cancel, cancelled) = tokio::sync::watch::channel(Interrupt::None);
    let mut printer = Printer::new(stdout, report.format, config.wait == WaitMode::Prompt);
    // "step k of n" for the top runbook's steps, in document order (loop bodies included).
    printer.positions =
        request.plan.steps().enumerate().map(|(at, id)| (request.plan.step(id).name.clone(), at + 1)).collect();
    printer.runbook = request.path.display().to_string();
    if report.format == RunFormat::Github {
        let steps: Vec<_> = request.plan.steps().map(|id| request.plan.step(id)).collect();
        let pointers: Vec<&str> = steps.iter().map(|step| step.pointer.as_str()).collect();
        let locations = report.prepared.validated.locate_each(&pointers);
        printer.step_lines = steps
            .iter()
            .zip(locations)
            .filter_map(|(step, location)| Some((step.name.clone(), location?.line)))
            .collect();
    }
    let terminal = Terminal::default();
    let mut engine = Engine::new(journal, &printer);
    if config.wait == WaitMode::Prompt {
        engine.prompt = Some(&terminal);
    }
    let result = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed before the run starts, so no signal finds the default action (death).
        let (mut interrupt, mut terminate, mut hangup) =
            (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?, signal(SignalKind::hangup())?);
        let signals = tokio::spawn(async move {
            for level in [Interrupt::Cancel, Interrupt::Stop, Interrupt::Stop] {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                    _ = hangup.recv() => {}
                }
                if cancel.send_replace(level) == Interrupt::Stop {
                    // A third while the stop is under way: leave at once, as SIGKILL would
                    // (scripts still die with the engine).
                    std::process::exit(i32::from(exit::CANCELLED));
                }
            }
        });
        let result = if report.undo {
            exec::undo(request, config, &engine, cancelled).await
        } else if let Some(remote) = report.remote {
            exec::remote::run(request, config, &engine, cancelled, remote).await
        } else if let Some(fan_out) = report.fan_out {
            exec::fan_out::run(request, config, &engine, cancelled, fan_out).await
        } else {
            exec::run(request, config, &engine, cancelled).await
        };
        signals.abort();
        Ok::<_, std::io::Error>(result)
    })?;
    printer.stop();
    // A prompt's reader thread may still block on stdin; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(finished) => {
            printer.summary(&finished, journal);
            printer.ci_reports(&finished, report.junit)?;
            Ok(exit_code(finished.status))
        }
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            if let Some(help) = error.help() {
                let _ = writeln!(stderr, "  help: {help}");
            }
            Ok(exit_for_fault(error.fault()))
        }
    }
}

/// The terminal, for approvals, pauses and `--step`: lines typed on stdin, read by one
/// thread from the first question on, and kept in order until asked for (a line typed ahead
/// answers the next question).
#[derive(Default)]
struct Terminal {
    lines: std::sync::OnceLock<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl exec::Prompt for Terminal {
    fn next_line(&self) -> crate::actions::BoxFuture<'_, Option<String>> {
        let lines = self.lines.get_or_init(|| {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            // A plain thread: a blocked read cannot be cancelled, and the process ends
            // without joining it.
            std::thread::spawn(move || {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|read| read > 0) {
                    if sender.send(std::mem::take(&mut line)).is_err() {
                        break;
                    }
                }
            });
            tokio::sync::Mutex::new(receiver)
        });
        Box::pin(async move { lines.lock().await.recv().await })
    }

    fn not_an_answer(&self, line: &str, kind: WaitKind) {
        let answers = match kind {
            WaitKind::Pause => "press Enter to resume, or type r to end",
            _ => "type a (approve) or r (reject)",
        };
        eprintln!("`{line}` is not an answer: {answers}");
    }

    /// On a line of its own: the live line's redraw would erase a question left open.
    fn ask_step(&self, step: &str, action: &str, again: Option<&str>) {
        if let Some(line) = again {
            eprintln!("`{line}` is not an answer");
        }
        eprintln!("next: {step} ({action}): Enter runs it, or [s]kip, [f]ail it, [a]bort?");
    }
}

fn dry_run_command(
    args: &RunArgs,
    prepared: &exec::Prepared,
    planned: &plan::Plan<'_>,
    journal: Option<&Store>,
    stdout: &mut dyn Write,
) -> anyhow::Result<u8> {
    let mut mocks: dry_run::Mocks = HashMap::new();
    if let Some(file) = &args.mocks {
        let loaded = crate::document::load_path(file).map_err(|e| UsageError(format!("{e:#}: {}", e.source)))?;
        let Some(Value::Object(steps)) = loaded.value else {
            bail!(UsageError(format!("mocks file {} must hold {{STEP: {{OUTPUT: VALUE}}}}", file.display())));
        };
        for (step, outputs) in steps {
            let Value::Object(outputs) = outputs else {
                bail!(UsageError(format!("mocks file {}: `{step}` must map output names to values", file.display())));
            };
            mocks.entry(step).or_default().extend(outputs);
        }
    }
    for (step, output, value) in &args.mock {
        mocks.entry(step.clone()).or_default().insert(output.clone(), value.clone());
    }
    for step in mocks.keys() {
        if planned.find(step).is_none() {
            let names = planned.steps().map(|id| planned.step(id).name.as_str());
            let hint = crate::diagnostic::did_you_mean(step, names);
            bail!(UsageError(format!("a mock names step `{step}`, which the runbook does not have{hint}")));
        }
    }
    let bound = plan::values::bind(&prepared.runbook, &prepared.validated.parameters, &plan::values::NothingKnown);
    let tree = if args.dry_run == Some(DryRunMode::ReadOnly) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let aws = crate::aws::Aws::new(args.engine.aws.settings());
        // Said once, and not a dry-run that looks as if it had read.
        if crate::actions::calls_aws(&prepared.runbook) {
            runtime
                .block_on(aws.check_ready())
                .map_err(|error| anyhow::anyhow!("--dry-run=read-only reads from AWS, and cannot: {error}"))?;
        }
        let reader = |service: &str, api: &str, params: &serde_json::Map<String, Value>| {
            let call = crate::aws::Call { service, api, params, role: None, token_seed: "dry-run" };
            runtime.block_on(aws.call(&call)).map_err(|error| error.to_string())
        };
        dry_run::dry_run_with(planned, &bound, &mocks, Some(&reader))
    } else {
        dry_run::dry_run(planned, &bound, &mocks)
    };
    let name = prepared.path.display().to_string();
    match args.format {
        RunFormat::Text | RunFormat::Github => {
            let mut out = super::buffered(stdout);
            dry_run::write_text(&tree, &name, &mut out)?;
            out.flush()?;
        }
        RunFormat::Json => {
            let mut out = super::buffered(stdout);
            dry_run::write_json(&tree, &name, &mut out).map_err(std::io::Error::from)?;
            writeln!(out)?;
            out.flush()?;
        }
    }
    if let Some(file) = &args.report {
        let page = crate::report::html::dry_run(planned, &tree, &name).map_err(anyhow::Error::msg)?;
        std::fs::write(file, page).with_context(|| format!("failed to write the report to {}", file.display()))?;
    }
    if let Some(journal) = journal {
        let id = uuid::Uuid::new_v4().to_string();
        // Through a timeline like every other record: the stored parameters are redacted.
        let timeline = Timeline::new(&id, journal.journal(), &Silent, exec::Redactor::new(prepared.secrets()));
        timeline.created(
            &journal::Execution {
                id: id.clone(),
                runbook_path: name.clone(),
                runbook_hash: prepared.hash.clone(),
                parameters: Value::Object(prepared.validated.parameters.clone()),
                status: Status::DryRun,
                started_at: journal::now(),
                ended_at: Some(journal::now()),
                idempotency_key: None,
                parent_id: None,
                parent_step: None,
                dry_run: true,
                outputs: Some(json!({ "paths": tree.paths, "nodes": tree.nodes.len() })),
                error: None,
            },
            &Value::Null,
        )?;
        if args.format == RunFormat::Text {
            writeln!(stdout, "\nRecorded as dry-run {id}")?;
        }
    }
    Ok(exit::SUCCESS)
}

pub fn executions_command(
    command: ExecutionsCommand,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<u8> {
    match command {
        ExecutionsCommand::List { limit, format, state } => {
            let journal = state.open_for_reading(stderr)?;
            let (executions, malformed) = match &journal {
                Some(journal) => journal.list(limit)?,
                None => Default::default(),
            };
            // One damaged row does not hide the others: it is named, and the list goes on.
            for (id, error) in &malformed {
                writeln!(stderr, "warning: execution {id} could not be read: {error}")?;
            }
            if format == ShowFormat::Json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&executions)?)?;
                return Ok(exit::SUCCESS);
            }
            if executions.is_empty() {
                writeln!(stdout, "No executions in {}", state.dir().display())?;
            }
            for execution in executions {
                let kind = if execution.dry_run { " (dry-run)" } else { "" };
                writeln!(
                    stdout,
                    "{}  {:<10} {}  {}{kind}",
                    execution.id, execution.status, execution.started_at, execution.runbook_path
                )?;
            }
            Ok(exit::SUCCESS)
        }
        ExecutionsCommand::Show { execution_id, logs, format, state } => {
            let Some(journal) = state.open_for_reading(stderr)? else {
                return Err(journal::Error::NotFound(execution_id).into());
            };
            let execution_id = journal.resolve_id(&execution_id)?;
            let execution = journal.execution(&execution_id)?;
            let steps = journal.steps(&execution_id)?;
            let attempts = journal.attempts(&execution_id)?;
            if let Some(step) = logs {
                return write_logs(stdout, &execution_id, &step, &steps, &attempts, format);
            }
            let children = journal.children(&execution_id)?;
            if format == ShowFormat::Json {
                let document = json!({
                    "execution": execution,
                    "steps": steps,
                    "attempts": attempts,
                    "children": children.iter().map(|c| &c.id).collect::<Vec<_>>(),
                    "events": journal.events(&execution_id)?,
                });
                writeln!(stdout, "{}", serde_json::to_string_pretty(&document)?)?;
                return Ok(exit::SUCCESS);
            }
            let events = journal.events(&execution_id)?;
            write_timeline(stdout, &execution, &steps, &attempts, &children, &events)?;
            Ok(exit::SUCCESS)
        }
    }
}

/// `executions show ID --logs STEP`: each attempt's log, whole.
fn write_logs(
    out: &mut dyn Write,
    execution_id: &str,
    step: &str,
    steps: &[journal::StepRecord],
    attempts: &[journal::Attempt],
    format: ShowFormat,
) -> anyhow::Result<u8> {
    let chosen: Vec<&journal::Attempt> = attempts.iter().filter(|attempt| attempt.step == step).collect();
    if chosen.is_empty() {
        let names = steps.iter().map(|record| record.step.as_str());
        let hint = crate::diagnostic::did_you_mean(step, names);
        bail!(UsageError(format!("execution {execution_id} has no attempt of step `{step}`{hint}")));
    }
    if format == ShowFormat::Json {
        let logs: Vec<Value> = chosen
            .iter()
            .map(|attempt| json!({"iteration": attempt.iteration, "attempt": attempt.attempt, "log": attempt.log}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&logs)?)?;
        return Ok(exit::SUCCESS);
    }
    for attempt in chosen {
        let iteration = if attempt.iteration > 0 { format!(" iteration {}", attempt.iteration) } else { String::new() };
        writeln!(out, "== {step}{iteration} attempt {} ({})", attempt.attempt, attempt.status)?;
        match attempt.log.as_deref() {
            Some(log) if !log.is_empty() => write!(out, "{log}{}", if log.ends_with('\n') { "" } else { "\n" })?,
            _ => writeln!(out, "(printed nothing)")?,
        }
    }
    Ok(exit::SUCCESS)
}

fn write_timeline(
    out: &mut dyn Write,
    execution: &journal::Execution,
    steps: &[journal::StepRecord],
    attempts: &[journal::Attempt],
    children: &[journal::Execution],
    events: &[journal::Event],
) -> anyhow::Result<()> {
    writeln!(out, "Execution {}", execution.id)?;
    writeln!(out, "  runbook   {}", execution.runbook_path)?;
    writeln!(out, "  status    {}", execution.status)?;
    writeln!(out, "  started   {}", execution.started_at)?;
    if let Some(ended) = &execution.ended_at {
        writeln!(out, "  ended     {ended} ({})", duration_between(&execution.started_at, ended))?;
    }
    if let Some(parent) = &execution.parent_id {
        writeln!(out, "  parent    {parent} (step {})", execution.parent_step.as_deref().unwrap_or("?"))?;
    }
    let remote = events
        .iter()
        .find(|event| event.kind == EventKind::ExecutionCreated)
        .map(|event| &event.detail["remote"])
        .filter(|remote| !remote.is_null());
    if let Some(remote) = remote {
        let id = events.iter().find_map(|event| event.detail["automation_execution_id"].as_str());
        let document = remote["document"].as_str().unwrap_or("?");
        let version = remote["version"].as_str().map_or("default version".to_owned(), |v| format!("version {v}"));
        writeln!(out, "  on SSM    {} (document {document}, {version})", id.unwrap_or("not started yet"))?;
    }
    if execution.parameters.as_object().is_some_and(|p| !p.is_empty()) {
        writeln!(out, "  parameters {}", execution.parameters)?;
    }
    writeln!(out, "\nSteps")?;
    // In the order they started: a loop's row is written when it ends, after its body's, but
    // it started first (and before a body step that started in the same millisecond).
    let mut steps: Vec<&journal::StepRecord> = steps.iter().collect();
    let is_loop = |step: &journal::StepRecord| crate::actions::kind_of(&step.action) == crate::actions::Kind::Loop;
    steps.sort_by(|a, b| a.started_at.cmp(&b.started_at).then_with(|| is_loop(b).cmp(&is_loop(a))));
    for step in steps {
        let iteration = if step.iteration > 0 { format!(" #{}", step.iteration) } else { String::new() };
        writeln!(
            out,
            "  {:<10} {}{iteration} ({})  {} attempt{}  {}",
            step.status,
            step.step,
            step.action,
            step.attempts,
            if step.attempts == 1 { "" } else { "s" },
            duration_between(&step.started_at, &step.ended_at),
        )?;
        if let Some(shown) = shown_outputs(&step.outputs) {
            writeln!(out, "             outputs {shown}")?;
        }
        if let Some(error) = &step.error {
            writeln!(out, "             error   {error}")?;
        }
    }
    for attempt in attempts {
        let iteration = if attempt.iteration > 0 { format!(" #{}", attempt.iteration) } else { String::new() };
        if attempt.ended_at.is_none() {
            writeln!(
                out,
                "  {:<10} {}{iteration} attempt {} started {} and never finished",
                "Unknown", attempt.step, attempt.attempt, attempt.started_at
            )?;
        } else if attempt.status == Status::Interrupted {
            writeln!(
                out,
                "  {:<10} {}{iteration} attempt {} started {}; the engine stopped while it ran",
                "Interrupted", attempt.step, attempt.attempt, attempt.started_at
            )?;
        }
    }
    let controls: Vec<&journal::Event> = events.iter().filter(|event| event.kind == EventKind::Control).collect();
    if !controls.is_empty() {
        writeln!(out, "\nControls and rollbacks (an injected fault or an operator's action is not a real failure)")?;
        for event in controls {
            let control = event.detail["control"].as_str().unwrap_or("?");
            let text = event.detail["text"].as_str().unwrap_or_default();
            writeln!(out, "  {}  {control:<15} {text}", event.at)?;
        }
    }
    let targets: Vec<&journal::Event> = events
        .iter()
        .filter(|event| event.kind == EventKind::ChildLinked && event.detail["target"].is_string())
        .collect();
    if !targets.is_empty() {
        writeln!(out, "\nTargets")?;
        for event in targets {
            let (target, status) = (event.detail["target"].as_str().unwrap_or("?"), event.detail["status"].as_str());
            let child = event.detail["child_id"].as_str().unwrap_or_default();
            let error = event.detail["error"].as_str().map(|error| format!(": {error}")).unwrap_or_default();
            writeln!(out, "  {:<10} {target}  {child}{error}", status.unwrap_or("?"))?;
        }
    }
    if !children.is_empty() {
        writeln!(out, "\nChild executions")?;
        for child in children {
            writeln!(out, "  {} {} (step {})", child.id, child.status, child.parent_step.as_deref().unwrap_or("?"))?;
        }
    }
    if let Some(outputs) = execution.outputs.as_ref().and_then(Value::as_object).filter(|o| !o.is_empty()) {
        writeln!(out, "\nOutputs")?;
        for (name, value) in outputs {
            writeln!(out, "  {name} = {value}")?;
        }
    }
    if let Some(error) = &execution.error {
        writeln!(out, "\n{error}")?;
    }
    Ok(())
}

fn duration_between(start: &str, end: &str) -> String {
    match (start.parse::<jiff::Timestamp>(), end.parse::<jiff::Timestamp>()) {
        (Ok(start), Ok(end)) => format!("{:.3}s", end.duration_since(start).as_secs_f64()),
        _ => "?".into(),
    }
}

/// `runbook undo ID`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The execution's id, a unique prefix of it, or `last`.
    #[arg(value_name = "EXECUTION_ID")]
    execution_id: String,
    /// Values the journal does not keep (secrets) that the undos need.
    #[command(flatten)]
    parameters: ParameterArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Undo with the runbook as it is now, although it changed since the execution ran.
    #[arg(long)]
    force: bool,
    /// Run this undo (`undo:NAME`) again although its last attempt's outcome is unknown (the
    /// engine stopped while it ran; repeatable).
    #[arg(long, value_name = "undo:STEP")]
    rerun: Vec<String>,
    /// Output: text, one JSON event per line, or text for GitHub Actions.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    format: RunFormat,
    #[command(flatten)]
    state: StateArgs,
}

impl UndoArgs {
    pub fn json(&self) -> bool {
        self.format == RunFormat::Json
    }
}

pub fn undo_command(args: UndoArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let journal = args.state.open()?;
    let execution_id = journal.resolve_id(&args.execution_id)?;
    let execution = journal.execution(&execution_id)?;
    if exec::remote::recorded(journal.journal(), &execution_id)?.is_some() {
        bail!(UsageError(format!(
            "execution {execution_id} ran on SSM Automation, which has no undo: `runbook undo` rolls back local runs"
        )));
    }
    let supplied = exec::resume_parameters(&execution.parameters, args.parameters.supplied()?.unwrap_or_default())?;
    let path = PathBuf::from(&execution.runbook_path);
    let prepared = match exec::prepare(&path, supplied, true) {
        Ok(prepared) => prepared,
        Err(PrepareError::Io(error)) => return Err(error).context("failed to read the runbook"),
        Err(PrepareError::Invalid(validated)) => {
            return super::report_invalid(&validated, args.json(), false, stdout, stderr);
        }
    };
    let planned = plan::plan(&prepared.runbook);
    let config = exec::Config {
        resume: Some(execution_id),
        force: args.force,
        rerun: args.rerun.clone(),
        wait: wait_mode(false),
        documents: Some(args.state.documents_dir()),
        ..args.engine.config()?
    };
    let report =
        Report { undo: true, fan_out: None, remote: None, format: args.format, junit: None, prepared: &prepared };
    drive(&prepared.request(&planned), &config, &journal, &report, stdout, stderr)
}

/// `runbook approve|reject|resume ID`: records the decision for the step the execution waits
/// on and, unless another process drives it (or --no-continue), goes on with it here.
pub fn decide_command(
    answer: Answer,
    resume: bool,
    args: DecideArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<u8> {
    let journal = args.state.open()?;
    let by = exec::current_user();
    let execution_id = journal.resolve_id(&args.execution_id)?;
    let waiting = journal.journal().waiting_on(&execution_id)?;
    let decided =
        exec::decide(journal.journal(), journal.locks(), &execution_id, answer, resume, &by, args.comment.clone())?;
    match &decided.decision {
        Some((decision, true)) => {
            writeln!(stderr, "recorded {} for step `{}` of {execution_id}", decision.decision, decision.step)?
        }
        Some((decision, false)) => writeln!(stderr, "step `{}` already has a decision; it stands", decision.step)?,
        None => {}
    }
    if args.no_continue {
        // A run on SSM hears of the decision now; the next follower follows it on.
        if let (Some((decision, _)), Some(waiting)) = (&decided.decision, &waiting)
            && let Some(automation_id) = exec::remote::automation_id(journal.journal(), &execution_id)?
        {
            let aws = args.engine.config()?.aws;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let comment = decision.comment.as_deref();
            runtime.block_on(exec::remote::signal(&aws, &automation_id, waiting.kind, decision.decision, comment))?;
            writeln!(stderr, "sent {} to SSM execution {automation_id}", decision.decision)?;
        }
        return Ok(exit::SUCCESS);
    }
    if let Some(top) = &decided.go_on
        && exec::fan_out::recorded(journal.journal(), &top.id)?.is_some()
    {
        writeln!(stderr, "execution {} runs over targets: go on with `runbook run --resume {}`", top.id, top.id)?;
        return Ok(exit::SUCCESS);
    }
    let Some(top) = decided.go_on else {
        // Say why nothing goes on here: it is over, or another process drives it.
        let execution = journal.execution(&execution_id)?;
        if execution.status.is_terminal() {
            writeln!(stderr, "execution {execution_id} already ended ({}): nothing to go on with", execution.status)?;
        } else {
            writeln!(stderr, "execution {execution_id} is driven by another process; it goes on there")?;
        }
        return Ok(exit::SUCCESS);
    };
    let path = PathBuf::from(&top.runbook_path);
    let supplied = exec::resume_parameters(&top.parameters, args.parameters.supplied()?.unwrap_or_default())
        .with_context(|| format!("the decision is recorded; to go on with {}", top.id))?;
    let prepared = match exec::prepare(&path, supplied, true) {
        Ok(prepared) => prepared,
        Err(error) => bail!("cannot continue {}: {error}", top.id),
    };
    let planned = plan::plan(&prepared.runbook);
    let config = exec::Config {
        resume: Some(top.id.clone()),
        wait: wait_mode(false),
        documents: Some(args.state.documents_dir()),
        ..args.engine.config()?
    };
    let remote = exec::remote::recorded(journal.journal(), &top.id)?;
    let report = Report {
        undo: false,
        fan_out: None,
        remote: remote.as_ref(),
        format: args.format,
        junit: None,
        prepared: &prepared,
    };
    drive(&prepared.request(&planned), &config, &journal, &report, stdout, stderr)
}

/// Renders events: plain lines, JSON lines, and on a terminal a live line for the running step.
struct Printer<'w> {
    out: RefCell<&'w mut dyn Write>,
    format: RunFormat,
    depth: RefCell<HashMap<String, usize>>,
    started: Instant,
    live: Option<Live>,
    /// Steps (execution, step) whose output was shown as it came: not shown again at the end.
    streamed: RefCell<HashSet<(String, String)>>,
    /// Each step's place in the top runbook (1-based), for "step k of n".
    positions: HashMap<String, usize>,
    /// The runbook as given and each step's line in it, for GitHub annotations.
    runbook: String,
    step_lines: HashMap<String, usize>,
    /// The top execution (the first to start), whose step visits CI reports list.
    top: RefCell<Option<String>>,
    rows: RefCell<Vec<ci::Row>>,
    /// What controls did to each step of the top execution, until its visit ends.
    controls: RefCell<HashMap<String, Vec<String>>>,
    /// The step whose GitHub log group is open.
    group: RefCell<Option<String>>,
    /// The top execution rolled back.
    rolled_back: std::cell::Cell<bool>,
    /// On a terminal, a run over targets: done of total, failed, running, time left.
    bar: RefCell<Option<indicatif::ProgressBar>>,
}

/// The control facts of a rollback (`x-rollback`, `runbook undo`), which are no game-day act.
fn is_rollback(control: &str) -> bool {
    control == "rollback" || control == "undo"
}

/// The control facts of named locks (grants, losses, releases), which are no game-day act.
fn is_lock(control: &str) -> bool {
    control.starts_with("lock")
}

/// Log lines shown under a finished step whose output was not shown as it came.
const LOG_LINES_SHOWN: usize = 20;

/// The running step (its label, when it started, and when a sleep or wait ends if that is
/// known) and a thread that redraws it on stderr every 100 ms.
struct Live {
    current: Arc<Mutex<Option<Running>>>,
    stop: Arc<AtomicBool>,
}

#[derive(Clone)]
struct Running {
    label: String,
    since: Instant,
    until: Option<Instant>,
}

impl<'w> Printer<'w> {
    fn new(out: &'w mut dyn Write, format: RunFormat, terminal: bool) -> Printer<'w> {
        let live = (terminal && format == RunFormat::Text).then(|| {
            let live = Live { current: Arc::new(Mutex::new(None)), stop: Arc::new(AtomicBool::new(false)) };
            let (current, stop) = (live.current.clone(), live.stop.clone());
            std::thread::spawn(move || {
                let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                let mut frame = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Running { label, since, until }) = current.lock().ok().and_then(|c| c.clone()) {
                        let mut err = std::io::stderr().lock();
                        let left = until.map_or(String::new(), |until| {
                            format!(", {:.1}s left", until.saturating_duration_since(Instant::now()).as_secs_f64())
                        });
                        let _ = write!(
                            err,
                            "\r\x1b[2K{} {label} {:.1}s{left}",
                            frames[frame % 10],
                            since.elapsed().as_secs_f64()
                        );
                        let _ = err.flush();
                        frame += 1;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            live
        });
        Printer {
            out: RefCell::new(out),
            format,
            depth: RefCell::new(HashMap::new()),
            started: Instant::now(),
            live,
            streamed: RefCell::default(),
            positions: HashMap::new(),
            runbook: String::new(),
            step_lines: HashMap::new(),
            top: RefCell::default(),
            rows: RefCell::default(),
            controls: RefCell::default(),
            group: RefCell::default(),
            rolled_back: std::cell::Cell::default(),
            bar: RefCell::default(),
        }
    }

    /// The progress bar of a run over `total` targets, on a terminal (lines go above it).
    fn start_bar(&self, total: usize) {
        if self.live.is_none() || self.bar.borrow().is_some() {
            return;
        }
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} targets [{bar:20}] {pos}/{len} done · {msg} · {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = indicatif::ProgressBar::new(total as u64).with_style(style).with_message("starting");
        bar.enable_steady_tick(Duration::from_millis(100));
        *self.bar.borrow_mut() = Some(bar);
    }

    fn set_live(&self, current: Option<Running>) {
        if let Some(live) = &self.live {
            if let Ok(mut slot) = live.current.lock() {
                *slot = current;
            }
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    fn stop(&self) {
        if let Some(live) = &self.live {
            live.stop.store(true, Ordering::Relaxed);
        }
        self.set_live(None);
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    /// A step waits for a person: what it asks, and on a terminal how to answer.
    fn waiting(
        &self,
        execution_id: &str,
        step: &str,
        action: &str,
        kind: WaitKind,
        message: Option<&str>,
        approvers: &Value,
    ) {
        self.set_live(None);
        let mut text = format!("⏸ {step} ({action}) waits");
        if let Some(message) = message {
            text.push_str(&format!(": {message}"));
        }
        if !approvers.is_null() {
            text.push_str(&format!(" (approvers {approvers})"));
        }
        self.line(execution_id, &text);
        if self.live.is_some() && kind != WaitKind::Child {
            let prompt = match kind {
                WaitKind::Pause => "press Enter to resume, r to end",
                _ => "approve? [a]pprove / [r]eject",
            };
            self.line(execution_id, &format!("  {prompt} (or from another terminal: runbook approve {execution_id})"));
        }
    }

    fn line(&self, execution_id: &str, text: &str) {
        let depth = self.depth.borrow().get(execution_id).copied().unwrap_or(0);
        let elapsed = self.started.elapsed().as_secs_f64();
        let write = || {
            let _ = writeln!(self.out.borrow_mut(), "[{elapsed:>7.2}s] {}{text}", "  ".repeat(depth));
        };
        match self.bar.borrow().as_ref() {
            // The bar steps aside while the line is written, then is drawn again below it.
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn summary(&self, finished: &exec::Finished, journal: &Store) {
        if self.format == RunFormat::Json {
            return;
        }
        let mut out = self.out.borrow_mut();
        let _ = writeln!(
            out,
            "\n{} in {:.2}s  (execution {})",
            finished.status,
            finished.duration_ms as f64 / 1000.0,
            finished.execution_id
        );
        if !finished.failed_steps.is_empty() {
            let _ = writeln!(out, "Failed steps: {}", finished.failed_steps.join(", "));
        }
        if let Some(outputs) = finished.outputs.as_object().filter(|o| !o.is_empty()) {
            let _ = writeln!(out, "Outputs:");
            for (name, value) in outputs {
                let _ = writeln!(out, "  {name} = {value}");
            }
        }
        if finished.status == Status::Waiting
            && let Ok(Some(waiting)) = journal.waiting_on(&finished.execution_id)
        {
            let how = match waiting.kind {
                WaitKind::Pause => format!("runbook resume {}", finished.execution_id),
                WaitKind::Approval => format!("runbook approve|reject {}", finished.execution_id),
                WaitKind::Child => "answer its child execution (runbook executions show)".to_owned(),
            };
            let _ = writeln!(out, "Step `{}` waits: {how}", waiting.step);
        }
        // What to do next, where the run did not succeed and can go on (a run rolled back
        // has nothing left to go on with).
        if matches!(finished.status, Status::Cancelled | Status::Failed | Status::TimedOut) && !self.rolled_back.get() {
            let _ = writeln!(out, "Go on with it: runbook run --resume {}", finished.execution_id);
        }
        let _ = writeln!(out, "Timeline: runbook executions show {}", finished.execution_id);
    }
}

impl Printer<'_> {
    fn is_top(&self, execution_id: &str) -> bool {
        self.top.borrow().as_deref() == Some(execution_id)
    }

    /// Before an event is printed: the top execution's step visits are collected for the CI
    /// reports, and under `--format github` a step's log group opens.
    fn ci_before(&self, event: &Event) {
        match event {
            Event::ExecutionStarted { execution_id, .. } if self.top.borrow().is_none() => {
                *self.top.borrow_mut() = Some(execution_id.clone());
            }
            Event::StepStarted { execution_id, step, action, .. }
                if self.format == RunFormat::Github
                    && self.is_top(execution_id)
                    && self.group.borrow().is_none()
                    && crate::actions::kind_of(action) != crate::actions::Kind::Loop =>
            {
                let _ = writeln!(self.out.borrow_mut(), "::group::{step} ({action})");
                *self.group.borrow_mut() = Some(step.clone());
            }
            Event::Control { execution_id, step: Some(step), text, .. } if self.is_top(execution_id) => {
                self.controls.borrow_mut().entry(step.clone()).or_default().push(text.clone());
            }
            Event::Control { execution_id, control, .. } if is_rollback(control) && self.is_top(execution_id) => {
                self.rolled_back.set(true);
            }
            _ => {}
        }
    }

    /// After an event is printed: a finished step of the top execution is a row of the CI
    /// reports; under `--format github` its group closes and a failure is annotated at the
    /// step's line.
    fn ci_after(&self, event: &Event) {
        if let Event::StepRestored { execution_id, step, iteration, status } = event
            && self.is_top(execution_id)
        {
            self.rows.borrow_mut().push(ci::Row {
                step: step.clone(),
                iteration: *iteration,
                action: String::new(),
                status: *status,
                attempts: 0,
                duration_ms: 0,
                error: None,
                controls: Vec::new(),
                restored: true,
            });
            return;
        }
        let Event::StepFinished { execution_id, step, action, iteration, status, attempts, duration_ms, error, .. } =
            event
        else {
            return;
        };
        if !self.is_top(execution_id) {
            return;
        }
        let controls = self.controls.borrow_mut().remove(step).unwrap_or_default();
        self.rows.borrow_mut().push(ci::Row {
            step: step.clone(),
            iteration: *iteration,
            action: action.clone(),
            status: *status,
            attempts: *attempts,
            duration_ms: *duration_ms,
            error: error.clone(),
            controls: controls.clone(),
            restored: false,
        });
        if self.format != RunFormat::Github {
            return;
        }
        let mut out = self.out.borrow_mut();
        if self.group.borrow().as_ref() == Some(step) {
            let _ = writeln!(out, "::endgroup::");
            *self.group.borrow_mut() = None;
        }
        if status.is_failure() {
            let line = self.step_lines.get(step).map(|line| (*line, None));
            let mut message = error.clone().unwrap_or_else(|| status.to_string());
            for control in &controls {
                message.push_str(&format!("\ngame day: {control}"));
            }
            let title = format!("{step} ({action}): {status}");
            let _ = writeln!(out, "{}", crate::report::annotation("error", &self.runbook, line, &title, &message));
        }
    }

    /// The CI reports, once the run is over: the GitHub job summary (under `--format github`,
    /// when GITHUB_STEP_SUMMARY names a file) and the JUnit file.
    fn ci_reports(&self, finished: &exec::Finished, junit: Option<&std::path::Path>) -> anyhow::Result<()> {
        let rows = self.rows.borrow();
        if self.format == RunFormat::Github
            && let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty())
        {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
                .with_context(|| format!("failed to write the job summary to {}", summary.display()))?;
            file.write_all(ci::job_summary(&self.runbook, finished, &rows).as_bytes())?;
        }
        if let Some(path) = junit {
            std::fs::write(path, ci::junit(&self.runbook, finished, &rows)?)
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
        Ok(())
    }
}

impl Observer for Printer<'_> {
    fn event(&self, event: &Event) {
        self.ci_before(event);
        self.print(event);
        self.ci_after(event);
    }
}

impl Printer<'_> {
    fn print(&self, event: &Event) {
        if self.format == RunFormat::Json {
            if let Ok(line) = serde_json::to_string(event) {
                let _ = writeln!(self.out.borrow_mut(), "{line}");
            }
            return;
        }
        match event {
            Event::ExecutionStarted { execution_id, runbook, resumed, parent_id } => {
                let depth = parent_id.as_ref().and_then(|p| self.depth.borrow().get(p).copied()).map_or(0, |d| d + 1);
                self.depth.borrow_mut().insert(execution_id.clone(), depth);
                let verb = if *resumed { "Resuming" } else { "Running" };
                self.line(execution_id, &format!("{verb} {runbook} (execution {execution_id})"));
            }
            Event::StepStarted { execution_id, step, action, iteration, attempt, max_attempts, inputs } => {
                let mut text = format!("▶ {step} ({action})");
                if *iteration > 0 {
                    text.push_str(&format!(" iteration {iteration}"));
                }
                if *max_attempts > 1 {
                    text.push_str(&format!(" attempt {attempt}/{max_attempts}"));
                }
                let top = self.depth.borrow().get(execution_id).copied().unwrap_or(0) == 0;
                let position = self.positions.get(step).filter(|_| top);
                let label = match position {
                    Some(k) => format!("{text} · step {k} of {}", self.positions.len()),
                    None => text.clone(),
                };
                // A sleep says how long it has left.
                let until = inputs
                    .get("Duration")
                    .and_then(Value::as_str)
                    .and_then(|duration| crate::actions::sleep::parse_duration(duration).ok())
                    .and_then(|duration| Instant::now().checked_add(duration));
                self.set_live(Some(Running { label, since: Instant::now(), until }));
                self.line(execution_id, &text);
            }
            Event::StepRestored { execution_id, step, iteration, status } => {
                let iteration = if *iteration > 0 { format!(" iteration {iteration}") } else { String::new() };
                self.line(execution_id, &format!("↺ {step}{iteration}: {status} (restored from the journal)"));
            }
            Event::AttemptFailed { execution_id, step, attempt, error, retry_in_ms, .. } => {
                self.set_live(None);
                let retry = match retry_in_ms {
                    None => String::new(),
                    Some(0) => "; retrying at once".to_owned(),
                    Some(ms) if *ms < 1000 => format!("; retrying in {ms} ms"),
                    Some(ms) => format!("; retrying in {:.1}s", *ms as f64 / 1000.0),
                };
                self.line(execution_id, &format!("  {step} attempt {attempt} failed: {error}{retry}"));
            }
            Event::StepFinished { execution_id, step, status, duration_ms, outputs, error, log, .. } => {
                self.set_live(None);
                let mark = match status {
                    Status::Success => '✓',
                    Status::Skipped => '↷',
                    _ => '✗',
                };
                let mut text = format!("{mark} {step}: {status} in {:.2}s", *duration_ms as f64 / 1000.0);
                if let Some(shown) = shown_outputs(outputs) {
                    text.push_str(&format!("  outputs {shown}"));
                }
                self.line(execution_id, &text);
                let streamed = self.streamed.borrow_mut().remove(&(execution_id.clone(), step.clone()));
                if let Some(log) = log.as_deref().filter(|l| !l.trim().is_empty() && !streamed) {
                    for line in log.lines().take(LOG_LINES_SHOWN) {
                        self.line(execution_id, &format!("    | {line}"));
                    }
                    let more = log.lines().count().saturating_sub(LOG_LINES_SHOWN);
                    if more > 0 {
                        self.line(
                            execution_id,
                            &format!("    | … {more} more lines: runbook executions show {execution_id} --logs {step}"),
                        );
                    }
                }
                if let Some(error) = error {
                    self.line(execution_id, &format!("    error: {error}"));
                }
            }
            Event::Control { execution_id, control, text, .. } => {
                self.set_live(None);
                if is_rollback(control) {
                    self.line(execution_id, &format!("↶ {text}"));
                } else if is_lock(control) {
                    self.line(execution_id, &format!("🔒 {text}"));
                } else {
                    self.line(execution_id, &format!("⚑ game day: {text}"));
                }
            }
            Event::Output { execution_id, step, stream, line, .. } => {
                self.streamed.borrow_mut().insert((execution_id.clone(), step.clone()));
                let mark = if *stream == "stderr" { '!' } else { '|' };
                self.line(execution_id, &format!("    {mark} {line}"));
            }
            Event::Waiting { execution_id, step, action, kind, message, approvers } => {
                self.waiting(execution_id, step, action, *kind, message.as_deref(), approvers);
            }
            Event::Decision { execution_id, step, decision, by } => {
                self.line(execution_id, &format!("  {step}: {decision} by {by}"));
            }
            Event::CancelRequested { execution_id } => self.line(execution_id, "Cancelling…"),
            Event::AttemptInterrupted { execution_id, step, attempt, .. } => self.line(
                execution_id,
                &format!("  {step} attempt {attempt} was interrupted when the engine stopped; it runs again"),
            ),
            Event::ChildLinked { .. } => {}
            Event::FanOut { execution_id, text, total } => {
                self.line(execution_id, &format!("⇉ {text}"));
                if let Some(total) = total {
                    self.start_bar(*total);
                }
            }
            Event::Remote { execution_id, text } => self.line(execution_id, &format!("☁ {text}")),
            Event::TargetFinished {
                execution_id,
                target,
                child_id,
                status,
                error,
                succeeded,
                failed,
                running,
                total,
            } => {
                let mark = if *status == Status::Success { "✓" } else { "✗" };
                let done = succeeded + failed;
                let elapsed = self.started.elapsed().as_secs_f64();
                // What is left to finish, at the rate targets have finished so far.
                let left = elapsed / done.max(1) as f64 * total.saturating_sub(done) as f64;
                let mut text = format!("{mark} target {target}: {status}");
                if !child_id.is_empty() {
                    text.push_str(&format!(" (execution {child_id})"));
                }
                if let Some(error) = error {
                    text.push_str(&format!(": {error}"));
                }
                text.push_str(&format!(" · {done} of {total} done, {failed} failed, {running} running"));
                if done < *total && *running > 0 {
                    text.push_str(&format!(", about {left:.0} s left"));
                }
                self.line(execution_id, &text);
                if let Some(bar) = self.bar.borrow().as_ref() {
                    bar.set_position(done as u64);
                    bar.set_message(format!("{failed} failed, {running} running"));
                }
            }
            Event::ExecutionFinished { execution_id, status, duration_ms, .. } => {
                if self.depth.borrow().get(execution_id).copied().unwrap_or(0) > 0 {
                    self.line(
                        execution_id,
                        &format!("child {execution_id}: {status} in {:.2}s", *duration_ms as f64 / 1000.0),
                    );
                }
            }
        }
    }
}

/// Text cut to `limit` characters, with an ellipsis.
fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Outputs for a line of text: without `OutputPayload` (it repeats `Payload` as text; the
/// journal and `--format json` keep it), shortened.
fn shown_outputs(outputs: &Value) -> Option<String> {
    let outputs = outputs.as_object()?;
    let shown: serde_json::Map<String, Value> =
        outputs.iter().filter(|(key, _)| *key != "OutputPayload").map(|(k, v)| (k.clone(), v.clone())).collect();
    (!shown.is_empty()).then(|| shorten(&Value::Object(shown).to_string(), 160))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(step: &str, log: &str) -> Event {
        Event::StepFinished {
            execution_id: "e1".into(),
            step: step.into(),
            action: "aws:runCommand".into(),
            iteration: 0,
            status: Status::Failed,
            attempts: 1,
            duration_ms: 5,
            outputs: json!({}),
            error: Some("command ended Failed".into()),
            log: Some(log.into()),
        }
    }

    /// The text a printer shows for `events`, without the time stamps.
    fn shown(events: &[Event]) -> Vec<String> {
        let mut out = Vec::new();
        let printer = Printer::new(&mut out, RunFormat::Text, false);
        for event in events {
            printer.event(event);
        }
        drop(printer);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| line.split_once("] ").map_or(line, |(_, text)| text).to_owned())
            .collect()
    }

    #[test]
    fn a_log_not_shown_live_is_cut_with_the_count_of_lines_left_and_where_to_read_them() {
        let log: String = (1..=25).map(|n| format!("line {n}\n")).collect();
        let lines = shown(&[finished("collect", &log)]);
        let logged: Vec<&String> = lines.iter().filter(|line| line.starts_with("    |")).collect();
        assert_eq!(logged.len(), LOG_LINES_SHOWN + 1, "{lines:#?}");
        assert_eq!(logged[0], "    | line 1");
        assert_eq!(logged[LOG_LINES_SHOWN - 1], &format!("    | line {LOG_LINES_SHOWN}"));
        assert_eq!(logged[LOG_LINES_SHOWN], "    | … 5 more lines: runbook executions show e1 --logs collect");

        // A short log is shown whole, with no count.
        let lines = shown(&[finished("collect", "one\ntwo\n")]);
        assert!(lines.iter().all(|line| !line.contains("more lines")), "{lines:#?}");
        assert!(lines.contains(&"    | two".to_owned()), "{lines:#?}");
    }

    #[test]
    fn a_log_shown_live_is_not_shown_again_when_its_step_ends() {
        let live = Event::Output {
            execution_id: "e1".into(),
            step: "collect".into(),
            iteration: 0,
            attempt: 1,
            stream: "stdout",
            line: "line 1".into(),
            at: "2026-12-01T00:00:00Z".into(),
        };
        let lines = shown(&[live, finished("collect", "line 1\n")]);
        assert_eq!(lines.iter().filter(|line| line.contains("line 1")).count(), 1, "{lines:#?}");
    }
}
