//! The command line: the only module that knows clap, terminals, colours and exit codes.

mod ci;
mod page;
mod publish;
mod run;
mod test;
mod walk;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::bail;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::diagnostic::Code;
use crate::document;
use crate::exec;
use crate::plan;
use crate::report;
use crate::validate::{self, Config, Supplied, Validated};

/// Exit codes, split by who is at fault. The table is in the README.
pub mod exit {
    /// Everything passed.
    pub const SUCCESS: u8 = 0;
    /// A runbook is invalid (or has warnings under `--deny-warnings`).
    pub const INVALID: u8 = 1;
    /// The command line is wrong: unknown flag, malformed `-p`, unreadable parameters file.
    pub const USAGE: u8 = 2;
    /// The environment failed: a file or directory could not be read, the journal could not
    /// be opened, read or written, AWS could not give a value the run needs before it starts.
    pub const ENVIRONMENT: u8 = 3;
    /// The execution ended Failed.
    pub const FAILED: u8 = 4;
    /// The execution ended TimedOut.
    pub const TIMED_OUT: u8 = 5;
    /// The execution ended Cancelled (Ctrl-C).
    pub const CANCELLED: u8 = 6;
    /// The execution waits for a person: `runbook approve|reject|resume ID` goes on.
    pub const WAITING: u8 = 7;
    /// The engine refused to go on: a step's outcome is unknown, a secret output is needed
    /// again, the runbook changed, or another process drives the execution. The message says
    /// how to proceed.
    pub const REFUSED: u8 = 8;
    /// The execution lost the lease of a named lock (x-locks, --lock) and stopped before its
    /// next step: another may hold the lock now.
    pub const LOCK_LOST: u8 = 9;
    // 101 is left to Rust's panic handler: a bug in runbook.
}

const ABOUT: &str = "Runbooks as code: validate, plan and run AWS Systems Manager Automation runbooks locally";

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 invalid runbook or parameters, 2 usage error, 3 environment (file,
journal, AWS), 4 execution Failed, 5 TimedOut, 6 Cancelled, 7 waiting for approval, 8 refused
(unknown outcome, changed runbook, another process drives it), 101 bug.
Documentation: README.md; diagnostic codes: `runbook codes`.";

const DECIDE_HELP: &str = "\
The decision is journaled with who made it and any --comment. Unless another process drives
the execution (or --no-continue), it goes on here, from the journal: values the journal does
not keep (x-secret parameters) must be given again with -p NAME=VALUE, and the AWS and webhook
settings with the same flags as `runbook run`.";

#[derive(Debug, Parser)]
#[command(name = "runbook", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check runbooks against the schema and the semantic rules, and parameter values if given.
    ///
    /// Every problem is reported, each with its code, file, line and column. A directory is
    /// walked as ripgrep walks one (.gitignore honoured, hidden entries skipped) for *.json,
    /// *.yaml and *.yml files that are runbooks (they name schemaVersion and mainSteps).
    #[command(after_help = "\
Examples:
  runbook validate .
  runbook validate examples/ --exclude 'drafts/**'
  runbook validate restart.yaml -p InstanceId=i-0123456789abcdef0 -p DryRun=true
  runbook validate runbooks/ --format github --deny-warnings

Giving any -p or --params-file also checks that every required parameter has a value.
Values are typed by the parameter's declared type: StringList from a JSON array or
comma-separated text, StringMap and MapList from JSON, Integer and Boolean from text.")]
    Validate(ValidateArgs),
    /// Show what a runbook would do: every step, its inputs as far as known, and where it goes
    /// on success, on each branch choice, on failure and on cancel. Nothing runs.
    #[command(after_help = "\
Examples:
  runbook plan examples/restart-unhealthy-instance.yaml -p InstanceId=i-0123456789abcdef0
  runbook plan runbook.yaml --format json | jq '.edges'
  runbook plan runbook.yaml --format dot | dot -Tsvg > plan.svg
  runbook plan runbook.yaml --format mermaid >> README.md

Values that only a run can know (step outputs, the account, the date, Parameter Store) are
shown as unknown: their {{ }} references stay as written and are listed per step.
The runbook is validated first; with errors, they are printed and nothing is planned.")]
    Plan(PlanArgs),
    /// Run a runbook: every step journaled, resumable, or with --dry-run only shown.
    #[command(after_help = "\
