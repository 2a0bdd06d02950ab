//! Game days: faults injected into a real run take the path the real failure takes (the same
//! runbook's scenario, with that failure mocked, expects the same path), the walk starts,
//! stops and leaves steps out as told and keeps to it on resume, pauses and an operator's
//! answers are journaled, and controls that make no sense are refused before anything runs.
//! Steps are real Python scripts that append their names to a trail file.

use runbook_tests::{Scratch, runbook, script_step, trail_payload};
use serde_json::Value;

/// A script step that records its name in the trail and returns `{"Out": "<name>-out"}`.
pub(crate) fn ok(name: &str, extra: &[&str]) -> String {
    let script =
        format!("def h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  return {{'Out': '{name}-out'}}");
    let mut extra = extra.to_vec();
    extra.push("outputs: [{Name: Out, Selector: $.Payload.Out, Type: String}]");
    script_step(name, &extra, &trail_payload(name), &script)
}

/// A step that records its name and what it was given as `Seen` (`seen` is a template).
fn reads(name: &str, seen: &str) -> String {
    let script = "def h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '=' + e['Seen'] + '\\\\n')";
    script_step(name, &[], &format!("{}, Seen: '{seen}'", trail_payload(name)), script)
}

pub(crate) fn doc(steps: &[String]) -> String {
    format!("schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\nmainSteps:\n{}", steps.concat())
}

pub(crate) struct Run {
    pub(crate) code: u8,
    pub(crate) events: Vec<Value>,
    pub(crate) stderr: String,
}

impl Run {
    /// A refusal's message: with `--format json` it is JSON on stdout.
    pub(crate) fn refusal(&self) -> String {
        let error = self.events.iter().find_map(|e| e["error"]["message"].as_str());
        error.map_or_else(|| self.stderr.clone(), str::to_owned)
    }
}

impl Run {
    pub(crate) fn status(&self) -> String {
        let finished = self.events.iter().rev().find(|e| e["event"] == "execution_finished");
        finished.map_or_else(|| "none".to_owned(), |e| e["status"].as_str().unwrap().to_owned())
    }

    /// `step:Status` of every finished step visit, in order.
    pub(crate) fn steps(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "step_finished")
            .map(|e| format!("{}:{}", e["step"].as_str().unwrap(), e["status"].as_str().unwrap()))
            .collect()
    }

    /// The steps visited, as a scenario's `path` lists them.
    fn path(&self) -> Vec<String> {
        self.steps().iter().map(|step| step.split(':').next().unwrap().to_owned()).collect()
    }

    /// The `control` events: (control, step, text).
    fn controls(&self) -> Vec<(String, String, String)> {
        self.events
            .iter()
            .filter(|e| e["event"] == "control")
            .map(|e| {
                let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
                (text("control"), text("step"), text("text"))
            })
            .collect()
    }

    fn error_of(&self, step: &str) -> String {
        let finished = self.events.iter().rev().find(|e| e["event"] == "step_finished" && e["step"] == step);
        finished.and_then(|e| e["error"].as_str()).unwrap_or_default().to_owned()
    }

    pub(crate) fn execution_id(&self) -> String {
        self.events.iter().find(|e| e["event"] == "execution_started").unwrap()["execution_id"].as_str().unwrap().into()
    }
}

pub(crate) fn run(scratch: &Scratch, path: &str, extra: &[&str]) -> Run {
    let trail = format!("Trail={}", scratch.trail_path());
    let state = scratch.state();
    let mut args = vec!["run", path, "--state-dir", &state, "-p", &trail, "--format", "json"];
    args.extend_from_slice(extra);
    let output = runbook(&args);
    let events = output.stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    Run { code: output.code, events, stderr: output.stderr }
}

/// Runs the scenario file beside `runbook` (named NAME.test.yaml) and asserts it passes.
fn scenario_passes(scratch: &Scratch, name: &str, scenarios: &str) {
    let file = scratch.runbook(&format!("{name}.test.yaml"), scenarios);
    let output = runbook(&["test", &file]);
    assert_eq!(output.code, 0, "the scenario with the mocked failure:\n{}{}", output.stdout, output.stderr);
}

/// The drill's runbook: `Work` fails over to `Recover`, is cancelled over to `Cleanup`.
fn drill(scratch: &Scratch) -> String {
    scratch.runbook(
        "drill.yaml",
        &doc(&[
            ok("Check", &[]),
            ok("Work", &["maxAttempts: 2", "onFailure: step:Recover", "onCancel: step:Cleanup"]),
            ok("Verify", &["isEnd: true"]),
            ok("Recover", &["isEnd: true"]),
            ok("Cleanup", &["isEnd: true"]),
        ]),
    )
}

