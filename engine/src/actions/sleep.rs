//! `aws:sleep` (reference 6.21): wait for an ISO-8601 `Duration` (`PT0.5S`, `PT24H5M`) or
//! until a `Timestamp`; a timestamp in the past continues at once.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Action, Checked, Context, Failure, Output, Result, shown_text};
use crate::diagnostic::{Code, Diagnostic, pointer_push};
use crate::document::model::Step;
use crate::template;

/// The documented maximum delay.
pub const MAX_SECONDS: u64 = 604_799;

pub const ACTION: Action = Action {
    pure: true,
    self_contained: true,
    cancel_target: false,
    max_timeout_seconds: Some(MAX_SECONDS),
    safe_to_repeat: true,
    execute: executor!(execute),
    describe,
    check,
    ..Action::new("aws:sleep")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let delay = delay(inputs, context.settings.clock.now()).map_err(Failure::error)?;
    // A zero sleep would still wait for the next timer tick (a millisecond).
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(Output::empty())
}

/// How long a sleep with these inputs waits, from `now`.
pub fn delay(inputs: &Map<String, Value>, now: jiff::Timestamp) -> std::result::Result<Duration, String> {
    let text =
        |key: &str| inputs.get(key).map(|value| value.as_str().ok_or(format!("`{key}` must be text, found {value}")));
    let delay = match (text("Duration"), text("Timestamp")) {
        (Some(duration), None) => parse_duration(duration?)?,
        (None, Some(timestamp)) => {
            let timestamp = timestamp?;
            let until: jiff::Timestamp =
                timestamp.parse().map_err(|e| format!("`Timestamp` {timestamp:?} is not an ISO-8601 instant: {e}"))?;
            let left = until.duration_since(now);
            left.try_into().unwrap_or(Duration::ZERO)
        }
        (Some(_), Some(_)) => return Err("give `Duration` or `Timestamp`, not both".into()),
        (None, None) => return Err("`aws:sleep` needs `Duration` or `Timestamp`".into()),
    };
    if delay.as_secs() > MAX_SECONDS {
        return Err(format!("a sleep may last at most {MAX_SECONDS} s, asked for {} s", delay.as_secs()));
    }
    Ok(delay)
}

/// An ISO-8601 duration, fractional seconds included.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let invalid = |detail: String| format!("`Duration` {text:?} is not an ISO-8601 duration: {detail}");
    let span: jiff::Span = text.trim().parse().map_err(|e: jiff::Error| invalid(e.to_string()))?;
    if span.is_negative() {
        return Err(invalid("it is negative".into()));
    }
    let duration = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|e| invalid(e.to_string()))?;
    Duration::try_from(duration).map_err(|e| invalid(e.to_string()))
}

fn describe(_: &Step, inputs: &Value) -> std::result::Result<String, String> {
    Ok(match (shown_text(inputs, "Duration"), shown_text(inputs, "Timestamp")) {
        (Some(duration), _) => format!("sleep {duration}"),
        (None, Some(timestamp)) => format!("sleep until {timestamp}"),
        _ => "sleep".into(),
    })
}

fn check(checked: &Checked<'_>, out: &mut Vec<Diagnostic>) {
    let step = checked.step;
    let duration = step.inputs.get("Duration");
    let timestamp = step.inputs.get("Timestamp");
    let pointer = pointer_push(&step.pointer, "inputs");
    match (duration, timestamp) {
        (None, None) => {
            out.push(Diagnostic::new(Code::SleepDuration, "aws:sleep needs `Duration` or `Timestamp`").at(pointer));
        }
        (Some(Value::String(text)), _) if !template::has_braces(text) => {
            if let Err(problem) = check_duration(text) {
                out.push(Diagnostic::new(Code::SleepDuration, problem).at(step.input_pointer("Duration")));
            }
        }
        (_, Some(Value::String(text))) if !template::has_braces(text) && text.parse::<jiff::Timestamp>().is_err() => {
            let message = format!("Timestamp `{text}` is not an ISO-8601 instant (e.g. 2026-01-31T12:00:00Z)");
            out.push(Diagnostic::new(Code::SleepDuration, message).at(step.input_pointer("Timestamp")));
        }
        _ => {}
    }
}

/// An ISO-8601 duration as written in a runbook: not negative, at most 604799 s.
fn check_duration(text: &str) -> std::result::Result<(), String> {
    let span: jiff::Span =
        text.parse().map_err(|_| format!("Duration `{text}` is not an ISO-8601 duration (e.g. PT30S, PT1H30M)"))?;
    let seconds = span
        .total(jiff::SpanTotal::from(jiff::Unit::Second).days_are_24_hours())
        .map_err(|error| format!("Duration `{text}` cannot be measured: {error}"))?;
    if seconds < 0.0 {
        return Err(format!("Duration `{text}` is negative"));
    }
    if seconds > 604_799.0 {
        return Err(format!("Duration `{text}` is {seconds} s; aws:sleep waits at most 604799 s (7 days)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_aws_runbooks_write_them() {
        assert_eq!(parse_duration("PT1S"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("PT0.5S"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("PT01S"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("PT0S"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("PT24H5M"), Ok(Duration::from_secs(24 * 3600 + 300)));
        assert!(parse_duration("5 minutes please").is_err());
        assert!(parse_duration("-PT1S").is_err());
    }

    #[test]
    fn timestamps_in_the_past_do_not_wait() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let inputs = |ts: &str| serde_json::json!({"Timestamp": ts}).as_object().unwrap().clone();
        assert_eq!(delay(&inputs("2025-12-31T23:00:00Z"), now), Ok(Duration::ZERO));
        assert_eq!(delay(&inputs("2026-01-01T00:00:30Z"), now), Ok(Duration::from_secs(30)));
        let both = serde_json::json!({"Timestamp": "x", "Duration": "PT1S"}).as_object().unwrap().clone();
        assert!(delay(&both, now).is_err());
        let long = serde_json::json!({"Duration": "P8D"}).as_object().unwrap().clone();
        assert!(delay(&long, now).is_err());
    }
}
