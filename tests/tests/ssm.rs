//! SSM as the managed engine (issue 17): `runbook run ssm:NAME[:VERSION]` fetches the
//! document with GetDocument and caches it by name and hash; a child `DocumentName` found in no
//! local folder is fetched the same way.

use runbook::journal::JournalRead;
use runbook_tests::Scratch;
use runbook_tests::moto::{Moto, moto};
use serde_json::Value;

/// Creates (or updates to a new version) the Automation document `name` in moto with `content`;
/// its version.
fn put_document(moto: &Moto, name: &str, content: &str, format: &str) -> String {
    let content = serde_json::to_string(content).unwrap();
    let version = moto.boto3(&format!(
        "import yaml\n\
         ssm = boto3.client('ssm')\n\
         content = {content} if '{format}' == 'YAML' else json.dumps(yaml.safe_load({content}))\n\
         try:\n    d = ssm.create_document(Name='{name}', Content=content, DocumentType='Automation', DocumentFormat='{format}')['DocumentDescription']\n\
         except ssm.exceptions.DocumentAlreadyExists:\n    d = ssm.update_document(Name='{name}', Content=content, DocumentVersion='$LATEST', DocumentFormat='{format}')['DocumentDescription']\n\
             ssm.update_document_default_version(Name='{name}', DocumentVersion=d['DocumentVersion'])\n\
         emit(d['DocumentVersion'])"
    ));
    version.as_str().unwrap().to_owned()
}

fn greeting(word: &str) -> String {
    format!(
        "schemaVersion: '0.3'
parameters:
  Who: {{type: String, default: world}}
mainSteps:
  - name: greet
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      Script: \"def h(e, c):\\n  return {{'text': e['word'] + ' ' + e['who']}}\"
      InputPayload: {{word: {word}, who: '{{{{ Who }}}}'}}
    outputs:
      - {{Name: Text, Selector: $.Payload.text, Type: String}}
outputs: [greet.Text]
"
    )
}

/// A parent runbook: the steps `before`, then `child`, which runs document `name` (at
/// `version`, when given) for Who=team; its output is the runbook's.
fn parent_of(scratch: &Scratch, before: &str, name: &str, version: Option<&str>) -> String {
    let version = version.map(|version| format!(", DocumentVersion: '{version}'")).unwrap_or_default();
    scratch.runbook(
        "parent.yaml",
        &format!(
            "schemaVersion: '0.3'\nmainSteps:\n{before}  - name: child\n    action: aws:executeAutomation\n    \
             inputs: {{DocumentName: {name}{version}, RuntimeParameters: {{Who: [team]}}}}\noutputs: [child.Output]\n"
        ),
    )
}

/// `runbook run PATH --on ssm --name NAME ARGS --format json`, polling quickly.
fn on_ssm(moto: &Moto, scratch: &Scratch, path: &str, name: &str, args: &[&str]) -> runbook_tests::Output {
    let mut all = vec!["run", path, "--on", "ssm", "--name", name, "--poll-interval", "0.05", "--format", "json"];
    all.extend_from_slice(args);
    moto.runbook(scratch, &all)
}

/// The finished event of a `--format json` run.
fn finished(stdout: &str) -> Value {
    runbook_tests::json_lines(stdout).into_iter().rev().find(|e| e["event"] == "execution_finished").unwrap_or_default()
}

fn get_document_calls(moto: &Moto, name: &str) -> usize {
    moto.requests().iter().filter(|r| r["operation"] == "GetDocument" && r["request"]["Name"] == name).count()
}

#[test]
fn a_document_in_ssm_runs_by_name_and_a_numbered_version_is_cached() {
    let Some(moto) = moto("a_document_in_ssm_runs_by_name_and_a_numbered_version_is_cached") else { return };
    let scratch = Scratch::new("ssm-by-name");
    let name = "Runbook-Greeting-ByName";
    let first = put_document(moto, name, &greeting("hello"), "YAML");
    let second = put_document(moto, name, &greeting("howdy"), "YAML");
    assert_eq!((first.as_str(), second.as_str()), ("1", "2"));

    let run = |reference: &str| {
        let output = moto.runbook(&scratch, &["run", reference, "-p", "Who=ops", "--format", "json"]);
        assert_eq!(output.code, 0, "{reference}: {}{}", output.stdout, output.stderr);
        (finished(&output.stdout)["outputs"]["greet.Text"].clone(), output.stderr)
    };
    let (greeting, said) = run(&format!("ssm:{name}"));
    assert_eq!(greeting, serde_json::json!(["howdy ops"]), "the default version runs");
    assert!(said.contains(&format!("ssm:{name}: version 2 fetched")), "{said}");
    let (greeting, said) = run(&format!("ssm:{name}:1"));
    assert_eq!(greeting, serde_json::json!(["hello ops"]));
    assert!(said.contains("version 1 fetched"), "{said}");
    // Version 1 never changes in SSM: the second run takes it from the cache.
    let before = get_document_calls(moto, name);
    let (greeting, said) = run(&format!("ssm:{name}:1"));
    assert_eq!(greeting, serde_json::json!(["hello ops"]));
    assert!(said.contains("version 1 cached"), "{said}");
    assert_eq!(get_document_calls(moto, name), before, "no GetDocument for a cached version");
    // The cache holds each content once, by hash, under the name.
    let cached: Vec<String> = std::fs::read_dir(format!("{}/documents/{name}", scratch.state()))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.iter().filter(|file| *file != "versions.json").count(), 2, "{cached:?}");
    // The journal records the cached file, so `executions show` and a resume need no AWS.
    let listed = moto.runbook(&scratch, &["executions", "list", "--format", "json"]);
    assert!(listed.stdout.contains(&format!("documents/{name}/")), "{}", listed.stdout);
}

