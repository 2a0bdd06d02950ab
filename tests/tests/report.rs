//! `runbook report ID --html FILE` and `runbook run --dry-run --report FILE`, each page opened
//! in Debian's headless Chromium (tests/browser/check.mjs, playwright-core): it makes no network
//! request, logs no error, draws the plan graph with each step's status and a bar per attempt,
//! and never shows a secret. A 1,000-step execution's page is measured too.

use std::path::Path;

use runbook_tests::{Scratch, project_root, runbook};
use serde_json::Value;

use crate::game_day::{ok, run};

/// What the browser saw: requests other than the page, console errors, what was drawn.
fn open_in_browser(page: &Path, screenshot: &Path) -> Value {
    let checker = project_root().join("tests/browser");
    assert!(
        checker.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `make tools` (npm ci --prefix tests/browser), as .ci/run does"
    );
    let output =
        std::process::Command::new("node").arg(checker.join("check.mjs")).arg(page).arg(screenshot).output().unwrap();
    assert!(output.status.success(), "the browser check failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["requests"], serde_json::json!([]), "the page asked the network for something");
    assert_eq!(seen["errors"], serde_json::json!([]), "the console logged errors");
    let png = std::fs::read(screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot of {} bytes", png.len());
    seen
}

#[test]
fn an_executions_report_opens_offline_and_shows_the_graph_the_timeline_and_no_secret() {
    let scratch = Scratch::new("report");
    let canary = "canary-5f3a9e";
    let undo = "x-undo: {action: aws:sleep, inputs: {Duration: PT0S}}";
    let steps = [ok("A", &[undo]), ok("B", &["maxAttempts: 2", undo]), ok("C", &[])].concat();
    let text = format!(
        "schemaVersion: '0.3'\nx-rollback: on-failure\nparameters:\n  Trail: {{type: String}}\n  \
         Token: {{type: String, x-secret: true}}\nmainSteps:\n{steps}"
    )
    .replace("Name: A", "Name: A, Token: '{{ Token }}'");
    let path = scratch.runbook("report.yaml", &text);
    let token = format!("Token={canary}");
    // An error text that would be markup if it were not escaped.
    let hostile = "C=Bad:\"><script>alert(1)</script><svg onload=alert(2)>";
    let failed = run(&scratch, &path, &["-p", &token, "--inject-failure", "B@1", "--inject-failure", hostile]);
    assert_eq!(failed.status(), "Failed", "{}", failed.stderr);

    let page = scratch.dir.join("report.html");
    let state = scratch.state();
    let written = runbook(&["report", &failed.execution_id(), "--html", page.to_str().unwrap(), "--state-dir", &state]);
    assert_eq!(written.code, 0, "{}", written.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains(canary), "the secret parameter's value is in the page");
    assert!(!html.contains("<script") && !html.contains("<svg onload"), "markup from an error reached the page");

    let seen = open_in_browser(&page, &scratch.dir.join("report.png"));
    let drawn = &seen["drawn"];
    assert_eq!(drawn["nodes"], serde_json::json!({"A": "Success", "B": "Success", "C": "Failed"}));
    let bars: Vec<&str> = drawn["bars"].as_array().unwrap().iter().map(|bar| bar.as_str().unwrap()).collect();
    assert_eq!(bars, ["A", "B", "B", "C", "undo:B", "undo:A"], "a bar per attempt, in the order they started");
    let marks: Vec<&str> = drawn["marks"].as_array().unwrap().iter().map(|mark| mark.as_str().unwrap()).collect();
    assert!(marks.iter().filter(|mark| **mark == "control").count() >= 3, "{marks:?}");
    assert!(drawn["graph"][1].as_u64().unwrap() > 60 && drawn["timeline"][1].as_u64().unwrap() > 60, "{drawn}");
    let shown = drawn["text"].as_str().unwrap();
    assert!(shown.contains("rolling back (x-rollback: on-failure): the run ended Failed"), "{shown}");
    assert!(shown.contains("`B` attempt 1 fails"), "{shown}");
    assert!(shown.contains("Bad: \"><script>alert(1)</script>"), "the error is shown as text: {shown}");
}

#[test]
fn the_graph_marks_the_way_a_loop_took() {
    let scratch = Scratch::new("report-loop");
    let body: String = [ok("X", &[]), ok("Y", &[])].concat().lines().map(|line| format!("    {line}\n")).collect();
    let text = format!(
        "{}  - name: Each\n    action: aws:loop\n    inputs:\n      Iterators: [a, b]\n      Steps:\n{body}{}",
        crate::game_day::doc(&[ok("A", &[])]),
        ok("Last", &[])
    );
    let path = scratch.runbook("loop.yaml", &text);
    let looped = run(&scratch, &path, &[]);
    assert_eq!(looped.status(), "Success", "{}", looped.stderr);
    let page = scratch.dir.join("loop.html");
    let state = scratch.state();
    assert_eq!(runbook(&["report", "last", "--html", page.to_str().unwrap(), "--state-dir", &state]).code, 0);
    let seen = open_in_browser(&page, &scratch.dir.join("loop.png"));
    let mut taken: Vec<&str> = seen["drawn"]["taken"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    taken.sort_unstable();
    assert_eq!(taken, ["A → Each (next)", "Each → Last (loop_exit)", "Each → X (loop_body)", "X → Y (next)"]);
    assert_eq!(seen["drawn"]["nodes"]["X"], "Success");
}

#[test]
fn a_dry_runs_report_shows_the_ways_explored_and_the_rollback() {
    let scratch = Scratch::new("dry-report");
    let undo = "x-undo: {action: aws:sleep, inputs: {Duration: PT0S}}";
    let path = scratch.runbook(
        "dry.yaml",
        &format!(
            "schemaVersion: '0.3'\nx-rollback: on-failure\nparameters:\n  Trail: {{type: String}}\nmainSteps:\n{}",
            [ok("A", &[undo]), ok("B", &["onFailure: step:C"]), ok("C", &[])].concat()
        ),
    );
    let page = scratch.dir.join("dry.html");
    let dry = runbook(&["run", &path, "-p", "Trail=t", "--dry-run", "--report", page.to_str().unwrap()]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let seen = open_in_browser(&page, &scratch.dir.join("dry.png"));
    let drawn = &seen["drawn"];
    assert_eq!(drawn["nodes"], serde_json::json!({"A": "Reached", "B": "Reached", "C": "Reached"}));
    let taken: Vec<&str> = drawn["taken"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(taken.contains(&"B → C (on_failure)") && taken.contains(&"A → B (next)"), "{taken:?}");
    let shown = drawn["text"].as_str().unwrap();
    assert!(shown.contains("A\t→ undo:A\taws:sleep"), "{shown}");
}

#[test]
fn the_report_of_a_thousand_steps_stays_under_two_megabytes_and_opens_cleanly() {
    let scratch = Scratch::new("report-1000");
    let steps: String =
        (0..1000).map(|i| format!("  - {{name: s{i}, action: aws:sleep, inputs: {{Duration: PT0S}}}}\n")).collect();
    let path = scratch.runbook("big.yaml", &format!("schemaVersion: '0.3'\nmainSteps:\n{steps}"));
    let state = scratch.state();
    assert_eq!(runbook(&["run", &path, "--state-dir", &state]).code, 0);
    let page = scratch.dir.join("big.html");
    assert_eq!(runbook(&["report", "last", "--html", page.to_str().unwrap(), "--state-dir", &state]).code, 0);
    let size = std::fs::metadata(&page).unwrap().len();
    assert!(size < 2 << 20, "{size} bytes");
    let seen = open_in_browser(&page, &scratch.dir.join("big.png"));
    assert_eq!(seen["drawn"]["nodes"].as_object().unwrap().len(), 1000);
    assert_eq!(seen["drawn"]["bars"].as_array().unwrap().len(), 1000);
    // A figure for the README, not a pass mark: tests never assert on time.
    eprintln!("a 1,000-step report: {size} bytes, loaded in {} ms", seen["drawn"]["load_ms"]);
}
