//! Scenario tests (`runbook test`): a runbook run through the real runner with mocks at its
//! seams, under a virtual clock, and its path, statuses, outputs and AWS calls compared with
//! what the scenario expects.
//!
//! - `file.rs`: scenario files, their schema and their checks against the runbook.
//! - `mocks.rs`: the [`Executors`](crate::actions::Executors) and AWS responder a scenario
//!   fills with its mocks.
//! - `expect.rs`: what happened against what was expected, with a path diff.
//! - `coverage.rs`: which edges of the plan the scenarios took.
//! - `scaffold.rs`: scenario files written from the plan, one scenario per path needed to
//!   take every edge.
//!
//! Every scenario runs on its own single-threaded tokio runtime whose clock is paused: sleeps,
//! waits, polls, time limits and retry backoff take no wall time. A script that runs for real
//! runs in real time (the clock resumes while it runs).

pub mod coverage;
pub mod expect;
pub mod file;
mod mocks;
pub mod scaffold;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::document::model::Runbook;
use crate::exec::{self, Clock, Config, Engine, Event, Interrupt, Observer, Request, System, WaitMode};
use crate::journal::Memory;
use crate::plan::Plan;

pub use coverage::Coverage;
pub use file::{File, Scenario};

/// An attempt, iteration or call number, or a range of them: `2`, `"1-2"`, `"3-"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub first: u32,
    /// `None`: and every one after.
    pub last: Option<u32>,
}

impl Range {
    pub fn parse(value: &Value) -> Result<Range, String> {
        let invalid = || format!("{value} is not a number or a range such as \"1-2\" or \"3-\"");
        if let Some(number) = value.as_u64() {
            let number = u32::try_from(number).map_err(|_| invalid())?;
            return Ok(Range { first: number, last: Some(number) });
        }
        let text = value.as_str().ok_or_else(invalid)?.trim();
        let number = |text: &str| text.trim().parse::<u32>().map_err(|_| invalid());
        let range = match text.split_once('-') {
            None => {
                let number = number(text)?;
                Range { first: number, last: Some(number) }
            }
            Some((first, "")) => Range { first: number(first)?, last: None },
            Some((first, last)) => Range { first: number(first)?, last: Some(number(last)?) },
        };
        if range.first == 0 || range.last.is_some_and(|last| last < range.first) {
            return Err(format!("{value} is not a range of numbers from 1 up"));
        }
        Ok(range)
    }

    pub fn contains(&self, number: u32) -> bool {
        number >= self.first && self.last.is_none_or(|last| number <= last)
    }
}

/// A runbook under test: read, validated and hashed once for all its scenarios.
pub struct Target {
    pub path: PathBuf,
    pub hash: String,
    pub runbook: Runbook,
}

/// Reads and validates the runbook a scenario file tests; `Err` is the message of a
/// `scenario-runbook` diagnostic.
pub fn target(path: &Path) -> Result<Target, String> {
    match exec::prepare(path, Vec::new(), false) {
        Ok(prepared) => Ok(Target { path: prepared.path, hash: prepared.hash, runbook: prepared.runbook }),
        Err(exec::PrepareError::Io(error)) => {
            Err(format!("{error}: {}", std::error::Error::source(&error).map_or(String::new(), ToString::to_string)))
        }
        Err(exec::PrepareError::Invalid(validated)) => {
            let first = validated.diagnostics.iter().find(|d| d.is_error());
            let detail = first.map_or(String::new(), |d| {
                let at = d.location.map_or(String::new(), |l| format!(":{}:{}", l.line, l.column));
                format!(" ({}{at}: {})", validated.source().name, d.message)
            });
            Err(format!("the runbook {} is invalid{detail}: `runbook validate` shows every problem", path.display()))
        }
    }
}

/// What one scenario came to.
#[derive(Debug, Clone)]
pub struct Ran {
    pub name: String,
    pub line: usize,
    /// Why it failed: one message per expectation not met; empty when it passed.
    pub failures: Vec<String>,
    pub actual: expect::Actual,
    /// Edges of the plan taken, as (from, to, label) step ids.
    pub edges: HashSet<coverage::Edge>,
    pub wall: Duration,
    /// Virtual time the run took.
    pub virtual_time: Duration,
}

impl Ran {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// A scenario that could not run at all.
    pub fn broken(scenario: &Scenario, failure: String, started: Instant) -> Ran {
        Ran {
            name: scenario.name.clone(),
            line: scenario.line,
            failures: vec![failure],
            actual: expect::Actual::default(),
            edges: HashSet::new(),
            wall: started.elapsed(),
            virtual_time: Duration::ZERO,
        }
    }
}

/// Collects the run's events: the path and each step visit as it ended.
#[derive(Default)]
struct Recorder {
    execution_id: std::cell::RefCell<Option<String>>,
    open: std::cell::RefCell<HashSet<(String, u32)>>,
    path: std::cell::RefCell<Vec<String>>,
    steps: std::cell::RefCell<Vec<expect::Visit>>,
}