#[test]
fn an_injected_failure_takes_the_path_a_real_failure_takes_and_is_marked_injected() {
    let scratch = Scratch::new("inject-failure");
    let path = drill(&scratch);
    let injected = run(&scratch, &path, &["--inject-failure", "Work=Throttling:Rate exceeded"]);
    assert_eq!(injected.path(), ["Check", "Work", "Recover"], "{}", injected.stderr);
    assert_eq!(injected.status(), "Failed");
    assert_eq!(injected.code, 4);
    // The action never ran: both attempts were the injected failure, and say so.
    assert_eq!(scratch.trail(), ["Check", "Recover"]);
    assert_eq!(injected.error_of("Work"), "Throttling: Rate exceeded (injected)");
    let faults: Vec<_> = injected.controls().into_iter().filter(|(control, ..)| control == "inject-failure").collect();
    assert_eq!(faults.len(), 2, "one per attempt: {faults:?}");
    assert!(faults[0].2.contains("attempt 1 fails"), "{faults:?}");

    // The same runbook's scenario with Work's failure mocked expects that path.
    scenario_passes(
        &scratch,
        "drill",
        "defaults: {parameters: {Trail: /dev/null}}\nscenarios:\n  - name: Work fails\n    steps:\n      \
         Work: {error: 'Throttling: Rate exceeded'}\n      Check: {outputs: {Out: x}}\n      Recover: {outputs: {Out: x}}\n    \
         expect: {status: Failed, path: [Check, Work, Recover]}\n",
    );

    // The journal and the timeline say it was a rehearsal.
    let state = scratch.state();
    let shown = runbook(&["executions", "show", &injected.execution_id(), "--state-dir", &state]);
    assert!(shown.stdout.contains("inject-failure"), "{}", shown.stdout);
}

#[test]
fn a_failure_injected_into_the_first_attempts_only_lets_the_retry_run_the_real_action() {
    let scratch = Scratch::new("inject-attempts");
    let path = drill(&scratch);
    let retried = run(&scratch, &path, &["--inject-failure", "Work@1"]);
    assert_eq!(retried.steps(), ["Check:Success", "Work:Success", "Verify:Success"], "{}", retried.stderr);
    assert_eq!(scratch.trail(), ["Check", "Work", "Verify"]);
}

#[test]
fn an_injected_timeout_and_a_delay_past_the_time_limit_take_the_timeout_path() {
    let scratch = Scratch::new("inject-timeout");
    let path = drill(&scratch);
    let timed_out = run(&scratch, &path, &["--inject-timeout", "Work"]);
    assert_eq!(timed_out.steps(), ["Check:Success", "Work:TimedOut", "Recover:Success"], "{}", timed_out.stderr);
    assert_eq!(timed_out.error_of("Work"), "timed out (injected)");
    scenario_passes(
        &scratch,
        "drill",
        "defaults: {parameters: {Trail: /dev/null}}\nscenarios:\n  - name: Work times out\n    steps:\n      \
         Work: {timeout: true}\n      Check: {outputs: {Out: x}}\n      Recover: {outputs: {Out: x}}\n    \
         expect: {status: TimedOut, path: [Check, Work, Recover]}\n",
    );
    assert_eq!(timed_out.status(), "TimedOut");

    // A delay is served inside the step's time limit: past it, the real limit ends the step.
    let slow = scratch.runbook(
        "slow.yaml",
        &doc(&[ok("Work", &["timeoutSeconds: 1", "onFailure: step:Recover"]), ok("Recover", &["isEnd: true"])]),
    );
    let delayed = run(&scratch, &slow, &["--inject-delay", "Work=3s"]);
    assert_eq!(delayed.steps(), ["Work:TimedOut", "Recover:Success"], "{}", delayed.stderr);
    assert_eq!(delayed.error_of("Work"), "timed out after 1 s");
    assert!(delayed.controls().iter().any(|(control, ..)| control == "inject-delay"));
}

#[test]
fn a_cancel_at_a_step_runs_its_cancel_path_as_ctrl_c_would() {
    let scratch = Scratch::new("cancel-at");
    let path = drill(&scratch);
    let cancelled = run(&scratch, &path, &["--cancel-at", "Work"]);
    assert_eq!(cancelled.steps(), ["Check:Success", "Work:Cancelled", "Cleanup:Success"], "{}", cancelled.stderr);
    assert_eq!(cancelled.status(), "Cancelled");
    assert_eq!(cancelled.code, 6);
    scenario_passes(
        &scratch,
        "drill",
        "defaults: {parameters: {Trail: /dev/null}}\nscenarios:\n  - name: cancelled during Work\n    steps:\n      \
         Work: {cancel: true}\n      Check: {outputs: {Out: x}}\n      Cleanup: {outputs: {Out: x}}\n    \
         expect: {status: Cancelled, path: [Check, Work, Cleanup]}\n",
    );
}

