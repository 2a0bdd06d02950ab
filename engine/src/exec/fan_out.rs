//! Rate-controlled runs over targets (issue 17), with the semantics AWS documents for
//! StartAutomationExecution and `aws:executeAutomation`: one child execution per target, linked
//! to a parent execution in the journal, the children running concurrently in this process.
//!
//! - `MaxConcurrency` (a number, or a percent of the targets, rounded up, at least 1; default
//!   10): at most that many children run at once. As AWS's queue does, it starts with one child
//!   and widens exponentially (1, 2, 4, ...) as children finish, up to the limit.
//! - `MaxErrors` (a number, or a percent of the targets, rounded down; default 0): launching
//!   stops when the error after that many arrives (3 stops at the fourth; 0 at the first; 10%
//!   of 50 at the sixth). Children already running finish, and may fail too.
//! - The parent ends Success when every target's child succeeded, Cancelled when it was
//!   cancelled, Failed otherwise; targets never launched are recorded as such.
//! - A parent resumed after its process died launches no child twice and runs no finished child
//!   again: each child's idempotency key is the parent's id and the target's index.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::{Config, Engine, Error, Finished, Request, Status};
use crate::actions::Interrupt;
use crate::journal;
use crate::timeline::{Silent, Timeline};

pub use crate::actions::execute_automation::Limit;

/// `MaxConcurrency` and `MaxErrors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateControl {
    pub max_concurrency: Limit,
    pub max_errors: Limit,
}

impl Default for RateControl {
    /// AWS's defaults: 10 at once; no error allowed (as Run Command documents it; Automation
    /// documents none).
    fn default() -> RateControl {
        RateControl { max_concurrency: Limit::Count(10), max_errors: Limit::Count(0) }
    }
}

/// One target: what it is called, and the parameters its child gets on top of the run's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub label: String,
    pub parameters: Map<String, Value>,
}

/// A run over targets, as recorded with its parent execution (so a resume runs the same).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FanOut {
    pub targets: Vec<Target>,
    pub control: RateControl,
    /// How the targets were given, for people (`InstanceId over tag:Env=prod`).
    pub described: String,
}

/// Which children may start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduler {
    pub total: usize,
    pub concurrency: usize,
    pub errors_allowed: usize,
    pub launched: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Launching stopped: the errors passed the limit, or the run was cancelled.
    pub stopped: bool,
}

impl Scheduler {
    pub fn new(total: usize, control: RateControl) -> Scheduler {
        Scheduler {
            total,
            concurrency: control.max_concurrency.concurrency(total),
            errors_allowed: control.max_errors.errors(total),
            launched: 0,
            running: 0,
            succeeded: 0,
            failed: 0,
            stopped: false,
        }
    }

    /// How many may run at once now: one at first, doubling with each child that finished, up
    /// to the limit.
    pub fn window(&self) -> usize {
        let finished = self.succeeded + self.failed;
        self.concurrency.min(1usize << finished.min(20))
    }

    pub fn may_launch(&self) -> bool {
        !self.stopped && self.launched < self.total && self.running < self.window()
    }

    pub fn launch(&mut self) {
        self.launched += 1;
        self.running += 1;
    }

    /// A child that finished (here, or in an earlier process when `running` is false).
    pub fn finished(&mut self, succeeded: bool, running: bool) {
        if running {
            self.running -= 1;
        }
        if succeeded {
            self.succeeded += 1;
        } else {
            self.failed += 1;
            if self.failed > self.errors_allowed {
                self.stopped = true;
            }
        }
    }

    /// The parent's status once nothing runs.
    pub fn status(&self, cancelled: bool) -> Status {
        if cancelled {
            Status::Cancelled
        } else if self.succeeded == self.total {
            Status::Success
        } else {
            Status::Failed
        }
    }
}

/// How one target's child ended.
struct Ended {
    index: usize,
    child: Result<Finished, Error>,
}

/// The children running: only those woken are polled again, so a wide window costs no more
/// per step than a narrow one.
type Running<'f> = FuturesUnordered<Pin<Box<dyn Future<Output = Ended> + 'f>>>;

