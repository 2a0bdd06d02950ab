//! The two stores, the local journal and the S3 store machines share (`--state s3://...`),
//! pass the same contract; and the S3 store, against moto, holds what the issue asks of it
//! across processes: mutual exclusion of named locks, a run killed on one "machine" resumed
//! on another with nothing repeated, one driver among two resumers, and clear refusals of a
//! bucket that does not exist or denies access.

use std::sync::Arc;
use std::time::Duration;

use runbook::aws::{self, Aws, Credentials};
use runbook::journal::named::LockMode;
use runbook::journal::{self, Answer, Attempt, Decision, EventKind, Execution, Journal, S3Store, Status, Store};
use runbook::journal::{StepOutcome, StepRecord};
use runbook_tests::moto::{Moto, moto};
use runbook_tests::{Scratch, json_lines, script_step, trail_payload, wait_until};
use serde_json::{Value, json};

/// A bucket of its own in moto, created with boto3; its `s3://` location.
fn bucket(moto: &Moto, name: &str) -> String {
    let bucket = format!("{name}-{}", std::process::id());
    moto.boto3(&format!("boto3.client('s3').create_bucket(Bucket='{bucket}')\nemit(0)"));
    format!("s3://{bucket}/runbook")
}

/// The S3 store opened in this process, with the test's credentials.
fn s3_store(moto: &Moto, url: &str) -> Store {
    let settings =
        aws::Settings { endpoint_url: Some(moto.url.clone()), region: Some("us-east-1".into()), profile: None };
    let credentials = Credentials::new("testing", "testing", None, None, "test");
    let client = Aws::with_transport(settings, Arc::new(aws::transport::Https::default()), Some(credentials));
    Store::S3(Box::new(S3Store::open_with(url, client, true).unwrap()))
}

fn execution(id: &str, key: Option<&str>, parent: Option<&str>) -> Execution {
    Execution {
        id: id.to_owned(),
        runbook_path: "r.yaml".into(),
        runbook_hash: "abc".into(),
        parameters: json!({"Zone": "Z1"}),
        status: Status::InProgress,
        started_at: journal::now(),
        ended_at: None,
        idempotency_key: key.map(str::to_owned),
        parent_id: parent.map(str::to_owned),
        parent_step: parent.map(|_| "child".to_owned()),
        dry_run: false,
        outputs: None,
        error: None,
    }
}

fn attempt(step: &str, status: Status) -> Attempt {
    Attempt {
        step: step.into(),
        iteration: 0,
        attempt: 1,
        action: "aws:sleep".into(),
        status,
        inputs: json!({"Duration": "PT0S"}),
        outputs: (status == Status::Success).then(|| json!({"Out": 1})),
        error: None,
        log: None,
        started_at: journal::now(),
        ended_at: (status != Status::InProgress).then(journal::now),
    }
}

fn step_record(step: &str, outputs: Value) -> StepRecord {
    StepRecord {
        step: step.into(),
        iteration: 0,
        action: "aws:sleep".into(),
        status: Status::Success,
        outcome: StepOutcome::Succeeded,
        outputs,
        effects: json!({}),
        error: None,
        attempts: 1,
        critical: true,
        started_at: journal::now(),
        ended_at: journal::now(),
        sealed: Vec::new(),
    }
}

fn decision(by: &str) -> Decision {
    Decision {
        step: "ask".into(),
        iteration: 0,
        decision: Answer::Approve,
        by: by.into(),
        comment: None,
        at: journal::now(),
    }
}