Examples:
  runbook run examples/local-maintenance.yaml -p Hosts=web-1,web-2
  runbook run examples/local-maintenance.yaml -p Hosts=web-1 --dry-run
  runbook run runbook.yaml --dry-run --mock describe.State='\"stopped\"' --format json
  runbook run runbook.yaml --idempotency-key deploy-42 --approve
  runbook run --resume 5f0c...       (after a crash, Ctrl-C or a failure)
  runbook run restart.yaml --target-parameter-name InstanceId --targets Key=tag:Role,Values=web
  runbook run ssm:AWS-RestartEC2Instance -p InstanceId=i-0abc   (a document in SSM, run here)
  runbook run restart.yaml --on ssm -p InstanceId=i-0abc         (published, run on SSM, followed here)

Every attempt is committed to the journal before and after it runs. A resume restores the
steps that finished and runs the rest; a step that started but never finished is run again
only if it is read-only or marked `x-idempotent: true` (or named with --rerun).
Ctrl-C (or SIGTERM, SIGHUP) cancels: the running step stops, its onCancel path runs (at most
120 s); a second one stops at once. Secrets (x-secret parameters, SecureStrings) are redacted
in every output and never stored.
Exit status: 0 Success, 3 environment, 4 Failed, 5 TimedOut, 6 Cancelled, 7 waiting,
8 refused.")]
    Run(Box<run::RunArgs>),
    /// Test runbooks with scenario files: mocks by step and by AWS call, a virtual clock,
    /// expected paths, statuses, outputs and calls; edge coverage; JUnit for CI.
    #[command(after_help = "\
Examples:
  runbook test runbooks/                          every *.test.yaml below runbooks/
  runbook test stop.test.yaml -E 'already stopped' --coverage
  runbook test . --min-coverage 100 --junit junit.xml --format github
  runbook test --scaffold runbooks/stop-idle-instance.yaml

A scenario file names its runbook (`runbook: FILE`, else NAME.yaml beside NAME.test.yaml)
and lists scenarios: parameters, mocks by step (`steps:`) and by AWS call (`aws:`), answers
for approvals and pauses, and what to expect. Every scenario runs through the real engine
with the clock paused: sleeps, waits and retries take no time. An AWS call no mock answers
fails the scenario, unless the scenario gives an `endpoint`. Schema: schemas/test.schema.json.
Exit status: 0 all passed, 1 a scenario failed (or a file is invalid, or coverage is under
--min-coverage), 2 usage, 3 environment.")]
    Test(Box<test::TestArgs>),
    /// List executions, or show one's timeline from the journal.
    #[command(subcommand)]
    Executions(run::ExecutionsCommand),
    /// Approve the aws:approve step an execution waits on, then go on with it.
    #[command(after_help = DECIDE_HELP)]
    Approve(run::DecideArgs),
    /// Reject the aws:approve step an execution waits on (the step fails), then go on.
    #[command(after_help = DECIDE_HELP)]
    Reject(run::DecideArgs),
    /// Resume an execution: answer the aws:pause it waits on, or go on after a crash.
    #[command(after_help = DECIDE_HELP)]
    Resume(run::DecideArgs),
    /// Roll back an execution that has ended: the x-undo of each step that succeeded and was
    /// not undone yet runs, newest first, journaled in the execution.
    #[command(after_help = "\
The undos run as steps named undo:NAME of the same execution (`runbook executions show ID`
lists them); one that fails does not stop the others. Run it again after an interruption: the
undos that finished are not run twice. The execution keeps its status; the exit status is 0
when every undo succeeded, 4 when one failed.")]
    Undo(run::UndoArgs),
    /// Write an execution as one self-contained HTML page: the plan graph with each step's
    /// status, a timeline of every attempt, wait, decision and control, each step's inputs,
    /// outputs, error and log (secrets redacted as in the journal). No network is needed to
    /// open it. For a dry-run: `runbook run --dry-run --report FILE`.
    Report(page::ReportArgs),
    /// Publish a runbook to SSM as an Automation document: created, or updated to a new
    /// version made the default; the same content publishes nothing.
    #[command(after_help = "\
Examples:
  runbook publish runbooks/restart.yaml
  runbook publish restart.yaml --name Team-RestartWeb --strip-extensions
  runbook publish collect.yaml --attachments s3://my-bucket/runbook-attachments

