//! Runs over targets (issue 17): one child execution per target, at most MaxConcurrency at
//! once (read back from the journal's attempt intervals), launching stopped at the error AWS
//! documents for a number, a percent and 0, children already running let finish, tag targets
//! resolved against moto, and a parent killed mid-run resumed with no child run twice.

use runbook::journal::{Journal, JournalRead, Status};
use runbook_tests::moto::{Moto, moto};
use runbook_tests::{Scratch, json_lines, runbook, script_step, trail_payload, wait_until};
use serde_json::Value;

/// A child runbook: `i-bad...` fails, `i-slow...` sleeps half a second, others sleep 100 ms.
const CHILD: &str = "schemaVersion: '0.3'
parameters:
  InstanceId: {type: String, allowedPattern: '^i-[a-z0-9-]+$'}
mainSteps:
  - name: route
    action: aws:branch
    inputs:
      Choices:
        - {NextStep: fail, Variable: '{{ InstanceId }}', StartsWith: i-bad}
        - {NextStep: slow, Variable: '{{ InstanceId }}', StartsWith: i-slow}
      Default: work
  - name: work
    action: aws:sleep
    inputs: {Duration: PT0.1S}
    isEnd: true
  - name: slow
    action: aws:sleep
    inputs: {Duration: PT0.5S}
    isEnd: true
  - name: fail
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      Script: \"def h(e, c):\\n  raise Exception('a bad target')\"
";

fn fleet(scratch: &Scratch, targets: &[&str], extra: &[&str]) -> runbook_tests::Output {
    let path = scratch.runbook("child.yaml", CHILD);
    let mut extra = extra.to_vec();
    extra.extend_from_slice(&["--format", "json"]);
    over(scratch, &path, "InstanceId", targets, &extra)
}

/// Runs the runbook at `path` over `targets`, each the value of `parameter`, in the scratch
/// journal.
fn over(scratch: &Scratch, path: &str, parameter: &str, targets: &[&str], extra: &[&str]) -> runbook_tests::Output {
    let state = scratch.state();
    let values = format!("Key=ParameterValues,Values={}", targets.join(","));
    let mut args = vec!["run", path, "--state-dir", &state, "--target-parameter-name", parameter, "--targets", &values];
    args.extend_from_slice(extra);
    runbook(&args)
}

/// The run's `execution_finished` event of the parent (the last one).
fn parent(output: &runbook_tests::Output) -> Value {
    let events = json_lines(&output.stdout);
    events.into_iter().rev().find(|event| event["event"] == "execution_finished").unwrap_or(Value::Null)
}

/// Every child of `parent`, with its target (its InstanceId) and status.
fn children(scratch: &Scratch, parent: &str) -> Vec<(String, Status)> {
    let journal = Journal::open(std::path::Path::new(&scratch.state())).unwrap();
    let mut children: Vec<(String, Status)> = journal
        .children(parent)
        .unwrap()
        .into_iter()
        .map(|child| (child.parameters["InstanceId"].as_str().unwrap_or_default().to_owned(), child.status))
        .collect();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    children
}