fn entry(step: &str, iteration: u32) -> String {
    if iteration == 0 { step.to_owned() } else { format!("{step}#{iteration}") }
}

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        let mut root = self.execution_id.borrow_mut();
        match event {
            Event::ExecutionStarted { execution_id, .. } if root.is_none() => *root = Some(execution_id.clone()),
            // A retry starts the same visit again: the path has it once.
            Event::StepStarted { execution_id, step, iteration, .. }
                if root.as_ref() == Some(execution_id) && self.open.borrow_mut().insert((step.clone(), *iteration)) =>
            {
                self.path.borrow_mut().push(entry(step, *iteration));
            }
            Event::StepFinished { execution_id, step, iteration, status, attempts, outputs, error, .. }
                if root.as_ref() == Some(execution_id) =>
            {
                if !self.open.borrow_mut().remove(&(step.clone(), *iteration)) {
                    self.path.borrow_mut().push(entry(step, *iteration));
                }
                self.steps.borrow_mut().push(expect::Visit {
                    step: step.clone(),
                    iteration: *iteration,
                    status: *status,
                    attempts: *attempts,
                    outputs: outputs.clone(),
                    error: error.clone(),
                });
            }
            _ => {}
        }
    }
}

/// The configuration every scenario starts from (reading the environment once).
pub fn base_config() -> Config {
    Config { wait: WaitMode::Exit, user: "runbook test".to_owned(), ..Config::default() }
}

/// Runs one scenario on `runtime`, a current-thread runtime whose clock is paused
/// ([`runtime`]); a scenario with an endpoint runs on a runtime of its own in real time.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    plan: &Plan<'_>,
    scenario: &Scenario,
    base: &Config,
) -> Ran {
    let started = Instant::now();
    let journal = Memory::new();
    let recorder = Recorder::default();
    let (cancel, cancelled) = watch::channel(Interrupt::None);
    let step_mocks = mocks::StepMocks {
        runbook: &target.runbook,
        mocks: &scenario.steps,
        cancel: &cancel,
        paused: scenario.endpoint.is_none(),
        real_time: std::cell::Cell::new(false),
    };
    let aws_mocks = Arc::new(mocks::AwsMocks::new(scenario.aws.clone(), scenario.endpoint.is_some()));
    let settings = crate::aws::Settings {
        endpoint_url: scenario.endpoint.clone(),
        profile: None,
        region: Some(scenario.region.clone()),
    };
    let engine = Engine {
        journal: &journal,
        locks: &journal,
        named: None,
        observer: &recorder,
        executors: &step_mocks,
        prompt: None,
    };
    let parameters = crate::validate::params::bind(&target.runbook, &scenario.parameters).values;
    let request = Request { plan, path: target.path.clone(), hash: target.hash.clone(), parameters };
    // A scenario that talks to a server runs in real time: a paused clock would run out while
    // it waits for an answer.
    let real_runtime;
    let runtime = match &scenario.endpoint {
        None => runtime,
        Some(_) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(built) => {
                real_runtime = built;
                &real_runtime
            }
            Err(error) => return Ran::broken(scenario, format!("could not start a runtime: {error}"), started),
        },
    };
    let (finished, virtual_time) = runtime.block_on(async {
        let config = Config {
            aws: crate::aws::Aws::with_responder(settings, aws_mocks.clone()),
            system: System {
                region: Some(scenario.region.clone()),
                account_id: Some(scenario.account.clone()),
                partition_name: None,
                ssm: Default::default(),
                clock: Clock::starting_at(scenario.now),
                fencing_token: None,
            },
            step_answers: scenario.answers.clone(),
            ..base.clone()
        };
        let begun = tokio::time::Instant::now();
        let finished =
            tokio::time::timeout(scenario.time_limit, exec::run(&request, &config, &engine, cancelled)).await;
        (finished, begun.elapsed())
    });
    let execution_id = recorder.execution_id.borrow().clone().unwrap_or_default();
    let mut actual = expect::Actual {
        path: recorder.path.take(),
        steps: recorder.steps.take(),
        calls: aws_mocks.made(),
        ..expect::Actual::default()
    };
    match finished {
        Ok(Ok(finished)) => {
            actual.status = Some(finished.status);
            actual.outputs = finished.outputs;
        }
        Ok(Err(error)) => actual.error = Some(format!("the engine stopped: {error}")),
        Err(_) => {
            actual.error = Some(format!(
                "the run did not end within {} of virtual time (`time_limit`): a step waits forever, such as a \
                 `timeout` mock on a step without a time limit",
                humanize(scenario.time_limit)
            ))
        }
    }
    let edges = journal.with_history(&execution_id, |history| coverage::taken(plan, &history, &actual.path));
    // Reports show no secret: neither an x-secret parameter's value nor a decrypted answer.
    let mut redactor = crate::redact::Redactor::default();
    redactor
        .extend(target.runbook.secret_values(request.parameters.iter().map(|(name, value)| (name.as_str(), value))));
    redactor.extend(aws_mocks.secrets());
    for call in &mut actual.calls {
        redactor.value_in_place(&mut call.params);
    }
    let failures = expect::compare(&scenario.expect, &actual).iter().map(|failure| redactor.text(failure)).collect();
    Ran {
        name: scenario.name.clone(),
        line: scenario.line,
        failures,
        actual,
        edges,
        wall: started.elapsed(),
        virtual_time,
    }
}

/// A duration in the largest unit that fits: `30d`, `2h`, `1.5s`.
fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    match seconds {
        s if s >= 86_400.0 => format!("{}d", trim(s / 86_400.0)),
        s if s >= 3_600.0 => format!("{}h", trim(s / 3_600.0)),
        s if s >= 60.0 => format!("{}m", trim(s / 60.0)),
        s => format!("{}s", trim(s)),
    }
}

fn trim(number: f64) -> String {
    let text = format!("{number:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

/// A runtime for scenarios: one thread, the clock paused.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()
}
