//! `runbook test`: every mock kind, attempt ranges and iterations, the virtual clock, coverage,
//! scaffolding, JUnit, GitHub annotations, bad scenario files, and a scenario against moto.

use serde_json::Value;

use runbook_tests::moto::moto;
use runbook_tests::{Output, Scratch, project_root, runbook};

/// A runbook that uses every kind of step a scenario mocks or answers: a real script reading
/// the date, an hour's sleep, a wait on EC2 of up to 30 minutes, an API call whose outputs are
/// selected from the response, a retried script, an approval, a pause, and a child runbook.
const KINDS: &str = r#"
schemaVersion: '0.3'
parameters:
  Name: {type: String, default: world}
outputs: [early.Stamp, late.Stamp, greet.Greeting, child.Output]
mainSteps:
  - name: early
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {When: '{{ global:DATE_TIME }}'}
      Script: "def h(e, c):\n    return {'Stamp': e['When']}"
    outputs: [{Name: Stamp, Selector: $.Payload.Stamp, Type: String}]
  - name: nap
    action: aws:sleep
    inputs: {Duration: PT1H}
  - name: late
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {When: '{{ global:DATE_TIME }}'}
      Script: "def h(e, c):\n    return {'Stamp': e['When']}"
    outputs: [{Name: Stamp, Selector: $.Payload.Stamp, Type: String}]
  - name: waitRunning
    action: aws:waitForAwsResourceProperty
    timeoutSeconds: 1800
    onFailure: Continue
    isCritical: false
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: [i-0123456789abcdef0]
      PropertySelector: $.Reservations[0].Instances[0].State.Name
      DesiredValues: [running]
  - name: lookup
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances, InstanceIds: [i-0123456789abcdef0]}
    outputs: [{Name: Type, Selector: '$.Reservations[0].Instances[0].InstanceType', Type: String}]
  - name: greet
    action: aws:executeScript
    maxAttempts: 3
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Name: '{{ Name }}'}
      Script: "def h(e, c):\n    return 'hello ' + e['Name']"
    outputs: [{Name: Greeting, Selector: $.Payload, Type: String}]
  - name: approval
    action: aws:approve
    inputs: {Approvers: ['arn:aws:iam::123456789012:role/ops']}
  - name: hold
    action: aws:pause
    inputs: {}
  - name: child
    action: aws:executeAutomation
    inputs: {DocumentName: kinds-child, RuntimeParameters: {Who: ['{{ greet.Greeting }}']}}
"#;

const CHILD: &str = r#"
schemaVersion: '0.3'
parameters:
  Who: {type: String}
outputs: [echo.Said]
mainSteps:
  - name: echo
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Who: '{{ Who }}'}
      Script: "def h(e, c):\n    return e['Who'] + '!'"
    outputs: [{Name: Said, Selector: $.Payload, Type: String}]
"#;

const KINDS_SCENARIOS: &str = r#"
defaults:
  answers: {approval: approve, hold: resume}
  aws:
    - call: ec2.DescribeInstances
      response: {Reservations: [{Instances: [{InstanceId: i-0123456789abcdef0, InstanceType: t3.micro, State: {Name: pending}}]}]}