The runbook is validated first, then checked for what SSM does not run: engine extensions
(x-locks, x-undo, x-rollback, x-secret, ...) are refused with the line of each, or removed
with --strip-extensions (the document is then published as JSON) with a warning of what is
lost; x-expressions expressions and the fencing token are refused either way. Documents over
64 KB and names SSM would refuse are refused here. `runbook validate --for ssm` runs the same
checks without publishing.
Exit status: 0 published (or unchanged), 1 invalid or not portable, 2 usage, 3 environment.")]
    Publish(publish::PublishArgs),
    /// Named locks (x-locks, --lock): list them, or release one by force.
    #[command(subcommand)]
    Locks(run::LocksCommand),
    /// List every diagnostic code with its severity and what it means, or explain one: what
    /// it catches, why it matters, how to fix it, with an example of the mistake and the fix.
    #[command(after_help = "\
Examples:
  runbook codes
  runbook codes loop-on-failure")]
    Codes {
        /// The code to explain.
        #[arg(value_name = "CODE")]
        code: Option<String>,
    },
    /// Print a shell completion script for runbook's commands and flags.
    #[command(after_help = "\
Examples:
  runbook completions bash > ~/.local/share/bash-completion/completions/runbook
  runbook completions zsh > \"${fpath[1]}/_runbook\"
  runbook completions fish > ~/.config/fish/completions/runbook.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of runbook, or of one of its commands.
    #[command(after_help = "\
Examples:
  runbook man > ~/.local/share/man/man1/runbook.1 && man runbook
  runbook man run | man -l -")]
    Man {
        /// The command whose page to print (`run` gives runbook-run(1)).
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// Runbook files or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    parameters: ParameterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Also check that the runbook runs unchanged on this engine too: `ssm` reports what SSM
    /// Automation would not run (engine extensions, expressions), as `runbook publish` does.
    #[arg(long = "for", value_name = "ENGINE", value_enum)]
    for_engine: Option<ForEngine>,
    /// Leave out what a directory walk finds under this glob (`drafts/**`, `*.tmpl.yaml`);
    /// repeatable. Hidden entries and what .gitignore lists are never walked.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Colour the text output: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_enum, default_value_t = ColourChoice::Auto)]
    color: ColourChoice,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// The runbook file, or ssm:NAME[:VERSION] for an Automation document in SSM (fetched as
    /// `runbook run` does, with the standard AWS configuration).
    #[arg(value_name = "FILE")]
    path: PathBuf,
    #[command(flatten)]
    parameters: ParameterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    format: PlanFormat,
    /// Colour diagnostics: auto, always, never.
    #[arg(long, value_enum, default_value_t = ColourChoice::Auto)]
    color: ColourChoice,
    /// Also save the plan: the runbook's hash, the parameters (secrets left out) and the newest
    /// fencing token applied under each of its locks. `runbook run --plan PLAN.json` runs
    /// exactly it, or refuses once it is stale.
    #[arg(long, value_name = "PLAN.json")]
    out: Option<PathBuf>,
    /// With --out: a lock the run will take besides the runbook's x-locks (as `run --lock`).
    #[arg(long, value_name = "NAME", requires = "out", value_parser = run::parse_lock_name)]
    lock: Vec<String>,
    #[command(flatten)]
    state: run::StateArgs,
}

/// Where a runbook must also run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ForEngine {
    /// SSM Automation.
    Ssm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    /// Steps, inputs and successors, for people.
    Text,
    /// Nodes, labelled edges and references (schemas/plan.schema.json).
    Json,
    /// Graphviz, for `dot -Tsvg`.
    Dot,
    /// A Mermaid flowchart, for Markdown.
    Mermaid,
}

/// Parameter values; shared by validate, plan and run.
#[derive(Debug, Args)]
pub struct ParameterArgs {
    /// A parameter value, NAME=VALUE (repeatable). Values are data: `{{ }}` in them is never evaluated.
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    values: Vec<(String, String)>,
    /// A JSON or YAML file with an object of parameter values (typed values, or the API form
    /// of lists of strings). -p values win over the file's.
    #[arg(long, value_name = "FILE")]
    params_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// Diagnostics with source snippets, for people.
    Text,
    /// One JSON object: every diagnostic (file, line, column, code, severity, message) and a summary.
    Json,
    /// GitHub Actions annotations (::error file=...,line=...::message).
    Github,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColourChoice {
    Auto,
    Always,
    Never,
}

fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, found `{text}`")),
    }
}

