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
    // Columns line up, and no column refers to a reference users do not have.
    let lines: Vec<&str> = output.stdout.lines().take_while(|line| !line.is_empty()).collect();
    let column = lines[0].find("meaning").unwrap();
    assert!(lines.iter().all(|line| line.len() > column && line[..column].ends_with("  ")), "{}", output.stdout);
    assert!(!output.stdout.contains("V7"), "{}", output.stdout);
    let explained = runbook(&["codes", "unknown-step"]);
    assert!(explained.stdout.contains("The mistake:") && explained.stdout.contains("The fix:"), "{}", explained.stdout);
    assert_eq!(runbook(&["codes", "unknown-stp"]).code, 2);
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

#[test]
fn with_format_json_every_outcome_is_json_on_stdout_errors_included() {
    let invalid = temp_file("invalid.yaml", "schemaVersion: '0.3'\nmainSteps:\n  - {name: a, action: aws:slep}\n");
    let invalid = invalid.to_str().unwrap();
    let state = std::env::temp_dir().join(format!("runbook-json-errors-{}", std::process::id()));
    let state = state.to_str().unwrap();
    for args in [
        vec!["run", invalid, "--format", "json", "--state-dir", state],
        vec!["run", invalid, "--dry-run", "--format", "json"],
        vec!["plan", invalid, "--format", "json"],
    ] {
        let output = runbook(&args);
        assert_eq!(output.code, 1, "{args:?}: {}{}", output.stdout, output.stderr);
        assert_eq!(output.stderr, "", "{args:?}");
        let document: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
        let codes: Vec<&str> =
            document["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["code"].as_str()).collect();
        assert!(codes.contains(&"unknown-action"), "{args:?}: {document}");
        assert_eq!(document["summary"]["invalid"], 1);
    }
    // Errors past validation too: an execution that does not exist.
    for args in [
        vec!["run", "--resume", "nope", "--format", "json", "--state-dir", state],
        vec!["executions", "show", "nope", "--format", "json", "--state-dir", state],
    ] {
        let output = runbook(&args);
        assert_eq!(output.code, 2, "{args:?}: {}{}", output.stdout, output.stderr);
        assert_eq!(output.stderr, "", "{args:?}");
        let document: serde_json::Value = serde_json::from_str(output.stdout.trim()).unwrap();
        assert!(document["error"]["message"].as_str().unwrap().contains("no execution nope"), "{document}");
        assert_eq!(document["error"]["exit_code"], 2);
    }
}

#[test]
fn without_aws_credentials_or_region_a_run_stops_before_its_first_step_with_one_sentence() {
    let home = std::env::temp_dir().join(format!("runbook-no-aws-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let path = temp_file(
        "calls-aws.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - {name: local, action: aws:sleep, inputs: {Duration: PT0S}}\n  \
         - {name: describe, action: aws:executeAwsApi, inputs: {Service: ec2, Api: DescribeInstances}}\n",
    );
    let state = home.join("state");
    // Nothing to find credentials or a region in, and no instance metadata to ask.
    let run = |extra: &[&str], region: Option<&str>| {
        let mut command = std::process::Command::new(runbook_tests::binary());
        command.args(["run", path.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]).args(extra);
        for (name, _) in std::env::vars() {
            if name.starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", home.join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(region) = region {
            command.env("AWS_REGION", region);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&[], None);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("no AWS region is configured: pass --region, set AWS_REGION"), "{stderr}");
    assert!(!stdout.contains("local"), "a step ran: {stdout}");
    let (code, stdout, stderr) = run(&[], Some("eu-west-1"));
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("no AWS credentials: none found: pass --profile or set AWS_PROFILE"), "{stderr}");
    assert!(stderr.len() < 400, "{} characters: {stderr}", stderr.len());
    let (code, stdout, stderr) = run(&["--dry-run=read-only"], Some("eu-west-1"));
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert_eq!(stderr.matches("no AWS credentials").count(), 1, "{stderr}");
    assert!(stderr.contains("--dry-run=read-only reads from AWS"), "{stderr}");
}

#[test]
fn a_directory_is_walked_as_ripgrep_walks_it_and_what_was_skipped_is_counted() {
    let root = std::env::temp_dir().join(format!("runbook-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let runbook_text = "schemaVersion: '0.3'\nmainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n";
    let broken = "schemaVersion: '0.3'\nmainSteps:\n  - {name: a, action: aws:slep}\n";
    for (path, text) in [
        ("book.yaml", runbook_text),
        ("sub/other.yml", runbook_text),
        ("book.test.yaml", "scenarios: []\n"),
        ("schemas/thing.schema.json", "{\"type\": \"object\"}"),
        (".venv/lib/site.yaml", broken),
        (".hidden.yaml", broken),
        ("target/debug/copy.yaml", broken),
        ("drafts/wip.yaml", broken),
        (".gitignore", "target/\n"),
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let root_text = root.to_str().unwrap();
    let output = runbook(&["validate", root_text, "--exclude", "drafts/**", "--format", "json"]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    let document: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(document["summary"]["runbooks"], 2, "{document}");
    let skipped = document["summary"]["skipped"].as_str().unwrap();
    assert!(
        skipped.contains("1 YAML or JSON files that are not runbooks") && skipped.contains("1 excluded by --exclude"),
        "{skipped}"
    );
    let text = runbook(&["validate", root_text, "--exclude", "drafts/**"]);
    assert!(text.stdout.contains("2 runbooks") || text.stdout.contains("2 runbook"), "{}", text.stdout);
    assert!(text.stdout.contains("Skipped 1 YAML or JSON files"), "{}", text.stdout);
    // Without --exclude the draft is walked, and its error found; a pattern may also be
    // written with the folder as given.
    assert_eq!(runbook(&["validate", root_text]).code, 1);
    let given = format!("{root_text}/drafts/**");
    assert_eq!(runbook(&["validate", root_text, "--exclude", &given]).code, 0);
    // A file named on the command line is always taken, hidden or ignored.
    let named = runbook(&["validate", root.join("target/debug/copy.yaml").to_str().unwrap()]);
    assert_eq!(named.code, 1, "{}", named.stdout);
}

#[test]
fn a_list_parameter_given_with_bare_brackets_says_how_to_write_it() {
    let path = temp_file(
        "hosts.yaml",
        "schemaVersion: '0.3'\nparameters:\n  Hosts: {type: StringList}\nmainSteps:\n  \
         - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n",
    );
    let output = runbook(&["validate", path.to_str().unwrap(), "-p", "Hosts=[web-1, web-2]"]);
    assert_eq!(output.code, 1, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.contains(r#"'["web-1", "web-2"]'"#) && output.stdout.contains("`web-1,web-2`"),
        "{}",
        output.stdout
    );
    assert_eq!(runbook(&["validate", path.to_str().unwrap(), "-p", "Hosts=web-1,web-2"]).code, 0);
    assert_eq!(runbook(&["validate", path.to_str().unwrap(), "-p", r#"Hosts=["web-1","web-2"]"#]).code, 0);
}

#[test]
fn first_hour_small_findings_read_right() {
    // `schemaVersion: 0.3` is a number to YAML: the help says to quote it.
    let unquoted = temp_file(
        "unquoted.yaml",
        "schemaVersion: 0.3\nmainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n",
    );
    let output = runbook(&["validate", unquoted.to_str().unwrap()]);
    assert!(output.stdout.contains("quote it: `schemaVersion: '0.3'`"), "{}", output.stdout);
    // A retry that comes at once does not say "retrying in 0.0s".
    let retried = temp_file(
        "retried.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - name: a\n    action: aws:executeScript\n    maxAttempts: 2\n    inputs:\n      \
         Runtime: python3.11\n      Handler: h\n      Script: \"def h(e, c):\\n  raise ValueError('no')\"\n",
    );
    let state = std::env::temp_dir().join(format!("runbook-retried-{}", std::process::id()));
    let output = runbook(&["run", retried.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]);
    assert_eq!(output.code, 4, "{}{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("a attempt 1 failed") && output.stdout.contains("; retrying"), "{}", output.stdout);
    assert!(!output.stdout.contains("retrying in 0.0s"), "{}", output.stdout);
    // A loop over a list only the run will know is not "for each of 1 items".
    let looped = temp_file(
        "looped.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - name: describe\n    action: aws:executeAwsApi\n    \
         inputs: {Service: ec2, Api: DescribeInstances}\n    outputs:\n      \
         - {Name: Ids, Selector: '$.Reservations..InstanceId', Type: StringList}\n  - name: each\n    \
         action: aws:loop\n    inputs:\n      Iterators: '{{ describe.Ids }}'\n      Steps:\n        \
         - {name: nap, action: aws:sleep, inputs: {Duration: PT0S}}\n",
    );
    let output = runbook(&["run", looped.to_str().unwrap(), "--dry-run"]);
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.contains("for each item of {{ describe.Ids }} (known when the loop runs"),
        "{}",
        output.stdout
    );
    assert!(!output.stdout.contains("1 items"), "{}", output.stdout);
    // "did you mean" for an action's inputs, a step's outputs and --mock step names.
    let typos = temp_file(
        "typos.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - name: count\n    action: aws:executeScript\n    \
         inputs: {Runtime: python3.11, Handler: h, Script: x, InputPayloads: {}}\n    outputs:\n      \
         - {Name: Total, Selector: $.Payload, Type: Integer}\n  \
         - {name: nap, action: aws:sleep, inputs: {Duration: 'PT{{ count.Totl }}S'}}\n",
    );
    let output = runbook(&["validate", typos.to_str().unwrap()]);
    assert!(output.stdout.contains("did you mean `InputPayload`?"), "{}", output.stdout);
    assert!(output.stdout.contains("did you mean `count.Total`?"), "{}", output.stdout);
    let output = runbook(&["run", looped.to_str().unwrap(), "--dry-run", "--mock", "describ.Ids=[]"]);
    assert!(output.stderr.contains("did you mean `describe`?"), "{}", output.stderr);
    // A selector outside the supported subset fails every run: an error, not a warning.
    let selector = temp_file(
        "selector.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - name: s\n    action: aws:executeScript\n    \
         inputs: {Runtime: python3.11, Handler: h, Script: x}\n    outputs:\n      \
         - {Name: All, Selector: '$.Payload[*]', Type: StringList}\n",
    );
    let output = runbook(&["validate", selector.to_str().unwrap()]);
    assert_eq!(output.code, 1, "{}", output.stdout);
    assert!(output.stdout.contains("error [selector-syntax]"), "{}", output.stdout);
    // `executions show` lists a loop before the steps of its body.
    let state = std::env::temp_dir().join(format!("runbook-loop-order-{}", std::process::id()));
    let state = state.to_str().unwrap();
    let example = project_root().join("examples/local-maintenance.yaml");
    runbook(&["run", example.to_str().unwrap(), "-p", "BrokenHost=web-2", "--state-dir", state]);
    let shown = runbook(&["executions", "show", "last", "--state-dir", state]).stdout;
    let (looped_at, body_at) = (shown.find(" cleanEachHost ").unwrap(), shown.find(" rotateLogs").unwrap());
    assert!(looped_at < body_at, "{shown}");
}

/// `cargo run -- validate examples/` at the root runs the one `runbook` binary, and `cargo
/// install --path engine` installs only it: the tests' helper binary is not a default member.
#[test]
fn the_workspace_builds_and_runs_one_binary_by_default() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(project_root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let defaults = metadata["workspace_default_members"].as_array().unwrap();
    let binaries: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| defaults.contains(&package["id"]))
        .flat_map(|package| package["targets"].as_array().unwrap())
        .filter(|target| target["kind"].as_array().unwrap().contains(&serde_json::json!("bin")))
        .filter_map(|target| target["name"].as_str())
        .collect();
    assert_eq!(binaries, ["runbook"]);
}

#[test]
fn shell_completions_and_manual_pages_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let output = runbook(&["completions", shell]);
        assert_eq!(output.code, 0, "{}", output.stderr);
        for command in ["validate", "plan", "run", "executions", "test", "codes"] {
            assert!(output.stdout.contains(command), "{shell}: no `{command}`");
        }
    }
    // The bash script is bash.
    let script = temp_file("runbook.bash", runbook(&["completions", "bash"]).stdout);
    let checked = std::process::Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(checked.success());
    let page = runbook(&["man"]);
    assert!(page.stdout.starts_with(".ie") && page.stdout.contains(".TH runbook 1"), "{}", &page.stdout[..200]);
    assert!(page.stdout.contains("runbook\\-validate(1)"), "{}", page.stdout);
    let run = runbook(&["man", "run"]);
    assert!(run.stdout.contains(".TH runbook-run 1") && run.stdout.contains("\\-\\-dry\\-run"), "{}", run.stdout);
    assert_eq!(runbook(&["man", "fly"]).code, 2);
}

/// `runbook run PATH` on a terminal (the live line and the prompts are only offered on one):
/// `script` runs the engine on a pty and passes it `typed`; returns what the terminal showed.
#[test]
fn at_the_approval_prompt_a_line_that_is_no_answer_says_what_the_answers_are() {
    let path = temp_file(
        "approve.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - {name: ask, action: aws:approve, inputs: {Approvers: [ops], Message: go?}}\n",
    );
    let printed = runbook_tests::run_on_a_terminal(&path, "prompt", &[], b"maybe\na\n");
    assert!(printed.contains("`maybe` is not an answer: type a (approve) or r (reject)"), "{printed}");
    assert!(printed.contains("ask: Approve by"), "{printed}");
}

#[test]
fn errors_say_their_cause_once_and_finished_executions_say_why_nothing_goes_on() {
    let path = temp_file(
        "done.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n",
    );
    let output = runbook(&["run", path.to_str().unwrap(), "--state-dir", "/proc/no-such-state"]);
    assert_eq!(output.code, 3, "{}", output.stderr);
    assert_eq!(output.stderr.matches("No such file or directory").count(), 1, "{}", output.stderr);
    let state = std::env::temp_dir().join(format!("runbook-done-{}", std::process::id()));
    let state = state.to_str().unwrap();
    assert_eq!(runbook(&["run", path.to_str().unwrap(), "--state-dir", state]).code, 0);
    let resumed = runbook(&["resume", "last", "--state-dir", state]);
    assert_eq!(resumed.code, 0);
    assert!(resumed.stderr.contains("already ended (Success): nothing to go on with"), "{}", resumed.stderr);
}

#[test]
fn on_a_terminal_the_running_step_says_its_place_and_a_sleep_its_time_left() {
    let path = temp_file(
        "progress.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - {name: first, action: aws:sleep, inputs: {Duration: PT0S}}\n  \
         - {name: nap, action: aws:sleep, inputs: {Duration: PT1S}}\n",
    );
    let printed = runbook_tests::run_on_a_terminal(&path, "progress", &[], b"");
    assert!(printed.contains("nap (aws:sleep) · step 2 of 2"), "{printed}");
    assert!(printed.contains("s left"), "{printed}");
}

#[test]
fn a_run_that_did_not_succeed_ends_with_how_to_go_on() {
    let path = temp_file(
        "fails.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - name: s\n    action: aws:executeScript\n    inputs:\n      \
         Runtime: python3.11\n      Handler: h\n      Script: \"def h(e, c):\\n  raise ValueError('no')\"\n",
    );
    let state = std::env::temp_dir().join(format!("runbook-fails-{}", std::process::id()));
    let output = runbook(&["run", path.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]);
    assert_eq!(output.code, 4);
    assert!(output.stdout.contains("Go on with it: runbook run --resume "), "{}", output.stdout);
}

#[test]
fn plan_pictures_keep_stdout_clean_and_say_findings_as_text_on_stderr() {
    let path = temp_file(
        "warned.yaml",
        "schemaVersion: '0.3'\nparameters:\n  Name: {type: String, default: x}\nmainSteps:\n  - name: s\n    \
         action: aws:executeScript\n    inputs: {Runtime: python3.11, Handler: h, Script: \"print('{{ Name }}')\"}\n",
    );
    for format in ["mermaid", "dot"] {
        let output = runbook(&["plan", path.to_str().unwrap(), "--format", format]);
        assert_eq!(output.code, 0, "{}", output.stderr);
        assert!(!output.stdout.contains("script-substitution"), "{}", output.stdout);
        assert!(
            output.stderr.contains("warning [script-substitution]") && !output.stderr.contains("::warning"),
            "{}",
            output.stderr
        );
    }
}
