//! The journal contended or damaged: two processes racing for one new idempotency key, journal
//! errors classed by their type (environment, not "resume refused"), a damaged status refused
//! rather than read as success, and attempts of a killed engine closed when the execution goes
//! on, with its lock file gone once it ends.

use std::process::{Command, Stdio};

use runbook::exec::{self, Engine, Interrupt};
use runbook::journal::{self, Journal, JournalRead, JournalWrite, Locks};
use runbook_tests::{
    Scratch, json_lines, kill_when_running, run_process, runbook, script_step, trail_payload, wait_until,
};
use serde_json::{Value, json};

/// A script step that appends its name to the trail and, with `wait`, then waits for
/// `<trail>.go`.
fn step(name: &str, wait: bool, extra: &[&str]) -> String {
    let wait = if wait { "True" } else { "False" };
    let script = format!(
        "import os, time\\ndef h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  \
         while {wait} and not os.path.exists(e['Trail'] + '.go'): time.sleep(0.05)\\n  return e['Name']"
    );
    script_step(name, extra, &trail_payload(name), &script)
}

fn doc(steps: &[String]) -> String {
    format!("schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\nmainSteps:\n{}", steps.concat())
}

fn run(scratch: &Scratch, path: &str, extra: &[&str]) -> runbook_tests::Output {
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    let mut args = vec!["run", path, "--state-dir", &state, "-p", &trail, "--format", "json"];
    args.extend_from_slice(extra);
    runbook(&args)
}

