//! `runbook run --dry-run`: branches on unknown values explore every choice, mocks decide
//! them, failure paths are explored, nothing is written to the journal, and every corpus
//! runbook dry-runs with no parameters supplied.

use std::collections::BTreeMap;

use runbook::exec::{self, dry_run};
use runbook::plan;
use runbook_tests::{Scratch, corpus_dir, project_root, runbook};
use serde_json::{Value, json};

const RUNBOOK: &str = "schemaVersion: '0.3'
parameters:
  Mode: {type: String}
mainSteps:
  - name: look
    action: aws:executeScript
    inputs: {Runtime: python3.11, Handler: h, Script: 'def h(e, c): return 1'}
    outputs:
      - {Name: State, Selector: $.Payload.state, Type: String}
  - name: decide
    action: aws:branch
    inputs:
      Choices:
        - {NextStep: stop, Variable: '{{ look.State }}', StringEquals: running}
        - {NextStep: report, Variable: '{{ Mode }}', StringEquals: audit}
      Default: report
  - name: stop
    action: aws:sleep
    onFailure: step:report
    inputs: {Duration: PT1S}
  - name: report
    action: aws:pause
    isEnd: true
    inputs: {}
";

fn dry(scratch: &Scratch, args: &[&str]) -> Value {
    let path = scratch.runbook("dry.yaml", RUNBOOK);
    let mut all = vec!["run", &path, "--dry-run", "--format", "json"];
    all.extend_from_slice(args);
    let output = runbook(&all);
    assert_eq!(output.code, 0, "{}", output.stderr);
    serde_json::from_str(&output.stdout).unwrap()
}

/// Every root-to-end path as `step[label] step ... => status`.
fn paths(tree: &Value) -> Vec<String> {
    fn walk(tree: &Value, node: usize, prefix: String, out: &mut Vec<String>) {
        let node = &tree["nodes"][node];
        for link in node["next"].as_array().unwrap() {
            let here = format!("{prefix}{}[{}] ", node["step"].as_str().unwrap(), link["label"].as_str().unwrap());
            match link["to"].get("node") {
                Some(next) => walk(tree, next.as_u64().unwrap() as usize, here, out),
                None => out.push(format!("{here}=> {}", link["to"]["end"]["status"].as_str().unwrap())),
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, tree["root"].as_u64().unwrap() as usize, String::new(), &mut out);
    out
}

#[test]
fn unknown_values_explore_every_choice_and_failure_paths() {
    let scratch = Scratch::new("dry-unknown");
    let result = dry(&scratch, &[]);
    let tree = &result["tree"];
    assert_eq!(tree["unknown_parameters"], json!(["Mode"]));
    let found = paths(tree);
    assert_eq!(
        found,
        [
            "look[next] decide[choice[0]] stop[next] report[end] => Success",
            "look[next] decide[choice[0]] stop[next] report[on_failure] => Failed",
            "look[next] decide[choice[0]] stop[on_failure] report[end] => Failed",
            "look[next] decide[choice[0]] stop[on_failure] report[on_failure] => Failed",
            "look[next] decide[choice[1]] report[end] => Success",
            "look[next] decide[choice[1]] report[on_failure] => Failed",
            "look[next] decide[default] report[end] => Success",
            "look[next] decide[default] report[on_failure] => Failed",
            "look[next] decide[on_failure] => Failed",
            "look[on_failure] => Failed",
        ]
    );
    assert_eq!(tree["paths"], json!(found.len()));
    // The journal was not even created.
    assert!(!std::path::Path::new(&scratch.state()).exists());
}

#[test]
fn mocks_and_parameters_decide_branches() {
    let scratch = Scratch::new("dry-mock");
    let result = dry(&scratch, &["--mock", "look.State=\"stopped\"", "-p", "Mode=audit"]);
    let found = paths(&result["tree"]);
    assert!(found.iter().all(|path| !path.contains("choice[0]") && !path.contains("default")), "{found:?}");
    assert!(found.contains(&"look[next] decide[choice[1]] report[end] => Success".to_owned()), "{found:?}");

    let mocks = scratch.runbook("mocks.yaml", "look:\n  State: running\n");
    let result = dry(&scratch, &["--mocks", &mocks]);
    let found = paths(&result["tree"]);
    assert!(found.iter().any(|path| path.starts_with("look[next] decide[choice[0]] stop")), "{found:?}");
    assert!(found.iter().all(|path| !path.contains("choice[1]")), "{found:?}");
}

#[test]
fn a_recorded_dry_run_writes_only_its_own_record() {
    let scratch = Scratch::new("dry-record");
    let state = scratch.state();
    dry(&scratch, &["--record", "--state-dir", &state]);
    let list = runbook(&["executions", "list", "--state-dir", &state, "--format", "json"]);
    let list: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["dry_run"], json!(true));
    let shown =
        runbook(&["executions", "show", list[0]["id"].as_str().unwrap(), "--state-dir", &state, "--format", "json"]);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["attempts"], json!([]));
}