/// The process entry point.
pub fn main() -> ExitCode {
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    run::INTERACTIVE.store(interactive, Ordering::Relaxed);
    let code = run(std::env::args_os(), &mut stdout.lock(), &mut std::io::stderr(), colour);
    ExitCode::from(code)
}

/// Runs a command line with the given output streams and returns the exit code. Tests call
/// this in-process.
pub fn run(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    terminal_colour: bool,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { exit::USAGE } else { exit::SUCCESS };
            let rendered = if terminal_colour { error.render().ansi().to_string() } else { error.render().to_string() };
            let stream: &mut dyn Write = if error.use_stderr() { stderr } else { stdout };
            let _ = stream.write_all(rendered.as_bytes());
            return code;
        }
    };
    let json = wants_json(&cli.command);
    let result = match cli.command {
        Command::Validate(args) => validate_command(args, stdout, terminal_colour),
        Command::Plan(args) => plan_command(args, stdout, stderr, terminal_colour),
        Command::Run(args) => run::run_command(*args, stdout, stderr, terminal_colour),
        Command::Executions(command) => run::executions_command(command, stdout, stderr),
        Command::Approve(args) => run::decide_command(exec::Answer::Approve, false, args, stdout, stderr),
        Command::Reject(args) => run::decide_command(exec::Answer::Reject, false, args, stdout, stderr),
        Command::Resume(args) => run::decide_command(exec::Answer::Approve, true, args, stdout, stderr),
        Command::Undo(args) => run::undo_command(args, stdout, stderr),
        Command::Report(args) => page::report_command(args, stdout, stderr),
        Command::Locks(command) => run::locks_command(command, stdout),
        Command::Publish(args) => publish::publish_command(args, stdout, stderr),
        Command::Test(args) => test::test_command(*args, stdout, terminal_colour),
        Command::Codes { code } => codes_command(code.as_deref(), stdout).map(|()| exit::SUCCESS),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "runbook", stdout);
            Ok(exit::SUCCESS)
        }
        Command::Man { command } => man_command(command.as_deref(), stdout).map(|()| exit::SUCCESS),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`runbook ... | head`): stop quietly, as ripgrep does.
        Err(error) if is_broken_pipe(&error) => exit::SUCCESS,
        Err(error) => {
            let help = error.downcast_ref::<exec::Error>().and_then(exec::Error::help);
            let code = exit_for(&error);
            if json {
                // With --format json every outcome is JSON on stdout, errors included.
                let document = serde_json::json!({
                    "error": { "message": crate::diagnostic::causes(error.as_ref()), "help": help, "exit_code": code },
                });
                let _ = writeln!(stdout, "{document}");
            } else {
                let _ = writeln!(stderr, "error: {}", crate::diagnostic::causes(error.as_ref()));
                if let Some(help) = help {
                    let _ = writeln!(stderr, "  help: {help}");
                }
            }
            code
        }
    }
}

/// Whether the command asked for JSON output.
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Validate(args) => args.format == OutputFormat::Json,
        Command::Plan(args) => args.format == PlanFormat::Json,
        Command::Run(args) => args.json(),
        Command::Executions(command) => command.json(),
        Command::Approve(args) | Command::Reject(args) | Command::Resume(args) => args.json(),
        Command::Undo(args) => args.json(),
        Command::Locks(run::LocksCommand::List { format, .. }) => *format == run::LocksFormat::Json,
        Command::Publish(args) => args.format == publish::PublishFormat::Json,
        Command::Report(_) | Command::Locks(_) => false,
        Command::Test(args) => args.json(),
        Command::Codes { .. } | Command::Completions { .. } | Command::Man { .. } => false,
    }
}

/// A runbook that did not validate, where a command that needs a valid one was given it: the
/// findings as `validate` reports them, JSON on stdout with `json`, text on stderr otherwise.
fn report_invalid(
    validated: &validate::Validated,
    json: bool,
    colour: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<u8> {
    let summary = report::summary(1, 1, validated.warnings());
    if json {
        let name = &validated.source().name;
        let document = serde_json::json!({
            "diagnostics": validated.diagnostics.iter().map(|d| report::json(name, d)).collect::<Vec<_>>(),
            "summary": { "runbooks": 1, "valid": 0, "invalid": 1, "warnings": validated.warnings(), "text": summary },
        });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&document)?)?;
    } else {
        stderr.write_all(report::texts(validated.source(), &validated.diagnostics, colour).as_bytes())?;
        writeln!(stderr, "{summary}")?;
    }
    Ok(exit::INVALID)
}