scenarios:
  - name: everything real but AWS, on the virtual clock
    expect:
      status: Success
      path: [early, nap, late, waitRunning, lookup, greet, approval, hold, child]
      steps:
        waitRunning: {status: TimedOut, error: timed out after 1800 s}
        lookup: {exact_outputs: {Type: t3.micro}}
        child: {outputs: {Status: Success}}
      outputs:
        early.Stamp: [2026-01-01_00.00.00]
        greet.Greeting: [hello world]
        child.Output: [hello world!]

  - name: mocks of every kind
    now: 2030-06-01T12:00:00Z
    parameters: {Name: mocks}
    steps:
      early: {payload: {Stamp: mocked}}
      waitRunning: {timeout: true}
      lookup: {response: {Reservations: [{Instances: [{InstanceType: m5.large}]}]}}
      greet:
        - attempts: 1-2
          error: {code: Flaky, message: not yet}
        - attempts: 3
          outputs: {Greeting: hi from a mock}
      child: {outputs: {ExecutionId: 0c0ffee0-0000-4000-8000-000000000000, Status: Success, Output: [mocked]}}
    expect:
      status: Success
      steps:
        waitRunning: TimedOut
        greet: {status: Success, attempts: 3, exact_outputs: {Greeting: hi from a mock}}
        lookup: {outputs: {Type: m5.large}}
      outputs:
        early.Stamp: [mocked]
        late.Stamp: [2030-06-01_13.00.00]
        child.Output: [mocked]
      not_called: [ec2.DescribeInstances]

  - name: a rejected approval fails the run
    answers: {approval: reject}
    steps:
      waitRunning: {timeout: true}
    expect:
      status: Failed
      path: [early, nap, late, waitRunning, lookup, greet, approval]
      steps:
        approval: Failed

  - name: a step cancelled by Ctrl-C
    steps:
      greet: {cancel: true}
      waitRunning: {timeout: true}
    expect:
      status: Cancelled
      path: [early, nap, late, waitRunning, lookup, greet]
"#;

pub fn json(output: &Output) -> Value {
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", output.stdout, output.stderr))
}

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|scenario| scenario["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in {report:#}"))
}

/// A scratch directory holding the kinds runbook, its child and its scenarios.
pub fn kinds(scratch: &Scratch, scenarios: &str) -> String {
    scratch.runbook("kinds.yaml", KINDS);
    scratch.runbook("kinds-child.yaml", CHILD);
    scratch.runbook("kinds.test.yaml", scenarios)
}

#[test]
fn every_mock_kind_through_the_real_runner() {
    let scratch = Scratch::new("scenario-kinds");
    let file = kinds(&scratch, KINDS_SCENARIOS);
    let output = runbook(&["test", &file, "--format", "json"]);
    let report = json(&output);
    for scenario in report["scenarios"].as_array().unwrap() {
        assert_eq!(scenario["passed"], true, "{scenario:#}");
    }
    assert_eq!(output.code, 0, "{}", output.stdout);
    // A sleep of an hour and a wait of half an hour passed on the virtual clock.
    let real = scenario(&report, "everything real but AWS, on the virtual clock");
    assert!(real["virtual_ms"].as_u64().unwrap() >= 5_400_000, "{real:#}");
    eprintln!("PT1H sleep and PT30M wait took {:.0} ms of wall time", real["wall_ms"].as_f64().unwrap());
    // The wait polled DescribeInstances on the virtual clock until its time limit.
    let polls = real["calls"].as_array().unwrap().iter().filter(|c| c["call"] == "ec2.DescribeInstances").count();
    assert!(polls > 100, "the wait polled {polls} times");
    // The real scripts read the fixed clock, which the hour's sleep moved on: the scenarios
    // expect `early.Stamp` at the start and `late.Stamp` an hour after `now`.
}

/// `runbook test` on the kinds runbook with these scenarios, in a fresh scratch directory.
fn test_kinds(name: &str, scenarios: &str) -> Output {
    let scratch = Scratch::new(name);
    let file = kinds(&scratch, scenarios);
    runbook(&["test", &file])
}

#[test]
fn without_an_answer_the_run_waits() {
    let output = test_kinds(
        "scenario-waits",
        r#"
scenarios:
  - name: nobody answers the approval
    steps:
      waitRunning: {timeout: true}
      lookup: {outputs: {Type: x}}
    expect:
      status: Waiting
      path: [early, nap, late, waitRunning, lookup, greet, approval]
"#,
    );
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert!(output.stdout.contains("1 passed, 0 failed"), "{}", output.stdout);
}