#[test]
fn a_missing_document_or_a_command_document_is_refused_with_its_name() {
    let Some(moto) = moto("a_missing_document_or_a_command_document_is_refused_with_its_name") else { return };
    let scratch = Scratch::new("ssm-missing");
    let output = moto.runbook(&scratch, &["run", "ssm:Runbook-No-Such-Document"]);
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.contains("no Automation document `Runbook-No-Such-Document` in SSM"), "{}", output.stderr);
    let output = moto.runbook(&scratch, &["run", "ssm:Bad Name"]);
    assert_eq!(output.code, 2, "a malformed reference is a usage error: {}", output.stderr);
    assert!(output.stderr.contains("only letters, digits"), "{}", output.stderr);
    moto.boto3(
        "boto3.client('ssm').create_document(Name='Runbook-A-Command', DocumentType='Command', Content=json.dumps(\
         {'schemaVersion': '2.2', 'mainSteps': [{'action': 'aws:runShellScript', 'name': 'x', 'inputs': {'runCommand': ['true']}}]}))\n\
         emit(1)",
    );
    let output = moto.runbook(&scratch, &["run", "ssm:Runbook-A-Command"]);
    assert_ne!(output.code, 0);
    assert!(output.stderr.contains("is a Command document"), "{}", output.stderr);
}

#[test]
fn a_child_document_found_in_no_folder_is_fetched_from_ssm() {
    let Some(moto) = moto("a_child_document_found_in_no_folder_is_fetched_from_ssm") else { return };
    let scratch = Scratch::new("ssm-child");
    let name = "Runbook-Greeting-Child";
    put_document(moto, name, &greeting("hi"), "JSON");
    let parent = parent_of(&scratch, "", name, Some("1"));
    let output = moto.runbook(&scratch, &["run", &parent, "--format", "json"]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert_eq!(finished(&output.stdout)["outputs"]["child.Output"], serde_json::json!(["hi team"]));
}

/// The document `name` as SSM holds it (default version): its version, content and format.
fn document(moto: &Moto, name: &str) -> Value {
    moto.boto3(&format!(
        "d = boto3.client('ssm').get_document(Name='{name}')\n\
         emit({{'version': d['DocumentVersion'], 'content': d['Content'], 'format': d['DocumentFormat']}})"
    ))
}

#[test]
fn publish_creates_then_versions_and_the_same_content_publishes_nothing() {
    let Some(moto) = moto("publish_creates_then_versions_and_the_same_content_publishes_nothing") else { return };
    let scratch = Scratch::new("ssm-publish");
    let name = "Runbook-Published-Greeting";
    let path = scratch.runbook("greeting.yaml", &greeting("hello"));
    let publish = |extra: &[&str]| {
        let mut args = vec!["publish", &path, "--name", name, "--format", "json"];
        args.extend_from_slice(extra);
        let output = moto.runbook(&scratch, &args);
        assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
        let said: Value = serde_json::from_str(&output.stdout).unwrap();
        (said["action"].as_str().unwrap().to_owned(), said["version"].as_str().unwrap().to_owned())
    };
    assert_eq!(publish(&[]), ("created".into(), "1".into()));
    assert_eq!(publish(&[]), ("unchanged".into(), "1".into()), "the same content publishes nothing");
    std::fs::write(&path, greeting("howdy")).unwrap();
    assert_eq!(publish(&[]), ("updated".into(), "2".into()));
    assert!(document(moto, name)["content"].as_str().unwrap().contains("howdy"), "version 2 is the default");
    // Back to the first content: no third version, version 1 is the default again.
    std::fs::write(&path, greeting("hello")).unwrap();
    assert_eq!(publish(&[]), ("defaulted".into(), "1".into()));
    assert_eq!(document(moto, name)["version"], "1");
    // What was published runs by name.
    let output = moto.runbook(&scratch, &["run", &format!("ssm:{name}"), "--format", "json"]);
    assert_eq!(finished(&output.stdout)["outputs"]["greet.Text"], serde_json::json!(["hello world"]));
    // The text form says the same for people.
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name]);
    assert!(output.stdout.contains("no changes: Runbook-Published-Greeting version 1"), "{}", output.stdout);
}

