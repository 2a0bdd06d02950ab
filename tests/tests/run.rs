//! `runbook run` end to end: every successor, retry, timeout, status, loop, variable and
//! output rule of the reference (sections 4, 5.6, 7.3-7.4), each as a small runbook whose
//! `aws:executeScript` steps append their names to a trail file in a real Python, with the
//! journal in a real SQLite file.

use runbook_tests::{Scratch, runbook, script_step, trail_payload};
use serde_json::{Value, json};

/// A script step that appends its name to the trail, then fails or returns `ret` (JSON).
fn step(name: &str, fail: bool, ret: &str, extra: &[&str]) -> String {
    let fail = if fail { "True" } else { "False" };
    let script = format!(
        "def h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  if {fail}: raise RuntimeError('{name} broke')\\n  return {ret}"
    );
    script_step(name, extra, &trail_payload(name), &script)
}

fn ok(name: &str, extra: &[&str]) -> String {
    step(name, false, "None", extra)
}

fn bad(name: &str, extra: &[&str]) -> String {
    step(name, true, "None", extra)
}

fn doc(steps: &[String]) -> String {
    doc_with("", steps)
}

/// A runbook with a `Trail` parameter, more top-level YAML, and the steps.
fn doc_with(top: &str, steps: &[String]) -> String {
    format!("schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\n{top}mainSteps:\n{}", steps.concat())
}

struct Run {
    code: u8,
    events: Vec<Value>,
    stderr: String,
}

impl Run {
    fn finished(&self) -> &Value {
        self.events.iter().rev().find(|e| e["event"] == "execution_finished").expect("the run finished")
    }

    fn status(&self) -> &str {
        self.finished()["status"].as_str().unwrap()
    }

    fn execution_id(&self) -> String {
        self.events.iter().find(|e| e["event"] == "execution_started").unwrap()["execution_id"].as_str().unwrap().into()
    }

    /// `step:Status` of every finished step visit, in order.
    fn steps(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "step_finished")
            .map(|e| format!("{}:{}", e["step"].as_str().unwrap(), e["status"].as_str().unwrap()))
            .collect()
    }

    fn step(&self, name: &str) -> &Value {
        self.events.iter().rev().find(|e| e["event"] == "step_finished" && e["step"] == name).unwrap()
    }
}

fn execute(scratch: &Scratch, text: &str, extra: &[&str]) -> Run {
    let path = scratch.runbook("runbook.yaml", text);
    run_file(scratch, &path, extra)
}

fn run_file(scratch: &Scratch, path: &str, extra: &[&str]) -> Run {
    let trail = format!("Trail={}", scratch.trail_path());
    let state = scratch.state();
    let mut args = vec!["run", path, "--state-dir", &state, "-p", &trail, "--format", "json"];
    args.extend_from_slice(extra);
    let output = runbook(&args);
    let events =
        output.stdout.lines().map(|line| serde_json::from_str(line).expect("one JSON event per line")).collect();
    Run { code: output.code, events, stderr: output.stderr }
}

#[test]
fn success_follows_next_step_then_list_order_and_stops_at_is_end() {
    let scratch = Scratch::new("success");
    let text = doc(&[ok("a", &["nextStep: c"]), ok("b", &[]), ok("c", &[]), ok("d", &["isEnd: true"]), ok("e", &[])]);
    let run = execute(&scratch, &text, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scratch.trail(), ["a", "c", "d"]);
    assert_eq!(run.status(), "Success");
}

#[test]
fn abort_stops_the_run_failed() {
    let scratch = Scratch::new("abort");
    let run = execute(&scratch, &doc(&[ok("a", &[]), bad("b", &[]), ok("c", &[])]), &[]);
    assert_eq!(scratch.trail(), ["a", "b"]);
    assert_eq!((run.code, run.status()), (4, "Failed"));
    assert_eq!(run.finished()["failed_steps"], json!(["b"]));
}

