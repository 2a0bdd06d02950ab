//! The engine's process and the scripts it starts: SIGTERM and SIGHUP cancel like Ctrl-C, a
//! second signal stops at once, and on every exit, SIGKILL included, no script (nor what it
//! started) outlives the engine; the journal says what happened.

use std::process::{Child, Command};

use runbook_tests::{Scratch, json_lines, process_alive, run_process, runbook, wait_until};
use serde_json::{Value, json};

/// A step whose script starts a grandchild (`sleep 300`), records `NAME PID GRANDCHILD` in the
/// trail, waits for `<trail>.<NAME>.go`, then leaves `<trail>.<NAME>.effect` behind.
fn blocking(name: &str, extra: &str) -> String {
    format!(
        r#"  - name: {name}
    action: aws:executeScript
{extra}    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {{Trail: '{{{{ Trail }}}}', Name: {name}}}
      Script: |
        import os, subprocess, time
        def h(e, c):
            grandchild = subprocess.Popen(['sleep', '300'])
            with open(e['Trail'], 'a') as trail:
                trail.write('%s %d %d\n' % (e['Name'], os.getpid(), grandchild.pid))
            base = e['Trail'] + '.' + e['Name']
            while not os.path.exists(base + '.go'):
                time.sleep(0.05)
            open(base + '.effect', 'w').write('done')
            return 'ok'
"#
    )
}

fn doc(steps: &[String]) -> String {
    format!("schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\nmainSteps:\n{}", steps.concat())
}

/// The run's `$TMPDIR`, inside the scratch directory so a test can look at what is left there.
fn tmpdir(scratch: &Scratch) -> std::path::PathBuf {
    let dir = scratch.dir.join("tmp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spawn(scratch: &Scratch, path: &str) -> Child {
    run_process(scratch, path, &[]).env("TMPDIR", tmpdir(scratch)).spawn().unwrap()
}

/// The pids a step's script recorded: its own and its grandchild's.
fn pids(scratch: &Scratch, step: &str) -> Option<(u32, u32)> {
    scratch.trail().iter().find_map(|line| {
        let mut words = line.split(' ');
        if words.next() != Some(step) {
            return None;
        }
        Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
    })
}

fn wait_for_step(scratch: &Scratch, step: &str) -> (u32, u32) {
    wait_until(&format!("step {step} runs"), || pids(scratch, step).is_some());
    pids(scratch, step).unwrap()
}

fn signal(pid: u32, name: &str) {
    assert!(Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap().success());
}

fn show(scratch: &Scratch, execution_id: &str) -> Value {
    let state = scratch.state();
    let shown = runbook(&["executions", "show", execution_id, "--state-dir", &state, "--format", "json"]);
    serde_json::from_str(&shown.stdout).unwrap_or_else(|_| panic!("{}{}", shown.stdout, shown.stderr))
}

fn started_id(stdout: &str) -> String {
    let events = json_lines(stdout);
    let started = events.iter().find(|e| e["event"] == "execution_started").expect("the run started");
    started["execution_id"].as_str().unwrap().to_owned()
}

#[test]
fn r_a_script_does_not_outlive_an_engine_killed_with_sigkill() {
    let scratch = Scratch::new("sigkill-orphan");
    let path = scratch.runbook("runbook.yaml", &doc(&[blocking("b", "    x-idempotent: true\n")]));
    let mut engine = spawn(&scratch, &path);
    let (script, grandchild) = wait_for_step(&scratch, "b");
    engine.kill().unwrap();
    engine.wait().unwrap();
    wait_until("the script and what it started die with the engine", || {
        !process_alive(script) && !process_alive(grandchild)
    });
    // Had the script lived on, it would take effect once told to go.
    std::fs::write(format!("{}.b.go", scratch.trail_path()), "").unwrap();
    assert!(!std::path::Path::new(&format!("{}.b.effect", scratch.trail_path())).exists());
    // Nothing of the killed attempt is left in $TMPDIR: scripts never touch the disk.
    let left: Vec<_> = std::fs::read_dir(tmpdir(&scratch)).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind in $TMPDIR: {left:?}");
}

#[test]
fn r_sigterm_and_sighup_cancel_like_ctrl_c() {
    for name in ["TERM", "HUP"] {
        let scratch = Scratch::new(&format!("signal-{name}"));
        // A cancel path may run scripts (not sleeps, V9).
        let cleanup = "  - name: cleanup\n    action: aws:executeScript\n    inputs: {Runtime: python3.11, Handler: h, \
                       Script: \"def h(e, c):\\n  return 1\"}\n";
        let path =
            scratch.runbook("runbook.yaml", &doc(&[blocking("b", "    onCancel: step:cleanup\n"), cleanup.to_owned()]));
        let engine = spawn(&scratch, &path);
        let (script, grandchild) = wait_for_step(&scratch, "b");
        signal(engine.id(), name);
        let output = engine.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(6), "SIG{name}: {}", String::from_utf8_lossy(&output.stderr));
        let finished = json_lines(&stdout).into_iter().find(|e| e["event"] == "execution_finished").unwrap();
        assert_eq!(finished["status"], "Cancelled", "SIG{name}");
        let shown = show(&scratch, &started_id(&stdout));
        assert_eq!(shown["execution"]["status"], "Cancelled");
        let steps: Vec<_> =
            shown["steps"].as_array().unwrap().iter().map(|s| (s["step"].clone(), s["status"].clone())).collect();
        assert_eq!(steps, [(json!("b"), json!("Cancelled")), (json!("cleanup"), json!("Success"))], "SIG{name}");
        assert!(!process_alive(script) && !process_alive(grandchild), "SIG{name}: the script outlived its step");
    }
}

