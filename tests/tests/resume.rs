//! Durability end to end, with `runbook` as a separate process: a run killed with SIGKILL
//! in the middle of a step and resumed re-executes no step that succeeded; resumes refuse
//! unknown outcomes and changed runbooks; one driver per execution; Ctrl-C runs the cancel
//! path; approvals from another process; idempotency keys.

use std::process::{Child, Command, Stdio};

use runbook_tests::{
    Scratch, json_lines, kill_when_running, only_execution_id, run_process, runbook, script_step, trail_payload,
    wait_until,
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_runbook-under-test");

const OUTPUTS: &str = "outputs: [a.Done, b.Done, c.Done]\n";

/// A script step that appends `name` to the trail; `wait` makes it then block until the file
/// `<trail>.go` exists (so a test can kill the process while it runs).
fn step(name: &str, wait: bool, extra: &[&str]) -> String {
    let wait = if wait { "True" } else { "False" };
    let script = format!(
        "import os, time\\ndef h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  \
         while {wait} and not os.path.exists(e['Trail'] + '.go'): time.sleep(0.05)\\n  return e['Name'] + '-done'"
    );
    let mut text = script_step(name, extra, &trail_payload(name), &script);
    text.push_str("    outputs:\n      - {Name: Done, Selector: $.Payload, Type: String}\n");
    text
}

fn doc(top: &str, steps: &[String]) -> String {
    format!("schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\n{top}mainSteps:\n{}", steps.concat())
}

fn spawn(scratch: &Scratch, path: &str, extra: &[&str]) -> Child {
    run_process(scratch, path, extra).spawn().unwrap()
}

fn events(stdout: &str) -> Vec<Value> {
    json_lines(stdout)
}

fn finished(events: &[Value]) -> Value {
    events.iter().rev().find(|e| e["event"] == "execution_finished").cloned().unwrap_or(Value::Null)
}

fn started_id(events: &[Value]) -> String {
    events.iter().find(|e| e["event"] == "execution_started").unwrap()["execution_id"].as_str().unwrap().to_owned()
}

/// Runs until step `b` is running, then kills the process with SIGKILL.
fn crash_in_b(scratch: &Scratch, text: &str) -> (String, String) {
    let path = scratch.runbook("runbook.yaml", text);
    let child = spawn(scratch, &path, &[]);
    (path.clone(), kill_when_running(scratch, child, "b"))
}

fn resume(scratch: &Scratch, id: &str, extra: &[&str]) -> runbook_tests::Output {
    let state = scratch.state();
    let mut args = vec!["run", "--resume", id, "--state-dir", &state, "--format", "json"];
    args.extend_from_slice(extra);
    runbook(&args)
}

#[test]
fn a_run_killed_mid_step_resumes_without_repeating_what_succeeded() {
    // The uninterrupted run, for the outputs to compare with.
    let reference = Scratch::new("crash-reference");
    std::fs::write(format!("{}.go", reference.trail_path()), "").unwrap();
    let text = doc(OUTPUTS, &[step("a", false, &[]), step("b", true, &["x-idempotent: true"]), step("c", false, &[])]);
    let path = reference.runbook("runbook.yaml", &text);
    let uninterrupted = spawn(&reference, &path, &[]).wait_with_output().unwrap();
    let expected = finished(&events(&String::from_utf8_lossy(&uninterrupted.stdout)))["outputs"].clone();
    assert_eq!(expected, json!({"a.Done": ["a-done"], "b.Done": ["b-done"], "c.Done": ["c-done"]}));

    let scratch = Scratch::new("crash");
    let (_, id) = crash_in_b(&scratch, &text);
    let state = scratch.state();
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state]);
    assert!(shown.stdout.contains("b attempt 1 started"), "{}", shown.stdout);
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let resumed = resume(&scratch, &id, &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let resumed_events = events(&resumed.stdout);
    // `a` ran once in all; `b` was safe to repeat, so it ran again; `c` ran once.
    assert_eq!(scratch.trail(), ["a", "b", "b", "c"]);
    let restored: Vec<_> =
        resumed_events.iter().filter(|e| e["event"] == "step_restored").map(|e| e["step"].clone()).collect();
    assert_eq!(restored, [json!("a")]);
    assert_eq!(finished(&resumed_events)["outputs"], expected);
}