#[test]
fn continue_takes_the_success_path_and_is_not_critical() {
    let scratch = Scratch::new("continue");
    let text = doc(&[bad("a", &["onFailure: Continue", "nextStep: c"]), ok("b", &[]), ok("c", &[])]);
    let run = execute(&scratch, &text, &[]);
    assert_eq!(scratch.trail(), ["a", "c"]);
    assert_eq!((run.code, run.status()), (0, "Success"));
}

#[test]
fn continue_with_is_end_stops() {
    let scratch = Scratch::new("continue-end");
    let run = execute(&scratch, &doc(&[bad("a", &["onFailure: Continue", "isEnd: true"]), ok("b", &[])]), &[]);
    assert_eq!(scratch.trail(), ["a"]);
    assert_eq!(run.status(), "Success");
}

#[test]
fn on_failure_step_jumps_and_the_run_still_fails_unless_not_critical() {
    let scratch = Scratch::new("jump");
    let text = doc(&[bad("a", &["onFailure: step:cleanup"]), ok("b", &[]), ok("cleanup", &[])]);
    let run = execute(&scratch, &text, &[]);
    assert_eq!(scratch.trail(), ["a", "cleanup"]);
    assert_eq!((run.code, run.status()), (4, "Failed"));

    let scratch = Scratch::new("jump-not-critical");
    let text = doc(&[bad("a", &["onFailure: step:cleanup", "isCritical: false"]), ok("b", &[]), ok("cleanup", &[])]);
    let run = execute(&scratch, &text, &[]);
    assert_eq!((run.code, run.status()), (0, "Success"));
}

#[test]
fn is_end_with_on_failure_jumps_on_failure_and_stops_on_success() {
    let scratch = Scratch::new("end-jump");
    let text = doc(&[bad("a", &["isEnd: true", "onFailure: step:b", "isCritical: false"]), ok("b", &[])]);
    execute(&scratch, &text, &[]);
    assert_eq!(scratch.trail(), ["a", "b"]);
    let scratch = Scratch::new("end-stop");
    execute(&scratch, &doc(&[ok("a", &["isEnd: true", "onFailure: step:b"]), ok("b", &[])]), &[]);
    assert_eq!(scratch.trail(), ["a"]);
}

fn branch(name: &str, choices: &str, tail: &str) -> String {
    format!("  - name: {name}\n    action: aws:branch\n    inputs:\n      Choices:\n{choices}{tail}")
}

#[test]
fn branches_take_the_first_true_choice_with_typed_outputs() {
    let scratch = Scratch::new("branch");
    let steps = [
        step(
            "measure",
            false,
            "{'n': 7, 'state': 'Running', 'ok': True}",
            &[
                "outputs:",
                "  - {Name: N, Selector: $.Payload.n, Type: Integer}",
                "  - {Name: State, Selector: $.Payload.state, Type: String}",
                "  - {Name: Ok, Selector: $.Payload.ok, Type: Boolean}",
            ],
        ),
        branch(
            "decide",
            "        - {NextStep: small, Variable: '{{ measure.N }}', NumericLesser: 5}\n        \
             - NextStep: big\n          And:\n            - {Variable: '{{ measure.N }}', NumericGreaterOrEquals: 7}\n            \
             - {Not: {Variable: '{{ measure.State }}', EqualsIgnoreCase: stopped}}\n            \
             - {Or: [{Variable: '{{ measure.Ok }}', BooleanEquals: true}, {Variable: x, StringEquals: y}]}\n        \
             - {NextStep: small, Variable: '{{ measure.State }}', StartsWith: Run}\n",
            "      Default: small\n",
        ),
        ok("small", &["isEnd: true"]),
        ok("big", &[]),
    ];
    let run = execute(&scratch, &doc(&steps), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scratch.trail(), ["measure", "big"]);
    assert_eq!(run.step("decide")["outputs"]["NextStep"], json!("big"));
}

