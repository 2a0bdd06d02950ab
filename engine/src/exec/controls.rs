//! Game-day controls on a run (`runbook run --inject-failure ... --from ... --step`): faults
//! injected into steps, where the walk starts and stops, steps left out, and an operator's
//! pause or answer before a step. They are parsed and checked against the plan here, before
//! anything runs; the runner applies them, and every time one acts it goes through the
//! timeline as a `control` fact, so a rehearsal is never taken for a real failure.
//!
//! An injected fault is not imitated by a mock of the action: the runner treats it as the
//! attempt's result, so retries (`maxAttempts`, `x-retry`), `onFailure`, `onCancel` and
//! `isCritical` apply exactly as they do to the real thing.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::document::model::UNDO_PREFIX;
use crate::plan::{Plan, StepId};
use crate::template::{self, Reference};

/// The controls of one `runbook run`.
#[derive(Clone, Debug, Default)]
pub struct Controls {
    pub failures: Vec<InjectedFailure>,
    pub timeouts: Vec<String>,
    pub delays: Vec<(String, Duration)>,
    /// As if Ctrl-C came when this step starts (its first visit).
    pub cancel_at: Option<String>,
    /// Where the walk starts and stops and what it leaves out: kept with the execution, so a
    /// resume walks the same part of the runbook.
    pub walk: Walk,
    /// `--step`: on a terminal, the operator confirms each step before it runs.
    pub confirm_each: bool,
    /// The execution waits, as `aws:pause` does, before each of these steps.
    pub pause_before: Vec<String>,
}

/// `--inject-failure STEP[=CODE:MESSAGE][@ATTEMPTS]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectedFailure {
    pub step: String,
    pub code: String,
    pub message: String,
    /// The first this many attempts of each visit fail (then the real action runs); `None`:
    /// every attempt.
    pub attempts: Option<u32>,
}

/// An operator's answer before a step under `--step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepChoice {
    Run,
    Skip,
    /// The step fails as if its action had failed (its retries and `onFailure` apply).
    Fail,
    /// As Ctrl-C: the step is cancelled and the cancellation path runs.
    Abort,
}

impl StepChoice {
    /// What was typed: Enter runs the step.
    pub fn parse(line: &str) -> Option<StepChoice> {
        Some(match line.trim().to_ascii_lowercase().as_str() {
            // Not `r`: at an approval or a pause, `r` rejects.
            "" | "run" | "y" | "yes" => StepChoice::Run,
            "s" | "skip" => StepChoice::Skip,
            "f" | "fail" => StepChoice::Fail,
            "a" | "abort" | "q" | "quit" => StepChoice::Abort,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepChoice::Run => "run",
            StepChoice::Skip => "skip",
            StepChoice::Fail => "fail",
            StepChoice::Abort => "abort",
        }
    }
}

/// The part of the runbook a run walks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Walk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Outputs of the steps the run leaves out, by step: `{STEP: {OUTPUT: VALUE}}`, from
    /// `--mock` and `--outputs-from`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    /// The execution `--outputs-from` named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_from: Option<String>,
}

impl Walk {
    pub fn is_empty(&self) -> bool {
        self.from.is_none() && self.to.is_none() && self.only.is_empty() && self.skip.is_empty()
    }

    /// Whether `--skip` or `--only` leave this step out. A loop stays in when `--only` names a
    /// step of its body.
    pub fn leaves_out(&self, plan: &Plan<'_>, id: StepId) -> bool {
        let walk = self;
        let name = plan.step(id).name.as_str();
        if walk.skip.iter().any(|step| step == name) {
            return true;
        }
        if walk.only.is_empty() || walk.only.iter().any(|step| step == name) {
            return false;
        }
        let named: Vec<StepId> = walk.only.iter().filter_map(|step| plan.find(step)).collect();
        let within = |inner: StepId, outer: StepId| {
            let mut parent = plan.node(inner).parent;
            while let Some(loop_id) = parent {
                if loop_id == outer {
                    return true;
                }
                parent = plan.node(loop_id).parent;
            }
            false
        };
        // A loop one of whose body steps is named stays in, and so does the body of a named loop.
        !named.iter().any(|&step| within(step, id) || within(id, step))
    }
}

/// An injected fault's error text: the code first, as AWS errors read, and marked.
pub const INJECTED: &str = "(injected)";

