//! Undo and rollback: `x-undo` on steps, `x-rollback` on the runbook, `runbook undo ID`. The
//! undos of the steps that succeeded run newest first, each with the outputs of the visit it
//! reverses; they are journaled steps (`undo:NAME`), so a rollback killed midway resumes
//! without running an undo twice. Steps are real Python scripts writing to a trail file.

use runbook_tests::{Scratch, kill_when_running, run_process, runbook, script_step, trail_payload};

use crate::game_day::{doc, ok, run};

/// A step that records `text` in the trail (a template: it may read outputs).
fn writes(name: &str, text: &str, extra: &[&str]) -> String {
    let script = "def h(e, c):\\n  open(e['Trail'], 'a').write(e['Text'] + '\\\\n')";
    script_step(name, extra, &format!("{}, Text: '{text}'", trail_payload(name)), script)
}

/// An `x-undo` that records `text` in the trail, as step keys.
fn undo_writing(text: &str) -> String {
    format!(
        "x-undo: {{action: aws:executeScript, inputs: {{Runtime: python3.11, Handler: h, \
         InputPayload: {{Trail: '{{{{ Trail }}}}', Text: '{text}'}}, \
         Script: \"def h(e, c):\\n  open(e['Trail'], 'a').write(e['Text'] + '\\\\n')\"}}}}"
    )
}

/// A, B (x-undo: step:UndoB) and C, with A's undo reading A's own output; UndoB is reached only
/// as an undo.
fn drill(scratch: &Scratch, rollback: &str) -> String {
    let undo_a = undo_writing("undo A {{ A.Out }}");
    let text = doc(&[
        ok("A", &[&undo_a]),
        ok("B", &["x-undo: step:UndoB"]),
        ok("C", &["isEnd: true"]),
        writes("UndoB", "undo B", &[]),
    ]);
    scratch.runbook(
        "drill.yaml",
        &text.replacen("schemaVersion: '0.3'\n", &format!("schemaVersion: '0.3'\nx-rollback: {rollback}\n"), 1),
    )
}

#[test]
fn a_failed_run_rolls_back_what_succeeded_newest_first_with_each_steps_own_outputs() {
    let scratch = Scratch::new("rollback");
    let path = drill(&scratch, "on-failure");
    let failed = run(&scratch, &path, &["--inject-failure", "C"]);
    assert_eq!(
        failed.steps(),
        ["A:Success", "B:Success", "C:Failed", "undo:B:Success", "undo:A:Success"],
        "{}",
        failed.stderr
    );
    assert_eq!(failed.status(), "Failed");
    assert_eq!(failed.code, 4);
    assert_eq!(scratch.trail(), ["A", "B", "undo B", "undo A A-out"]);

    // A run that succeeds is not rolled back under on-failure, nor a failed one under never.
    let succeeded = run(&scratch, &path, &[]);
    assert_eq!(succeeded.status(), "Success");
    assert!(!succeeded.steps().iter().any(|step| step.starts_with("undo:")), "{:?}", succeeded.steps());
    let never = scratch.runbook("never.yaml", &std::fs::read_to_string(&path).unwrap().replace("on-failure", "never"));
    let kept = run(&scratch, &never, &["--inject-failure", "C"]);
    assert!(!kept.steps().iter().any(|step| step.starts_with("undo:")), "{:?}", kept.steps());
}

#[test]
fn on_cancel_and_always_roll_back_and_an_undo_that_fails_does_not_stop_the_others() {
    let scratch = Scratch::new("rollback-kinds");
    let cancel = drill(&scratch, "on-cancel");
    let cancelled = run(&scratch, &cancel, &["--cancel-at", "C"]);
    assert_eq!(cancelled.status(), "Cancelled", "{}", cancelled.stderr);
    assert!(cancelled.steps().ends_with(&["undo:B:Success".to_owned(), "undo:A:Success".to_owned()]));

    let always = drill(&scratch, "always");
    let undone = run(&scratch, &always, &["--inject-failure", "undo:B"]);
    assert_eq!(
        undone.steps(),
        ["A:Success", "B:Success", "C:Success", "undo:B:Failed", "undo:A:Success"],
        "{}",
        undone.stderr
    );
    // It succeeded, but something it did could not be undone.
    assert_eq!(undone.status(), "Failed");
    // `runbook undo` finishes it: the undo that failed runs again, the one that succeeded not.
    let state = scratch.state();
    let finished = runbook(&["undo", &undone.execution_id(), "--state-dir", &state, "--format", "json"]);
    assert_eq!(finished.code, 0, "{}{}", finished.stdout, finished.stderr);
    let trail = scratch.trail();
    assert_eq!(trail.iter().filter(|line| *line == "undo B").count(), 2, "{trail:?}");
    assert_eq!(trail.iter().filter(|line| line.starts_with("undo A")).count(), 2, "{trail:?}");
}