/// Runs `path` `times` times, each to success, and returns the execution ids.
fn run_times(scratch: &Scratch, path: &str, times: usize) -> Vec<String> {
    (0..times)
        .map(|_| {
            let output = run(scratch, path, &[]);
            assert_eq!(output.code, 0, "{}", output.stderr);
            json_lines(&output.stdout)[0]["execution_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn sqlite(scratch: &Scratch, statement: &str) {
    let database = format!("{}/journal.sqlite", scratch.state());
    let program =
        format!("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute({statement:?})\nc.commit()");
    assert!(Command::new("python3").args(["-c", &program, &database]).status().unwrap().success());
}

#[test]
fn r_two_processes_with_the_same_new_key_one_drives_and_the_other_says_who() {
    let scratch = Scratch::new("key-race");
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", true, &[])]));
    let spawn = || run_process(&scratch, &path, &["--idempotency-key", "deploy-7"]).spawn().unwrap();
    // Started together: both find no execution with the key, both may try to record one.
    let (mut first, mut second) = (spawn(), spawn());
    let mut loser = None;
    wait_until("one of the two gives up", || {
        for (index, child) in [&mut first, &mut second].into_iter().enumerate() {
            if loser.is_none() && child.try_wait().unwrap().is_some() {
                loser = Some(index);
            }
        }
        loser.is_some()
    });
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let (loser, winner) = if loser == Some(0) { (first, second) } else { (second, first) };
    let winner = winner.wait_with_output().unwrap();
    let loser = loser.wait_with_output().unwrap();
    assert!(winner.status.success(), "{}", String::from_utf8_lossy(&winner.stderr));
    let winner_id = json_lines(&String::from_utf8_lossy(&winner.stdout))
        .into_iter()
        .find(|e| e["event"] == "execution_started")
        .unwrap()["execution_id"]
        .clone();
    let stderr = String::from_utf8_lossy(&loser.stderr);
    // With --format json an error is JSON on stdout: show both when it is not the refusal.
    assert_eq!(loser.status.code(), Some(8), "{stderr}{}", String::from_utf8_lossy(&loser.stdout));
    assert!(
        stderr.contains(&format!("execution {} is being driven by another process", winner_id.as_str().unwrap())),
        "{stderr}"
    );
    assert!(!stderr.contains("UNIQUE"), "{stderr}");
    assert_eq!(scratch.trail(), ["a"]);
}

/// A journal whose `find_by_key` misses once (unless `missed` starts true), as it does for
/// the loser of a race: it then records its execution, meets the winner's key, and must say
/// who drives it. It logs its attempt writes, as `started:STEP`, `finished:STEP` and
/// `done:STEP`.
struct RacingJournal<'a> {
    inner: &'a Journal,
    missed: std::cell::Cell<bool>,
    writes: std::cell::RefCell<Vec<String>>,
}

impl JournalRead for RacingJournal<'_> {
    fn execution(&self, id: &str) -> journal::Result<journal::Execution> {
        self.inner.execution(id)
    }
    fn find_by_key(&self, key: &str) -> journal::Result<Option<journal::Execution>> {
        if !self.missed.replace(true) {
            return Ok(None);
        }
        self.inner.find_by_key(key)
    }
    fn executions(&self, limit: u32) -> journal::Result<Vec<journal::Execution>> {
        self.inner.executions(limit)
    }
    fn children(&self, id: &str) -> journal::Result<Vec<journal::Execution>> {
        self.inner.children(id)
    }
    fn attempts(&self, id: &str) -> journal::Result<Vec<journal::Attempt>> {
        self.inner.attempts(id)
    }
    fn steps(&self, id: &str) -> journal::Result<Vec<journal::StepRecord>> {
        self.inner.steps(id)
    }
    fn events(&self, id: &str) -> journal::Result<Vec<journal::Event>> {
        self.inner.events(id)
    }
    fn decision(&self, id: &str, step: &str, iteration: u32) -> journal::Result<Option<journal::Decision>> {
        self.inner.decision(id, step, iteration)
    }
    fn waiting_on(&self, id: &str) -> journal::Result<Option<journal::WaitingOn>> {
        self.inner.waiting_on(id)
    }
}

impl JournalWrite for RacingJournal<'_> {
    fn create_execution(&self, execution: &journal::Execution, detail: &serde_json::Value) -> journal::Result<()> {
        self.inner.create_execution(execution, detail)
    }
    fn set_status(
        &self,
        id: &str,
        status: journal::Status,
        ended: bool,
        outputs: Option<&Value>,
        error: Option<&str>,
    ) -> journal::Result<()> {
        self.inner.set_status(id, status, ended, outputs, error)
    }
    fn attempt_started(&self, id: &str, attempt: &journal::Attempt) -> journal::Result<()> {
        self.writes.borrow_mut().push(format!("started:{}", attempt.step));
        self.inner.attempt_started(id, attempt)
    }
    fn attempt_finished(&self, id: &str, a: &journal::Attempt, s: Option<&journal::StepRecord>) -> journal::Result<()> {
        self.writes.borrow_mut().push(format!("finished:{}", a.step));
        self.inner.attempt_finished(id, a, s)
    }
    fn attempt_done(&self, id: &str, a: &journal::Attempt, s: Option<&journal::StepRecord>) -> journal::Result<()> {
        self.writes.borrow_mut().push(format!("done:{}", a.step));
        self.inner.attempt_done(id, a, s)
    }
    fn step_finished(&self, id: &str, step: &journal::StepRecord) -> journal::Result<()> {
        self.inner.step_finished(id, step)
    }
    fn event(&self, id: &str, kind: journal::EventKind, step: Option<&str>, detail: &Value) -> journal::Result<()> {
        self.inner.event(id, kind, step, detail)
    }
    fn decide(&self, id: &str, decision: &journal::Decision) -> journal::Result<bool> {
        self.inner.decide(id, decision)
    }
}