impl InjectedFailure {
    /// `STEP`, `STEP=CODE`, `STEP=CODE:MESSAGE`, each optionally ending `@ATTEMPTS`.
    pub fn parse(text: &str) -> Result<InjectedFailure, String> {
        let (rest, attempts) = match text.rsplit_once('@') {
            Some((rest, count)) if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) => {
                let count: u32 = count.parse().map_err(|_| format!("`@{count}` is not a number of attempts"))?;
                if count == 0 {
                    return Err(
                        "`@0` fails no attempt: give at least 1, or leave `@N` out to fail every attempt".into()
                    );
                }
                (rest, Some(count))
            }
            _ => (text, None),
        };
        let (step, error) = match rest.split_once('=') {
            Some((step, error)) => (step, Some(error)),
            None => (rest, None),
        };
        if step.is_empty() {
            return Err(format!("expected STEP[=CODE:MESSAGE][@ATTEMPTS], found `{text}`"));
        }
        let (code, message) = match error.map(|error| error.split_once(':').unwrap_or((error, ""))) {
            Some((code, message)) if !code.trim().is_empty() => (code.trim(), message.trim()),
            _ => ("InjectedFailure", ""),
        };
        let message = if message.is_empty() { "a failure injected with --inject-failure" } else { message };
        Ok(InjectedFailure { step: step.to_owned(), code: code.to_owned(), message: message.to_owned(), attempts })
    }

    /// Whether attempt `attempt` (1-based, within one visit) of the step fails.
    pub fn fails(&self, attempt: u32) -> bool {
        self.attempts.is_none_or(|count| attempt <= count)
    }

    /// The attempt's error, as the journal and the output show it.
    pub fn error(&self) -> String {
        format!("{}: {} {INJECTED}", self.code, self.message)
    }
}

/// `STEP=DURATION` (`30s`, `2m`, `1h30m`, `500ms`, or a number of seconds).
pub fn parse_delay(text: &str) -> Result<(String, Duration), String> {
    let (step, duration) =
        text.split_once('=').ok_or_else(|| format!("expected STEP=DURATION (such as 30s or 2m), found `{text}`"))?;
    Ok((step.to_owned(), parse_duration(duration)?))
}

/// A duration as people write it: `30s`, `2m`, `1h30m`, `500ms`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration: write it as 30s, 2m, 1h30m, 500ms or a number of seconds");
    if let Ok(seconds) = text.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| bad());
    }
    let signed: jiff::SignedDuration = text.trim().parse().map_err(|_| bad())?;
    Duration::try_from(signed).map_err(|_| bad())
}

