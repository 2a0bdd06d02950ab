//! Secrets sealed. A canary (one plain, one holding `"` and `\`) goes in as an `x-secret`
//! parameter, a SecureString default and a decrypted SecureString a step reads; it flows
//! through an updateVariable, a branch that fails on it, an approval message, a child runbook
//! and a script that prints and raises with it. Through every command (validate, plan in each
//! format, run in text and JSON, dry-runs offline, read-only and recorded, executions show,
//! approve) it must appear in no output and in no byte of the state directory or `$TMPDIR`,
//! raw or in any escaped form. And a resume must never feed a step the redaction mark where
//! an uninterrupted run passed the value.

use std::path::Path;
use std::process::{Command, Stdio};

use runbook_tests::moto::{Moto, moto};
use runbook_tests::{Output, Scratch, json_lines, kill_when_running, run_process, runbook};
use serde_json::{Value, json};

const PARENT: &str = r#"schemaVersion: '0.3'
parameters:
  Token: {type: String, x-secret: true}
  Length: {type: Integer}
  Stored: {type: String, default: '{{ssm:/runbook/canary/stored}}'}
  ReadName: {type: String}
variables:
  Held: {type: String, default: none}
mainSteps:
  - name: read
    action: aws:executeAwsApi
    inputs: {Service: ssm, Api: GetParameter, Name: '{{ ReadName }}', WithDecryption: true}
    outputs:
      - {Name: Value, Selector: $.Parameter.Value, Type: String}
  - name: hold
    action: aws:updateVariable
    inputs: {Name: 'variable:Held', Value: '{{ Token }}'}
  - name: compare
    action: aws:branch
    isCritical: false
    onFailure: step:ask
    inputs:
      Choices:
        - {NextStep: ask, Variable: '{{ Token }}', NumericEquals: 1}
      Default: ask
  - name: ask
    action: aws:approve
    inputs: {Approvers: [ops], Message: 'release {{ Token }} with {{ read.Value }} and {{ Stored }}'}
  - name: child
    action: aws:executeAutomation
    inputs:
      DocumentName: child
      RuntimeParameters: {Value: '{{ Token }}'}
  - name: echo
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Token: '{{ Token }}', Held: '{{ variable:Held }}', Read: '{{ read.Value }}', Stored: '{{ Stored }}'}
      Script: |
        def h(events, context):
            return events
    outputs:
      - {Name: Token, Selector: $.Payload.Token, Type: String}
  - name: measure
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Token: '{{ Token }}', Length: '{{ Length }}', Held: '{{ variable:Held }}'}
      Script: |
        def h(events, context):
            # The real value reaches steps that run after the approval (never the mark).
            return len(events['Token']) == events['Length'] and events['Held'] == events['Token']
    outputs:
      - {Name: Real, Selector: $.Payload, Type: Boolean}
  - name: reprs
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Token: '{{ Token }}'}
      Script: |
        import json
        def h(events, context):
            return [repr(events), json.dumps(events), json.dumps(events, ensure_ascii=False)]
  - name: shout
    action: aws:executeScript
    onFailure: Continue
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Token: '{{ Token }}'}
      Script: |
        import json, sys
        IN_SOURCE = r'''{{ Token }}'''
        def h(events, context):
            print('printed', events['Token'], json.dumps(events), repr(events), IN_SOURCE)
            print('to stderr', repr(IN_SOURCE), file=sys.stderr)
            raise RuntimeError('raised with ' + events['Token'] + ' ' + repr(events))
outputs: [echo.Token, read.Value, child.Output, measure.Real]
"#;

const CHILD: &str = r#"schemaVersion: '0.3'
parameters:
  Value: {type: String}
mainSteps:
  - name: use
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {V: '{{ Value }}'}
      Script: |
        def h(events, context):
            print('child got', events['V'])
            return events['V']
    outputs:
      - {Name: Got, Selector: $.Payload, Type: String}
outputs: [use.Got]
"#;

/// A runbook whose secret must match a pattern: validation must not repeat a bad value.
const PATTERNED: &str = "schemaVersion: '0.3'\nparameters:\n  Pin: {type: String, x-secret: true, allowedPattern: '^[0-9]{4}$'}\n  Count: {type: Integer, x-secret: true}\nmainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n";