/// Waits for the first of `running` to end, and takes it out. Whenever every child waits (a
/// sleep, a poll, a call in flight), what group commit holds is committed: nothing sits
/// uncommitted while nothing would commit it.
async fn first_ended(running: &mut Running<'_>, journal: &dyn journal::JournalWrite) -> Ended {
    std::future::poll_fn(|context| match running.poll_next_unpin(context) {
        Poll::Ready(Some(ended)) => Poll::Ready(ended),
        // The caller never waits on an empty set; should it, nothing ends.
        Poll::Ready(None) => Poll::Pending,
        Poll::Pending => {
            // A failed commit shows at the next write, which then fails its step.
            let _ = journal.flush();
            Poll::Pending
        }
    })
    .await
}

/// The idempotency key of target `index`'s child: a resumed parent finds it again.
fn child_key(parent_id: &str, index: usize) -> String {
    format!("{parent_id}/target/{index}")
}

/// Runs `request`'s runbook over the targets of `fan_out`: the parent execution (new, or the
/// one to resume in `config.resume`), then one child per target at the rate asked.
pub async fn run(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'_>,
    cancel: watch::Receiver<Interrupt>,
    fan_out: &FanOut,
) -> Result<Finished, Error> {
    // A child that waits for a person would hold its target, and its parent, until someone
    // answers in another terminal: not here yet.
    if let Some(step) = request
        .plan
        .runbook
        .all_steps()
        .into_iter()
        .find(|step| crate::actions::lookup(&step.action).is_some_and(|action| action.asks_person.is_some()))
    {
        return Err(Error::Targets(format!(
            "step `{}` ({}) waits for a person, which a run over targets does not take yet: run the targets one \
             at a time",
            step.name, step.action
        )));
    }
    // The children's writes are committed together (group commit); each attempt's start is
    // still committed before its executor runs, and all of it when nothing can go on.
    let _grouped = Grouped::new(engine.journal)?;
    run_grouped(request, config, engine, cancel, fan_out).await
}

/// Group commit for as long as it lives: ended (and what it holds committed) however the run
/// ends, an error or a dropped future included.
struct Grouped<'j>(&'j dyn journal::JournalWrite);

impl<'j> Grouped<'j> {
    fn new(journal: &'j dyn journal::JournalWrite) -> Result<Grouped<'j>, Error> {
        journal.group(true)?;
        Ok(Grouped(journal))
    }
}

impl Drop for Grouped<'_> {
    fn drop(&mut self) {
        let _ = self.0.group(false);
    }
}

