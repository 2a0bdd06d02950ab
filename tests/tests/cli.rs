//! The `runbook` command line, run in-process: exit codes, output formats, parameters.

use runbook_tests::{project_root, runbook, temp_file};

const VALID: &str = "schemaVersion: '0.3'\nparameters:\n  Count: {type: Integer, default: 1}\n  Name: {type: String, allowedPattern: '^[a-z]+$'}\nmainSteps:\n  - name: wait\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n";
const INVALID: &str = "schemaVersion: '0.3'\nmainSteps:\n  - name: wait\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n    nextStep: nowhere\n";
const WARNING: &str =
    "schemaVersion: '0.3'\nmainSteps:\n  - name: wait\n    action: aws:putServerUpgradeMetrics\n    inputs: {}\n";

#[test]
fn shipped_examples_and_runbooks_are_valid() {
    for dir in ["examples", "runbooks"] {
        let path = project_root().join(dir);
        let output = runbook(&["validate", path.to_str().unwrap()]);
        if dir == "runbooks" && output.code == 2 {
            // No runbooks shipped yet: the folder only explains itself.
            assert!(output.stderr.contains("no runbook files"), "{}", output.stderr);
            continue;
        }
        assert_eq!(output.code, 0, "{dir}: {}{}", output.stdout, output.stderr);
        assert!(output.stdout.ends_with("0 invalid, 0 warnings\n"), "{}", output.stdout);
    }
}

#[test]
fn exit_codes() {
    let valid = temp_file("valid.yaml", VALID);
    let invalid = temp_file("invalid.yaml", INVALID);
    let warning = temp_file("warning.yaml", WARNING);
    assert_eq!(runbook(&["validate", valid.to_str().unwrap()]).code, 0);
    assert_eq!(runbook(&["validate", invalid.to_str().unwrap()]).code, 1);
    assert_eq!(runbook(&["validate", warning.to_str().unwrap()]).code, 0);
    assert_eq!(runbook(&["validate", "--deny-warnings", warning.to_str().unwrap()]).code, 1);
    assert_eq!(runbook(&["validate", "/definitely/not/here.yaml"]).code, 3);
    assert_eq!(runbook(&["validate", "--no-such-flag", valid.to_str().unwrap()]).code, 2);
    assert_eq!(runbook(&["validate"]).code, 2);
    assert_eq!(runbook(&["validate", valid.to_str().unwrap(), "-p", "novalue"]).code, 2);
    assert_eq!(runbook(&["--help"]).code, 0);
}

#[test]
fn text_output_points_at_the_line() {
    let invalid = temp_file("invalid.yaml", INVALID);
    let output = runbook(&["validate", invalid.to_str().unwrap()]);
    let path = invalid.display().to_string();
    assert!(output.stdout.starts_with(&format!("{path}:6:15: error [unknown-step]\n")), "{}", output.stdout);
    assert!(output.stdout.contains("nextStep names `nowhere`, but there is no such step"), "{}", output.stdout);
    assert!(output.stdout.contains("6 │     nextStep: nowhere"), "{}", output.stdout);
    assert!(output.stdout.ends_with("1 runbook: 0 valid, 1 invalid, 0 warnings\n"), "{}", output.stdout);
}

#[test]
fn json_output_is_machine_readable() {
    let invalid = temp_file("invalid.yaml", INVALID);
    let output = runbook(&["validate", "--format", "json", invalid.to_str().unwrap()]);
    assert_eq!(output.code, 1);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["file"], invalid.display().to_string());
    assert_eq!((diagnostic["line"].as_u64(), diagnostic["column"].as_u64()), (Some(6), Some(15)));
    assert_eq!(diagnostic["code"], "unknown-step");
    assert_eq!(diagnostic["severity"], "error");
    assert_eq!(report["summary"]["invalid"], 1);
}

#[test]
fn github_annotations() {
    let invalid = temp_file("invalid.yaml", INVALID);
    let output = runbook(&["validate", "--format", "github", invalid.to_str().unwrap()]);
    let first = output.stdout.lines().next().unwrap();
    assert!(first.starts_with("::error file="), "{first}");
    assert!(first.contains(",line=6,col=15,title=unknown-step::"), "{first}");
}

#[test]
fn directories_are_walked_and_summarised() {
    let valid = temp_file("a.yaml", VALID);
    let dir = valid.parent().unwrap();
    std::fs::write(dir.join("b.json"), r#"{"schemaVersion": "0.3", "mainSteps": []}"#).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a runbook").unwrap();
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("nested/c.yml"), WARNING).unwrap();
    let output = runbook(&["validate", dir.to_str().unwrap()]);
    assert_eq!(output.code, 1);
    assert!(output.stdout.ends_with("3 runbooks: 2 valid, 1 invalid, 1 warning\n"), "{}", output.stdout);
}