/// An error and its causes, `: `-separated, each said once: an error whose message already
/// quotes its cause (`failed to use DIR: No such file or directory`) does not repeat it.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit code of an error, decided by its type: the caller's mistake, the environment's,
/// or the engine refusing to go on.
fn exit_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some() {
        return exit::USAGE;
    }
    let fault = error
        .downcast_ref::<exec::Error>()
        .map(exec::Error::fault)
        .or_else(|| error.downcast_ref::<crate::journal::Error>().map(exec::Fault::from));
    fault.map_or(exit::ENVIRONMENT, exit_for_fault)
}

/// The exit code for who is at fault.
fn exit_for_fault(fault: exec::Fault) -> u8 {
    match fault {
        exec::Fault::Caller => exit::USAGE,
        exec::Fault::Environment => exit::ENVIRONMENT,
        exec::Fault::Refused => exit::REFUSED,
        exec::Fault::LockLost => exit::LOCK_LOST,
    }
}

/// An error the user made on the command line (exit 2), as opposed to one of the environment.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

impl ParameterArgs {
    /// The supplied values, or `None` when the user supplied none.
    pub fn supplied(&self) -> anyhow::Result<Option<Vec<(String, Supplied)>>> {
        let mut supplied: Vec<(String, Supplied)> = Vec::new();
        if let Some(path) = &self.params_file {
            let loaded = document::load_path(path).map_err(|e| UsageError(format!("{e:#}: {}", e.source)))?;
            if let Some(diagnostic) = loaded.diagnostics.iter().find(|d| d.is_error()) {
                let location = diagnostic.location.map(|l| format!(":{}:{}", l.line, l.column)).unwrap_or_default();
                bail!(UsageError(format!("parameters file {}{location}: {}", path.display(), diagnostic.message)));
            }
            let Some(serde_json::Value::Object(values)) = loaded.value else {
                bail!(UsageError(format!("parameters file {} must hold a mapping of NAME: VALUE", path.display())));
            };
            supplied.extend(values.into_iter().map(|(name, value)| (name, Supplied::Json(value))));
        }
        for (name, value) in &self.values {
            supplied.retain(|(existing, _)| existing != name);
            supplied.push((name.clone(), Supplied::Text(value.clone())));
        }
        let given = self.params_file.is_some() || !self.values.is_empty();
        Ok(given.then_some(supplied))
    }
}

impl ColourChoice {
    fn resolve(self, terminal_colour: bool) -> bool {
        match self {
            ColourChoice::Auto => terminal_colour,
            ColourChoice::Always => true,
            ColourChoice::Never => false,
        }
    }
}

fn plan_command(
    mut args: PlanArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    terminal_colour: bool,
) -> anyhow::Result<u8> {
    let colour = args.color.resolve(terminal_colour);
    let aws = crate::aws::Aws::new(crate::aws::Settings::default());
    args.path = run::named_document(args.path, &args.state, &aws, stderr)?.0;
    if let Some(out) = &args.out {
        return save_plan(&args, out, stdout, stderr, colour);
    }
    let config = Config { parameters: args.parameters.supplied()? };
    let mut validated = validate::load_path(&args.path)?.validate(&config);
    // The runbook leaves `validated` for as long as the plan borrows it.
    let runbook = validated.runbook.take();
    let planned = runbook.as_ref().map(|runbook| {
        let bound = plan::values::bind(runbook, &validated.parameters, &plan::values::NothingKnown);
        let planned = plan::plan(runbook);
        plan::add_findings(&mut validated, &bound, &planned);
        (planned, bound)
    });
    let Some((planned, bound)) = planned.filter(|_| validated.errors() == 0) else {
        return report_invalid(&validated, args.format == PlanFormat::Json, colour, stdout, stderr);
    };
    let shown = report::plan::Shown::new(&validated.source().name, &planned, &bound);
    match args.format {
        PlanFormat::Text => {
            let mut out = buffered(stdout);
            report::plan::write_text(&shown, &mut out)?;
            if !validated.diagnostics.is_empty() {
                writeln!(out, "\nFindings")?;
                out.write_all(report::texts(validated.source(), &validated.diagnostics, colour).as_bytes())?;
            }
            out.flush()?;
        }
        PlanFormat::Json => {
            let name = &validated.source().name;
            let diagnostics: Vec<_> = validated.diagnostics.iter().map(|d| report::json(name, d)).collect();
            write_json_plan(&shown, &diagnostics, stdout)?;
        }
        PlanFormat::Dot | PlanFormat::Mermaid => {
            let picture = match args.format {
                PlanFormat::Dot => report::plan::dot(&shown),
                _ => report::plan::mermaid(&shown),
            };
            stdout.write_all(picture.as_bytes())?;
            // Pictures stay clean for piping; findings go to stderr, as text.
            stderr.write_all(report::texts(validated.source(), &validated.diagnostics, colour).as_bytes())?;
        }
    }
    Ok(exit::SUCCESS)
}