async fn run_grouped(
    request: &Request<'_>,
    config: &Config,
    engine: &Engine<'_>,
    cancel: watch::Receiver<Interrupt>,
    given: &FanOut,
) -> Result<Finished, Error> {
    let started = tokio::time::Instant::now();
    // Every target's secret values are the run's secrets too: its record of the targets
    // holds them redacted.
    let runbook = request.plan.runbook;
    let mut redactor = config.secrets.clone();
    redactor.extend(runbook.secret_values(request.parameters.iter().map(|(n, v)| (n.as_str(), v))));
    for target in &given.targets {
        redactor.extend(runbook.secret_values(target.parameters.iter().map(|(n, v)| (n.as_str(), v))));
    }
    // The one to resume: named, or found by its key (a resumed step's run over targets).
    let existing = super::runner::existing(config, engine.journal)?;
    if let Some(execution) = existing.as_ref().filter(|execution| execution.status.is_terminal()) {
        return Ok(Finished::recorded(execution));
    }
    if let Some(execution) = &existing
        && execution.runbook_hash != request.hash
        && !config.force
    {
        return Err(Error::RunbookChanged {
            execution_id: execution.id.clone(),
            recorded: execution.runbook_hash.clone(),
            now: request.hash.clone(),
        });
    }
    let (parent_id, lease) = match &existing {
        Some(execution) => {
            let lease = super::runner::lease_for(engine, config, execution)?;
            (execution.id.clone(), lease)
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            let lease = engine.locks.acquire(&id)?;
            (id, lease)
        }
    };
    // A resumed run goes on over the targets it was started with, never ones resolved again.
    let recorded_targets = match &existing {
        Some(execution) => recorded(engine.journal, &execution.id)?,
        None => None,
    };
    let fan_out = recorded_targets.as_ref().unwrap_or(given);
    // The record keeps secret target values redacted: such a run cannot go on from it.
    if recorded_targets.as_ref().is_some_and(|recorded| {
        recorded.targets.iter().any(|target| {
            serde_json::to_string(&target.parameters).unwrap_or_default().contains(crate::redact::REDACTED)
        })
    }) {
        return Err(Error::Targets(format!(
            "the targets of execution {parent_id} hold secrets the journal does not keep: start a new run over them"
        )));
    }
    let timeline = Timeline::new(&parent_id, engine.journal, engine.observer, redactor.clone());
    let total = fan_out.targets.len();
    if existing.is_none() {
        let mut execution = super::runner::new_execution(request, config, &parent_id);
        // The run's own parameters: each target's are its child's.
        if let Value::Object(parameters) = &mut execution.parameters {
            parameters.retain(|name, _| !fan_out.targets.iter().any(|target| target.parameters.contains_key(name)));
        }
        timeline.created(&execution, &json!({ "fan_out": fan_out }))?;
    } else {
        timeline.resumed(&request.path.display().to_string(), None)?;
    }
    let mut scheduler = Scheduler::new(total, fan_out.control);
    let text = format!(
        "runs over {total} target{} ({}): at most {} at once (MaxConcurrency {}), launching stops after {} error{} \
         (MaxErrors {})",
        if total == 1 { "" } else { "s" },
        fan_out.described,
        scheduler.concurrency,
        fan_out.control.max_concurrency,
        scheduler.errors_allowed,
        if scheduler.errors_allowed == 1 { "" } else { "s" },
        fan_out.control.max_errors
    );
    timeline.fan_out(&text, json!({ "targets": total }))?;
    // What earlier processes finished counts; what they left running goes on first (by its
    // key, the same execution), even once launching has stopped: it had been launched.
    let mut done = vec![false; total];
    let mut unfinished = Vec::new();
    for (index, _) in fan_out.targets.iter().enumerate() {
        let Some(child) = engine.journal.find_by_key(&child_key(&parent_id, index))? else { continue };
        done[index] = true;
        scheduler.launched += 1;
        if child.status.is_terminal() {
            scheduler.finished(child.status == Status::Success, false);
        } else {
            scheduler.running += 1;
            unfinished.push(index);
        }
    }
    // Each child's parameters: the run's own (a parameter some target sets is the target's,
    // else the runbook's default), then its target's.
    let mut base = request.parameters.clone();
    base.retain(|name, _| !fan_out.targets.iter().any(|target| target.parameters.contains_key(name)));
    // The parent's lease covers its children, where the store allows (the S3 store fences each
    // execution's writes by its own driver, so its children keep theirs).
    let locks: &dyn journal::Locks =
        if engine.locks.children_share_lease() { &journal::UnderParent } else { engine.locks };
    let quiet = Engine { observer: &Silent, locks, ..*engine };
    let mut order = unfinished
        .into_iter()
        .map(|index| (index, true))
        .chain((0..total).filter(|index| !done[*index]).map(|index| (index, false)).collect::<Vec<_>>());
    let mut resumes_left = scheduler.running;
    scheduler.running = 0;
    let mut running: Running<'_> = FuturesUnordered::new();
    let mut cancelled = false;
    loop {
        if *cancel.borrow() >= Interrupt::Cancel && !cancelled {
            cancelled = true;
            scheduler.stopped = true;
        }
        while resumes_left > 0 || scheduler.may_launch() {
            let Some((index, resumed)) = order.next() else { break };
            if resumed {
                resumes_left -= 1;
                scheduler.running += 1;
            } else {
                scheduler.launch();
            }
            let target = &fan_out.targets[index];
            let mut parameters = base.clone();
            parameters.extend(target.parameters.clone());
            let key = child_key(&parent_id, index);
            let child_config = Config {
                resume: None,
                idempotency_key: Some(key),
                parent: Some((parent_id.clone(), format!("target {}", target.label))),
                depth: config.depth + 1,
                saved_plan: None,
                locks: Vec::new(),
                ..config.clone()
            };
            let cancel = cancel.clone();
            let quiet = &quiet;
            running.push(Box::pin(async move {
                let child_request = Request { parameters, ..request.clone() };
                let child = super::run(&child_request, &child_config, quiet, cancel).await;
                Ended { index, child }
            }));
        }
        if running.is_empty() {
            break;
        }
        let mut interrupted = cancel.clone();
        let ended = tokio::select! {
            ended = first_ended(&mut running, engine.journal) => ended,
            Ok(_) = interrupted.wait_for(|interrupt| *interrupt >= Interrupt::Cancel), if !cancelled => continue,
        };
        let target = &fan_out.targets[ended.index];
        let (status, child_id, error) = match &ended.child {
            Ok(finished) => (finished.status, finished.execution_id.clone(), None),
            // Refused before it could run (its record, if any, says where it stopped).
            Err(error) => {
                let child = engine.journal.find_by_key(&child_key(&parent_id, ended.index))?;
                (Status::Failed, child.map(|child| child.id).unwrap_or_default(), Some(error.to_string()))
            }
        };
        scheduler.finished(status == Status::Success, true);
        timeline.target_finished(&target.label, &child_id, status, error.as_deref(), &scheduler)?;
        if scheduler.stopped
            && !cancelled
            && status != Status::Success
            && scheduler.failed == scheduler.errors_allowed + 1
        {
            let text = format!(
                "launching stopped: error {} passed MaxErrors {}; {} running finish, {} not launched",
                scheduler.failed,
                fan_out.control.max_errors,
                scheduler.running,
                total - scheduler.launched
            );
            timeline.fan_out(&text, json!({ "failed": scheduler.failed }))?;
        }
    }
    let status = scheduler.status(cancelled);
    let outputs = json!({
        "Targets": total, "Succeeded": scheduler.succeeded, "Failed": scheduler.failed,
        "NotLaunched": total - scheduler.launched,
    });
    let failed_steps = Vec::new();
    let duration_ms = started.elapsed().as_millis() as u64;
    let outputs = timeline.finished(status, &outputs, &failed_steps, duration_ms)?;
    // Committed before the lease goes: whoever takes it next reads the end.
    engine.journal.flush()?;
    lease.release(true);
    Ok(Finished { execution_id: parent_id, status, outputs, failed_steps, duration_ms })
}