#[test]
fn an_undo_in_a_loop_body_reads_its_own_iteration_and_an_undo_gets_a_secret_output_unredacted() {
    let scratch = Scratch::new("undo-loop");
    let body: String = ok("Each", &[&undo_writing("undo {{ Loop.CurrentIteratorValue }}")])
        .lines()
        .map(|line| format!("    {line}\n"))
        .collect();
    let text = format!(
        "{}  - name: Hosts\n    action: aws:loop\n    inputs:\n      Iterators: [web-1, web-2]\n      Steps:\n{body}",
        doc(&[ok("A", &[])])
    );
    let path = scratch.runbook("loop.yaml", &text.replacen("'0.3'\n", "'0.3'\nx-rollback: always\n", 1));
    let looped = run(&scratch, &path, &[]);
    assert_eq!(looped.status(), "Success", "{}", looped.stderr);
    assert_eq!(scratch.trail(), ["A", "Each", "Each", "undo web-2", "undo web-1"]);

    // A step whose output is a secret: its undo is given the value, which no output shows.
    let secret = Scratch::new("undo-secret");
    let canary = "canary-undo-71c2";
    let script = "def h(e, c):\\n  open(e['Trail'], 'a').write('A\\\\n')\\n  return {'Out': e['Token']}";
    let step = script_step(
        "A",
        &["outputs: [{Name: Out, Selector: $.Payload.Out, Type: String}]", &undo_writing("undo {{ A.Out }}")],
        &format!("{}, Token: '{{{{ Token }}}}'", trail_payload("A")),
        script,
    );
    let text = format!(
        "schemaVersion: '0.3'\nx-rollback: always\nparameters:\n  Trail: {{type: String}}\n  \
         Token: {{type: String, x-secret: true}}\nmainSteps:\n{step}"
    );
    let path = secret.runbook("secret.yaml", &text);
    let token = format!("Token={canary}");
    let ran = run(&secret, &path, &["-p", &token]);
    assert_eq!(ran.status(), "Success", "{}", ran.stderr);
    assert_eq!(secret.trail(), ["A", &format!("undo {canary}")]);
    let state = secret.state();
    let shown = runbook(&["executions", "show", &ran.execution_id(), "--state-dir", &state, "--format", "json"]);
    assert!(!shown.stdout.contains(canary) && !ran.events.iter().any(|e| e.to_string().contains(canary)));
}

#[test]
fn a_rollback_killed_midway_resumes_without_running_an_undo_twice() {
    let scratch = Scratch::new("rollback-kill");
    let marker = scratch.dir.join("slow-once");
    // A's undo starts, then (the first time only) sleeps long enough to be killed.
    let slow_undo = format!(
        "x-undo: {{action: aws:executeScript, x-idempotent: true, inputs: {{Runtime: python3.11, Handler: h, \
         InputPayload: {{Trail: '{{{{ Trail }}}}', Marker: '{}'}}, Script: \"import os, time\\n\
         def h(e, c):\\n  open(e['Trail'], 'a').write('undo A starts\\\\n')\\n  \
         if not os.path.exists(e['Marker']):\\n    open(e['Marker'], 'w').close()\\n    time.sleep(60)\\n  \
         open(e['Trail'], 'a').write('undo A\\\\n')\"}}}}",
        marker.display()
    );
    let text = doc(&[ok("A", &[&slow_undo]), ok("B", &[&undo_writing("undo B")]), ok("C", &[])]);
    let path = scratch.runbook("slow.yaml", &text.replacen("'0.3'\n", "'0.3'\nx-rollback: on-failure\n", 1));
    let engine = run_process(&scratch, &path, &["--inject-failure", "C"]).spawn().unwrap();
    let id = kill_when_running(&scratch, engine, "undo A starts");
    assert_eq!(scratch.trail(), ["A", "B", "undo B", "undo A starts"]);

    // The resume goes on with the rollback: undo:B is not run again, the killed undo:A is
    // (it is marked safe to repeat), and C, the failure that started it, is not retried.
    let resumed = run(&scratch, &path, &["--resume", &id]);
    assert_eq!(resumed.status(), "Failed", "{}", resumed.stderr);
    assert_eq!(scratch.trail(), ["A", "B", "undo B", "undo A starts", "undo A starts", "undo A"]);
    assert!(resumed.steps().contains(&"undo:A:Success".to_owned()), "{:?}", resumed.steps());
}

#[test]
fn runbook_undo_rolls_back_an_ended_execution_once_and_refuses_one_that_has_not_ended() {
    let scratch = Scratch::new("undo-command");
    let path = drill(&scratch, "never");
    let succeeded = run(&scratch, &path, &[]);
    assert_eq!(succeeded.status(), "Success");
    let state = scratch.state();
    let id = succeeded.execution_id();
    let undone = runbook(&["undo", &id, "--state-dir", &state]);
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    assert_eq!(scratch.trail(), ["A", "B", "C", "undo B", "undo A A-out"]);
    // Again: every undo is done already, nothing runs twice.
    let again = runbook(&["undo", &id, "--state-dir", &state]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(scratch.trail().len(), 5);
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state]);
    assert!(shown.stdout.contains("status    Success"), "the execution keeps its status:\n{}", shown.stdout);
    assert!(shown.stdout.contains("undo:A"), "{}", shown.stdout);

    // An execution that waits has not ended: refused.
    let paused = run(&scratch, &path, &["--pause-before", "B"]);
    assert_eq!(paused.code, 7);
    let refused = runbook(&["undo", &paused.execution_id(), "--state-dir", &state]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("it can be undone once it has ended"), "{}", refused.stderr);
}

#[test]
fn plan_and_dry_run_show_the_undo_path() {
    let scratch = Scratch::new("undo-plan");
    let path = drill(&scratch, "on-failure");
    let plan = runbook(&["plan", &path, "-p", "Trail=t"]);
    assert!(plan.stdout.contains("undo  aws:executeScript as undo:A (x-rollback: on-failure"), "{}", plan.stdout);
    let json = runbook(&["plan", &path, "-p", "Trail=t", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["rollback"], "on-failure");
    assert_eq!(json["steps"][1]["undo"]["step"], "undo:B");
    assert_eq!(json["steps"][1]["undo"]["pointer"], "/mainSteps/3");
    let dry = runbook(&["run", &path, "-p", "Trail=t", "--dry-run"]);
    assert!(dry.stdout.contains("→ end: Failed (onFailure: Abort), then rolls back"), "{}", dry.stdout);
    assert!(dry.stdout.contains("  B → undo:B (aws:executeScript)"), "{}", dry.stdout);
}