#[test]
fn an_aws_call_without_a_mock_fails_the_scenario_and_names_the_call() {
    let output = test_kinds(
        "scenario-unmocked",
        r#"
scenarios:
  - name: forgot the EC2 mock
    answers: {approval: approve, hold: resume}
    expect:
      status: Success
"#,
    );
    assert_eq!(output.code, 1, "{}", output.stdout);
    assert!(
        output.stdout.contains("ec2.DescribeInstances was called with {\"InstanceIds\":[\"i-0123456789abcdef0\"]}")
            && output.stdout.contains("no mock answers it"),
        "{}",
        output.stdout
    );
}

#[test]
fn a_failing_scenario_shows_the_path_diff_and_its_line_for_people_ci_and_junit() {
    let scratch = Scratch::new("scenario-failing");
    let file = kinds(
        &scratch,
        r#"
defaults:
  steps:
    waitRunning: {timeout: true}
    lookup: {outputs: {Type: x}}
  answers: {approval: approve, hold: resume}
scenarios:
  - name: passes
    expect: {status: Success}
  - name: expects the wrong way
    steps:
      greet: {error: boom}
    expect:
      status: Success
      path: [early, nap, late, waitRunning, lookup, greet, approval, hold, child]
      steps:
        greet: {error: bang}
"#,
    );
    let junit = scratch.dir.join("junit.xml");
    let junit_arg = junit.display().to_string();
    let output = runbook(&["test", &file, "--junit", &junit_arg]);
    assert_eq!(output.code, 1, "{}", output.stdout);
    let text = &output.stdout;
    assert!(text.contains("PASS") && text.contains("FAIL"), "{text}");
    assert!(text.contains("status: expected Success, got Failed (") && text.contains("`greet`: boom)"), "{text}");
    assert!(text.contains("path differs at step 7: expected `approval`, but the run ended"), "{text}");
    assert!(text.contains("- approval") && text.contains("- child") && text.contains("  greet"), "{text}");
    assert!(text.contains("its error does not contain \"bang\": boom"), "{text}");
    assert!(text.contains(&format!("at {file}:10")), "{text}");
    assert!(text.contains("2 scenarios run: 1 passed, 1 failed"), "{text}");

    // JUnit: one testsuite per file, one testcase per scenario, the failure with its diff.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let document = roxmltree::Document::parse(&xml).unwrap();
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("2"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0].attribute("name"), Some(file.as_str()));
    let cases: Vec<_> = suites[0].children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2);
    let failed = cases.iter().find(|case| case.attribute("name") == Some("expects the wrong way")).unwrap();
    assert!(failed.attribute("classname").unwrap().ends_with("kinds.yaml"));
    assert!(failed.attribute("time").is_some());
    let failure = failed.children().find(|n| n.has_tag_name("failure")).expect("a failure element");
    assert!(failure.attribute("message").unwrap().starts_with("status: expected Success, got Failed"));
    assert!(failure.text().unwrap().contains("- approval"), "{xml}");
    let passed = cases.iter().find(|case| case.attribute("name") == Some("passes")).unwrap();
    assert!(passed.children().all(|n| !n.has_tag_name("failure")));

    // GitHub: an annotation at the scenario's line.
    let github = runbook(&["test", &file, "--format", "github"]);
    assert_eq!(github.code, 1);
    let annotation = github.stdout.lines().find(|line| line.starts_with("::error ")).expect("an annotation");
    assert!(annotation.starts_with(&format!("::error file={file},line=10,title=scenario expects the wrong way::")));
    assert!(annotation.contains("%0A"), "multi-line messages are escaped: {annotation}");

    // -E runs only the matching scenario.
    let filtered = runbook(&["test", &file, "-E", "passes"]);
    assert_eq!(filtered.code, 0, "{}", filtered.stdout);
    assert!(filtered.stdout.contains("1 scenarios run: 1 passed"), "{}", filtered.stdout);
}