/// Every form a canary could take in bytes, as Python itself writes them (the oracle is the
/// interpreter the scripts run in, not the engine's list): raw, `json.dumps` with and without
/// ASCII escapes, `repr`, and each of those inside JSON text once more; and a Rust debug
/// string.
fn forms(canary: &str) -> Vec<String> {
    let program = "import json, sys\ns = sys.argv[1]\n\
        forms = [s, json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1], repr(s)[1:-1]]\n\
        forms += [json.dumps(f)[1:-1] for f in list(forms)] + [json.dumps(f, ensure_ascii=False)[1:-1] for f in list(forms)]\n\
        print(json.dumps(sorted(set(forms))))";
    let output = Command::new("python3").args(["-c", program, canary]).output().unwrap();
    let mut forms: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    let debug = format!("{canary:?}");
    forms.push(debug[1..debug.len() - 1].to_owned());
    forms
}

fn assert_sealed(canary: &str, what: &str, bytes: &[u8]) {
    for form in forms(canary) {
        assert!(!bytes.windows(form.len()).any(|w| w == form.as_bytes()), "{what} holds the canary as {form:?}");
    }
}

fn assert_output_sealed(canary: &str, what: &str, output: &Output) {
    assert_sealed(canary, &format!("the stdout of {what}"), output.stdout.as_bytes());
    assert_sealed(canary, &format!("the stderr of {what}"), output.stderr.as_bytes());
}

/// Every byte of every file below `dir`.
fn tree_bytes(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            tree_bytes(&path, out);
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap_or_default()));
        }
    }
}

/// Keeps a command's output for the final scan and hands it back for its own checks.
fn keep<'a>(outputs: &'a mut Vec<(String, Output)>, what: &str, output: Output) -> &'a Output {
    outputs.push((what.to_owned(), output));
    &outputs.last().unwrap().1
}

/// One canary's trip: a scratch state directory and `$TMPDIR`, the runbooks, and the commands
/// run so far, with their outputs.
struct Trip<'m> {
    moto: &'m Moto,
    scratch: Scratch,
    tmp: std::path::PathBuf,
    /// The parent runbook, and its parameters as `-p` arguments.
    path: String,
    parameters: Vec<String>,
    outputs: Vec<(String, Output)>,
}

impl Trip<'_> {
    /// Runs `runbook ARGS` against moto, keeps its output for the final scan, and hands it back.
    fn go(&mut self, what: &str, args: &[&str]) -> &Output {
        let tmp = self.tmp.display().to_string();
        let output = self.moto.runbook_with(&self.scratch, &[("TMPDIR", Some(tmp.as_str()))], args);
        keep(&mut self.outputs, what, output)
    }

    /// `runbook COMMAND PARENT -p ... EXTRA`.
    fn parent(&mut self, what: &str, command: &str, extra: &[&str]) -> &Output {
        let path = self.path.clone();
        let mut args = vec![command, path.as_str()];
        let parameters = self.parameters.clone();
        for parameter in &parameters {
            args.extend(["-p", parameter.as_str()]);
        }
        args.extend_from_slice(extra);
        self.go(what, &args)
    }
}

/// Validate, plan in every format, and every kind of dry-run: none runs anything.
fn canary_without_running(trip: &mut Trip<'_>, canary: &str) {
    assert_eq!(trip.parent("validate", "validate", &[]).code, 0);
    let patterned = trip.scratch.runbook("patterned.yaml", PATTERNED);
    let (pin, count) = (format!("Pin={canary}"), format!("Count={canary}"));
    let pattern = trip.go("validate of a bad secret", &["validate", &patterned, "-p", &pin, "-p", &count]);
    assert_eq!(pattern.code, 1, "{}", pattern.stdout);
    assert!(
        pattern.stdout.contains("[parameter-pattern]") && pattern.stdout.contains("[parameter-type]"),
        "{}",
        pattern.stdout
    );
    for format in ["text", "json", "dot", "mermaid"] {
        let planned = trip.parent(&format!("plan --format {format}"), "plan", &["--format", format]);
        assert_eq!(planned.code, 0, "{}", planned.stderr);
    }
    for format in ["text", "json"] {
        let dry = trip.parent(&format!("dry-run {format}"), "run", &["--dry-run", "--format", format]);
        assert_eq!(dry.code, 0, "{}", dry.stderr);
    }
    let read_only = trip.parent("read-only dry-run", "run", &["--dry-run=read-only"]);
    assert_eq!(read_only.code, 0, "{}", read_only.stderr);
    assert!(read_only.stdout.contains("called for real"), "{}", read_only.stdout);
    assert_eq!(trip.parent("recorded dry-run", "run", &["--dry-run", "--record"]).code, 0);
}