#[tokio::test]
async fn r_the_loser_of_a_key_race_names_the_execution_that_won() {
    let scratch = Scratch::new("key-race-seam");
    let path = scratch.runbook(
        "runbook.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n",
    );
    let prepared = exec::prepare(std::path::Path::new(&path), Vec::new(), true).map_err(|e| e.to_string()).unwrap();
    let plan = runbook::plan::plan(&prepared.runbook);
    let request = prepared.request(&plan);
    let store = journal::Store::Local(Journal::open(std::path::Path::new(&scratch.state())).unwrap());
    let journal::Store::Local(journal) = &store else { unreachable!("opened locally") };
    let config = exec::Config { idempotency_key: Some("k".into()), ..exec::Config::default() };
    let (_cancel, cancelled) = tokio::sync::watch::channel(Interrupt::None);
    // The winner: recorded the key first, and still drives its execution.
    let winner = exec::run(
        &request,
        &exec::Config { idempotency_key: Some("k".into()), ..exec::Config::default() },
        &Engine::new(&store, &exec::Silent),
        cancelled.clone(),
    )
    .await
    .unwrap();
    sqlite(&scratch, &format!("UPDATE executions SET status = 'InProgress' WHERE id = '{}'", winner.execution_id));
    let _held = journal.acquire(&winner.execution_id).unwrap();
    let racing = RacingJournal { inner: journal, missed: Default::default(), writes: Default::default() };
    let engine = Engine { journal: &racing, ..Engine::new(&store, &exec::Silent) };
    match exec::run(&request, &config, &engine, cancelled).await {
        Err(exec::Error::Journal(journal::Error::Locked { execution_id, .. })) => {
            assert_eq!(execution_id, winner.execution_id)
        }
        other => panic!("expected the winner's execution to be named, got {other:?}"),
    }
}

/// A step whose action changes nothing (branch, updateVariable, sleep, a read-only call) is
/// journaled once, after it ran, in one commit; a step with effects keeps write-ahead.
#[tokio::test]
async fn r_a_pure_step_is_journaled_once_after_it_ran() {
    let scratch = Scratch::new("pure-once");
    let script = "def h(e, c):\\n  return 1";
    let path = scratch.runbook(
        "runbook.yaml",
        &format!(
            "schemaVersion: '0.3'\nvariables:\n  Count: {{type: Integer, default: 0}}\nmainSteps:\n  \
             - {{name: add, action: aws:updateVariable, inputs: {{Name: 'variable:Count', Value: 1}}}}\n  \
             - {{name: pick, action: aws:branch, inputs: {{Choices: [{{NextStep: nap, Variable: '{{{{ variable:Count }}}}', NumericEquals: 1}}], Default: nap}}}}\n  \
             - {{name: nap, action: aws:sleep, inputs: {{Duration: PT0S}}}}\n{}",
            script_step("work", &[], "", script)
        ),
    );
    let prepared = exec::prepare(std::path::Path::new(&path), Vec::new(), true).map_err(|e| e.to_string()).unwrap();
    let plan = runbook::plan::plan(&prepared.runbook);
    let request = prepared.request(&plan);
    let store = journal::Store::Local(Journal::open(std::path::Path::new(&scratch.state())).unwrap());
    let journal::Store::Local(journal) = &store else { unreachable!("opened locally") };
    let logging = RacingJournal { inner: journal, missed: true.into(), writes: Default::default() };
    let engine = Engine { journal: &logging, ..Engine::new(&store, &exec::Silent) };
    let (_cancel, cancelled) = tokio::sync::watch::channel(Interrupt::None);
    let finished = exec::run(&request, &exec::Config::default(), &engine, cancelled).await.unwrap();
    assert_eq!(finished.status, journal::Status::Success);
    assert_eq!(
        logging.writes.borrow().as_slice(),
        ["done:add", "done:pick", "done:nap", "started:work", "finished:work"]
    );
    // Each pure attempt is whole in the journal: inputs, outputs, start and end.
    let attempts = journal.attempts(&finished.execution_id).unwrap();
    assert_eq!(attempts.len(), 4);
    for attempt in &attempts {
        assert_eq!(attempt.status, journal::Status::Success, "{attempt:?}");
        assert!(attempt.ended_at.is_some() && attempt.outputs.is_some(), "{attempt:?}");
    }
    assert_eq!(attempts[0].inputs["Name"], "variable:Count");
    assert_eq!(journal.steps(&finished.execution_id).unwrap().len(), 4);
}