#[test]
fn coverage_lists_the_untaken_edges_and_min_coverage_fails_under_it() {
    let root = project_root();
    let runbook_path = root.join("examples/restart-unhealthy-instance.yaml");
    let scratch = Scratch::new("scenario-coverage");
    let file = scratch.runbook(
        "partial.test.yaml",
        &format!(
            r#"
runbook: {}
defaults:
  parameters: {{InstanceId: i-0123456789abcdef0}}
scenarios:
  - name: healthy
    aws:
      - call: ec2.DescribeInstanceStatus
        response: {{InstanceStatuses: [{{SystemStatus: {{Status: ok}}}}]}}
    expect: {{status: Success, path: [describeStatus, decide, report]}}
"#,
            runbook_path.display()
        ),
    );
    let output = runbook(&["test", &file, "--coverage"]);
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert!(output.stdout.contains("2 of 7 edges (28.6%)"), "{}", output.stdout);
    assert!(output.stdout.contains("decide -[choice[0]]-> restart never taken"), "{}", output.stdout);
    assert!(output.stdout.contains("restart -[on_failure]-> report never taken"), "{}", output.stdout);
    assert!(output.stdout.contains("start -[on_cancel]-> report never taken"), "{}", output.stdout);
    let below = runbook(&["test", &file, "--min-coverage", "50"]);
    assert_eq!(below.code, 1, "{}", below.stdout);
    assert!(below.stdout.contains("covers 28.6% of its edges, under --min-coverage 50"), "{}", below.stdout);
    let report = json(&runbook(&["test", &file, "--format", "json"]));
    assert_eq!(report["coverage"][0]["edges"], 7);
    assert_eq!(report["coverage"][0]["taken"], 2);
    assert_eq!(runbook(&["test", &file, "--min-coverage", "150"]).code, 2);
}

#[test]
fn shipped_runbooks_and_examples_pass_their_scenarios_with_full_coverage() {
    let root = project_root();
    for folder in ["runbooks", "examples"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.ends_with(".yaml") && !name.ends_with(".test.yaml") {
                let scenarios = path.with_file_name(name.replace(".yaml", ".test.yaml"));
                assert!(scenarios.is_file(), "{} has no scenario file", path.display());
            }
        }
    }
    let runbooks = root.join("runbooks").display().to_string();
    let examples = root.join("examples").display().to_string();
    let output = runbook(&["test", &runbooks, &examples, "--min-coverage", "100", "--format", "json"]);
    let report = json(&output);
    assert_eq!(output.code, 0, "{:#}", report);
    assert_eq!(report["coverage"].as_array().unwrap().len(), 8);
    for coverage in report["coverage"].as_array().unwrap() {
        assert_eq!(coverage["percent"], 100.0, "{coverage:#}");
    }
    assert!(report["summary"]["passed"].as_u64().unwrap() >= 17, "{:#}", report["summary"]);
}

#[test]
fn a_scaffold_runs_and_takes_every_edge() {
    let root = project_root();
    let scratch = Scratch::new("scenario-scaffold");
    for name in ["restart-unhealthy-instance.yaml", "local-maintenance.yaml", "stop-idle-instance.yaml"] {
        let source =
            ["examples", "runbooks"].iter().map(|dir| root.join(dir).join(name)).find(|p| p.is_file()).unwrap();
        let copy = scratch.runbook(name, &std::fs::read_to_string(&source).unwrap());
        let output = runbook(&["test", "--scaffold", &copy]);
        assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
        assert!(output.stdout.starts_with("wrote "), "{}", output.stdout);
        // Once written, it is not replaced without --force.
        assert_eq!(runbook(&["test", "--scaffold", &copy]).code, 2);
    }
    let text = std::fs::read_to_string(scratch.dir.join("restart-unhealthy-instance.test.yaml")).unwrap();
    assert!(text.contains("- name: \"decide -[choice[0]]-> restart\""), "{text}");
    assert!(text.contains("\"restart\": {\"error\":"), "{text}");
    assert!(text.contains("\"start\": {\"cancel\":true}"), "{text}");
    assert!(
        text.contains("parameters: {\"DryRun\":false}") || text.contains("\"SystemStatus\":\"impaired\""),
        "{text}"
    );
    let dir = scratch.dir.display().to_string();
    let output = runbook(&["test", &dir, "--min-coverage", "100", "--format", "json"]);
    let report = json(&output);
    assert_eq!(output.code, 0, "{report:#}");
    assert_eq!(report["summary"]["failed"], 0);
}