#[test]
fn branches_without_a_match_use_default_then_is_end_then_fall_through() {
    let never = "        - {NextStep: x, Variable: a, StringEquals: b}\n";
    let cases = [
        ("default", "      Default: y\n", "", vec!["y"]),
        ("is-end", "", "    isEnd: true\n", vec![]),
        ("next-step", "", "    nextStep: y\n", vec!["y"]),
        ("fall-through", "", "", vec!["x", "y"]),
    ];
    for (name, default, tail, trail) in cases {
        let scratch = Scratch::new(name);
        let steps = [branch("decide", never, &format!("{default}{tail}")), ok("x", &[]), ok("y", &[])];
        let run = execute(&scratch, &doc(&steps), &[]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(scratch.trail(), trail, "{name}");
    }
}

#[test]
fn a_branch_comparing_the_wrong_type_fails_and_its_on_failure_applies() {
    let scratch = Scratch::new("branch-type");
    let steps = [
        format!(
            "{}    onFailure: step:handled\n    isCritical: false\n",
            branch("decide", "        - {NextStep: x, Variable: abc, NumericGreater: 1}\n", "")
        ),
        ok("x", &[]),
        ok("handled", &[]),
    ];
    let run = execute(&scratch, &doc(&steps), &[]);
    assert_eq!(scratch.trail(), ["handled"]);
    assert!(run.step("decide")["error"].as_str().unwrap().contains("NumericGreater needs a number"));
}

/// A script that fails until it has been called `times` times (counted in a file).
fn flaky(name: &str, times: u32, extra: &[&str]) -> String {
    let script = format!(
        "def h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  n = len(open(e['Trail']).read().split())\\n  \
         if n < {times}: raise RuntimeError('not yet')\\n  return n"
    );
    script_step(name, extra, &trail_payload(name), &script)
}

#[test]
fn retries_run_up_to_max_attempts() {
    let scratch = Scratch::new("retry");
    let run = execute(&scratch, &doc(&[flaky("a", 3, &["maxAttempts: 3"])]), &[]);
    assert_eq!((run.code, run.status()), (0, "Success"));
    assert_eq!(scratch.trail(), ["a", "a", "a"]);
    assert_eq!(run.step("a")["attempts"], json!(3));
    let failed_attempts = run.events.iter().filter(|e| e["event"] == "attempt_failed").count();
    assert_eq!(failed_attempts, 2);

    let scratch = Scratch::new("retry-exhausted");
    let run = execute(&scratch, &doc(&[flaky("a", 9, &["maxAttempts: 2"])]), &[]);
    assert_eq!((run.code, run.status()), (4, "Failed"));
    assert_eq!(scratch.trail(), ["a", "a"]);
}

/// A script that records its name, starts a `sleep` child, and waits for it.
fn sleeper(name: &str, extra: &[&str]) -> String {
    let script = "import subprocess\\ndef h(e, c):\\n  child = subprocess.Popen(['sleep', '60'])\\n  \
         open(e['Trail'], 'a').write(e['Name'] + '\\\\n' + 'pid ' + str(child.pid) + '\\\\n')\\n  child.wait()";
    script_step(name, extra, &trail_payload(name), script)
}

fn process_exists(pid: &str) -> bool {
    // A killed child may linger as a zombie until init reaps it: only a live one counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

#[test]
fn a_timeout_kills_the_whole_process_group_and_times_the_run_out() {
    let scratch = Scratch::new("timeout");
    // Three seconds: time for the interpreter to start and say its child's pid on a busy machine.
    let run = execute(&scratch, &doc(&[sleeper("slow", &["timeoutSeconds: 3"]), ok("after", &[])]), &[]);
    assert_eq!((run.code, run.status()), (5, "TimedOut"));
    assert_eq!(run.step("slow")["status"], json!("TimedOut"));
    let trail = scratch.trail();
    assert_eq!(trail[0], "slow");
    let pid = trail[1].strip_prefix("pid ").unwrap();
    // The grandchild was killed with the group; wait (bounded) for the kernel to reap it.
    let gone = (0..100).any(|_| {
        let gone = !process_exists(pid);
        if !gone {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        gone
    });
    assert!(gone, "the script's child {pid} outlived the timeout");
}

#[test]
fn a_timeout_with_continue_is_not_critical() {
    let scratch = Scratch::new("timeout-continue");
    let run = execute(
        &scratch,
        &doc(&[sleeper("slow", &["timeoutSeconds: 1", "onFailure: Continue"]), ok("after", &[])]),
        &[],
    );
    assert_eq!((run.code, run.status()), (0, "Success"));
    assert_eq!(run.steps(), ["slow:TimedOut", "after:Success"]);
}

#[test]
fn outputs_select_coerce_and_stay_literal_when_nothing_matches() {
    let scratch = Scratch::new("outputs");
    let top = "outputs:\n  - produce.Name\n  - produce.Missing\n  - produce.Ids\n";
    let steps = [
        step(
            "produce",
            false,
            "{'items': [{'k': 'a', 'v': 1}, {'k': 'b', 'v': 2}], 'name': 'x', 'n': '42'}",
            &[
                "outputs:",
                "  - {Name: Name, Selector: $.Payload.name, Type: String}",
                "  - {Name: Count, Selector: Payload.n, Type: Integer}",
                "  - {Name: B, Selector: \"$.Payload.items[?(@.k == 'b')].v\", Type: Integer}",
                "  - {Name: Ids, Selector: $..k, Type: StringList}",
                "  - {Name: Missing, Selector: $.Payload.nothing, Type: String}",
                "  - {Name: Whole, Selector: $, Type: StringMap}",
            ],
        ),
        "  - name: use\n    action: aws:executeScript\n    inputs:\n      Runtime: python3.11\n      Handler: h\n      \
             InputPayload: {Trail: '{{ Trail }}', Seen: 'count={{ produce.Count }} b={{ produce.B }} missing={{ produce.Missing }}'}\n      \
             Script: \"def h(e, c):\\n  open(e['Trail'], 'a').write(e['Seen'] + '\\\\n')\"\n"
            .to_owned(),
    ];
    let run = execute(&scratch, &doc_with(top, &steps), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outputs = &run.step("produce")["outputs"];
    assert_eq!(outputs["Count"], json!(42));
    assert_eq!(outputs["Ids"], json!(["a", "b"]));
    assert!(outputs.get("Missing").is_none());
    assert_eq!(outputs["Whole"]["Payload"]["name"], json!("x"));
    assert_eq!(scratch.trail(), ["produce", "count=42 b=2 missing={{ produce.Missing }}"]);
    assert_eq!(
        run.finished()["outputs"],
        json!({
            "produce.Name": ["x"],
            "produce.Missing": ["No output available yet because the step is not successfully executed"],
            "produce.Ids": ["a", "b"],
        })
    );
}

#[test]
fn an_output_that_cannot_be_coerced_fails_the_step() {
    let scratch = Scratch::new("coerce");
    let steps =
        [step("produce", false, "{'n': 'many'}", &["outputs:", "  - {Name: N, Selector: $.Payload.n, Type: Integer}"])];
    let run = execute(&scratch, &doc(&steps), &[]);
    assert_eq!((run.code, run.status()), (4, "Failed"));
    assert!(
        run.step("produce")["error"].as_str().unwrap().contains("not a valid Integer"),
        "{:?}",
        run.step("produce")
    );
}

fn loop_step(name: &str, inputs: &str, body: &[String], extra: &str) -> String {
    let body: String =
        body.iter().map(|step| step.lines().map(|line| format!("      {line}\n")).collect::<String>()).collect();
    format!("  - name: {name}\n    action: aws:loop\n{extra}    inputs:\n{inputs}      Steps:\n{body}")
}

fn echo(name: &str, text: &str, extra: &[&str]) -> String {
    let payload = format!("Trail: '{{{{ Trail }}}}', Text: '{text}'");
    let script = "def h(e, c):\\n  open(e['Trail'], 'a').write(str(e['Text']) + '\\\\n')\\n  return e['Text']";
    script_step(name, extra, &payload, script)
}

#[test]
fn for_each_loops_see_the_iteration_and_value_and_is_end_ends_the_iteration() {
    let scratch = Scratch::new("for-each");
    let body = [
        echo("say", "{{ Loop.CurrentIteration }}:{{ Loop.CurrentIteratorValue }}", &["isEnd: true"]),
        echo("never", "never", &[]),
    ];
    let steps = [
        loop_step("each", "      Iterators: [a, b, c]\n      MaxIterations: 2\n", &body, ""),
        echo("after", "after", &[]),
    ];
    let run = execute(&scratch, &doc(&steps), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scratch.trail(), ["1:a", "2:b", "after"]);
    assert_eq!(run.step("each")["outputs"], json!({"CurrentIteration": 2, "CurrentIteratorValue": "b"}));
}

#[test]
fn do_while_loops_check_the_condition_after_each_iteration_with_variables() {
    let scratch = Scratch::new("do-while");
    let top = "variables:\n  Count: {type: Integer, default: 0}\n";
    let body = [
        echo("say", "{{ Loop.CurrentIteration }}", &[]),
        "  - name: bump\n    action: aws:updateVariable\n    inputs: {Name: 'variable:Count', Value: '{{ Loop.CurrentIteration }}'}\n"
            .to_owned(),
    ];
    let condition = "      LoopCondition: {Variable: '{{ variable:Count }}', NumericLesser: 3}\n";
    let steps = [loop_step("again", condition, &body, ""), echo("after", "count={{ variable:Count }}", &[])];
    let run = execute(&scratch, &doc_with(top, &steps), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scratch.trail(), ["1", "2", "3", "count=3"]);
}

#[test]
fn a_jump_out_of_a_loop_body_exits_the_loop() {
    let scratch = Scratch::new("loop-exit");
    let body = [echo("say", "{{ Loop.CurrentIteratorValue }}", &["nextStep: out"])];
    let steps = [
        loop_step("each", "      Iterators: [a, b]\n", &body, ""),
        echo("skipped", "skipped", &[]),
        echo("out", "out", &[]),
    ];
    let run = execute(&scratch, &doc(&steps), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scratch.trail(), ["a", "out"]);
    assert_eq!(run.step("each")["status"], json!("Exited"));
}

#[test]
fn update_variable_refuses_a_value_of_another_type() {
    let scratch = Scratch::new("variable-type");
    let top = "variables:\n  Count: {type: Integer, default: 0}\n";
    let steps =
        ["  - name: set\n    action: aws:updateVariable\n    inputs: {Name: 'variable:Count', Value: '{{ Trail }}'}\n"
            .to_owned()];
    let run = execute(&scratch, &doc_with(top, &steps), &[]);
    assert_eq!((run.code, run.status()), (4, "Failed"));
    assert!(run.step("set")["error"].as_str().unwrap().contains("is an Integer"), "{:?}", run.step("set"));
}

#[test]
fn sleep_accepts_fractional_iso_durations() {
    let scratch = Scratch::new("sleep");
    let steps = ["  - name: nap\n    action: aws:sleep\n    inputs: {Duration: PT0.1S}\n".to_owned(), ok("a", &[])];
    let run = execute(&scratch, &doc(&steps), &[]);
    assert_eq!(run.steps(), ["nap:Success", "a:Success"]);
}

#[test]
fn secrets_never_reach_the_journal_or_the_output() {
    let scratch = Scratch::new("secret");
    let top = "  Token: {type: String, x-secret: true}\n";
    let text = format!(
        "schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\n{top}mainSteps:\n  - name: use\n    action: aws:executeScript\n    \
         inputs:\n      Runtime: python3.11\n      Handler: h\n      InputPayload: {{Token: '{{{{ Token }}}}'}}\n      \
         Script: \"def h(e, c):\\n  print('token is', e['Token'])\\n  return 'got ' + e['Token']\"\n"
    );
    let run = execute(&scratch, &text, &["-p", "Token=hunter2-secret"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = serde_json::to_string(&run.events).unwrap();
    assert!(!events.contains("hunter2-secret"), "{events}");
    assert!(events.contains("got ********"));
    let database = std::fs::read(std::path::Path::new(&scratch.state()).join("journal.sqlite")).unwrap();
    let wal = std::fs::read(std::path::Path::new(&scratch.state()).join("journal.sqlite-wal")).unwrap_or_default();
    for bytes in [database, wal] {
        assert!(!bytes.windows(14).any(|w| w == b"hunter2-secret"), "the secret is in the journal");
    }
    // A resume needs the secret again.
    let id = run.execution_id();
    let state = scratch.state();
    let again = runbook(&["run", "--resume", &id, "--state-dir", &state]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("pass it again with -p Token=VALUE"), "{}", again.stderr);
}

#[test]
fn a_child_runbook_runs_with_its_outputs_and_a_linked_journal() {
    let scratch = Scratch::new("child");
    scratch.runbook(
        "child.yaml",
        &doc_with(
            "outputs: [work.Result]\n",
            &[step(
                "work",
                false,
                "{'r': 'from child'}",
                &["outputs:", "  - {Name: Result, Selector: $.Payload.r, Type: String}"],
            )],
        ),
    );
    let parent = doc(&[
        "  - name: call\n    action: aws:executeAutomation\n    inputs:\n      DocumentName: child\n      \
         RuntimeParameters: {Trail: '{{ Trail }}'}\n    outputs:\n      - {Name: First, Selector: '$.Output[0]', Type: String}\n"
            .to_owned(),
        echo("after", "{{ call.First }} {{ call.Status }}", &[]),
    ]);
    let run = execute(&scratch, &parent, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scratch.trail(), ["work", "from child Success"]);
    let child_id = run.step("call")["outputs"]["ExecutionId"].as_str().unwrap().to_owned();
    let state = scratch.state();
    let shown = runbook(&["executions", "show", &child_id, "--state-dir", &state, "--format", "json"]);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["execution"]["parent_id"], json!(run.execution_id()));
    assert_eq!(shown["execution"]["parent_step"], json!("call"));
}

#[test]
fn executions_list_and_show_give_the_timeline() {
    let scratch = Scratch::new("executions");
    let run = execute(&scratch, &doc(&[flaky("a", 2, &["maxAttempts: 2"]), bad("b", &["onFailure: Continue"])]), &[]);
    let id = run.execution_id();
    let state = scratch.state();
    let list = runbook(&["executions", "list", "--state-dir", &state, "--format", "json"]);
    let list: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list[0]["id"], json!(id));
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state, "--format", "json"]);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    let steps: Vec<_> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].clone(), s["status"].clone(), s["attempts"].clone()))
        .collect();
    assert_eq!(steps, [(json!("a"), json!("Success"), json!(2)), (json!("b"), json!("Failed"), json!(1))]);
    assert_eq!(shown["attempts"].as_array().unwrap().len(), 3);
    assert!(shown["steps"][1]["error"].as_str().unwrap().contains("b broke"));
    let text = runbook(&["executions", "show", &id, "--state-dir", &state]);
    assert!(text.stdout.contains("Failed     b (aws:executeScript)  1 attempt"), "{}", text.stdout);
}