#[test]
fn a_step_with_an_unknown_outcome_stops_the_resume_until_told_to_rerun_it() {
    let scratch = Scratch::new("unknown-outcome");
    let text = doc("", &[step("a", false, &[]), step("b", true, &[]), step("c", false, &[])]);
    let (_, id) = crash_in_b(&scratch, &text);
    let refused = resume(&scratch, &id, &[]);
    assert_eq!(refused.code, 8, "{}", refused.stderr);
    assert!(refused.stderr.contains("step `b` (iteration 0, attempt 1)"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("--resume {id} --rerun b")), "{}", refused.stderr);
    assert_eq!(scratch.trail(), ["a", "b"]);

    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let resumed = resume(&scratch, &id, &["--rerun", "b"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(scratch.trail(), ["a", "b", "b", "c"]);
}

#[test]
fn a_changed_runbook_is_not_resumed_unless_forced() {
    let scratch = Scratch::new("changed");
    let text = doc(OUTPUTS, &[step("a", false, &[]), step("b", true, &["x-idempotent: true"]), step("c", false, &[])]);
    let (path, id) = crash_in_b(&scratch, &text);
    std::fs::write(&path, format!("{text}  # edited\n")).unwrap();
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let refused = resume(&scratch, &id, &[]);
    assert_eq!(refused.code, 8, "{}", refused.stderr);
    assert!(refused.stderr.contains("the runbook changed since execution"), "{}", refused.stderr);
    let forced = resume(&scratch, &id, &["--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[test]
fn an_idempotency_key_runs_the_runbook_once() {
    let scratch = Scratch::new("key");
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let text = doc(OUTPUTS, &[step("a", false, &[]), step("b", false, &[]), step("c", false, &[])]);
    let path = scratch.runbook("runbook.yaml", &text);
    let first = spawn(&scratch, &path, &["--idempotency-key", "deploy-42"]).wait_with_output().unwrap();
    let second = spawn(&scratch, &path, &["--idempotency-key", "deploy-42"]).wait_with_output().unwrap();
    assert!(second.status.success());
    assert_eq!(scratch.trail(), ["a", "b", "c"]);
    let first = events(&String::from_utf8_lossy(&first.stdout));
    let second = events(&String::from_utf8_lossy(&second.stdout));
    assert_eq!(finished(&first)["outputs"], finished(&second)["outputs"]);
    assert_eq!(finished(&first)["execution_id"], finished(&second)["execution_id"]);
}

#[test]
fn two_processes_cannot_drive_one_execution() {
    let scratch = Scratch::new("lock");
    let text = doc("", &[step("a", false, &[]), step("b", true, &["x-idempotent: true"])]);
    let path = scratch.runbook("runbook.yaml", &text);
    let mut child = spawn(&scratch, &path, &[]);
    wait_until("step b runs", || scratch.trail().contains(&"b".to_owned()));
    let id = only_execution_id(&scratch);
    let second = resume(&scratch, &id, &[]);
    assert_eq!(second.code, 8, "{}", second.stderr);
    assert!(second.stderr.contains("is being driven by another process"), "{}", second.stderr);
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn ctrl_c_stops_the_step_runs_its_cancel_path_and_ends_cancelled() {
    let scratch = Scratch::new("cancel");
    let text = doc(
        "",
        &[
            step("a", false, &[]),
            step("b", true, &["onCancel: step:cleanup"]),
            step("c", false, &[]),
            step("cleanup", false, &[]),
        ],
    );
    let path = scratch.runbook("runbook.yaml", &text);
    let child = spawn(&scratch, &path, &[]);
    wait_until("step b runs", || scratch.trail().contains(&"b".to_owned()));
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(scratch.trail(), ["a", "b", "cleanup"]);
    let events = events(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(finished(&events)["status"], json!("Cancelled"));
    let b = events.iter().find(|e| e["event"] == "step_finished" && e["step"] == "b").unwrap();
    assert_eq!(b["status"], json!("Cancelled"));
}

const APPROVE: &str =
    "  - name: ask\n    action: aws:approve\n    inputs: {Approvers: [ops-lead], Message: ship it?}\n";

#[test]
fn an_approval_waits_and_another_command_decides() {
    let scratch = Scratch::new("approve");
    let text = doc("", &[step("a", false, &[]), APPROVE.to_owned(), step("c", false, &[])]);
    let path = scratch.runbook("runbook.yaml", &text);
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    let waiting = runbook(&["run", &path, "--state-dir", &state, "-p", &trail, "--format", "json"]);
    assert_eq!(waiting.code, 7, "{}", waiting.stderr);
    let id = started_id(&events(&waiting.stdout));
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state, "--format", "json"]);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["execution"]["status"], json!("Waiting"));

    let approved = runbook(&["approve", &id, "--state-dir", &state, "--comment", "looks fine", "--format", "json"]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert_eq!(scratch.trail(), ["a", "c"]);
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state, "--format", "json"]);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["execution"]["status"], json!("Success"));
    let decision = shown["events"].as_array().unwrap().iter().find(|e| e["kind"] == "decision").unwrap();
    assert_eq!(decision["detail"]["decision"], json!("Approve"));
    assert_eq!(decision["detail"]["comment"], json!("looks fine"));
    assert!(decision["detail"]["by"].as_str().unwrap().len() > 1);
    let ask = shown["steps"].as_array().unwrap().iter().find(|s| s["step"] == "ask").unwrap();
    assert_eq!(ask["outputs"]["ApprovalStatus"], json!("Approved"));
}

#[test]
fn a_rejection_fails_the_step_and_ci_can_pre_answer() {
    let scratch = Scratch::new("reject");
    let text = doc("", &[step("a", false, &[]), APPROVE.to_owned(), step("c", false, &[])]);
    let path = scratch.runbook("runbook.yaml", &text);
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    let rejected = runbook(&["run", &path, "--state-dir", &state, "-p", &trail, "--format", "json", "--reject"]);
    assert_eq!(rejected.code, 4, "{}", rejected.stderr);
    assert_eq!(scratch.trail(), ["a"]);
    let approved = runbook(&["run", &path, "--state-dir", &state, "-p", &trail, "--format", "json", "--approve"]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
}

#[test]
fn a_waiting_run_takes_a_decision_made_in_another_terminal() {
    let scratch = Scratch::new("wait");
    let text = doc(
        "",
        &[
            step("a", false, &[]),
            "  - name: hold\n    action: aws:pause\n    inputs: {Message: check the dashboards}\n".to_owned(),
            step("c", false, &[]),
        ],
    );
    let path = scratch.runbook("runbook.yaml", &text);
    let child = spawn(&scratch, &path, &["--wait"]);
    let state = scratch.state();
    let mut id = String::new();
    wait_until("the run waits", || {
        let list = runbook(&["executions", "list", "--state-dir", &state, "--format", "json"]);
        let list: Value = serde_json::from_str(&list.stdout).unwrap_or(Value::Null);
        id = list[0]["id"].as_str().unwrap_or_default().to_owned();
        list[0]["status"] == "Waiting"
    });
    let resumed = runbook(&["resume", &id, "--state-dir", &state]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(scratch.trail(), ["a", "c"]);
}

#[test]
fn on_a_terminal_the_run_asks_at_a_prompt() {
    let scratch = Scratch::new("prompt");
    let text = doc("", &[step("a", false, &[]), APPROVE.to_owned(), step("c", false, &[])]);
    let path = scratch.runbook("runbook.yaml", &text);
    let state = scratch.state();
    // `script` gives the run a pseudo-terminal, as a person's shell would.
    let command = format!("{BINARY} run {path} --state-dir {state} -p Trail={}", scratch.trail_path());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the run waits at the prompt", || {
        let list = runbook(&["executions", "list", "--state-dir", &state, "--format", "json"]);
        let list: Value = serde_json::from_str(&list.stdout).unwrap_or(Value::Null);
        list[0]["status"] == "Waiting"
    });
    use std::io::Write as _;
    child.stdin.as_mut().unwrap().write_all(b"a\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("approve? [a]pprove / [r]eject"), "{shown}");
    assert_eq!(scratch.trail(), ["a", "c"]);
}