#[test]
fn the_example_dry_runs_deterministically_in_text() {
    let example = project_root().join("examples/local-maintenance.yaml");
    let first = runbook(&["run", example.to_str().unwrap(), "--dry-run"]);
    let second = runbook(&["run", example.to_str().unwrap(), "--dry-run"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.stdout, second.stdout);
    assert!(first.stdout.contains("possible paths"), "{}", first.stdout);
    assert!(first.stdout.contains("● rollback (aws:executeScript)"), "{}", first.stdout);
}

#[test]
fn every_corpus_runbook_dry_runs_without_parameters() {
    let Some(dir) = corpus_dir() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut total_paths: u64 = 0;
    let mut nodes = 0;
    let mut unpreviewable: BTreeMap<String, usize> = BTreeMap::new();
    let mut unknown_parameters = 0;
    for path in &files {
        let prepared = match exec::prepare(path, Vec::new(), false) {
            Ok(prepared) => prepared,
            Err(error) => panic!("{}: {error}", path.display()),
        };
        let planned = plan::plan(&prepared.runbook);
        let bound = plan::values::bind(&prepared.runbook, &prepared.validated.parameters, &plan::values::NothingKnown);
        let tree = dry_run::dry_run(&planned, &bound, &Default::default());
        assert!(tree.paths >= 1, "{}: no path", path.display());
        total_paths = total_paths.saturating_add(tree.paths);
        nodes += tree.nodes.len();
        unknown_parameters += tree.unknown_parameters.len();
        for item in &tree.unpreviewable {
            *unpreviewable.entry(format!("{}: {}", item.action, item.reason)).or_default() += 1;
        }
        // The text form renders too, and the JSON form is written with its keys sorted, as a
        // value would have them.
        let mut text = Vec::new();
        dry_run::write_text(&tree, "x", &mut text).unwrap();
        assert!(!text.is_empty());
        let mut written = Vec::new();
        dry_run::write_json(&tree, "x", &mut written).unwrap();
        let value = json!({ "runbook": "x", "tree": serde_json::to_value(&tree).unwrap() });
        assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string_pretty(&value).unwrap());
    }
    eprintln!(
        "{} runbooks dry-run: {total_paths} paths, {nodes} nodes, {unknown_parameters} unknown parameters",
        files.len()
    );
    for (what, count) in &unpreviewable {
        eprintln!("  not previewable ({count}): {what}");
    }
    assert_eq!(files.len(), 497);
}

/// A path as long as the runbook is explored in a loop, not by recursion (which needed a
/// thread with 64 KiB of stack per step): 20,000 steps, each of which can fail, on a thread
/// with a 256 KiB stack. Every step is a node, and the budget of nodes does not cut the one
/// path short.
#[test]
fn a_long_chain_is_explored_whole_on_a_small_stack() {
    const STEPS: usize = 20_000;
    let mut text = String::from("schemaVersion: '0.3'\nmainSteps:\n");
    for i in 0..STEPS {
        text.push_str(&format!("  - name: s{i}\n    action: aws:sleep\n    inputs: {{Duration: PT0S}}\n"));
    }
    let loaded = runbook::document::load("chain.yaml".into(), text.into_bytes(), None);
    let validated = runbook::validate::validate(loaded, &Default::default());
    let runbook = validated.runbook.as_ref().unwrap();
    let planned = plan::plan(runbook);
    let bound = plan::values::bind(runbook, &validated.parameters, &plan::values::NothingKnown);
    let tree = std::thread::scope(|scope| {
        let explore = || dry_run::dry_run(&planned, &bound, &Default::default());
        std::thread::Builder::new().stack_size(256 * 1024).spawn_scoped(scope, explore).unwrap().join().unwrap()
    });
    assert_eq!(tree.nodes.len(), STEPS);
    assert!(!tree.budget_spent);
    // Each step's failure aborts: one path ends at each step, and one runs to the end.
    assert_eq!(tree.paths, STEPS as u64 + 1);
    let root = &tree.nodes[tree.root.unwrap()];
    assert_eq!(root.step(), "s0");
}