/// A child run over targets runs one child per target (it used to be refused: defect 5 of the
/// one-timeline issue, now issue 17's rate-controlled run), never one child for all.
#[test]
fn r_a_child_run_over_targets_runs_a_child_per_target_not_one_child() {
    let scratch = Scratch::new("fan-out");
    scratch.runbook("child.yaml", &doc(&[ok("work", &[])]));
    let (first, second) = (scratch.path("first-trail"), scratch.path("second-trail"));
    let parent = doc(&[format!(
        "  - name: fan\n    action: aws:executeAutomation\n    inputs:\n      DocumentName: child\n      \
         TargetParameterName: Trail\n      Targets: [{{Key: ParameterValues, Values: ['{first}', '{second}']}}]\n"
    )]);
    let path = scratch.runbook("parent.yaml", &parent);
    let state = scratch.state();
    let ran = runbook(&["run", &path, "--state-dir", &state, "-p", &format!("Trail={}", scratch.trail_path())]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    for trail in [&first, &second] {
        assert_eq!(std::fs::read_to_string(trail).unwrap(), "work\n", "each target's child ran once");
    }
    assert!(scratch.trail().is_empty(), "no child ran with the parent's own value");
    // Validation and dry-runs still describe it (every corpus runbook validates and dry-runs).
    assert_eq!(runbook(&["validate", &path]).code, 0);
    assert_eq!(runbook(&["run", &path, "--dry-run"]).code, 0);
}