/// `runbook plan FILE -p ... --out PLAN.json`: the plan shown as usual, then saved with what
/// it was made against. Written whole or not at all.
fn save_plan(
    args: &PlanArgs,
    out: &Path,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    colour: bool,
) -> anyhow::Result<u8> {
    let supplied = args.parameters.supplied()?.unwrap_or_default();
    let prepared = match exec::prepare(&args.path, supplied, true) {
        Ok(prepared) => prepared,
        Err(exec::PrepareError::Io(error)) => {
            return Err(anyhow::Error::new(error).context("failed to read the runbook"));
        }
        Err(exec::PrepareError::Invalid(validated)) => {
            return report_invalid(&validated, args.format == PlanFormat::Json, colour, stdout, stderr);
        }
    };
    let parameters = &prepared.validated.parameters;
    let names = plan::saved::lock_names(&prepared.runbook, parameters, &args.lock).map_err(UsageError)?;
    let journal = args.state.open()?;
    let mut locks = Vec::new();
    for name in names {
        let applied = journal.named().applied(&name)?;
        locks.push(plan::saved::SavedLock { name, applied });
    }
    let path = args.path.display().to_string();
    let store = journal.describe();
    let saved = plan::saved::SavedPlan::new(&prepared.runbook, &path, &prepared.hash, parameters, locks, &store);
    let text = serde_json::to_string_pretty(&saved)? + "\n";
    // Recorded first: a plan file that exists was recorded (one recorded but never written
    // is harmless).
    journal.named().record_plan(&saved.digest)?;
    write_whole(out, text.as_bytes())?;
    let planned = plan::plan(&prepared.runbook);
    let bound = plan::values::bind(&prepared.runbook, parameters, &plan::values::NothingKnown);
    let shown = report::plan::Shown::new(&prepared.validated.source().name, &planned, &bound);
    let note = format!("Saved the plan to {}. To run exactly it: runbook run --plan {}", out.display(), out.display());
    match args.format {
        PlanFormat::Text => {
            let mut out = buffered(stdout);
            report::plan::write_text(&shown, &mut out)?;
            writeln!(out, "\n{note}")?;
            out.flush()?;
        }
        PlanFormat::Json => {
            let name = &prepared.validated.source().name;
            let diagnostics: Vec<_> = prepared.validated.diagnostics.iter().map(|d| report::json(name, d)).collect();
            write_json_plan(&shown, &diagnostics, stdout)?;
            writeln!(stderr, "{note}")?;
        }
        PlanFormat::Dot | PlanFormat::Mermaid => {
            let picture =
                if args.format == PlanFormat::Dot { report::plan::dot(&shown) } else { report::plan::mermaid(&shown) };
            stdout.write_all(picture.as_bytes())?;
            writeln!(stderr, "{note}")?;
        }
    }
    Ok(exit::SUCCESS)
}

/// A large output written in big blocks: the standard output flushes at every line.
pub(crate) fn buffered(stdout: &mut dyn Write) -> std::io::BufWriter<&mut dyn Write> {
    std::io::BufWriter::with_capacity(64 << 10, stdout)
}

/// A plan's JSON form, written as it is made.
fn write_json_plan(
    shown: &report::plan::Shown<'_>,
    diagnostics: &[serde_json::Value],
    stdout: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut out = buffered(stdout);
    report::plan::write_json(shown, diagnostics, &mut out).map_err(std::io::Error::from)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Writes `bytes` to `path` whole ([`crate::journal::write_whole`]).
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    crate::journal::write_whole(path, bytes).with_context(|| format!("failed to write {}", path.display()))
}

