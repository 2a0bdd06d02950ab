//! A run as CI systems read it: the top runbook's step visits as they finished, rendered as a
//! GitHub job summary (Markdown) and as JUnit XML (each step visit a test case). The GitHub
//! annotations and log groups are written by the run's printer as events come.

use std::fmt::Write as _;

use crate::exec::{Finished, Status};

/// One finished visit of a step of the top runbook.
#[derive(Clone, Debug)]
pub struct Row {
    pub step: String,
    pub iteration: u32,
    pub action: String,
    pub status: Status,
    pub attempts: u32,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// What game-day controls did to this visit (injected faults, operators' answers).
    pub controls: Vec<String>,
    /// Finished in an earlier run of the execution, restored from the journal by a resume.
    pub restored: bool,
}

impl Row {
    /// `step`, or `step #2` for a loop iteration.
    pub fn name(&self) -> String {
        if self.iteration > 0 { format!("{} #{}", self.step, self.iteration) } else { self.step.clone() }
    }
}

/// A GitHub Actions job summary: the status, a table of the steps, and the errors.
pub fn job_summary(runbook: &str, finished: &Finished, rows: &[Row]) -> String {
    let mut out = String::new();
    // A loop left by a jump from its body (`Exited`) went where the runbook said.
    let mark = |status: Status| match status {
        Status::Success | Status::Exited => "✅",
        Status::Skipped => "⏭️",
        Status::Waiting => "⏸️",
        _ => "❌",
    };
    let _ = writeln!(out, "## {} `{}`: {}\n", mark(finished.status), cell(runbook), finished.status);
    let _ = writeln!(
        out,
        "Execution `{}`, {:.2} s. Timeline: `runbook executions show {}`\n",
        finished.execution_id,
        finished.duration_ms as f64 / 1000.0,
        finished.execution_id
    );
    let _ = writeln!(out, "| step | action | status | attempts | duration | error |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    for row in rows {
        let mut error = row.error.clone().unwrap_or_default();
        for control in &row.controls {
            if !error.is_empty() {
                error.push_str("; ");
            }
            let _ = write!(error, "game day: {control}");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} {}{} | {} | {:.2} s | {} |",
            cell(&row.name()),
            cell(&row.action),
            mark(row.status),
            row.status,
            if row.restored { " (restored)" } else { "" },
            row.attempts,
            row.duration_ms as f64 / 1000.0,
            cell(&error)
        );
    }
    out
}

/// Text for a Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// JUnit XML: one test suite for the execution, one test case per step visit (skipped steps
/// are skipped cases; failed, timed-out and cancelled ones failures with the error).
pub fn junit(runbook: &str, finished: &Finished, rows: &[Row]) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("runbook run");
    let mut suite = TestSuite::new(format!("{runbook} (execution {})", finished.execution_id));
    for row in rows {
        let status = match row.status {
            Status::Success | Status::Exited => TestCaseStatus::success(),
            Status::Skipped => TestCaseStatus::skipped(),
            status => {
                let mut failed = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let error = row.error.clone().unwrap_or_else(|| status.to_string());
                failed.set_message(error.lines().next().unwrap_or_default().to_owned());
                failed.set_type(status.to_string());
                let mut description = error;
                for control in &row.controls {
                    let _ = write!(description, "\ngame day: {control}");
                }
                failed.set_description(description);
                failed
            }
        };
        let mut case = TestCase::new(row.name(), status);
        case.set_classname(runbook.to_owned());
        case.set_time(std::time::Duration::from_millis(row.duration_ms));
        case.extra.insert("action".into(), row.action.clone().into());
        case.extra.insert("attempts".into(), row.attempts.to_string().into());
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}