/// A pure step that runs long has its start journaled while it runs, so another reader sees
/// it; killed there, it simply runs again on resume.
#[test]
fn r_a_long_pure_step_shows_as_running_and_runs_again_after_a_kill() {
    let scratch = Scratch::new("pure-long");
    let path = scratch.runbook(
        "runbook.yaml",
        &doc(&[step("a", false, &[]), "  - {name: nap, action: aws:sleep, inputs: {Duration: PT30S}}\n".to_owned()]),
    );
    let mut engine = run_process(&scratch, &path, &[]).stderr(Stdio::null()).spawn().unwrap();
    let state = scratch.state();
    let shown = |id: &str| runbook(&["executions", "show", id, "--state-dir", &state]).stdout;
    wait_until("a runs", || scratch.trail().contains(&"a".to_owned()));
    let id = runbook_tests::only_execution_id(&scratch);
    wait_until("the sleep shows as started", || shown(&id).contains("nap attempt 1 started"));
    engine.kill().unwrap();
    engine.wait().unwrap();
    assert!(shown(&id).contains("never finished"), "{}", shown(&id));
    // Resumed without --rerun: a pure step may run again. A shorter sleep, by a parameter
    // would change the plan; the whole 30 s is not waited for: the resume is cancelled once
    // the sleep runs again.
    let mut resumed = Command::new(runbook_tests::binary())
        .args(["run", "--resume", &id, "--state-dir", &state, "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the sleep runs again", || {
        let shown: Value = serde_json::from_str(
            &runbook(&["executions", "show", &id, "--state-dir", &state, "--format", "json"]).stdout,
        )
        .unwrap_or_default();
        let naps: Vec<_> = shown["attempts"].as_array().into_iter().flatten().filter(|a| a["step"] == "nap").collect();
        naps.len() == 2 && naps[0]["status"] == "Interrupted" && naps[1]["status"] == "InProgress"
    });
    resumed.kill().unwrap();
    resumed.wait().unwrap();
    assert_eq!(scratch.trail(), ["a"], "step a, which has effects, ran once");
}

#[test]
fn r_journal_errors_are_environment_errors_not_refusals_or_usage() {
    // A `locks` path that is a file.
    let scratch = Scratch::new("locks-file");
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[])]));
    std::fs::create_dir_all(scratch.state()).unwrap();
    std::fs::write(format!("{}/locks", scratch.state()), "not a directory").unwrap();
    let output = run(&scratch, &path, &[]);
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.contains("locks"), "{}", output.stderr);

    // A damaged database: pages overwritten after the header.
    let scratch = Scratch::new("corrupt-page");
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[])]));
    let first = run(&scratch, &path, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let id = json_lines(&first.stdout)[0]["execution_id"].as_str().unwrap().to_owned();
    let database = format!("{}/journal.sqlite", scratch.state());
    // Fold the WAL into the file first, so the damage is where the rows are.
    let checkpoint =
        "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('PRAGMA wal_checkpoint(TRUNCATE)')";
    assert!(Command::new("python3").args(["-c", checkpoint, &database]).status().unwrap().success());
    let mut bytes = std::fs::read(&database).unwrap();
    for byte in bytes.iter_mut().skip(4096) {
        *byte = 0xa5;
    }
    std::fs::write(&database, bytes).unwrap();
    let state = scratch.state();
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state]);
    assert_eq!(shown.code, 3, "{}{}", shown.stdout, shown.stderr);
    let listed = runbook(&["executions", "list", "--state-dir", &state]);
    assert_eq!(listed.code, 3, "{}{}", listed.stdout, listed.stderr);
    let resumed = runbook(&["run", "--resume", &id, "--state-dir", &state]);
    assert_eq!(resumed.code, 3, "{}{}", resumed.stdout, resumed.stderr);

    // An execution the journal does not hold is the caller's mistake.
    let scratch = Scratch::new("no-such-execution");
    let state = scratch.state();
    let missing = runbook(&["executions", "show", "nope", "--state-dir", &state]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no execution nope"), "{}", missing.stderr);
}