/// A → B → C (reads B.Out) → D.
fn chain(scratch: &Scratch) -> String {
    scratch.runbook("chain.yaml", &doc(&[ok("A", &[]), ok("B", &[]), reads("C", "{{ B.Out }}"), ok("D", &[])]))
}

#[test]
fn from_starts_there_with_earlier_outputs_given_and_a_resume_keeps_to_it() {
    let scratch = Scratch::new("from");
    let path = chain(&scratch);

    // Nothing gives B.Out: refused before anything runs, saying how to give it.
    let refused = run(&scratch, &path, &["--from", "C"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.refusal().contains("B.Out (read by C)"), "{}", refused.refusal());
    assert!(refused.refusal().contains("--mock STEP.OUTPUT=VALUE"), "{}", refused.refusal());
    assert!(refused.events.iter().all(|e| e["event"] != "execution_started"), "{:?}", refused.events);
    assert!(scratch.trail().is_empty());

    // Given with --mock; D fails (injected), then a resume goes on from C, not from A.
    let first = run(&scratch, &path, &["--from", "C", "--mock", "B.Out=given", "--inject-failure", "D"]);
    assert_eq!(first.steps(), ["C:Success", "D:Failed"], "{}", first.stderr);
    assert_eq!(scratch.trail(), ["C=given"]);
    let id = first.execution_id();
    let resumed = run(&scratch, &path, &["--resume", &id]);
    assert_eq!(resumed.status(), "Success", "{}", resumed.stderr);
    assert_eq!(scratch.trail(), ["C=given", "D"], "A and B never ran, C was restored");

    // Or from a finished execution's outputs.
    let full = run(&scratch, &path, &[]);
    assert_eq!(full.status(), "Success");
    let from_last = run(&scratch, &path, &["--from", "C", "--outputs-from", &full.execution_id()]);
    assert_eq!(from_last.path(), ["C", "D"], "{}", from_last.stderr);
    assert_eq!(scratch.trail().last().map(String::as_str), Some("D"));
    assert!(scratch.trail().contains(&"C=B-out".to_owned()), "{:?}", scratch.trail());
}

#[test]
fn to_stops_after_its_step_and_only_and_skip_leave_steps_out_as_skipped() {
    let scratch = Scratch::new("to-only-skip");
    let path = chain(&scratch);
    let stopped = run(&scratch, &path, &["--to", "B"]);
    assert_eq!(stopped.steps(), ["A:Success", "B:Success"], "{}", stopped.stderr);
    assert_eq!(stopped.status(), "Success");
    assert!(stopped.controls().iter().any(|(control, step, _)| control == "to" && step == "B"));

    // A failure at that step still ends the run as it would (onFailure: Abort): Failed, even
    // where the step is not critical.
    let lenient = scratch.runbook("lenient.yaml", &doc(&[ok("A", &[]), ok("B", &["isCritical: false"]), ok("C", &[])]));
    let aborted = run(&scratch, &lenient, &["--to", "B", "--inject-failure", "B"]);
    assert_eq!(aborted.steps(), ["A:Success", "B:Failed"], "{}", aborted.stderr);
    assert_eq!(aborted.status(), "Failed");

    let only = run(&scratch, &path, &["--only", "C", "--mock", "B.Out=mocked"]);
    assert_eq!(only.steps(), ["A:Skipped", "B:Skipped", "C:Success", "D:Skipped"], "{}", only.stderr);

    let skipped = run(&scratch, &path, &["--skip", "B", "--mock", "B.Out=instead"]);
    assert_eq!(skipped.steps(), ["A:Success", "B:Skipped", "C:Success", "D:Success"], "{}", skipped.stderr);
    assert!(scratch.trail().contains(&"C=instead".to_owned()), "{:?}", scratch.trail());
}

#[test]
fn controls_that_cannot_make_sense_are_refused_before_anything_runs() {
    let scratch = Scratch::new("refusals");
    let path = scratch.runbook(
        "refusals.yaml",
        &format!(
            "{}  - name: Each\n    action: aws:loop\n    inputs:\n      Iterators: [a, b]\n      Steps:\n{}\
             \x20 - name: Ask\n    action: aws:approve\n    inputs: {{Approvers: [ops]}}\n",
            doc(&[ok("First", &[]), ok("Second", &[])]),
            ok("Body", &[]).lines().map(|line| format!("        {line}\n")).collect::<String>(),
        ),
    );
    let refusals: [(&[&str], &str); 8] = [
        (&["--inject-failure", "Secnd"], "no step `Secnd`; did you mean `Second`?"),
        (&["--from", "Body"], "in the body of the loop `Each`"),
        (&["--from", "Second", "--to", "First"], "no path from `Second` (--from) reaches `First`"),
        (&["--pause-before", "Ask"], "waits for a person already"),
        (&["--inject-timeout", "Each"], "is an aws:loop"),
        (&["--inject-failure", "First", "--inject-timeout", "First"], "a step fails one way"),
        (&["--mock", "First.Out=x"], "use them with --dry-run, --from, --skip or --only"),
        (&["--step"], "--step asks before each step on a terminal"),
    ];
    for (args, message) in refusals {
        let refused = run(&scratch, &path, args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.refusal());
        assert!(refused.refusal().contains(message), "{args:?}: {}", refused.refusal());
    }
    assert!(scratch.trail().is_empty());
    let state = scratch.state();
    let listed = runbook(&["executions", "list", "--state-dir", &state, "--format", "json"]);
    assert_eq!(listed.stdout.trim(), "[]", "no execution was recorded: {}", listed.stdout);
}

#[test]
fn a_pause_before_a_step_waits_until_someone_resumes_it() {
    let scratch = Scratch::new("pause-before");
    let path = chain(&scratch);
    let paused = run(&scratch, &path, &["--pause-before", "C"]);
    assert_eq!(paused.code, 7, "{}", paused.stderr);
    assert_eq!(scratch.trail(), ["A", "B"]);
    let state = scratch.state();
    let resumed = runbook(&["resume", &paused.execution_id(), "--state-dir", &state]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(scratch.trail(), ["A", "B", "C=B-out", "D"]);
}

#[test]
fn a_pause_before_a_step_rejected_from_another_terminal_fails_the_step_without_running_it() {
    let scratch = Scratch::new("pause-reject");
    let path = chain(&scratch);
    let paused = run(&scratch, &path, &["--pause-before", "C"]);
    assert_eq!(paused.code, 7, "{}", paused.stderr);
    let state = scratch.state();
    // The process that goes on was not given --pause-before: the answer still stands.
    let rejected = runbook(&["reject", &paused.execution_id(), "--state-dir", &state, "--format", "json"]);
    assert_eq!(rejected.code, 4, "{}{}", rejected.stdout, rejected.stderr);
    assert_eq!(scratch.trail(), ["A", "B"], "C never ran");
    let shown = runbook(&["executions", "show", &paused.execution_id(), "--state-dir", &state]);
    assert!(shown.stdout.contains("the pause before `C` was ended by"), "{}", shown.stdout);
}

/// A loop over two items whose body is X then Y, then a last step.
fn looped(scratch: &Scratch) -> String {
    let body: String = [ok("X", &[]), ok("Y", &[])].concat().lines().map(|line| format!("    {line}\n")).collect();
    scratch.runbook(
        "looped.yaml",
        &format!(
            "{}  - name: Each\n    action: aws:loop\n    inputs:\n      Iterators: [a, b]\n      Steps:\n{body}{}",
            doc(&[ok("A", &[])]),
            ok("Last", &[])
        ),
    )
}

#[test]
fn to_a_loop_bodys_last_step_stops_in_the_first_iteration_and_only_a_loop_keeps_its_body() {
    let scratch = Scratch::new("loops");
    let path = looped(&scratch);
    let stopped = run(&scratch, &path, &["--to", "Y"]);
    assert_eq!(stopped.path(), ["A", "X", "Y", "Each"], "{}", stopped.stderr);
    assert_eq!(stopped.status(), "Success");

    let only = run(&scratch, &path, &["--only", "Each"]);
    assert_eq!(
        only.steps(),
        ["A:Skipped", "X:Success", "Y:Success", "X:Success", "Y:Success", "Each:Success", "Last:Skipped"],
        "{}",
        only.stderr
    );
}

#[test]
fn a_cancel_wins_over_a_fault_injected_into_the_same_attempt() {
    let scratch = Scratch::new("cancel-over-fault");
    let path = drill(&scratch);
    let cancelled = run(&scratch, &path, &["--cancel-at", "Work", "--inject-failure", "Work"]);
    assert_eq!(cancelled.steps(), ["Check:Success", "Work:Cancelled", "Cleanup:Success"], "{}", cancelled.stderr);
}

#[test]
fn step_by_step_on_a_terminal_runs_skips_and_fails_steps_as_answered_and_journals_who() {
    let scratch = Scratch::new("step-by-step");
    let path = scratch.runbook(
        "steps.yaml",
        &doc(&[ok("A", &[]), ok("B", &[]), ok("C", &["onFailure: step:E"]), ok("D", &[]), ok("E", &[])]),
    );
    let trail = format!("-p Trail={}", scratch.trail_path());
    // A: Enter runs it; B: `x` is no answer, then `s` skips it; C: `f` fails it; E: `run`.
    let shown = runbook_tests::run_on_a_terminal(
        std::path::Path::new(&path),
        "step-by-step",
        &[&trail, "--step"],
        b"\nx\ns\nf\nrun\n",
    );
    assert!(shown.contains("next: A (aws:executeScript): Enter runs it"), "{shown}");
    assert!(shown.contains("`x` is not an answer"), "{shown}");
    assert!(shown.contains("chose to skip `B` (--step)"), "{shown}");
    assert!(shown.contains("OperatorFailure: failed by"), "{shown}");
    assert_eq!(scratch.trail(), ["A", "E"]);
}

#[test]
fn in_github_actions_each_step_is_a_group_a_failure_is_annotated_at_its_line_with_a_summary_and_junit() {
    let scratch = Scratch::new("github");
    let path = drill(&scratch);
    let summary = scratch.dir.join("summary.md");
    let junit = scratch.dir.join("junit.xml");
    let output = std::process::Command::new(runbook_tests::binary())
        .args(["run", &path, "--state-dir", &scratch.state(), "--format", "github", "--junit"])
        .arg(&junit)
        .args(["-p", &format!("Trail={}", scratch.trail_path()), "--inject-failure", "Work@1", "--inject-failure"])
        .arg("Verify=Broken:it broke")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();

    // A group around each step's lines, never nested.
    let groups: Vec<&str> = lines.iter().filter_map(|line| line.strip_prefix("::group::")).collect();
    assert_eq!(groups, ["Check (aws:executeScript)", "Work (aws:executeScript)", "Verify (aws:executeScript)"]);
    let mut open = false;
    for line in &lines {
        if line.starts_with("::group::") {
            assert!(!open, "nested group:\n{stdout}");
            open = true;
        } else if *line == "::endgroup::" {
            assert!(open, "an end without a group:\n{stdout}");
            open = false;
        }
    }
    assert!(!open);

    // One error annotation, at the failed step's line in the runbook, parsed as GitHub reads it.
    let annotations: Vec<&str> = lines.iter().filter_map(|line| line.strip_prefix("::error ")).collect();
    assert_eq!(annotations.len(), 1, "{stdout}");
    let (properties, message) = annotations[0].split_once("::").unwrap();
    let properties: std::collections::HashMap<&str, &str> =
        properties.split(',').filter_map(|property| property.split_once('=')).collect();
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().position(|line| line.contains("name: Verify")).unwrap() + 1;
    assert_eq!(properties["file"], path);
    assert_eq!(properties["line"], line.to_string());
    assert_eq!(properties["title"], "Verify (aws%3AexecuteScript)%3A Failed");
    assert!(message.starts_with("Broken: it broke (injected)%0Agame day:"), "{message}");

    // The job summary: a Markdown table with a row per step visit.
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.starts_with("## ❌ "), "{summary}");
    let rows: Vec<Vec<&str>> = summary
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| step") && !line.starts_with("| ---"))
        .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let cells: Vec<(&str, &str, &str)> = rows.iter().map(|row| (row[0], row[2], row[3])).collect();
    assert_eq!(cells, [("Check", "✅ Success", "1"), ("Work", "✅ Success", "2"), ("Verify", "❌ Failed", "1")]);
    assert!(rows[1][5].contains("game day: `Work` attempt 1 fails"), "{summary}");

    // JUnit: a test case per step visit, the failure with its error.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let document = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<(String, bool)> = document
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
        .map(|case| {
            let failed = case.children().any(|child| child.has_tag_name("failure"));
            (case.attribute("name").unwrap().to_owned(), failed)
        })
        .collect();
    assert_eq!(cases, [("Check".to_owned(), false), ("Work".to_owned(), false), ("Verify".to_owned(), true)]);
    let failure = document.descendants().find(|node| node.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("message"), Some("Broken: it broke (injected)"));
}