/// What every store must do, as the runner relies on it.
fn contract(store: &Store) {
    let unique = uuid_like();
    let id = format!("{unique}-parent");
    let key = format!("key-{unique}");
    store.create_execution(&execution(&id, Some(&key), None), &json!({"walk": null})).unwrap();
    assert_eq!(store.execution(&id).unwrap().status, Status::InProgress);
    // A second execution with the key is refused, naming the first.
    match store.create_execution(&execution(&format!("{unique}-other"), Some(&key), None), &Value::Null) {
        Err(journal::Error::KeyTaken { execution_id, .. }) => assert_eq!(execution_id, id),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.find_by_key(&key).unwrap().unwrap().id, id);
    assert!(store.find_by_key("no-such-key").unwrap().is_none());
    assert!(matches!(store.execution("no-such-execution"), Err(journal::Error::NotFound(_))));

    // Write-ahead: an attempt recorded as started, then finished with the step's result.
    store.attempt_started(&id, &attempt("change", Status::InProgress)).unwrap();
    assert_eq!(store.attempts(&id).unwrap()[0].status, Status::InProgress);
    store
        .attempt_finished(&id, &attempt("change", Status::Success), Some(&step_record("change", json!({"Out": 1}))))
        .unwrap();
    let attempts = store.attempts(&id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].status, &attempts[0].inputs), (Status::Success, &json!({"Duration": "PT0S"})));
    // The latest result of a step visit stands.
    store.step_finished(&id, &step_record("change", json!({"Out": 2}))).unwrap();
    let steps = store.steps(&id).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].outputs, json!({"Out": 2}));

    // Waiting, and the first decision stands.
    store.event(&id, EventKind::Waiting, Some("ask"), &json!({"iteration": 0, "kind": "approval"})).unwrap();
    assert_eq!(store.waiting_on(&id).unwrap().unwrap().step, "ask");
    assert!(store.decide(&id, &decision("ana")).unwrap());
    assert!(!store.decide(&id, &decision("bo")).unwrap());
    assert_eq!(store.decision(&id, "ask", 0).unwrap().unwrap().by, "ana");

    let child = format!("{unique}-child");
    store.create_execution(&execution(&child, None, Some(&id)), &Value::Null).unwrap();
    let children: Vec<String> = store.children(&id).unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(children, std::slice::from_ref(&child));
    store.set_status(&id, Status::Success, true, Some(&json!({"Out": 2})), None).unwrap();
    let ended = store.execution(&id).unwrap();
    assert_eq!((ended.status, ended.outputs), (Status::Success, Some(json!({"Out": 2}))));
    assert!(ended.ended_at.is_some());
    let kinds: Vec<EventKind> = store.events(&id).unwrap().into_iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::ExecutionCreated, EventKind::Waiting, EventKind::Decision, EventKind::Status],
        "the timeline in the order written"
    );
    let listed: Vec<String> = store.executions(100).unwrap().into_iter().map(|e| e.id).collect();
    assert!(listed.contains(&id) && listed.contains(&child), "{listed:?}");
    let ambiguous = store.resolve_id(&id[..12]).unwrap_err().to_string();
    assert!(ambiguous.contains("names 2 executions"), "{ambiguous}");
    assert_eq!(store.resolve_id(&id).unwrap(), id);
    assert_eq!(store.resolve_id(&child[..child.len() - 2]).unwrap(), child);

    // One driver per execution.
    let lease = store.locks().acquire(&id).unwrap();
    assert!(store.locks().is_held(&id));
    assert!(matches!(store.locks().acquire(&id), Err(journal::Error::Locked { .. })));
    lease.release(true);
    assert!(!store.locks().is_held(&id));
    store.locks().acquire(&id).unwrap().release(true);

    // Named locks: exclusion, tokens that only grow, renewal, release, force, applied.
    let named = store.named();
    let name = format!("dns/{unique}");
    let minute = Duration::from_secs(60);
    let first = named.grant(&name, "e1", LockMode::Exclusive, minute).unwrap();
    assert!(matches!(named.grant(&name, "e2", LockMode::Shared, minute), Err(journal::Error::LockHeld { .. })));
    let renewed = named.renew(&first, minute).unwrap();
    assert_eq!(renewed.token, first.token);
    named.mark_applied(&first).unwrap();
    named.release(&first).unwrap();
    let second = named.grant(&name, "e2", LockMode::Shared, minute).unwrap();
    let third = named.grant(&name, "e3", LockMode::Shared, minute).unwrap();
    assert!(first.token < second.token && second.token < third.token);
    assert!(matches!(named.grant(&name, "e4", LockMode::Exclusive, minute), Err(journal::Error::LockHeld { .. })));
    assert_eq!(named.applied(&name).unwrap(), first.token);
    assert_eq!(named.last_token(&name).unwrap(), third.token);
    assert!(named.grants().unwrap().iter().any(|grant| grant.holder == "e3" && grant.name == name));
    assert!(named.force_release(&name, "e2").unwrap());
    assert!(!named.force_release(&name, "e2").unwrap());
    assert!(matches!(named.renew(&second, minute), Err(journal::Error::LeaseLost { .. })));
    let short = named.grant(&format!("{name}-short"), "slow", LockMode::Exclusive, Duration::from_millis(1)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert!(named.grant(&format!("{name}-short"), "fast", LockMode::Exclusive, minute).is_ok(), "a lease ran out");
    assert!(matches!(named.renew(&short, minute), Err(journal::Error::LeaseLost { .. })));
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{nanos:08x}{:04x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn the_local_journal_keeps_the_store_contract() {
    let scratch = Scratch::new("store-local");
    contract(&Store::Local(Journal::open(std::path::Path::new(&scratch.state())).unwrap()));
}

#[test]
fn the_s3_store_keeps_the_store_contract() {
    let Some(moto) = moto("the_s3_store_keeps_the_store_contract") else { return };
    let url = bucket(moto, "contract");
    contract(&s3_store(moto, &url));
    // Another process's view (another machine's) is the same record.
    let again = s3_store(moto, &url);
    assert!(!again.executions(100).unwrap().is_empty());
}

/// Eight processes take one lock a hundred times each through the S3 store: as with the local
/// journal, no two grants overlap and every token is granted once.
#[test]
fn eight_processes_taking_one_s3_lock_a_hundred_times_never_overlap() {
    let Some(moto) = moto("eight_processes_taking_one_s3_lock_a_hundred_times_never_overlap") else { return };
    let url = bucket(moto, "hammer");
    let scratch = Scratch::new("store-hammer");
    let log = scratch.trail_path();
    let hammers: Vec<_> = (0..8)
        .map(|i| {
            let mut command = moto.command(&scratch);
            command.args(["lock-hammer", &url, "fleet/one", "100", &log, &format!("h{i}")]);
            command.spawn().unwrap()
        })
        .collect();
    for mut hammer in hammers {
        assert!(hammer.wait().unwrap().success());
    }
    super::locks::check_intervals(&std::fs::read_to_string(&log).unwrap(), 800);
}

/// A step that records its name in the trail and returns it; with `wait`, waits for
/// `<trail>.go` first.
fn step(name: &str, wait: bool) -> String {
    let wait = if wait { "True" } else { "False" };
    let script = format!(
        "import os, time\\ndef h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + '\\\\n')\\n  \
         while {wait} and not os.path.exists(e['Trail'] + '.go'): time.sleep(0.05)\\n  return {{'Said': e['Name']}}"
    );
    let extra = ["outputs: [{Name: Said, Selector: $.Payload.Said, Type: String}]"];
    script_step(name, &extra, &trail_payload(name), &script)
}

fn three_steps(scratch: &Scratch) -> String {
    scratch.runbook(
        "shared.yaml",
        &format!(
            "schemaVersion: '0.3'\nparameters:\n  Trail: {{type: String}}\nx-locks: [shared/one]\n\
             outputs: [first.Said, second.Said, third.Said]\nmainSteps:\n{}{}{}",
            step("first", false),
            step("second", true),
            step("third", false)
        ),
    )
}

/// The run's result line (`execution_finished`) of a `--format json` run.
fn finished(stdout: &str) -> Value {
    json_lines(stdout).into_iter().find(|event| event["event"] == "execution_finished").unwrap_or(Value::Null)
}

/// A run started on one machine with `--state s3://...` and killed mid-step goes on from
/// another (another state directory, the same store): no step that succeeded runs again, the
/// outputs are those of an uninterrupted run; and of two runners resuming it at once, one
/// drives and the other is refused.
#[test]
fn a_run_killed_on_one_machine_is_resumed_from_another_through_s3() {
    let Some(moto) = moto("a_run_killed_on_one_machine_is_resumed_from_another_through_s3") else { return };
    let url = bucket(moto, "shared");
    let scratch = Scratch::new("store-shared");
    let path = three_steps(&scratch);
    let trail = format!("Trail={}", scratch.trail_path());
    let on = |machine: &str| {
        let mut command = moto.command(&scratch);
        command.env("RUNBOOK_STATE_DIR", scratch.path(machine)).env("RUNBOOK_STATE", &url);
        command
    };
    // The uninterrupted run, for its outputs.
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let whole = on("machine-a").args(["run", &path, "-p", &trail, "--format", "json"]).output().unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let expected = finished(&String::from_utf8_lossy(&whole.stdout))["outputs"].clone();
    assert_eq!(expected["second.Said"], json!(["second"]));
    std::fs::remove_file(format!("{}.go", scratch.trail_path())).unwrap();
    std::fs::remove_file(scratch.trail_path()).unwrap();

    // Killed while `second` runs.
    let mut first = on("machine-a");
    let mut first = first
        .args(["run", &path, "-p", &trail, "--format", "json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("`second` runs", || scratch.trail().len() == 2);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(scratch.trail(), ["first", "second"]);
    let listed = on("machine-b").args(["executions", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let id =
        listed.lines().find(|line| line.contains("InProgress")).unwrap().split_whitespace().next().unwrap().to_owned();

    // Two resumers on machine B and C at once: one drives (and waits on `second` again, its
    // outcome unknown, rerun by choice), the other is refused.
    let resume = |machine: &str| {
        let mut command = on(machine);
        command.args(["run", "--resume", &id, "--rerun", "second", "-p", &trail, "--format", "json"]);
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let (b, c) = (resume("machine-b"), resume("machine-c"));
    wait_until("one resumer runs `second` again", || scratch.trail().len() == 3);
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let (b, c) = (b.wait_with_output().unwrap(), c.wait_with_output().unwrap());
    let codes = [b.status.code(), c.status.code()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(8)), "{codes:?}");
    let (driver, refused) = if b.status.success() { (&b, &c) } else { (&c, &b) };
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is being driven by another process"));
    assert_eq!(scratch.trail(), ["first", "second", "second", "third"], "first never ran again");
    assert_eq!(finished(&String::from_utf8_lossy(&driver.stdout))["outputs"], expected);
    // Every machine reads the same timeline.
    let shown = on("machine-c").args(["executions", "show", &id]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("Success") && shown.contains("lock `shared/one` granted"), "{shown}");
    let page = scratch.path("report.html");
    let reported = on("machine-b").args(["report", &id, "--html", &page]).output().unwrap();
    assert!(reported.status.success(), "{}", String::from_utf8_lossy(&reported.stderr));
    assert!(std::fs::read_to_string(&page).unwrap().contains("third"));
}

/// A bucket that does not exist, a bucket that denies access, and a location that is no S3
/// location: each one clear error before anything runs, and nothing written.
#[test]
fn a_missing_or_forbidden_bucket_is_refused_before_anything_runs() {
    let Some(moto) = moto("a_missing_or_forbidden_bucket_is_refused_before_anything_runs") else { return };
    let scratch = Scratch::new("store-bad");
    let path = three_steps(&scratch);
    let trail = format!("Trail={}", scratch.trail_path());
    let missing = moto.runbook(&scratch, &["run", &path, "-p", &trail, "--state", "s3://no-such-bucket-here/x"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("NoSuchBucket") && missing.stderr.contains("create the bucket"),
        "{}",
        missing.stderr
    );
    let malformed = moto.runbook(&scratch, &["run", &path, "-p", &trail, "--state", "s3://Not_A_Bucket"]);
    assert_eq!(malformed.code, 2, "{}", malformed.stderr);
    assert!(malformed.stderr.contains("not a valid S3 bucket name"), "{}", malformed.stderr);
    let not_s3 = moto.runbook(&scratch, &["run", &path, "-p", &trail, "--state", "/tmp/state"]);
    assert_eq!(not_s3.code, 2, "{}", not_s3.stderr);
    assert!(not_s3.stderr.contains("not an S3 location"), "{}", not_s3.stderr);
    // Access denied, from a server that refuses every call as S3 does.
    let denied = runbook_tests::moto::runbook_against(
        &forbidding_server(),
        &scratch,
        &[],
        &["run", &path, "-p", &trail, "--state", "s3://locked-bucket/x"],
    );
    assert_eq!(denied.code, 3, "{}", denied.stderr);
    assert!(denied.stderr.contains("AccessDenied") && denied.stderr.contains("s3:PutObject"), "{}", denied.stderr);
    assert!(scratch.trail().is_empty(), "no step ran");
}

/// A server that answers every request 403 AccessDenied, as S3 does without permission.
fn forbidding_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 65536];
            let _ = stream.read(&mut buffer);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                        <Message>Access Denied</Message><RequestId>R1</RequestId></Error>";
            let response = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}