#[test]
fn r_a_second_ctrl_c_stops_at_once_and_the_journal_says_cancelled() {
    let scratch = Scratch::new("second-ctrl-c");
    let path = scratch.runbook(
        "runbook.yaml",
        &doc(&[blocking("b", "    onCancel: step:cleanup\n"), blocking("cleanup", ""), blocking("never", "")]),
    );
    let engine = spawn(&scratch, &path);
    let (b_script, b_grandchild) = wait_for_step(&scratch, "b");
    signal(engine.id(), "INT");
    // The cancel path runs, and blocks; a second Ctrl-C stops it.
    let (cleanup_script, cleanup_grandchild) = wait_for_step(&scratch, "cleanup");
    signal(engine.id(), "INT");
    let output = engine.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", String::from_utf8_lossy(&output.stderr));
    let shown = show(&scratch, &started_id(&String::from_utf8_lossy(&output.stdout)));
    assert_eq!(shown["execution"]["status"], "Cancelled");
    assert!(shown["execution"]["ended_at"].is_string(), "{shown}");
    let attempts: Vec<_> = shown["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["step"].clone(), a["status"].clone(), a["ended_at"].is_string()))
        .collect();
    assert_eq!(attempts, [(json!("b"), json!("Cancelled"), true), (json!("cleanup"), json!("Cancelled"), true)]);
    for pid in [b_script, b_grandchild, cleanup_script, cleanup_grandchild] {
        assert!(!process_alive(pid), "process {pid} outlived the engine");
    }
}

#[test]
fn r_an_attached_script_runs_and_leaves_no_work_files_beside_the_runbook_or_in_tmp() {
    let scratch = Scratch::new("attachment");
    let dir = scratch.dir.join("book");
    std::fs::create_dir_all(&dir).unwrap();
    let helper = "def h(events, context):\n    return events['N'] * 2\n";
    std::fs::write(dir.join("helper.py"), helper).unwrap();
    let path = dir.join("runbook.yaml");
    let checksum = runbook::exec::content_hash(helper.as_bytes());
    std::fs::write(
        &path,
        format!("schemaVersion: '0.3'\nfiles:\n  helper.py:\n    checksums: {{sha256: {checksum}}}\nmainSteps:\n  - name: a\n    action: aws:executeScript\n    inputs:\n      \
         Runtime: python3.11\n      Handler: helper.h\n      Attachment: helper.py\n      InputPayload: {{N: 21}}\n    \
         outputs:\n      - {{Name: Doubled, Selector: $.Payload, Type: Integer}}\n"
        ),
    )
    .unwrap();
    let state = scratch.state();
    let output = Command::new(runbook_tests::binary())
        .args(["run", path.to_str().unwrap(), "--state-dir", &state, "--format", "json"])
        .env("TMPDIR", tmpdir(&scratch))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(json_lines(&stdout).iter().any(|e| e["outputs"]["Doubled"] == 42), "{stdout}");
    let mut beside: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["helper.py", "runbook.yaml"]);
    assert_eq!(std::fs::read_dir(tmpdir(&scratch)).unwrap().count(), 0, "work files left in $TMPDIR");
}

#[test]
fn r_script_output_is_shown_as_it_comes_and_executions_show_prints_a_steps_log() {
    use std::io::BufRead;
    let scratch = Scratch::new("live-output");
    let go = scratch.dir.join("go");
    let path = scratch.runbook(
        "runbook.yaml",
        &format!(
            "schemaVersion: '0.3'\nmainSteps:\n  - name: s\n    action: aws:executeScript\n    inputs:\n      \
             Runtime: python3.11\n      Handler: h\n      InputPayload: {{Go: '{}'}}\n      Script: |\n        \
             import os, sys, time\n        def h(e, c):\n            print('waiting for go')\n            \
             while not os.path.exists(e['Go']): time.sleep(0.05)\n            print('done', file=sys.stderr)\n            \
             for i in range(30): print('more', i)\n            return 1\n",
            go.display()
        ),
    );
    let state = scratch.state();
    let mut child = Command::new(runbook_tests::binary())
        .args(["run", &path, "--state-dir", &state])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // The script waits for `go`, which is only made once its first line is seen: a log
    // shown at the end would never come.
    for line in lines.by_ref() {
        if line.unwrap().ends_with("| waiting for go") {
            break;
        }
    }
    std::fs::write(&go, "").unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{rest:#?}");
    assert!(rest.iter().any(|line| line.ends_with("! done")), "{rest:#?}");
    assert!(rest.iter().any(|line| line.ends_with("| more 29")), "{rest:#?}");
    // Shown once: not again under the finished step.
    assert_eq!(rest.iter().filter(|line| line.ends_with("| more 29")).count(), 1, "{rest:#?}");
    let logs = runbook_tests::runbook(&["executions", "show", "last", "--state-dir", &state, "--logs", "s"]);
    assert!(logs.stdout.starts_with("== s attempt 1 (Success)\nwaiting for go\n"), "{}", logs.stdout);
    assert!(logs.stdout.contains("more 29") && logs.stdout.contains("done"), "{}", logs.stdout);
}