const EXTENDED: &str = "schemaVersion: '0.3'
x-locks: [maintenance]
parameters:
  Token: {type: String, default: t, x-secret: true}
mainSteps:
  - name: wait
    action: aws:sleep
    inputs: {Duration: PT1S}
    x-undo: {action: aws:sleep, inputs: {Duration: PT1S}}
";

#[test]
fn publish_refuses_extensions_at_their_lines_or_strips_them_with_warnings() {
    let Some(moto) = moto("publish_refuses_extensions_at_their_lines_or_strips_them_with_warnings") else { return };
    let scratch = Scratch::new("ssm-publish-extensions");
    let path = scratch.runbook("extended.yaml", EXTENDED);
    let name = "Runbook-Published-Extended";
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    for (line, key) in [(2, "x-locks"), (4, "x-secret"), (9, "x-undo")] {
        assert!(output.stderr.contains(&format!("`{key}` is an engine extension")), "{}", output.stderr);
        assert!(output.stderr.contains(&format!("extended.yaml:{line}:")), "{key} at line {line}: {}", output.stderr);
    }
    let created = moto.requests().iter().filter(|r| r["operation"] == "CreateDocument").count();
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name, "--strip-extensions"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stderr.contains("`x-locks` removed: no named lock is taken"), "{}", output.stderr);
    assert!(output.stderr.contains("`x-undo` removed"), "{}", output.stderr);
    assert_eq!(moto.requests().iter().filter(|r| r["operation"] == "CreateDocument").count(), created + 1);
    let published = document(moto, name);
    let content = published["content"].as_str().unwrap();
    assert!(!content.contains("x-"), "{content}");
    assert!(content.contains("\"wait\""), "{content}");
    // AWS's own prefixes are refused before any call.
    let output = moto.runbook(&scratch, &["publish", &path, "--name", "AWS-Mine", "--strip-extensions"]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("kept for AWS's own documents"), "{}", output.stderr);
}