fn validate_command(args: ValidateArgs, stdout: &mut dyn Write, terminal_colour: bool) -> anyhow::Result<u8> {
    let colour = args.color.resolve(terminal_colour);
    let config = Config { parameters: args.parameters.supplied()? };
    // What files found in folders hold is checked as the workers load them, so each file is
    // read and parsed once, on every core.
    let wanted = walk::Wanted { name: &is_runbook_name };
    let mut walked = walk::walk(&args.paths, &args.exclude, &wanted)?;
    let format = args.format;
    let deny_warnings = args.deny_warnings;
    // Documents are rendered by the workers and dropped there: memory stays flat however
    // many runbooks a tree holds.
    let portable = args.for_engine == Some(ForEngine::Ssm);
    let results = validate_files(&walked.files, &walked.in_folder, &config, portable, |validated| {
        let mut rendered = Rendered {
            invalid: validated.errors() > 0 || (deny_warnings && validated.warnings() > 0),
            warnings: validated.warnings(),
            ..Rendered::default()
        };
        if let OutputFormat::Text = format {
            rendered.text = report::texts(validated.source(), &validated.diagnostics, colour);
        }
        for diagnostic in &validated.diagnostics {
            match format {
                OutputFormat::Text => {}
                OutputFormat::Github => {
                    rendered.text.push_str(&report::github(&validated.source().name, diagnostic));
                    rendered.text.push('\n');
                }
                OutputFormat::Json => rendered.json.push(report::json(&validated.source().name, diagnostic)),
            }
        }
        rendered
    });
    let mut invalid = 0;
    let mut warnings = 0;
    let mut json_diagnostics = Vec::new();
    let mut runbooks = 0;
    let mut rendered_all = Vec::with_capacity(results.len());
    for result in results {
        match result? {
            Some(rendered) => rendered_all.push(rendered),
            None => walked.unrecognised += 1,
        }
    }
    let skipped = walked.skipped("YAML or JSON files that are not runbooks (no schemaVersion and mainSteps)");
    if rendered_all.is_empty() {
        let why = skipped.as_deref().map_or(String::new(), |skipped| format!(" ({skipped})"));
        bail!(UsageError(format!("no runbook files (*.json, *.yaml, *.yml) found{why}")));
    }
    let mut stdout = buffered(stdout);
    for rendered in rendered_all {
        runbooks += 1;
        invalid += usize::from(rendered.invalid);
        warnings += rendered.warnings;
        stdout.write_all(rendered.text.as_bytes())?;
        json_diagnostics.extend(rendered.json);
    }
    let summary = report::summary(runbooks, invalid, warnings);
    match args.format {
        OutputFormat::Json => {
            let document = serde_json::json!({
                "diagnostics": json_diagnostics,
                "summary": {
                    "runbooks": runbooks,
                    "valid": runbooks - invalid,
                    "invalid": invalid,
                    "warnings": warnings,
                    "text": summary,
                    "skipped": skipped,
                },
            });
            writeln!(stdout, "{}", serde_json::to_string_pretty(&document)?)?;
        }
        OutputFormat::Text | OutputFormat::Github => {
            writeln!(stdout, "{summary}")?;
            if let Some(skipped) = &skipped {
                writeln!(stdout, "{}{}", skipped[..1].to_uppercase(), &skipped[1..])?;
            }
        }
    }
    stdout.flush()?;
    Ok(if invalid > 0 { exit::INVALID } else { exit::SUCCESS })
}

/// What one runbook contributes to the output.
#[derive(Default)]
struct Rendered {
    text: String,
    json: Vec<serde_json::Value>,
    invalid: bool,
    warnings: usize,
}