#[test]
fn r_a_damaged_status_is_refused_on_resume_not_read_as_success() {
    let scratch = Scratch::new("damaged-status");
    let broken = script_step("b", &[], "", "def h(e, c):\\n  raise RuntimeError('b broke')");
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[]), broken, step("c", false, &[])]));
    // `b` fails and the run stops, resumable.
    let failed = run(&scratch, &path, &[]);
    assert_eq!(failed.code, 4, "{}", failed.stderr);
    let state = scratch.state();
    let id = json_lines(&failed.stdout)[0]["execution_id"].as_str().unwrap().to_owned();
    sqlite(&scratch, &format!("UPDATE steps SET status = 'Succes' WHERE execution_id = '{id}'"));
    let resumed = runbook(&["run", "--resume", &id, "--state-dir", &state, "--format", "json"]);
    assert_eq!(resumed.code, 3, "{}{}", resumed.stdout, resumed.stderr);
    assert!(resumed.stderr.contains("malformed value in steps.status: `Succes`"), "{}", resumed.stderr);
    assert!(!resumed.stdout.contains("execution_finished"), "{}", resumed.stdout);
}

#[test]
fn r_an_interrupted_attempt_is_closed_on_resume_and_the_lock_file_goes() {
    let scratch = Scratch::new("interrupted");
    let path =
        scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[]), step("b", true, &["x-idempotent: true"])]));
    let engine = run_process(&scratch, &path, &[]).stderr(Stdio::null()).spawn().unwrap();
    let id = kill_when_running(&scratch, engine, "b");
    let state = scratch.state();
    let before = runbook(&["executions", "show", &id, "--state-dir", &state]);
    assert!(
        before.stdout.contains("b attempt 1 started") && before.stdout.contains("never finished"),
        "{}",
        before.stdout
    );
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let resumed = runbook(&["run", "--resume", &id, "--state-dir", &state, "--format", "json"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(json_lines(&resumed.stdout).iter().any(|e| e["event"] == "attempt_interrupted" && e["step"] == "b"));
    let after = runbook(&["executions", "show", &id, "--state-dir", &state]);
    assert!(!after.stdout.contains("never finished"), "{}", after.stdout);
    assert!(after.stdout.contains("Interrupted b attempt 1 started"), "{}", after.stdout);
    let shown: Value =
        serde_json::from_str(&runbook(&["executions", "show", &id, "--state-dir", &state, "--format", "json"]).stdout)
            .unwrap();
    let b: Vec<_> = shown["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["step"] == "b")
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(b, [json!("Interrupted"), json!("Success")]);
    let journal = Journal::open(std::path::Path::new(&state)).unwrap();
    assert!(!journal.is_held(&id));
    assert!(
        !std::path::Path::new(&format!("{state}/locks/{id}.lock")).exists(),
        "the ended execution's lock file stays"
    );
}

#[test]
fn r_one_malformed_execution_row_does_not_hide_the_others_from_the_list() {
    let scratch = Scratch::new("malformed-row");
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[])]));
    let ids = run_times(&scratch, &path, 2);
    sqlite(&scratch, &format!("UPDATE executions SET status = 'Sucess' WHERE id = '{}'", ids[0]));
    let state = scratch.state();
    let listed = runbook(&["executions", "list", "--state-dir", &state]);
    assert_eq!(listed.code, 0, "{}{}", listed.stdout, listed.stderr);
    assert!(listed.stdout.contains(&ids[1]) && !listed.stdout.contains(&ids[0]), "{}", listed.stdout);
    assert!(
        listed.stderr.contains(&format!("execution {} could not be read", ids[0]))
            && listed.stderr.contains("executions.status"),
        "{}",
        listed.stderr
    );
    // Asked for by name, the damaged one is still an error, not a guess.
    let shown = runbook(&["executions", "show", &ids[0], "--state-dir", &state]);
    assert_eq!(shown.code, 3, "{}{}", shown.stdout, shown.stderr);
}

