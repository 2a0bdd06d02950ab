//! The journal's records, typed: statuses, outcomes, decisions and event kinds are enums, so
//! a value the engine does not know (a damaged row, a newer engine's word) is an error on
//! read, never a silent default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::plan::Outcome;

/// Step, attempt and execution statuses (reference 4.6), as the API spells them, and the
/// journal's own: an attempt whose process died (`Interrupted`), a dry-run record (`DryRun`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// An attempt that was running when its engine died; a resume closed it.
    Interrupted,
    /// The record of a dry-run (`runbook run --dry-run --record`).
    DryRun,
    /// A step an operator's control left out (`--skip`, `--only`, a `--step` answer).
    Skipped,
}

const STATUSES: [Status; 11] = [
    Status::Pending,
    Status::InProgress,
    Status::Waiting,
    Status::Success,
    Status::Failed,
    Status::TimedOut,
    Status::Cancelled,
    Status::Exited,
    Status::Interrupted,
    Status::DryRun,
    Status::Skipped,
];

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
            Status::Interrupted => "Interrupted",
            Status::DryRun => "DryRun",
            Status::Skipped => "Skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        STATUSES.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether an execution with this status is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::TimedOut | Status::Cancelled | Status::DryRun)
    }

    /// Whether a step with this status failed the way `isCritical` counts.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::TimedOut | Status::Cancelled)
    }
}

/// How a step visit ended, as the successor function needs it, and how a loop was left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Succeeded,
    /// A branch took choice `i` (0-based).
    Chose(usize),
    /// A branch had no true choice.
    NoChoice,
    Failed,
    TimedOut,
    Cancelled,
    /// A loop whose body jumped to this step outside it.
    Exited(String),
}

impl From<Outcome> for StepOutcome {
    fn from(outcome: Outcome) -> StepOutcome {
        match outcome {
            Outcome::Succeeded => StepOutcome::Succeeded,
            Outcome::Chose(index) => StepOutcome::Chose(index),
            Outcome::NoChoice => StepOutcome::NoChoice,
            Outcome::Failed => StepOutcome::Failed,
            Outcome::TimedOut => StepOutcome::TimedOut,
            Outcome::Cancelled => StepOutcome::Cancelled,
        }
    }
}

impl StepOutcome {
    /// The outcome the successor function takes; `None` for a loop left by a jump, which a
    /// resume walks again.
    pub fn as_outcome(&self) -> Option<Outcome> {
        Some(match self {
            StepOutcome::Succeeded => Outcome::Succeeded,
            StepOutcome::Chose(index) => Outcome::Chose(*index),
            StepOutcome::NoChoice => Outcome::NoChoice,
            StepOutcome::Failed => Outcome::Failed,
            StepOutcome::TimedOut => Outcome::TimedOut,
            StepOutcome::Cancelled => Outcome::Cancelled,
            StepOutcome::Exited(_) => return None,
        })
    }

    pub fn parse(text: &str) -> Option<StepOutcome> {
        Some(match text {
            "succeeded" => StepOutcome::Succeeded,
            "no_choice" => StepOutcome::NoChoice,
            "failed" => StepOutcome::Failed,
            "timed_out" => StepOutcome::TimedOut,
            "cancelled" => StepOutcome::Cancelled,
            _ => match text.split_once(':')? {
                ("chose", index) => StepOutcome::Chose(index.parse().ok()?),
                ("exited", step) if !step.is_empty() => StepOutcome::Exited(step.to_owned()),
                _ => return None,
            },
        })
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepOutcome::Succeeded => f.write_str("succeeded"),
            StepOutcome::Chose(index) => write!(f, "chose:{index}"),
            StepOutcome::NoChoice => f.write_str("no_choice"),
            StepOutcome::Failed => f.write_str("failed"),
            StepOutcome::TimedOut => f.write_str("timed_out"),
            StepOutcome::Cancelled => f.write_str("cancelled"),
            StepOutcome::Exited(step) => write!(f, "exited:{step}"),
        }
    }
}

/// A person's answer to a step that waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Reject,
    /// An `aws:pause` resumed.
    Resume,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Approve => "Approve",
            Answer::Reject => "Reject",
            Answer::Resume => "Resume",
        }
    }

    pub fn parse(text: &str) -> Option<Answer> {
        [Answer::Approve, Answer::Reject, Answer::Resume].into_iter().find(|answer| answer.as_str() == text)
    }
}

/// What a waiting step waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    /// `aws:approve`: `runbook approve|reject ID`.
    Approval,
    /// `aws:pause`: `runbook resume ID`.
    Pause,
    /// `aws:executeAutomation` whose child waits: answer the child.
    Child,
}

impl WaitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::Approval => "approval",
            WaitKind::Pause => "pause",
            WaitKind::Child => "child",
        }
    }

    pub fn parse(text: &str) -> Option<WaitKind> {
        [WaitKind::Approval, WaitKind::Pause, WaitKind::Child].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// The kinds of timeline entries besides attempts and step results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    ExecutionCreated,
    /// The execution's status changed.
    Status,
    Waiting,
    Decision,
    CancelRequested,
    /// A step started a child execution.
    ChildLinked,
    /// A resume closed an attempt whose engine had died.
    AttemptInterrupted,
    /// Something an action reports on its way (a command id sent to the nodes).
    Note,
    /// A game-day control acted: a fault injected, a step skipped, a pause or an operator's
    /// choice before a step, where the walk started or stopped.
    Control,
}