/// Loads, validates and renders files on every core, keeping the input order. A file found
/// in a folder (`in_folder`) that turns out not to be a runbook gives `None`.
fn validate_files<R: Send>(
    files: &[PathBuf],
    in_folder: &[bool],
    config: &Config,
    portable: bool,
    render: impl Fn(&Validated) -> R + Sync,
) -> Vec<anyhow::Result<Option<R>>> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = files.get(index) else { break };
            let in_folder = in_folder.get(index).copied().unwrap_or(false);
            let result = document::read(path)
                .map(|bytes| {
                    // A file found in a folder that does not even name both keys is
                    // passed over unparsed; one that does is a runbook if they are
                    // keys of its top level.
                    if in_folder && !walk::names_runbook_keys(&bytes) {
                        return None;
                    }
                    // The portability check reads the whole value: then it is kept.
                    let (name, format) = (path.display().to_string(), document::format_of(path));
                    let loading = match portable {
                        true => validate::load_as(name, bytes, format, false),
                        false => validate::load(name, bytes, format),
                    };
                    if in_folder && !walk::is_runbook(&loading.loaded) {
                        return None;
                    }
                    let value = if portable { loading.loaded.value.clone() } else { None };
                    let mut validated = loading.validate(config);
                    plan::check(&mut validated);
                    if let Some(value) = value {
                        validated.add(validate::portable::check(&value, false).diagnostics);
                    }
                    Some(render(&validated))
                })
                .map_err(anyhow::Error::from);
            done.push((index, result));
        }
        done
    };
    let mut results: Vec<Option<anyhow::Result<Option<R>>>> = (0..files.len()).map(|_| None).collect();
    // One file is validated on this thread: a worker thread, and asking how many cores there
    // are (which reads the cgroup's files), cost more than a small runbook's checks.
    let workers = match files.len() {
        0 | 1 => 1,
        n => std::thread::available_parallelism().map_or(1, |cores| cores.get()).min(n),
    };
    let done = match workers {
        1 => work(),
        _ => std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            // A worker panicking is a bug; let it surface as one.
            handles.into_iter().flat_map(|handle| handle.join().expect("validation worker panicked")).collect()
        }),
    };
    for (index, result) in done {
        results[index] = Some(result);
    }
    results.into_iter().map(|r| r.expect("every file was validated")).collect()
}

/// A file name a runbook can have (scenario files, `*.test.yaml`, are not runbooks).
fn is_runbook_name(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    matches!(extension.as_deref(), Some("json" | "yaml" | "yml")) && !crate::scenario::file::is_scenario_file(path)
}

/// A manual page: runbook(1), or runbook-COMMAND(1).
fn man_command(name: Option<&str>, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let top = Cli::command();
    let page = match name {
        None => top,
        Some(name) => {
            let Some(sub) = top.find_subcommand(name) else {
                let names: Vec<&str> = top.get_subcommands().map(|sub| sub.get_name()).collect();
                bail!(UsageError(format!("no command `{name}`: one of {}", names.join(", "))));
            };
            // Printed once and the process ends: the names may live as long as it does.
            let title: &'static str = Box::leak(format!("runbook-{name}").into_boxed_str());
            sub.clone().name(title).bin_name(format!("runbook {name}"))
        }
    };
    clap_mangen::Man::new(page).render(stdout)?;
    Ok(())
}

fn codes_command(code: Option<&str>, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let Some(name) = code else {
        let width = Code::ALL.iter().map(|code| code.as_str().len()).max().unwrap_or(0);
        writeln!(stdout, "{:<width$}  {:<8}  meaning", "code", "severity")?;
        for code in Code::ALL {
            writeln!(stdout, "{:<width$}  {:<8}  {}", code.as_str(), code.severity().to_string(), code.summary())?;
        }
        writeln!(stdout, "\nExplain one: runbook codes CODE")?;
        return Ok(());
    };
    let Some(code) = Code::parse(name) else {
        let hint = crate::diagnostic::did_you_mean(name, Code::ALL.iter().map(|code| code.as_str()));
        bail!(UsageError(format!("no code `{name}`{hint} (`runbook codes` lists them)")));
    };
    let explanation = code.explanation().unwrap_or_default();
    writeln!(stdout, "{} ({}): {}\n", code.as_str(), code.severity(), code.summary())?;
    writeln!(stdout, "{}", wrap(&explanation.paragraph, 100))?;
    for example in &explanation.examples {
        let title = match example.role.as_str() {
            "wrong" => "The mistake",
            "right" => "The fix",
            _ => "The runbook the scenarios test (runbook.yaml)",
        };
        let with = if example.arguments.is_empty() {
            String::new()
        } else {
            format!(", with {}", example.arguments.join(" "))
        };
        writeln!(stdout, "\n{title}{with}:\n")?;
        for line in example.text.lines() {
            writeln!(stdout, "    {line}")?;
        }
    }
    Ok(())
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_length = 0;
    for word in text.split_whitespace() {
        if line_length > 0 && line_length + 1 + word.chars().count() > width {
            out.push('\n');
            line_length = 0;
        } else if line_length > 0 {
            out.push(' ');
            line_length += 1;
        }
        out.push_str(word);
        line_length += word.chars().count();
    }
    out
}