#[test]
fn r_at_rest_the_database_file_alone_holds_every_finished_execution() {
    let scratch = Scratch::new("wal-at-rest");
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[]), step("b", false, &[])]));
    assert_eq!(run(&scratch, &path, &[]).code, 0);
    // Another process holds the journal open (a `runbook executions` reader, a second run), so
    // closing the engine's connection does not checkpoint: only the engine's own checkpoint
    // at the end of an execution moves its records into the database file.
    let database = format!("{}/journal.sqlite", scratch.state());
    let ready = scratch.dir.join("holder-ready");
    let program = format!(
        "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1])\nc.execute('SELECT count(*) FROM executions').fetchall()\n\
         open({:?}, 'w').close()\ntime.sleep(60)",
        ready.display().to_string()
    );
    let mut holder = Command::new("python3").args(["-c", &program, &database]).spawn().unwrap();
    wait_until("the holder opened the journal", || ready.exists());
    let output = run(&scratch, &path, &[]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let id = json_lines(&output.stdout)[0]["execution_id"].as_str().unwrap().to_owned();
    let wal = std::path::Path::new(&scratch.state()).join("journal.sqlite-wal");
    let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(left, 0, "the write-ahead log still holds records at rest");
    // Losing the write-ahead log then loses nothing.
    let _ = std::fs::remove_file(&wal);
    let _ = std::fs::remove_file(wal.with_file_name("journal.sqlite-shm"));
    let state = scratch.state();
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state, "--format", "json"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["execution"]["status"], "Success");
    assert_eq!(shown["steps"].as_array().unwrap().len(), 2);
}

/// Runs a, then b (safe to repeat, waiting for `<trail>.go`), then c (safe to repeat,
/// waiting for `<trail>.c`); the engine is killed while c waits. With `checkpoint`, the database file is brought up to date
/// while b waits, so what follows lives only in the write-ahead log. Returns the execution id.
fn killed_during_c(scratch: &Scratch, checkpoint: bool) -> String {
    let script = "import os, time\\ndef h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  \
                  while not os.path.exists(e['Trail'] + '.c'): time.sleep(0.05)";
    let c = script_step("c", &["x-idempotent: true"], &trail_payload("c"), script);
    let path =
        scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[]), step("b", true, &["x-idempotent: true"]), c]));
    let mut engine = run_process(scratch, &path, &[]).stderr(Stdio::null()).spawn().unwrap();
    wait_until("b runs", || scratch.trail().contains(&"b".to_owned()));
    if checkpoint {
        sqlite(scratch, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    // Read while the engine lives: the last connection to close merges the log into the file.
    let id = runbook_tests::only_execution_id(scratch);
    wait_until("c runs", || scratch.trail().contains(&"c".to_owned()));
    engine.kill().unwrap();
    engine.wait().unwrap();
    id
}

#[test]
fn r_records_lost_with_the_write_ahead_log_or_deleted_by_hand_refuse_the_resume() {
    // The write-ahead log of a killed engine is lost: the database file still says b is
    // running. Without the tally kept beside the journal, the resume ran b (safe to repeat)
    // again without a word.
    let scratch = Scratch::new("lost-wal");
    let id = killed_during_c(&scratch, true);
    let state = scratch.state();
    let wal = std::path::Path::new(&state).join("journal.sqlite-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the log holds b's end and c's start");
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(wal.with_file_name("journal.sqlite-shm"));
    let resumed = runbook(&["run", "--resume", &id, "--state-dir", &state]);
    assert_eq!(resumed.code, 8, "{}{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed.stderr.contains(&format!("the journal is missing records of execution {id}"))
            && resumed.stderr.contains("2 of its 5 records")
            && resumed.stderr.contains("journal.sqlite-wal")
            && resumed.stderr.contains("--accept-lost-records"),
        "{}",
        resumed.stderr
    );
    assert_eq!(scratch.trail(), ["a", "b", "c"], "nothing ran again");

    // Rows deleted by hand: a's result and attempt are gone.
    let scratch = Scratch::new("deleted-rows");
    let id = killed_during_c(&scratch, false);
    sqlite(&scratch, &format!("DELETE FROM steps WHERE execution_id = '{id}' AND step = 'a'"));
    sqlite(&scratch, &format!("DELETE FROM attempts WHERE execution_id = '{id}' AND step = 'a'"));
    let state = scratch.state();
    let resumed = runbook(&["run", "--resume", &id, "--state-dir", &state]);
    assert_eq!(resumed.code, 8, "{}{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed.stderr.contains("2 of its 5 records (attempts, step results, decisions) were deleted"),
        "{}",
        resumed.stderr
    );
    assert_eq!(scratch.trail(), ["a", "b", "c"]);
    // Accepting the loss runs what has no record again, and the rest as recorded.
    std::fs::write(format!("{}.c", scratch.trail_path()), "").unwrap();
    let accepted =
        runbook(&["run", "--resume", &id, "--state-dir", &state, "--accept-lost-records", "--format", "json"]);
    assert_eq!(accepted.code, 0, "{}{}", accepted.stdout, accepted.stderr);
    assert_eq!(scratch.trail(), ["a", "b", "c", "a", "c"]);
}

#[test]
fn r_a_journal_on_a_read_only_mount_can_still_be_read() {
    let scratch = Scratch::new("read-only");
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[])]));
    let output = run(&scratch, &path, &[]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let id = json_lines(&output.stdout)[0]["execution_id"].as_str().unwrap().to_owned();
    let state = scratch.state();
    // A read-only bind mount of the state directory, in a user and mount namespace of its own
    // (so it works unprivileged, and root cannot write through it either).
    let binary = runbook_tests::binary();
    let script = format!(
        "mount --bind {state} {state} && mount -o remount,ro,bind {state} && touch {state}/probe 2>/dev/null && exit 90; \
         {binary} executions list --state-dir {state} && {binary} executions show {id} --state-dir {state}",
        binary = binary.display()
    );
    let read = Command::new("unshare").args(["--map-root-user", "--mount", "sh", "-c", &script]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&read.stdout), String::from_utf8_lossy(&read.stderr));
    assert_ne!(read.status.code(), Some(90), "the mount was writable");
    assert!(read.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&id) && stdout.contains("status    Success"), "{stdout}");
}