#[test]
fn publish_uploads_attachments_to_s3_and_points_the_document_at_them() {
    let Some(moto) = moto("publish_uploads_attachments_to_s3_and_points_the_document_at_them") else { return };
    let scratch = Scratch::new("ssm-publish-attachments");
    let script = "def handler(events, context):\n    return {'ok': True}\n";
    std::fs::write(scratch.path("collect.py"), script).unwrap();
    let hash = runbook::exec::content_hash(script.as_bytes());
    // A zip is not text: its bytes go up as they are.
    let zip: Vec<u8> = vec![0x50, 0x4b, 0x03, 0x04, 0xff, 0x00, 0x80, 0xfe, 0x0a];
    std::fs::write(scratch.path("tools.zip"), &zip).unwrap();
    let zip_hash = runbook::exec::content_hash(&zip);
    let path = scratch.runbook(
        "collect.yaml",
        &format!(
            "schemaVersion: '0.3'
files:
  collect.py:
    checksums: {{sha256: {hash}}}
  tools.zip:
    checksums: {{sha256: {zip_hash}}}
mainSteps:
  - name: collect
    action: aws:executeScript
    inputs: {{Runtime: python3.11, Handler: collect.handler, Attachment: collect.py}}
"
        ),
    );
    let name = "Runbook-Published-Attachments";
    let output = moto.runbook(&scratch, &["publish", &path, "--name", name]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("give --attachments s3://BUCKET/PREFIX"), "{}", output.stderr);
    moto.boto3("boto3.client('s3').create_bucket(Bucket='runbook-attachments')\nemit(1)");
    let output =
        moto.runbook(&scratch, &["publish", &path, "--name", name, "--attachments", "s3://runbook-attachments/docs"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let uploaded = moto.boto3(
        "emit(boto3.client('s3').get_object(Bucket='runbook-attachments', Key='docs/collect.py')['Body'].read().decode())",
    );
    assert_eq!(uploaded, script);
    let uploaded = moto.boto3(
        "emit(boto3.client('s3').get_object(Bucket='runbook-attachments', Key='docs/tools.zip')['Body'].read().hex())",
    );
    assert_eq!(uploaded, "504b0304ff0080fe0a", "the zip's bytes as they are");
    // A file that no longer matches the checksum the document declares is refused.
    std::fs::write(scratch.path("collect.py"), "changed").unwrap();
    let output =
        moto.runbook(&scratch, &["publish", &path, "--name", name, "--attachments", "s3://runbook-attachments/docs"]);
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert!(output.stderr.contains("not the checksum the document declares"), "{}", output.stderr);
}

// ---- Runs on SSM (`run --on ssm`), against the harness's emulation of the Automation APIs
// (tests/moto/automation.py: each read of an execution moves it one step).

/// Sets the emulation's controls for the executions of `document` started from now on.
fn emulate(moto: &Moto, document: &str, controls: Value) {
    let mut body = controls;
    body["DocumentName"] = Value::from(document);
    let body = serde_json::to_string(&body.to_string()).unwrap();
    moto.boto3(&format!(
        "import urllib.request, os\n\
         request = urllib.request.Request(os.environ['AWS_ENDPOINT_URL'] + '/_emulation/automation/steps', data={body}.encode(), method='POST')\n\
         emit(json.loads(urllib.request.urlopen(request).read()))"
    ));
}

/// The Automation requests moto received for the execution `automation_id` (or, for starts,
/// of `document`).
fn automation_calls(moto: &Moto, operation: &str, key: &str, value: &str) -> Vec<Value> {
    moto.requests()
        .into_iter()
        .filter(|r| r["operation"] == operation && r["request"][key] == value)
        .map(|r| r["request"].clone())
        .collect()
}

const REMOTE: &str = "schemaVersion: '0.3'
parameters:
  Who: {type: String}
  Count: {type: Integer, default: 2}
mainSteps:
  - name: first
    action: aws:sleep
    inputs: {Duration: PT1S}
  - name: check
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances, Filters: [{Name: tag:Who, Values: ['{{ Who }}']}]}
    outputs:
      - {Name: Found, Selector: $.Reservations, Type: MapList}
  - name: last
    action: aws:sleep
    inputs: {Duration: PT1S}
outputs: [check.Found]
";

/// The newest execution in the scratch journal, and the journal.
fn latest(scratch: &Scratch) -> Option<(String, runbook::journal::Journal)> {
    let journal = runbook::journal::Journal::open(std::path::Path::new(&scratch.state())).ok()?;
    let (executions, _) = journal.list(10).ok()?;
    Some((executions.first()?.id.clone(), journal))
}

/// The `--format json` events of a run, and the finished one.
fn events(output: &runbook_tests::Output) -> (Vec<Value>, Value) {
    let events = runbook_tests::json_lines(&output.stdout);
    let finished = events.iter().rev().find(|e| e["event"] == "execution_finished").cloned().unwrap_or_default();
    (events, finished)
}

/// The AutomationExecutionId the journal recorded for the run's execution.
fn automation_id_of(events: &[Value]) -> String {
    let remote = events.iter().find(|e| e["event"] == "remote").expect("a remote event");
    let text = remote["text"].as_str().unwrap();
    text.split(" as ").nth(1).unwrap().split(' ').next().unwrap().to_owned()
}

#[test]
fn a_run_on_ssm_publishes_starts_once_and_streams_every_step_into_the_journal() {
    let Some(moto) = moto("a_run_on_ssm_publishes_starts_once_and_streams_every_step_into_the_journal") else { return };
    let scratch = Scratch::new("ssm-remote");
    let path = scratch.runbook("remote.yaml", REMOTE);
    let name = "Runbook-Remote-Basic";
    emulate(moto, name, serde_json::json!({"Steps": {"check": {"Outputs": {"Found": ["{\"Id\": 1}"]}}}}));
    let output = on_ssm(moto, &scratch, &path, name, &["-p", "Who=ops"]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(output.stderr.contains(&format!("{name} version 1 (created)")), "{}", output.stderr);
    let (events, finished) = events(&output);
    assert_eq!(finished["status"], "Success");
    assert_eq!(finished["outputs"]["check.Found"], serde_json::json!(["{\"Id\": 1}"]));
    let started: Vec<&str> =
        events.iter().filter(|e| e["event"] == "step_started").map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(started, ["first", "check", "last"]);
    // The inputs are SSM's, its references to parameters filled in.
    let check = events.iter().find(|e| e["event"] == "step_started" && e["step"] == "check").unwrap();
    assert_eq!(check["inputs"]["Filters"][0]["Values"], serde_json::json!(["ops"]));
    let automation_id = automation_id_of(&events);
    let starts = automation_calls(moto, "StartAutomationExecution", "DocumentName", name);
    assert_eq!(starts.len(), 1, "one start");
    assert_eq!(starts[0]["Parameters"], serde_json::json!({"Who": ["ops"]}), "SSM fills in defaults");
    assert_eq!(starts[0]["DocumentVersion"], "1");
    assert!(!automation_calls(moto, "GetAutomationExecution", "AutomationExecutionId", &automation_id).is_empty());
    // The journal has it as it has a local run: listed, shown, each step with its status.
    let execution_id = finished["execution_id"].as_str().unwrap();
    let shown = moto.runbook(&scratch, &["executions", "show", execution_id, "--format", "json"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["execution"]["status"], "Success", "{shown}");
    let attempts = shown["attempts"].as_array().unwrap();
    assert!(attempts.iter().all(|a| a["status"] == "Success" && a["ended_at"].is_string()), "{shown}");
    assert!(shown.to_string().contains(&automation_id), "the SSM id is in the record: {shown}");
    let text = moto.runbook(&scratch, &["executions", "show", execution_id]);
    assert!(
        text.stdout.contains(&format!("on SSM    {automation_id} (document {name}, version 1)")),
        "{}",
        text.stdout
    );
    let page = scratch.path("report.html");
    let report = moto.runbook(&scratch, &["report", execution_id, "--html", &page]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(&format!("started on SSM Automation as {automation_id}")), "the page shows where it ran");
    // A second run of the same file publishes nothing new.
    let again = moto
        .runbook(&scratch, &["run", &path, "--on", "ssm", "--name", name, "-p", "Who=ops", "--poll-interval", "0.05"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains(&format!("{name} version 1 (unchanged)")), "{}", again.stderr);
}

#[test]
fn a_step_that_fails_on_ssm_fails_the_run_with_ssm_s_message() {
    let Some(moto) = moto("a_step_that_fails_on_ssm_fails_the_run_with_ssm_s_message") else { return };
    let scratch = Scratch::new("ssm-remote-fails");
    let path = scratch.runbook("remote.yaml", REMOTE);
    let name = "Runbook-Remote-Fails";
    emulate(moto, name, serde_json::json!({"Steps": {"check": {"Fail": true, "FailureMessage": "instance gone"}}}));
    let output = on_ssm(moto, &scratch, &path, name, &["-p", "Who=ops"]);
    assert_eq!(output.code, 4, "{}{}", output.stdout, output.stderr);
    let (events, finished) = events(&output);
    assert_eq!(finished["status"], "Failed");
    assert_eq!(finished["failed_steps"], serde_json::json!(["check"]));
    let check = events.iter().find(|e| e["event"] == "step_finished" && e["step"] == "check").unwrap();
    assert_eq!((check["status"].as_str(), check["error"].as_str()), (Some("Failed"), Some("instance gone")));
    assert!(!events.iter().any(|e| e["event"] == "step_started" && e["step"] == "last"), "Abort ends the run");
}

const APPROVAL: &str = "schemaVersion: '0.3'
mainSteps:
  - name: prepare
    action: aws:sleep
    inputs: {Duration: PT1S}
  - name: approve
    action: aws:approve
    inputs: {Approvers: ['arn:aws:iam::123456789012:user/ops'], Message: 'Go ahead?'}
  - name: apply
    action: aws:sleep
    inputs: {Duration: PT1S}
";

#[test]
fn an_approval_on_ssm_waits_then_runbook_approve_signals_it_and_follows_to_the_end() {
    let Some(moto) = moto("an_approval_on_ssm_waits_then_runbook_approve_signals_it_and_follows_to_the_end") else {
        return;
    };
    let scratch = Scratch::new("ssm-remote-approve");
    let path = scratch.runbook("approval.yaml", APPROVAL);
    let name = "Runbook-Remote-Approval";
    let output = on_ssm(moto, &scratch, &path, name, &[]);
    assert_eq!(output.code, 7, "waits for a person: {}{}", output.stdout, output.stderr);
    let (events, _) = events(&output);
    assert!(events.iter().any(|e| e["event"] == "waiting" && e["step"] == "approve"), "{}", output.stdout);
    let automation_id = automation_id_of(&events);
    let execution_id = events[0]["execution_id"].as_str().unwrap().to_owned();
    let approved = moto.runbook(
        &scratch,
        &["approve", &execution_id, "--comment", "looks fine", "--poll-interval", "0.05", "--format", "json"],
    );
    assert_eq!(approved.code, 0, "{}{}", approved.stdout, approved.stderr);
    let signals = automation_calls(moto, "SendAutomationSignal", "AutomationExecutionId", &automation_id);
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0]["SignalType"], "Approve");
    assert_eq!(signals[0]["Payload"]["Comment"], serde_json::json!(["looks fine"]));
    let (events, finished) = self::events(&approved);
    assert_eq!(finished["status"], "Success", "{}", approved.stdout);
    assert!(events.iter().any(|e| e["event"] == "step_finished" && e["step"] == "apply"));
    // The start was sent once, whatever followed it.
    assert_eq!(automation_calls(moto, "StartAutomationExecution", "DocumentName", name).len(), 1);
}

#[test]
fn reject_on_the_command_line_is_sent_to_ssm_and_the_run_fails() {
    let Some(moto) = moto("reject_on_the_command_line_is_sent_to_ssm_and_the_run_fails") else { return };
    let scratch = Scratch::new("ssm-remote-reject");
    let path = scratch.runbook("approval.yaml", APPROVAL);
    let name = "Runbook-Remote-Reject";
    let output = on_ssm(moto, &scratch, &path, name, &["--reject"]);
    assert_eq!(output.code, 4, "{}{}", output.stdout, output.stderr);
    let (events, finished) = events(&output);
    let automation_id = automation_id_of(&events);
    let signals = automation_calls(moto, "SendAutomationSignal", "AutomationExecutionId", &automation_id);
    assert_eq!(signals.iter().map(|s| s["SignalType"].as_str().unwrap()).collect::<Vec<_>>(), ["Reject"]);
    assert_eq!(finished["failed_steps"], serde_json::json!(["approve"]));
}

#[test]
fn ctrl_c_stops_the_ssm_execution_and_waits_for_it_to_be_cancelled() {
    let Some(moto) = moto("ctrl_c_stops_the_ssm_execution_and_waits_for_it_to_be_cancelled") else { return };
    let scratch = Scratch::new("ssm-remote-cancel");
    let path = scratch.runbook("remote.yaml", REMOTE);
    let name = "Runbook-Remote-Cancel";
    emulate(moto, name, serde_json::json!({"Steps": {"check": {"Reads": 100000}}}));
    let mut command = moto.command(&scratch);
    command
        .args(["run", &path, "--on", "ssm", "--name", name, "-p", "Who=ops", "--poll-interval", "0.05"])
        .args(["--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    let pid = child.id();
    // Once the follower has seen `check` start on SSM (its attempt is in the journal).
    runbook_tests::wait_until("check's attempt is journaled", || {
        latest(&scratch)
            .is_some_and(|(id, journal)| journal.attempts(&id).unwrap_or_default().iter().any(|a| a.step == "check"))
    });
    assert!(std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(6), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let events = runbook_tests::json_lines(&stdout);
    let automation_id = automation_id_of(&events);
    let stops = automation_calls(moto, "StopAutomationExecution", "AutomationExecutionId", &automation_id);
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["Type"], "Cancel");
    let finished = events.iter().rev().find(|e| e["event"] == "execution_finished").unwrap();
    assert_eq!(finished["status"], "Cancelled");
    assert!(!events.iter().any(|e| e["event"] == "step_started" && e["step"] == "last"));
}

#[test]
fn lost_answers_and_a_killed_follower_never_start_a_second_execution() {
    let Some(moto) = moto("lost_answers_and_a_killed_follower_never_start_a_second_execution") else { return };
    let scratch = Scratch::new("ssm-remote-lost");
    let path = scratch.runbook("approval.yaml", APPROVAL);
    let name = "Runbook-Remote-Lost";
    // The start takes effect but its answer is lost (the client sends it again with the same
    // ClientToken); then six answers in a row are lost, past the client's own retries.
    emulate(
        moto,
        name,
        serde_json::json!({"LostAnswers": {"StartAutomationExecution": 1, "GetAutomationExecution": 6}}),
    );
    let mut command = moto.command(&scratch);
    command
        .args(["run", &path, "--on", "ssm", "--name", name, "--wait", "--poll-interval", "0.05", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    runbook_tests::wait_until("the execution waits for approval", || {
        latest(&scratch).is_some_and(|(id, journal)| {
            journal.execution(&id).is_ok_and(|e| e.status == runbook::journal::Status::Waiting)
        })
    });
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("lost SSM") && stdout.contains("reached SSM again"), "{stdout}");
    let starts = automation_calls(moto, "StartAutomationExecution", "DocumentName", name);
    assert_eq!(starts.len(), 2, "the start was sent again after its answer was lost");
    assert_eq!(starts[0]["ClientToken"], starts[1]["ClientToken"], "with the same token");
    // Someone approves in the console; a resume follows the same execution to its end.
    let automation_id = automation_id_of(&runbook_tests::json_lines(&stdout));
    moto.boto3(&format!(
        "boto3.client('ssm').send_automation_signal(AutomationExecutionId='{automation_id}', SignalType='Approve')\nemit(1)"
    ));
    let execution_id = runbook_tests::only_execution_id(&scratch);
    let resumed =
        moto.runbook(&scratch, &["run", "--resume", &execution_id, "--poll-interval", "0.05", "--format", "json"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    let (events, finished) = events(&resumed);
    assert_eq!(finished["status"], "Success");
    let started: Vec<&str> =
        events.iter().filter(|e| e["event"] == "step_started").map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(started, ["apply"], "steps already in the journal are not put there again");
    assert_eq!(automation_calls(moto, "StartAutomationExecution", "DocumentName", name).len(), 2, "no start on resume");
    let listed = moto.boto3(&format!(
        "ssm = boto3.client('ssm')\n\
         emit(len(ssm.describe_automation_executions(Filters=[{{'Key': 'DocumentNamePrefix', 'Values': ['{name}']}}])['AutomationExecutionMetadataList']))"
    ));
    assert_eq!(listed, 1, "one execution in SSM");
}

#[test]
fn a_run_over_targets_on_ssm_reports_each_target_as_a_local_one_does() {
    let Some(moto) = moto("a_run_over_targets_on_ssm_reports_each_target_as_a_local_one_does") else { return };
    let scratch = Scratch::new("ssm-remote-targets");
    let path = scratch.runbook("remote.yaml", REMOTE);
    let name = "Runbook-Remote-Targets";
    emulate(moto, name, serde_json::json!({"Targets": {"i-2": {"Fail": true}, "i-4": {"Fail": true}}}));
    let output = on_ssm(
        moto,
        &scratch,
        &path,
        name,
        &[
            "--target-parameter-name",
            "Who",
            "--targets",
            "Key=ParameterValues,Values=i-1,i-2,i-3,i-4,i-5",
            "--max-concurrency",
            "2",
            "--max-errors",
            "1",
        ],
    );
    assert_eq!(output.code, 4, "{}{}", output.stdout, output.stderr);
    let (events, finished) = events(&output);
    assert_eq!(finished["status"], "Failed");
    let start = &automation_calls(moto, "StartAutomationExecution", "DocumentName", name)[0];
    assert_eq!(
        (&start["TargetParameterName"], &start["MaxConcurrency"], &start["MaxErrors"]),
        (&Value::from("Who"), &Value::from("2"), &Value::from("1"))
    );
    assert_eq!(
        start["Targets"],
        serde_json::json!([{"Key": "ParameterValues", "Values": ["i-1", "i-2", "i-3", "i-4", "i-5"]}])
    );
    let mut targets: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "target_finished")
        .map(|e| (e["target"].as_str().unwrap().to_owned(), e["status"].as_str().unwrap().to_owned()))
        .collect();
    targets.sort();
    // Launching stopped at the second error: i-5 was never launched.
    assert_eq!(
        targets,
        [("i-1", "Success"), ("i-2", "Failed"), ("i-3", "Success"), ("i-4", "Failed")]
            .map(|(t, s)| (t.to_owned(), s.to_owned()))
    );
    let last = events.iter().rev().find(|e| e["event"] == "target_finished").unwrap();
    assert_eq!((last["total"].as_u64(), last["failed"].as_u64()), (Some(5), Some(2)));
    // `runbook undo` has nothing to run on SSM.
    let undo = moto.runbook(&scratch, &["undo", finished["execution_id"].as_str().unwrap()]);
    assert_eq!(undo.code, 2, "{}", undo.stderr);
    assert!(undo.stderr.contains("ran on SSM Automation"), "{}", undo.stderr);
}

#[test]
fn approve_with_no_continue_sends_the_signal_and_a_later_resume_follows_on() {
    let Some(moto) = moto("approve_with_no_continue_sends_the_signal_and_a_later_resume_follows_on") else { return };
    let scratch = Scratch::new("ssm-remote-no-continue");
    let path = scratch.runbook("approval.yaml", APPROVAL);
    let name = "Runbook-Remote-NoContinue";
    let output = moto.runbook(&scratch, &["run", &path, "--on", "ssm", "--name", name, "--poll-interval", "0.05"]);
    assert_eq!(output.code, 7, "{}{}", output.stdout, output.stderr);
    let execution_id = runbook_tests::only_execution_id(&scratch);
    let approved = moto.runbook(&scratch, &["approve", &execution_id, "--no-continue"]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert!(approved.stderr.contains("sent Approve to SSM execution"), "{}", approved.stderr);
    let resumed =
        moto.runbook(&scratch, &["run", "--resume", &execution_id, "--poll-interval", "0.05", "--format", "json"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    let (_, finished) = events(&resumed);
    assert_eq!(finished["status"], "Success");
}

#[test]
fn an_approval_that_needs_two_approvers_is_signalled_once_from_here() {
    let Some(moto) = moto("an_approval_that_needs_two_approvers_is_signalled_once_from_here") else { return };
    let scratch = Scratch::new("ssm-remote-two-approvers");
    let two = APPROVAL.replace(
        "inputs: {Approvers: ['arn:aws:iam::123456789012:user/ops'], Message: 'Go ahead?'}",
        "inputs: {Approvers: ['arn:aws:iam::123456789012:user/a', 'arn:aws:iam::123456789012:user/b'], \
         MinRequiredApprovals: 2}",
    );
    let path = scratch.runbook("approval.yaml", &two);
    let name = "Runbook-Remote-TwoApprovers";
    let mut command = moto.command(&scratch);
    command
        .args(["run", &path, "--on", "ssm", "--name", name, "--approve", "--poll-interval", "0.05", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    let execution = || {
        moto.boto3(&format!(
            "ids = [e['AutomationExecutionId'] for e in boto3.client('ssm').describe_automation_executions(\
             Filters=[{{'Key': 'DocumentNamePrefix', 'Values': ['{name}']}}])['AutomationExecutionMetadataList']]\n\
             emit(ids[0] if ids else '')"
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
    };
    runbook_tests::wait_until("the execution started", || !execution().is_empty());
    let id = execution();
    let signals = || automation_calls(moto, "SendAutomationSignal", "AutomationExecutionId", &id).len();
    runbook_tests::wait_until("the follower approved", || signals() == 1);
    // The step still waits for a second approver: the follower goes on polling, without
    // approving again. Enough polls for a second signal to show if one were sent.
    let polls = || automation_calls(moto, "DescribeAutomationStepExecutions", "AutomationExecutionId", &id).len();
    let before = polls();
    runbook_tests::wait_until("the follower polled on", || polls() >= before + 6);
    assert_eq!(signals(), 1, "approved once from here");
    // A second approver, in the console.
    moto.boto3(&format!(
        "boto3.client('ssm').send_automation_signal(AutomationExecutionId='{id}', SignalType='Approve')\nemit(1)"
    ));
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(signals(), 2, "ours and the console's");
}

#[test]
fn sixty_steps_on_ssm_come_back_over_several_pages() {
    let Some(moto) = moto("sixty_steps_on_ssm_come_back_over_several_pages") else { return };
    let scratch = Scratch::new("ssm-remote-pages");
    let steps: String =
        (0..60).map(|i| format!("  - {{name: s{i}, action: aws:sleep, inputs: {{Duration: PT1S}}}}\n")).collect();
    let path = scratch.runbook("long.yaml", &format!("schemaVersion: '0.3'\nmainSteps:\n{steps}"));
    let name = "Runbook-Remote-Pages";
    let output = on_ssm(moto, &scratch, &path, name, &[]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    let (events, _) = events(&output);
    let finished: Vec<&str> =
        events.iter().filter(|e| e["event"] == "step_finished").map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(finished.len(), 60);
    assert_eq!((finished[0], finished[59]), ("s0", "s59"));
    let id = automation_id_of(&events);
    let paged = automation_calls(moto, "DescribeAutomationStepExecutions", "AutomationExecutionId", &id);
    assert!(paged.iter().any(|r| r["NextToken"].is_string()), "a second page was asked for");
}

#[test]
fn target_maps_on_ssm_run_one_child_per_map() {
    let Some(moto) = moto("target_maps_on_ssm_run_one_child_per_map") else { return };
    let scratch = Scratch::new("ssm-remote-maps");
    let path = scratch.runbook("remote.yaml", REMOTE);
    let maps = scratch.runbook("maps.yaml", "- {Who: [alpha]}\n- {Who: [beta], Count: ['3']}\n");
    let name = "Runbook-Remote-Maps";
    let output = on_ssm(moto, &scratch, &path, name, &["--target-maps", &maps]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    let (events, finished) = events(&output);
    assert_eq!(finished["status"], "Success");
    let start = &automation_calls(moto, "StartAutomationExecution", "DocumentName", name)[0];
    assert_eq!(start["TargetMaps"], serde_json::json!([{"Who": ["alpha"]}, {"Who": ["beta"], "Count": ["3"]}]));
    let announced = events.iter().find(|e| e["event"] == "fan_out").expect("the run over targets is announced");
    assert_eq!(announced["total"], 2);
    assert_eq!(events.iter().filter(|e| e["event"] == "target_finished").count(), 2);
}

#[test]
fn approve_goes_on_with_a_child_that_lives_only_in_ssm() {
    let Some(moto) = moto("approve_goes_on_with_a_child_that_lives_only_in_ssm") else { return };
    let scratch = Scratch::new("ssm-approve-child");
    let name = "Runbook-Greeting-AfterApproval";
    put_document(moto, name, &greeting("hey"), "YAML");
    let approve =
        "  - name: approve\n    action: aws:approve\n    inputs: {Approvers: ['arn:aws:iam::123456789012:user/ops']}\n";
    let parent = parent_of(&scratch, approve, name, None);
    let output = moto.runbook(&scratch, &["run", &parent]);
    assert_eq!(output.code, 7, "{}{}", output.stdout, output.stderr);
    let execution_id = runbook_tests::only_execution_id(&scratch);
    let approved = moto.runbook(&scratch, &["approve", &execution_id, "--format", "json"]);
    assert_eq!(approved.code, 0, "{}{}", approved.stdout, approved.stderr);
    let (_, finished) = events(&approved);
    assert_eq!(finished["outputs"]["child.Output"], serde_json::json!(["hey team"]));
}

#[test]
fn a_document_already_in_ssm_runs_there_by_name_at_the_version_planned_here() {
    let Some(moto) = moto("a_document_already_in_ssm_runs_there_by_name_at_the_version_planned_here") else { return };
    let scratch = Scratch::new("ssm-remote-by-name");
    let name = "Runbook-Remote-ByName";
    put_document(moto, name, REMOTE, "YAML");
    let reference = format!("ssm:{name}");
    let output = on_ssm(moto, &scratch, &reference, name, &["-p", "Who=ops"]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    let starts = automation_calls(moto, "StartAutomationExecution", "DocumentName", name);
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0]["DocumentVersion"], "1", "the version fetched and planned here");
    let created =
        moto.requests().iter().filter(|r| r["operation"] == "CreateDocument" && r["request"]["Name"] == name).count();
    assert_eq!(created, 1, "nothing published: only the test's own document");
}