/// A run in JSON that stops at the approval, shown, approved from "another terminal" (which
/// needs the secret again), shown again; and the same run in text, pre-approved.
fn canary_running(trip: &mut Trip<'_>) {
    let waiting = trip.parent("run --format json", "run", &["--format", "json"]);
    assert_eq!(waiting.code, 7, "{}\n{}", waiting.stdout, waiting.stderr);
    let events = json_lines(&waiting.stdout);
    let id = events[0]["execution_id"].as_str().unwrap().to_owned();
    assert!(waiting.stdout.contains("release ********"), "{}", waiting.stdout);
    let compare = events.iter().rfind(|e| e["event"] == "step_finished" && e["step"] == "compare").unwrap();
    assert_eq!(compare["status"], "Failed", "the branch on the secret fails, quoting it redacted: {compare}");
    trip.go("executions show (waiting)", &["executions", "show", &id]);
    // The journal does not keep the secret: going on needs it again.
    let refused = trip.go("approve without the secret", &["approve", &id, "--format", "json"]);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    // With --format json, the refusal is JSON on stdout.
    assert!(refused.stdout.contains("pass it again with -p Token=VALUE"), "{}", refused.stdout);
    let token = trip.parameters[0].clone();
    let approved = trip.go("approve", &["approve", &id, "-p", &token, "--format", "json"]);
    assert_eq!(approved.code, 0, "{}\n{}", approved.stdout, approved.stderr);
    let events = json_lines(&approved.stdout);
    let finished = events.iter().rfind(|e| e["event"] == "execution_finished").unwrap();
    assert_eq!(finished["outputs"]["echo.Token"], json!(["********"]));
    assert_eq!(finished["outputs"]["read.Value"], json!(["********"]));
    assert_eq!(finished["outputs"]["measure.Real"], json!(["true"]), "a step got the mark, not the secret");
    let shout = events.iter().rfind(|e| e["event"] == "step_finished" && e["step"] == "shout").unwrap();
    let error = shout["error"].as_str().unwrap();
    assert!(error.starts_with("the script raised RuntimeError: raised with ********"), "{shout}");
    for format in ["text", "json"] {
        let shown =
            trip.go(&format!("executions show --format {format}"), &["executions", "show", &id, "--format", format]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
    }
    trip.go("executions list", &["executions", "list"]);
    let text = trip.parent("run (text)", "run", &["--approve"]);
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
}

fn canary_run(moto: &Moto, canary: &str, label: &str) {
    let scratch = Scratch::new(&format!("canary-{label}"));
    let tmp = scratch.dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let read_name = format!("/runbook/canary/{label}/read");
    // The same names are reused across canaries: each run puts its own values first.
    moto.boto3(&format!(
        "ssm = boto3.client('ssm')\n\
         ssm.put_parameter(Name='/runbook/canary/stored', Value={stored:?}, Type='SecureString', Overwrite=True)\n\
         ssm.put_parameter(Name='{read_name}', Value={read:?}, Type='SecureString', Overwrite=True)\n\
         emit(True)",
        stored = format!("{canary}-stored"),
        read = format!("{canary}-read"),
    ));
    let path = scratch.runbook("parent.yaml", PARENT);
    scratch.runbook("child.yaml", CHILD);
    let parameters =
        vec![format!("Token={canary}"), format!("ReadName={read_name}"), format!("Length={}", canary.chars().count())];
    let mut trip = Trip { moto, scratch, tmp, path, parameters, outputs: Vec::new() };
    canary_without_running(&mut trip, canary);
    canary_running(&mut trip);

    for (what, output) in &trip.outputs {
        assert_output_sealed(canary, what, output);
    }
    let mut files = Vec::new();
    tree_bytes(Path::new(&trip.scratch.state()), &mut files);
    tree_bytes(&trip.tmp, &mut files);
    let names: Vec<_> = files.iter().map(|(name, _)| name).collect();
    assert!(names.iter().any(|name| name.ends_with("journal.sqlite")), "{names:?}");
    for (name, bytes) in &files {
        assert_sealed(canary, name, bytes);
    }
}

#[test]
fn a_secret_canary_appears_in_no_output_and_no_stored_byte() {
    let Some(moto) = moto("a_secret_canary_appears_in_no_output_and_no_stored_byte") else { return };
    canary_run(moto, "cAnArY-7f3e9d", "plain");
    canary_run(moto, r#"qu"ote\back-c4n4ry"#, "escaped");
    canary_run(moto, "sëcrét-ünïcödé-9", "unicode");
}

/// A step writes its secret output; a later step compares it with the secret. The engine is
/// killed while the later step runs, and resumed.
const SEALED: &str = r#"schemaVersion: '0.3'
parameters:
  Token: {type: String, x-secret: true}
  Trail: {type: String}
mainSteps:
  - name: derive
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Token: '{{ Token }}', Trail: '{{ Trail }}'}
      Script: |
        def h(events, context):
            open(events['Trail'], 'a').write('derive\n')
            return 'got ' + events['Token']
    outputs:
      - {Name: Value, Selector: $.Payload, Type: String}
  - name: check
    action: aws:executeScript
    x-idempotent: true
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Derived: '{{ derive.Value }}', Token: '{{ Token }}', Trail: '{{ Trail }}'}
      Script: |
        import os, time
        def h(events, context):
            open(events['Trail'], 'a').write('check\n')
            while not os.path.exists(events['Trail'] + '.go'):
                time.sleep(0.05)
            return events['Derived'] == 'got ' + events['Token']
    outputs:
      - {Name: Match, Selector: $.Payload, Type: Boolean}