/// The run over targets an execution was started as, from its record, if it was one.
pub fn recorded(journal: &dyn journal::JournalRead, execution_id: &str) -> Result<Option<FanOut>, Error> {
    super::created_as(journal, execution_id, "fan_out", "the targets")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(concurrency: &str, errors: &str) -> RateControl {
        RateControl { max_concurrency: Limit::parse(concurrency).unwrap(), max_errors: Limit::parse(errors).unwrap() }
    }

    #[test]
    fn limits_read_numbers_and_percents_as_aws_rounds_them() {
        assert_eq!(Limit::parse("10"), Ok(Limit::Count(10)));
        assert_eq!(Limit::parse("10%"), Ok(Limit::Percent(10)));
        assert!(Limit::parse("101%").unwrap_err().contains("0% to 100%"));
        assert!(Limit::parse("ten").unwrap_err().contains("neither a number"));
        assert!(Limit::parse("-1").is_err());
        // 10% of 50 allows 5 errors: launching stops at the sixth.
        assert_eq!(Limit::Percent(10).errors(50), 5);
        assert_eq!(Limit::Percent(10).errors(9), 0);
        // A percent of concurrency rounds up and is at least one.
        assert_eq!(Limit::Percent(10).concurrency(9), 1);
        assert_eq!(Limit::Percent(10).concurrency(11), 2);
        assert_eq!(Limit::Count(0).concurrency(5), 1);
    }

    /// Launching stops at error N+1 (N = MaxErrors), never before; 0 stops at the first.
    #[test]
    fn launching_stops_at_the_error_after_max_errors() {
        for (errors, stops_at) in [("0", 1), ("3", 4), ("10%", 6)] {
            let mut scheduler = Scheduler::new(50, control("1", errors));
            let mut failures = 0;
            while scheduler.may_launch() {
                scheduler.launch();
                scheduler.finished(false, true);
                failures += 1;
            }
            assert_eq!(failures, stops_at, "MaxErrors {errors}");
            assert!(scheduler.stopped);
            assert_eq!(scheduler.status(false), Status::Failed);
        }
    }

    /// The window opens one at a time and doubles as children finish, up to MaxConcurrency.
    #[test]
    fn concurrency_widens_exponentially_up_to_the_limit() {
        let mut scheduler = Scheduler::new(100, control("5", "100%"));
        let mut widths = Vec::new();
        while scheduler.launched < scheduler.total {
            while scheduler.may_launch() {
                scheduler.launch();
            }
            widths.push(scheduler.running);
            scheduler.finished(true, true);
        }
        assert_eq!(&widths[..5], [1, 2, 4, 5, 5]);
        assert!(widths.iter().all(|width| *width <= 5));
        while scheduler.running > 0 {
            scheduler.finished(true, true);
        }
        assert_eq!(scheduler.status(false), Status::Success);
    }
}