#[test]
fn runbooks_walked_by_validate_skip_scenario_files() {
    let root = project_root();
    let output = runbook(&["validate", &root.join("runbooks").display().to_string()]);
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert!(!output.stdout.contains(".test.yaml"), "{}", output.stdout);
}

#[test]
fn a_scenario_with_an_endpoint_runs_against_moto() {
    let Some(moto) = moto("scenario-endpoint") else { return };
    moto.boto3(
        "s3 = boto3.client('s3')\n\
         for name in ['scenario-data', 'scenario-logs']:\n    s3.create_bucket(Bucket=name)\n\
         emit(True)",
    );
    let root = project_root();
    let scratch = Scratch::new("scenario-endpoint");
    let file = scratch.runbook(
        "moto.test.yaml",
        &format!(
            r#"
runbook: {}
scenarios:
  - name: logging turned on in moto
    endpoint: {}
    parameters: {{BucketName: scenario-data, TargetBucket: scenario-logs}}
    expect:
      status: Success
      steps:
        enableLogging: {{status: Failed, error: InvalidTargetBucketForLogging}}
        verifyLogging: Success
      calls: [s3.GetBucketLogging, s3.PutBucketLogging, s3.GetBucketAcl, s3.PutBucketAcl, s3.PutBucketLogging,
              s3.GetBucketLogging]
"#,
            root.join("runbooks/enable-s3-access-logging.yaml").display(),
            moto.url
        ),
    );
    let output = runbook(&["test", &file]);
    assert_eq!(output.code, 0, "{}", output.stdout);
    let logging = moto.boto3("emit(boto3.client('s3').get_bucket_logging(Bucket='scenario-data')['LoggingEnabled'])");
    assert_eq!(logging["TargetBucket"], "scenario-logs");
}

#[test]
fn reports_show_no_secret() {
    let scratch = Scratch::new("scenario-secrets");
    scratch.runbook(
        "secret.yaml",
        r#"
schemaVersion: '0.3'
parameters:
  Token: {type: String, x-secret: true}
mainSteps:
  - name: read
    action: aws:executeAwsApi
    inputs: {Service: ssm, Api: GetParameter, Name: /app/key, WithDecryption: true}
    outputs: [{Name: Key, Selector: $.Parameter.Value, Type: String}]
  - name: store
    action: aws:executeAwsApi
    inputs: {Service: ssm, Api: PutParameter, Name: /app/both, Value: '{{ Token }}/{{ read.Key }}', Type: SecureString}
"#,
    );
    let file = scratch.runbook(
        "secret.test.yaml",
        r#"
defaults:
  parameters: {Token: parameter-canary-7f3a}
  aws:
    - call: ssm.GetParameter
      response: {Parameter: {Name: /app/key, Type: SecureString, Value: decrypted-canary-91bc}}
scenarios:
  - name: the put is not mocked
    expect: {status: Success}
  - name: the put is expected with other values
    aws:
      - {call: ssm.PutParameter, response: {Version: 1}}
    expect:
      calls: [ssm.GetParameter, {call: ssm.PutParameter, request: {Value: other}}]
"#,
    );
    let junit = scratch.dir.join("junit.xml");
    let junit_arg = junit.display().to_string();
    for format in ["text", "json", "github"] {
        let output = runbook(&["test", &file, "--format", format, "--junit", &junit_arg]);
        assert_eq!(output.code, 1, "{}", output.stdout);
        let junit = std::fs::read_to_string(&junit).unwrap();
        assert!(output.stdout.contains("ssm.PutParameter") && junit.contains("ssm.PutParameter"), "{}", output.stdout);
        for text in [&output.stdout, &output.stderr, &junit] {
            assert!(!text.contains("parameter-canary-7f3a") && !text.contains("decrypted-canary-91bc"), "{text}");
        }
    }
}