outputs: [check.Match]
"#;

fn spawn(scratch: &Scratch, path: &str) -> std::process::Child {
    run_process(scratch, path, &["-p", "Token=s3kr1t"]).stderr(Stdio::null()).spawn().unwrap()
}

#[test]
fn r_a_resume_never_feeds_a_step_the_redaction_mark_for_a_secret_output() {
    // Uninterrupted: the comparison holds.
    let reference = Scratch::new("sealed-reference");
    std::fs::write(format!("{}.go", reference.trail_path()), "").unwrap();
    let path = reference.runbook("runbook.yaml", SEALED);
    let uninterrupted = spawn(&reference, &path).wait_with_output().unwrap();
    let events = json_lines(&String::from_utf8_lossy(&uninterrupted.stdout));
    let expected = events.iter().rfind(|e| e["event"] == "execution_finished").unwrap()["outputs"].clone();
    assert_eq!(expected, json!({"check.Match": ["true"]}));

    // Killed in `check`; the journal kept `derive.Value` redacted.
    let scratch = Scratch::new("sealed");
    let path = scratch.runbook("runbook.yaml", SEALED);
    let engine = spawn(&scratch, &path);
    let id = kill_when_running(&scratch, engine, "check");
    let state = scratch.state();
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let resume = |extra: &[&str]| {
        let mut args = vec!["run", "--resume", &id, "--state-dir", &state, "--format", "json", "-p", "Token=s3kr1t"];
        args.extend_from_slice(extra);
        runbook(&args)
    };
    // `derive` is not safe to repeat: the resume refuses, naming it.
    let refused = resume(&[]);
    assert_eq!(refused.code, 8, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("step `derive`") && refused.stderr.contains("Value"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("--resume {id} --rerun derive")), "{}", refused.stderr);
    assert_eq!(scratch.trail(), ["derive", "check"]);
    // Told to run it again, the resume derives the value anew and ends as the uninterrupted run.
    let resumed = resume(&["--rerun", "derive"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let finished = json_lines(&resumed.stdout).into_iter().rfind(|e| e["event"] == "execution_finished").unwrap();
    assert_eq!(finished["outputs"], expected);
    assert_eq!(scratch.trail(), ["derive", "check", "derive", "check"]);
}

/// The secret output was read by a step that finished before the crash; the step that runs
/// on resume reads nothing sealed. Nothing must run again, nothing is refused.
#[test]
fn r_a_resume_goes_on_when_no_step_that_runs_needs_a_sealed_secret() {
    let scratch = Scratch::new("sealed-unneeded");
    let text = SEALED.replace(
        "outputs: [check.Match]\n",
        "  - name: last\n    action: aws:executeScript\n    x-idempotent: true\n    inputs:\n      Runtime: python3.11\n      \
         Handler: h\n      InputPayload: {Trail: '{{ Trail }}'}\n      Script: |\n        import os, time\n        \
         def h(events, context):\n            open(events['Trail'], 'a').write('last\\n')\n            \
         while not os.path.exists(events['Trail'] + '.last'):\n                time.sleep(0.05)\n            \
         return 1\noutputs: [check.Match]\n",
    );
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let path = scratch.runbook("runbook.yaml", &text);
    let engine = spawn(&scratch, &path);
    let id = kill_when_running(&scratch, engine, "last");
    let state = scratch.state();
    std::fs::write(format!("{}.last", scratch.trail_path()), "").unwrap();
    let resumed = runbook(&["run", "--resume", &id, "--state-dir", &state, "--format", "json", "-p", "Token=s3kr1t"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let finished = json_lines(&resumed.stdout).into_iter().rfind(|e| e["event"] == "execution_finished").unwrap();
    assert_eq!(finished["outputs"], json!({"check.Match": ["true"]}));
    assert_eq!(scratch.trail(), ["derive", "check", "last", "last"]);
}

/// A decrypted SecureString read by a step that only reads is derived again on resume: the
/// step is safe to repeat, so no `--rerun` is needed.
const SEALED_READ: &str = r#"schemaVersion: '0.3'
parameters:
  Trail: {type: String}
mainSteps:
  - name: read
    action: aws:executeAwsApi
    inputs: {Service: ssm, Api: GetParameter, Name: /runbook/sealed/read, WithDecryption: true}
    outputs:
      - {Name: Value, Selector: $.Parameter.Value, Type: String}
  - name: check
    action: aws:executeScript
    x-idempotent: true
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Read: '{{ read.Value }}', Trail: '{{ Trail }}'}
      Script: |
        import os, time
        def h(events, context):
            open(events['Trail'], 'a').write('check\n')
            while not os.path.exists(events['Trail'] + '.go'):
                time.sleep(0.05)
            return events['Read'] == 'd3crypted-value'
    outputs:
      - {Name: Match, Selector: $.Payload, Type: Boolean}
outputs: [check.Match]
"#;

#[test]
fn r_a_resume_reads_a_decrypted_secret_again_instead_of_passing_its_mark() {
    let Some(moto) = moto("r_a_resume_reads_a_decrypted_secret_again_instead_of_passing_its_mark") else { return };
    let scratch = Scratch::new("sealed-read");
    moto.boto3(
        "boto3.client('ssm').put_parameter(Name='/runbook/sealed/read', Value='d3crypted-value', \
         Type='SecureString', Overwrite=True)\nemit(True)",
    );
    let path = scratch.runbook("runbook.yaml", SEALED_READ);
    let trail = format!("Trail={}", scratch.trail_path());
    let engine = moto
        .command(&scratch)
        .args(["run", &path, "--format", "json", "-p", &trail])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = kill_when_running(&scratch, engine, "check");
    let state = scratch.state();
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let resumed = moto.runbook(&scratch, &["run", "--resume", &id, "--format", "json"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let finished = json_lines(&resumed.stdout).into_iter().rfind(|e| e["event"] == "execution_finished").unwrap();
    assert_eq!(finished["outputs"], json!({"check.Match": ["true"]}));
    let shown: Value =
        serde_json::from_str(&runbook(&["executions", "show", &id, "--state-dir", &state, "--format", "json"]).stdout)
            .unwrap();
    let reads = shown["attempts"].as_array().unwrap().iter().filter(|a| a["step"] == "read").count();
    assert_eq!(reads, 2, "the read ran again on resume");
}