#[test]
fn r_executions_are_named_by_a_unique_prefix_or_last_and_reading_creates_no_journal() {
    let scratch = Scratch::new("prefix");
    let state = scratch.state();
    // Listing an empty state directory says so and creates nothing.
    let listed = runbook(&["executions", "list", "--state-dir", &state]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("No executions in"), "{}", listed.stdout);
    let shown = runbook(&["executions", "show", "last", "--state-dir", &state]);
    assert_eq!(shown.code, 2, "{}", shown.stderr);
    assert!(!std::path::Path::new(&state).exists(), "reading created the state directory");
    // Seventeen executions: two of them share a first hex digit.
    let path = scratch.runbook("runbook.yaml", &doc(&[step("a", false, &[])]));
    let ids = run_times(&scratch, &path, 17);
    let show = |given: &str| runbook(&["executions", "show", given, "--state-dir", &state]);
    let last = show("last");
    assert!(last.stdout.contains(&format!("Execution {}", ids[16])), "{}", last.stdout);
    let first = show(&ids[0][..8]);
    assert!(first.stdout.contains(&format!("Execution {}", ids[0])), "{}", first.stdout);
    let shared = ids.iter().find_map(|a| ids.iter().find(|b| *b != a && b[..1] == a[..1]).map(|b| (a, b))).unwrap();
    let ambiguous = show(&shared.0[..1]);
    assert_eq!(ambiguous.code, 2, "{}{}", ambiguous.stdout, ambiguous.stderr);
    assert!(
        ambiguous.stderr.contains(&format!("`{}` names", &shared.0[..1]))
            && ambiguous.stderr.contains(shared.0.as_str())
            && ambiguous.stderr.contains(shared.1.as_str()),
        "{}",
        ambiguous.stderr
    );
    // The same names work wherever an execution is named.
    let resumed = runbook(&["run", "--resume", &ids[3][..12], "--state-dir", &state, "--format", "json"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(json_lines(&resumed.stdout)[0]["execution_id"], ids[3].as_str());
}