#[test]
fn max_concurrency_is_never_exceeded_and_every_target_gets_one_child() {
    let scratch = Scratch::new("fan-concurrency");
    let targets: Vec<String> = (0..12).map(|i| format!("i-{i}")).collect();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let output = fleet(&scratch, &targets, &["--max-concurrency", "4"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let finished = parent(&output);
    assert_eq!(finished["status"], "Success");
    let parent_id = finished["execution_id"].as_str().unwrap();
    assert_eq!(children(&scratch, parent_id).len(), 12, "one child per target");
    // Each child's span, from its first attempt's start to its last attempt's end.
    let journal = Journal::open(std::path::Path::new(&scratch.state())).unwrap();
    let mut edges: Vec<(String, i32)> = Vec::new();
    for child in journal.children(parent_id).unwrap() {
        let attempts = journal.attempts(&child.id).unwrap();
        let start = attempts.iter().map(|a| a.started_at.clone()).min().unwrap();
        let end = attempts.iter().filter_map(|a| a.ended_at.clone()).max().unwrap();
        edges.push((start, 1));
        edges.push((end, -1));
    }
    // Times are fixed-width text that sorts as time does; at one instant an end comes first.
    edges.sort();
    let (mut running, mut most) = (0, 0);
    for (_, step) in edges {
        running += step;
        most = most.max(running);
    }
    assert!(most <= 4, "{most} children ran at once, over MaxConcurrency 4");
    assert!(most >= 2, "the children never ran side by side");
}

#[test]
fn launching_stops_at_the_error_after_max_errors_for_a_number_a_percent_and_zero() {
    // One at a time, so the order is the targets'.
    let targets =
        ["i-bad-1", "i-ok-1", "i-bad-2", "i-ok-2", "i-bad-3", "i-ok-3", "i-ok-4", "i-ok-5", "i-ok-6", "i-ok-7"];
    for (errors, launched) in [("2", 5), ("20%", 5), ("0", 1), ("10%", 3)] {
        let scratch = Scratch::new("fan-errors");
        let output = fleet(&scratch, &targets, &["--max-concurrency", "1", "--max-errors", errors]);
        assert_eq!(output.code, 4, "MaxErrors {errors}: {}", output.stderr);
        let finished = parent(&output);
        assert_eq!(finished["status"], "Failed");
        let outputs = &finished["outputs"];
        assert_eq!(outputs["NotLaunched"], 10 - launched, "MaxErrors {errors}: {outputs}");
        let parent_id = finished["execution_id"].as_str().unwrap();
        assert_eq!(children(&scratch, parent_id).len(), launched as usize, "MaxErrors {errors}");
        let stopped = json_lines(&output.stdout)
            .into_iter()
            .any(|event| event["event"] == "fan_out" && event["text"].as_str().unwrap().contains("launching stopped"));
        assert!(stopped, "MaxErrors {errors}: the stop is in the timeline");
    }
    // Errors under the limit: every target runs, and the parent still fails.
    let scratch = Scratch::new("fan-errors-under");
    let output = fleet(&scratch, &targets, &["--max-concurrency", "1", "--max-errors", "3"]);
    assert_eq!(parent(&output)["outputs"]["NotLaunched"], 0);
    assert_eq!(parent(&output)["status"], "Failed");
}

/// When launching stops, the children already running finish (and are recorded as they end).
#[test]
fn children_already_running_finish_when_launching_stops() {
    let scratch = Scratch::new("fan-running");
    // One first, then two at once: the slow one is still running when the bad one fails.
    let output = fleet(&scratch, &["i-ok", "i-slow", "i-bad", "i-later", "i-last"], &["--max-concurrency", "3"]);
    assert_eq!(output.code, 4, "{}", output.stderr);
    let finished = parent(&output);
    let parent_id = finished["execution_id"].as_str().unwrap();
    assert_eq!(
        children(&scratch, parent_id),
        [
            ("i-bad".to_owned(), Status::Failed),
            ("i-ok".to_owned(), Status::Success),
            ("i-slow".to_owned(), Status::Success)
        ]
    );
    assert_eq!(finished["outputs"]["NotLaunched"], 2);
}

/// Launches `count` EC2 instances in moto tagged `key=value` (and one tagged `other`): their
/// ids, sorted.
fn tagged_instances(moto: &Moto, key: &str, value: &str, count: usize) -> Value {
    moto.boto3(&format!(
        "ec2 = boto3.client('ec2')\nimage = ec2.describe_images()['Images'][0]['ImageId']\n\
         def launch(value):\n    spec = [{{'ResourceType': 'instance', 'Tags': [{{'Key': '{key}', 'Value': value}}]}}]\n    \
         return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=spec)['Instances'][0]['InstanceId']\n\
         ids = sorted(launch('{value}') for _ in range({count}))\nlaunch('other')\nemit(ids)"
    ))
}

/// Runs CHILD against moto over `targets`: the InstanceId each child got, sorted.
fn resolved_targets(moto: &Moto, scratch: &Scratch, targets: &str) -> Value {
    let path = scratch.runbook("child.yaml", CHILD);
    let output = moto.runbook(
        scratch,
        &["run", &path, "--target-parameter-name", "InstanceId", "--targets", targets, "--format", "json"],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    let finished = parent(&output);
    let resolved: Vec<String> =
        children(scratch, finished["execution_id"].as_str().unwrap()).into_iter().map(|(id, _)| id).collect();
    serde_json::to_value(resolved).unwrap()
}

/// Targets by tag, resolved through the Resource Groups Tagging API (moto).
#[test]
fn tag_targets_are_resolved_against_moto() {
    let Some(moto) = moto("tag_targets_are_resolved_against_moto") else { return };
    let scratch = Scratch::new("fan-tags");
    let tag = format!("drill-{}", std::process::id());
    let ids = tagged_instances(moto, "Drill", &tag, 3);
    assert_eq!(resolved_targets(moto, &scratch, &format!("Key=tag:Drill,Values={tag}")), ids);
}

/// The parent killed while a child runs, then resumed: no child that finished runs again, and
/// no target gets a second child (the one that was running goes on as the same execution).
#[test]
fn a_parent_killed_mid_run_resumes_without_running_a_child_twice() {
    let scratch = Scratch::new("fan-kill");
    let script = "import os, time\\ndef h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  \
                  while e['Name'] == 'i-c' and not os.path.exists(e['Trail'] + '.go'): time.sleep(0.05)";
    let path = scratch.runbook(
        "child.yaml",
        &format!(
            "schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\n  InstanceId: {{type: String}}\nmainSteps:\n{}",
            script_step("work", &["x-idempotent: true"], &trail_payload("'{{ InstanceId }}'"), script)
        ),
    );
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    let args = [
        "run",
        &path,
        "--state-dir",
        &state,
        "-p",
        &trail,
        "--target-parameter-name",
        "InstanceId",
        "--targets",
        "Key=ParameterValues,Values=i-a,i-b,i-c,i-d,i-e",
        "--max-concurrency",
        "1",
        "--format",
        "json",
    ];
    let mut killed = std::process::Command::new(runbook_tests::binary())
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("i-c runs", || scratch.trail().contains(&"i-c".to_owned()));
    killed.kill().unwrap();
    killed.wait().unwrap();
    let journal = Journal::open(std::path::Path::new(&state)).unwrap();
    let parent_id = journal.executions(100).unwrap().into_iter().find(|e| e.parent_id.is_none()).unwrap().id;
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let resumed = runbook(&["run", "--resume", &parent_id, "--state-dir", &state, "-p", &trail, "--format", "json"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    // i-c's step was declared safe to repeat, so it ran again within the same execution.
    assert_eq!(scratch.trail(), ["i-a", "i-b", "i-c", "i-c", "i-d", "i-e"]);
    let children = children(&scratch, &parent_id);
    assert_eq!(children.len(), 5, "one child per target: {children:?}");
    assert!(children.iter().all(|(_, status)| *status == Status::Success), "{children:?}");
}

/// Targets by resource group: Resource Groups' ListGroupResources (emulated in the harness's
/// moto server, which lacks it) lists the group's tag query's resources.
#[test]
fn resource_group_targets_are_resolved_through_the_groups_query() {
    let Some(moto) = moto("resource_group_targets_are_resolved_through_the_groups_query") else { return };
    let scratch = Scratch::new("fan-group");
    let tag = format!("group-{}", std::process::id());
    let ids = tagged_instances(moto, "Fleet", &tag, 2);
    moto.boto3(&format!(
        "import json\nquery = {{'ResourceTypeFilters': ['AWS::EC2::Instance'], 'TagFilters': [{{'Key': 'Fleet', 'Values': ['{tag}']}}]}}\n\
         boto3.client('resource-groups').create_group(Name='{tag}', ResourceQuery={{'Type': 'TAG_FILTERS_1_0', 'Query': json.dumps(query)}})\n\
         emit(0)"
    ));
    assert_eq!(resolved_targets(moto, &scratch, &format!("Key=ResourceGroup,Values={tag}")), ids);
    assert!(moto.requests().iter().any(|request| request["path"] == "/list-group-resources"));
}

/// `aws:executeAutomation` with `Targets` runs its child over them at the rate its
/// `MaxConcurrency` and `MaxErrors` ask, as a child run over targets linked to the step.
#[test]
fn execute_automation_with_targets_runs_a_child_per_target() {
    let scratch = Scratch::new("fan-step");
    scratch.runbook("child.yaml", CHILD);
    let path = scratch.runbook(
        "parent.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - name: fleet\n    action: aws:executeAutomation\n    inputs:\n      \
         DocumentName: child\n      TargetParameterName: InstanceId\n      \
         Targets: [{Key: ParameterValues, Values: [i-1, i-bad, i-3, i-4]}]\n      MaxConcurrency: '1'\n      MaxErrors: '0'\n",
    );
    let state = scratch.state();
    let output = runbook(&["run", &path, "--state-dir", &state, "--format", "json"]);
    assert_eq!(output.code, 4, "{}", output.stderr);
    let events = json_lines(&output.stdout);
    let targets: Vec<(String, String)> = events
        .iter()
        .filter(|event| event["event"] == "target_finished")
        .map(|event| (event["target"].as_str().unwrap().to_owned(), event["status"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(targets, [("i-1".to_owned(), "Success".to_owned()), ("i-bad".to_owned(), "Failed".to_owned())]);
    let step = events.iter().find(|event| event["event"] == "step_finished" && event["step"] == "fleet").unwrap();
    assert_eq!(step["status"], "Failed");
    assert!(step["error"].as_str().unwrap().contains("ended Failed"), "{step}");
}

/// Target maps: each child gets its own map's values, and a parameter one map sets but another
/// does not is that other child's default, never the first map's value.
#[test]
fn each_target_map_is_its_own_childs_parameters() {
    let scratch = Scratch::new("fan-maps");
    let path = scratch.runbook(
        "modes.yaml",
        "schemaVersion: '0.3'\nparameters:\n  InstanceId: {type: String}\n  Mode: {type: String, default: normal}\n\
         mainSteps:\n  - name: work\n    action: aws:sleep\n    inputs: {Duration: PT0S}\n",
    );
    let maps = scratch.runbook("maps.yaml", "- {InstanceId: [i-1], Mode: [fast]}\n- {InstanceId: [i-2]}\n");
    let state = scratch.state();
    let output = runbook(&["run", &path, "--state-dir", &state, "--target-maps", &maps, "--format", "json"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let journal = Journal::open(std::path::Path::new(&state)).unwrap();
    let parent_id = parent(&output)["execution_id"].as_str().unwrap().to_owned();
    let mut seen: Vec<(String, Value)> = journal
        .children(&parent_id)
        .unwrap()
        .into_iter()
        .map(|child| (child.parameters["InstanceId"].as_str().unwrap().to_owned(), child.parameters["Mode"].clone()))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, [("i-1".to_owned(), Value::from("fast")), ("i-2".to_owned(), Value::Null)]);
    assert_eq!(journal.execution(&parent_id).unwrap().parameters, serde_json::json!({}), "no target's value");
}

/// A runbook that waits for a person is refused over targets (before any child starts).
#[test]
fn a_runbook_that_waits_for_a_person_is_refused_over_targets() {
    let scratch = Scratch::new("fan-approve");
    let path = scratch.runbook(
        "ask.yaml",
        "schemaVersion: '0.3'\nparameters:\n  InstanceId: {type: String}\nmainSteps:\n  - name: ask\n    \
         action: aws:approve\n    inputs: {Approvers: [ops]}\n",
    );
    let state = scratch.state();
    let output = over(&scratch, &path, "InstanceId", &["i-1", "i-2"], &[]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("waits for a person"), "{}", output.stderr);
    let listed = runbook(&["executions", "list", "--state-dir", &state]);
    assert!(!listed.stdout.contains("ask.yaml"), "nothing recorded: {}", listed.stdout);
}

/// A secret target parameter: no value names its target in the output or the journal's
/// timeline, and the run's record of its targets keeps none.
#[test]
fn secret_target_values_never_name_their_targets() {
    let scratch = Scratch::new("fan-secret");
    let path = scratch.runbook(
        "secret.yaml",
        "schemaVersion: '0.3'\nparameters:\n  Token: {type: String, x-secret: true}\nmainSteps:\n  - name: work\n    \
         action: aws:sleep\n    inputs: {Duration: PT0S}\n",
    );
    let state = scratch.state();
    let output = over(&scratch, &path, "Token", &["canary-one-7f3a", "canary-two-7f3a"], &["--format", "json"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(!output.stdout.contains("canary"), "{}", output.stdout);
    let parent_id = parent(&output)["execution_id"].as_str().unwrap().to_owned();
    let shown = runbook(&["executions", "show", &parent_id, "--state-dir", &state, "--format", "json"]);
    assert!(!shown.stdout.contains("canary"), "{}", shown.stdout);
}

#[test]
fn on_a_terminal_a_run_over_targets_draws_a_progress_bar_and_elsewhere_plain_lines() {
    let scratch = Scratch::new("fan-bar");
    let path = scratch.runbook("child.yaml", CHILD);
    let targets = "Key=ParameterValues,Values=i-slow-1,i-slow-2,i-slow-3,i-bad-4,i-5,i-6";
    let args =
        ["--target-parameter-name", "InstanceId", "--targets", targets, "--max-concurrency", "2", "--max-errors", "3"];
    let shown = runbook_tests::run_on_a_terminal(std::path::Path::new(&path), "fan-bar", &args, b"");
    // Drawn from the start (how often it is drawn again depends on the clock, so no more is
    // asked of it).
    assert!(shown.contains("targets [") && shown.contains("/6 done"), "no bar: {shown}");
    // The lines say the same, and stay when the bar is gone.
    assert!(shown.contains("target i-bad-4: Failed"), "{shown}");
    let plain = fleet(&scratch, &["i-1", "i-2"], &[]);
    assert!(!plain.stdout.contains("targets [") && !plain.stderr.contains("targets ["), "{}", plain.stderr);
}