impl Controls {
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
            && self.timeouts.is_empty()
            && self.delays.is_empty()
            && self.cancel_at.is_none()
            && self.walk.is_empty()
            && !self.confirm_each
            && self.pause_before.is_empty()
    }

    /// The failure injected into attempt `attempt` of `step`, if any.
    pub fn failure(&self, step: &str, attempt: u32) -> Option<&InjectedFailure> {
        self.failures.iter().find(|failure| failure.step == step && failure.fails(attempt))
    }

    pub fn times_out(&self, step: &str) -> bool {
        self.timeouts.iter().any(|name| name == step)
    }

    pub fn delay(&self, step: &str) -> Option<Duration> {
        self.delays.iter().find(|(name, _)| name == step).map(|(_, delay)| *delay)
    }

    pub fn pauses_before(&self, step: &str) -> bool {
        self.pause_before.iter().any(|name| name == step)
    }

    /// Refuses controls that cannot make sense for this plan, before anything runs: unknown
    /// steps, a fault injected into a loop (its body steps are what run), `--from` into a loop
    /// body, `--to` that the walk from `--from` never reaches, a pause before a step that
    /// waits already, and steps that run but read outputs no step that runs produces.
    pub fn check(&self, plan: &Plan<'_>) -> Result<(), String> {
        // `undo:NAME` is the undo of NAME, which a fault may be injected into too (the other
        // controls act on the walk, which undos are not part of).
        let known = |step: &str, flag: &str| -> Result<StepId, String> {
            if let Some(undone) = step.strip_prefix(UNDO_PREFIX)
                && let Some(id) = plan.find(undone).filter(|&id| plan.step(id).undo.is_some())
                && flag.starts_with("--inject-")
            {
                return Ok(id);
            }
            plan.find(step).ok_or_else(|| {
                let names = plan.steps().map(|id| plan.step(id).name.as_str());
                format!(
                    "{flag} {step}: the runbook has no step `{step}`{}",
                    crate::diagnostic::did_you_mean(step, names)
                )
            })
        };
        let injected = self
            .failures
            .iter()
            .map(|failure| (failure.step.as_str(), "--inject-failure"))
            .chain(self.timeouts.iter().map(|step| (step.as_str(), "--inject-timeout")))
            .chain(self.delays.iter().map(|(step, _)| (step.as_str(), "--inject-delay")))
            .chain(self.cancel_at.iter().map(|step| (step.as_str(), "--cancel-at")));
        for (step, flag) in injected {
            let id = known(step, flag)?;
            if plan.node(id).is_loop() {
                return Err(format!(
                    "{flag} {step}: `{step}` is an aws:loop, which runs no attempt of its own: name a step of its body"
                ));
            }
        }
        let mut faults: Vec<&str> = self.failures.iter().map(|f| f.step.as_str()).collect();
        faults.sort_unstable();
        faults.dedup();
        for step in &faults {
            if self.times_out(step) {
                return Err(format!("--inject-failure and --inject-timeout both name `{step}`: a step fails one way"));
            }
        }
        for step in &self.pause_before {
            let id = known(step, "--pause-before")?;
            if crate::actions::lookup(&plan.step(id).action).is_some_and(|action| action.asks_person.is_some()) {
                return Err(format!(
                    "--pause-before {step}: `{step}` ({}) waits for a person already",
                    plan.step(id).action
                ));
            }
        }
        let walk = &self.walk;
        for step in walk.only.iter().chain(&walk.skip) {
            known(step, if walk.only.contains(step) { "--only" } else { "--skip" })?;
        }
        let from = match &walk.from {
            Some(step) => {
                let id = known(step, "--from")?;
                if let Some(parent) = plan.node(id).parent {
                    return Err(format!(
                        "--from {step}: `{step}` is in the body of the loop `{}`, which sets the values it \
                         reads: start from the loop",
                        plan.step(parent).name
                    ));
                }
                Some(id)
            }
            None => None,
        };
        let start = from.or_else(|| plan.entry());
        let reached = start.map(|start| reachable(plan, start)).unwrap_or_default();
        if let Some(to) = &walk.to {
            let id = known(to, "--to")?;
            if !reached.contains(&id) {
                return Err(match &walk.from {
                    Some(from) => {
                        format!("--to {to}: no path from `{from}` (--from) reaches `{to}`")
                    }
                    None => format!("--to {to}: no path from the first step reaches `{to}`"),
                });
            }
        }
        for step in walk.outputs.keys() {
            known(step, "--mock")?;
        }
        self.check_reads(plan, &reached)
    }

    /// Every output a step that runs reads from a step that never runs (before `--from`, or
    /// left out) must be given.
    fn check_reads(&self, plan: &Plan<'_>, reached: &HashSet<StepId>) -> Result<(), String> {
        let walk = &self.walk;
        if walk.from.is_none() && walk.only.is_empty() && walk.skip.is_empty() {
            return Ok(());
        }
        let config = template::config_for(plan.runbook);
        let mut missing: Vec<String> = Vec::new();
        for &id in reached {
            if walk.leaves_out(plan, id) {
                continue;
            }
            let reader = plan.step(id);
            reader.visit_input_templates(|text, _| {
                for (_, reference) in template::references_in(text, config) {
                    let Reference::StepOutput { step, output } = reference else { continue };
                    let Some(producer) = plan.find(step) else { continue };
                    let runs = reached.contains(&producer) && !walk.leaves_out(plan, producer);
                    let given = walk.outputs.get(step).and_then(|outputs| outputs.get(output)).is_some();
                    let name = format!("{step}.{output} (read by {})", reader.name);
                    if !runs && !given && !missing.contains(&name) {
                        missing.push(name);
                    }
                }
            });
        }
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        Err(format!(
            "steps that run read outputs of steps this run leaves out: {}; give each with --mock STEP.OUTPUT=VALUE, \
             or all of them with --outputs-from EXECUTION_ID",
            missing.join(", ")
        ))
    }

    /// The controls as one line each, for the execution's timeline at its start.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for failure in &self.failures {
            let attempts = match failure.attempts {
                None => "every attempt".to_owned(),
                Some(1) => "attempt 1".to_owned(),
                Some(n) => format!("the first {n} attempts"),
            };
            lines.push(format!("--inject-failure {}: {} on {attempts}", failure.step, failure.error()));
        }
        lines.extend(self.timeouts.iter().map(|step| format!("--inject-timeout {step}")));
        lines.extend(self.delays.iter().map(|(step, delay)| format!("--inject-delay {step}={delay:?}")));
        lines.extend(self.cancel_at.iter().map(|step| format!("--cancel-at {step}")));
        lines.extend(self.pause_before.iter().map(|step| format!("--pause-before {step}")));
        if self.confirm_each {
            lines.push("--step".to_owned());
        }
        lines
    }
}

/// The steps a walk from `start` can reach, loop bodies included.
fn reachable(plan: &Plan<'_>, start: StepId) -> HashSet<StepId> {
    let mut seen = HashSet::from([start]);
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for (next, _) in plan.edges_from(id) {
            if seen.insert(next) {
                stack.push(next);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_failure_reads_step_code_message_and_attempts() {
        let parse = |text| InjectedFailure::parse(text).unwrap();
        assert_eq!(parse("Stop").error(), "InjectedFailure: a failure injected with --inject-failure (injected)");
        let full = parse("Stop=Throttling:Rate exceeded@2");
        assert_eq!(
            (full.code.as_str(), full.message.as_str(), full.attempts),
            ("Throttling", "Rate exceeded", Some(2))
        );
        assert!(full.fails(2) && !full.fails(3));
        assert_eq!(parse("Stop=AccessDenied").code, "AccessDenied");
        // An `@` that is not followed by a count belongs to the message.
        assert_eq!(parse("Stop=E:mail me@home").message, "mail me@home");
        assert!(InjectedFailure::parse("=E:x").is_err());
        assert!(InjectedFailure::parse("Stop@0").unwrap_err().contains("at least 1"));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
        assert!(parse_duration("-3s").is_err());
        assert_eq!(parse_delay("Wait=2m"), Ok(("Wait".to_owned(), Duration::from_secs(120))));
    }
}