const EVENT_KINDS: [EventKind; 9] = [
    EventKind::ExecutionCreated,
    EventKind::Status,
    EventKind::Waiting,
    EventKind::Decision,
    EventKind::CancelRequested,
    EventKind::ChildLinked,
    EventKind::AttemptInterrupted,
    EventKind::Note,
    EventKind::Control,
];

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ExecutionCreated => "execution_created",
            EventKind::Status => "status",
            EventKind::Waiting => "waiting",
            EventKind::Decision => "decision",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::ChildLinked => "child_linked",
            EventKind::AttemptInterrupted => "attempt_interrupted",
            EventKind::Note => "note",
            EventKind::Control => "control",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EVENT_KINDS.into_iter().find(|kind| kind.as_str() == text)
    }
}

macro_rules! text_forms {
    ($($kind:ty),*) => {$(
        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so widths (`{:<10}`) apply as they do to text.
                f.pad(self.as_str())
            }
        }

        impl Serialize for $kind {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl FromStr for $kind {
            type Err = ();

            fn from_str(text: &str) -> Result<Self, ()> {
                <$kind>::parse(text).ok_or(())
            }
        }

        impl<'de> Deserialize<'de> for $kind {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$kind>::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown value `{text}`")))
            }
        }
    )*};
}

text_forms!(Status, Answer, WaitKind, EventKind);

impl Serialize for StepOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        StepOutcome::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown outcome `{text}`")))
    }
}

/// An execution as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub runbook_path: String,
    pub runbook_hash: String,
    /// Supplied parameter values, secrets replaced by the redaction mark.
    pub parameters: Value,
    pub status: Status,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub idempotency_key: Option<String>,
    pub parent_id: Option<String>,
    pub parent_step: Option<String>,
    pub dry_run: bool,
    pub outputs: Option<Value>,
    pub error: Option<String>,
}

/// One try of one step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attempt {
    pub step: String,
    /// The loop iteration the step ran in (1-based), 0 outside loops.
    pub iteration: u32,
    pub attempt: u32,
    pub action: String,
    pub status: Status,
    pub inputs: Value,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub log: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// How a step visit ended, after all its attempts: what resume restores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    pub iteration: u32,
    pub action: String,
    pub status: Status,
    pub outcome: StepOutcome,
    pub outputs: Value,
    /// State changes besides outputs: variables written.
    pub effects: Value,
    pub error: Option<String>,
    pub attempts: u32,
    pub critical: bool,
    pub started_at: String,
    pub ended_at: String,
    /// Outputs (`Name`) and variables (`variable:Name`) whose values held a secret: the
    /// journal keeps them redacted, so a resume must not feed them to a later step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<String>,
}

/// A timeline entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    pub kind: EventKind,
    pub step: Option<String>,
    pub detail: Value,
}

/// A person's answer to an `aws:approve` or `aws:pause` step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Decision {
    pub step: String,
    pub iteration: u32,
    pub decision: Answer,
    pub by: String,
    pub comment: Option<String>,
    pub at: String,
}

impl Attempt {
    /// The attempt as it finished, its inputs kept from when it started.
    pub fn finish_from(&mut self, finished: &Attempt) {
        self.status = finished.status;
        self.outputs.clone_from(&finished.outputs);
        self.error.clone_from(&finished.error);
        self.log.clone_from(&finished.log);
        self.ended_at.clone_from(&finished.ended_at);
    }
}

impl Decision {
    /// The detail of the timeline's `decision` event.
    pub fn detail(&self) -> Value {
        serde_json::json!({
            "iteration": self.iteration, "decision": self.decision, "by": self.by, "comment": self.comment,
        })
    }
}

/// The step an execution waits on, from its timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingOn {
    pub step: String,
    pub iteration: u32,
    pub kind: WaitKind,
}

impl WaitingOn {
    /// The step the last `waiting` event of a timeline names (for the stores that keep the
    /// timeline as a list).
    pub fn last_in<'e>(events: impl DoubleEndedIterator<Item = &'e Event>) -> Option<WaitingOn> {
        let event = events.rev().find(|event| event.kind == EventKind::Waiting)?;
        let iteration = event.detail.get("iteration").and_then(Value::as_u64)?;
        let kind = event.detail.get("kind").and_then(Value::as_str).and_then(WaitKind::parse)?;
        Some(WaitingOn { step: event.step.clone()?, iteration: u32::try_from(iteration).ok()?, kind })
    }
}

/// The time now, as the journal writes it.
pub fn now() -> String {
    // Every attempt takes several: the text of the current millisecond is kept.
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let timestamp = jiff::Timestamp::now();
    let millis = timestamp.as_millisecond();
    LAST.with_borrow_mut(|(last, text)| {
        if *last != millis {
            *last = millis;
            *text = format_millis(timestamp);
        }
        text.clone()
    })
}

/// An ISO-8601 time another system gave (SSM's), as the journal writes times.
pub fn time_of(text: &str) -> Option<String> {
    text.parse::<jiff::Timestamp>().ok().map(format_millis)
}

/// `2026-12-01T01:05:06.123Z`: fixed width, so that the text sorts as the time does.
fn format_millis(timestamp: jiff::Timestamp) -> String {
    let at = jiff::tz::Offset::UTC.to_datetime(timestamp);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.subsec_nanosecond() / 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for status in STATUSES {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        for outcome in [StepOutcome::Chose(3), StepOutcome::Exited("x".into()), StepOutcome::TimedOut] {
            assert_eq!(StepOutcome::parse(&outcome.to_string()), Some(outcome));
        }
        for kind in EVENT_KINDS {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Status::parse("Succes"), None);
        assert_eq!(StepOutcome::parse("chose:x"), None);
        assert_eq!(StepOutcome::parse("exited:"), None);
    }
}