#[test]
fn parameter_values() {
    let valid = temp_file("valid.yaml", VALID);
    let path = valid.to_str().unwrap();
    assert_eq!(runbook(&["validate", path, "-p", "Name=abc", "-p", "Count=3"]).code, 0);
    let output = runbook(&["validate", path, "-p", "Name=ABC"]);
    assert_eq!(output.code, 1);
    assert!(output.stdout.contains("[parameter-pattern]"), "{}", output.stdout);
    let output = runbook(&["validate", path, "-p", "Count=2"]);
    assert!(output.stdout.contains("[missing-parameter]"), "{}", output.stdout);
    let output = runbook(&["validate", path, "-p", "Name=abc", "-p", "Count=two"]);
    assert!(output.stdout.contains("[parameter-type]"), "{}", output.stdout);
    // A values file: typed JSON, and -p wins over it.
    let file = temp_file("params.json", r#"{"Name": "ABC", "Count": 2}"#);
    assert_eq!(runbook(&["validate", path, "--params-file", file.to_str().unwrap()]).code, 1);
    assert_eq!(runbook(&["validate", path, "--params-file", file.to_str().unwrap(), "-p", "Name=ok"]).code, 0);
    let broken = temp_file("params.yaml", "Name: [unclosed\n");
    let output = runbook(&["validate", path, "--params-file", broken.to_str().unwrap()]);
    assert_eq!(output.code, 2);
    assert!(output.stderr.contains("parameters file"), "{}", output.stderr);
}

#[test]
fn codes_are_listed() {
    let output = runbook(&["codes"]);
    assert_eq!(output.code, 0);
    assert!(output.stdout.contains("unknown-step"));
    assert!(output.stdout.contains("V7"));
}

#[test]
fn a_finding_past_column_65535_is_shown_clipped_instead_of_panicking() {
    // miette counts columns in 16 bits: 16,500 tabs (a 16.6 KB file) or 70,000 blanks before
    // a finding made every text command panic.
    for (name, blank, count) in [("tabs.json", "\t", 16_500), ("blanks.json", " ", 70_000)] {
        let text = format!("{{\"schemaVersion\": \"0.3\",{}\"bogus\": 1, \"mainSteps\": []}}", blank.repeat(count));
        let path = temp_file(name, text);
        let output = runbook(&["validate", path.to_str().unwrap()]);
        assert_eq!(output.code, 1, "{}", output.stdout);
        assert!(output.stdout.contains(&format!(":1:{}: error [unknown-key]", 25 + count)), "{}", output.stdout);
        assert!(output.stdout.contains("unknown top-level key `bogus`"), "{}", output.stdout);
        assert!(output.stdout.contains("…"), "the long line is clipped: {}", output.stdout);
        let widest = output.stdout.lines().map(|line| line.chars().count()).max().unwrap();
        assert!(widest < 400, "a snippet line of {widest} characters");
    }
}

#[test]
fn ten_thousand_findings_on_one_line_are_located_and_the_text_shows_the_first_200() {
    // 10,000 duplicate keys on one JSON line, a non-ASCII character before them: locating
    // each finding walked the line from its start (2.9 s for 5,000), and rendering every
    // snippet then panicked past column 65,535.
    let keys = ", \"ké\": 1".repeat(10_000);
    let text = format!(
        "{{\"schemaVersion\": \"0.3\", \"description\": \"é\", \"mainSteps\": [{{\"name\": \"a\", \
         \"action\": \"aws:sleep\", \"inputs\": {{\"Duration\": \"PT0S\"{keys}}}}}]}}"
    );
    let path = temp_file("duplicates.json", &text);
    let path = path.to_str().unwrap();
    let json = runbook(&["validate", path, "--format", "json"]);
    assert_eq!(json.code, 1);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let findings = report["diagnostics"].as_array().unwrap();
    assert_eq!(findings.len(), 9_999);
    let last = text.rfind("\"ké\"").unwrap();
    assert_eq!(findings[9_998]["column"], text[..last].chars().count() + 1);
    let shown = runbook(&["validate", path]);
    assert_eq!(shown.code, 1);
    assert!(shown.stdout.contains(&format!("{path}: 9799 more findings not shown")), "{}", &shown.stdout[..400]);
    assert_eq!(shown.stdout.matches("error [duplicate-key]").count(), 200);
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly_as_other_unix_tools_do() {
    use std::io::Read;
    let mut steps = String::from("schemaVersion: '0.3'\nmainSteps:\n");
    for i in 0..3_000 {
        steps.push_str(&format!("  - {{name: s{i}, action: aws:sleep, inputs: {{Duration: PT0S}}}}\n"));
    }
    let path = temp_file("many.yaml", steps);
    // `runbook plan ... | head -c 16`: far more than a pipe holds, and a reader that stops.
    let mut child = std::process::Command::new(runbook_tests::binary())
        .args(["plan", path.to_str().unwrap(), "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
