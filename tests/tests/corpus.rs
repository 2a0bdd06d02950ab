//! Every AWS-published runbook validates with zero errors: AWS accepted all of them, so an
//! error here is a bug in runbook.

use runbook::diagnostic::{Target, pointer_push};
use runbook::document;
use runbook::validate::{self, Config};
use runbook_tests::corpus_dir;

#[test]
fn every_corpus_runbook_validates_without_errors() {
    let Some(dir) = corpus_dir() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 497, "the corpus holds 497 runbooks");
    let mut failures = Vec::new();
    let mut warnings = 0;
    for path in &files {
        let loaded = document::load_path(path).unwrap();
        let validated = validate::validate(loaded, &Config::default());
        // Step by step, as a document larger than AWS accepts is validated: the same.
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        let step_by_step = validate::load_as(name, bytes, document::format_of(path), true).validate(&Config::default());
        assert_eq!(validated.diagnostics, step_by_step.diagnostics, "{}", path.display());
        assert_eq!(format!("{:?}", validated.runbook), format!("{:?}", step_by_step.runbook), "{}", path.display());
        warnings += validated.warnings();
        for diagnostic in validated.diagnostics.iter().filter(|d| d.is_error()) {
            failures.push(format!("{}: [{}] {}", path.display(), diagnostic.code, diagnostic.message));
        }
    }
    assert!(failures.is_empty(), "{} errors:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{} runbooks valid, {warnings} warnings", files.len());
}

#[test]
fn the_cli_walks_the_corpus_and_summarises() {
    let Some(dir) = corpus_dir() else { return };
    let output = runbook_tests::runbook(&["validate", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["summary"]["runbooks"], 497);
    assert_eq!(report["summary"]["invalid"], 0);
    for diagnostic in report["diagnostics"].as_array().unwrap() {
        assert_eq!(diagnostic["severity"], "warning");
        assert!(diagnostic["line"].as_u64().unwrap() >= 1, "{diagnostic}");
    }
}

/// Every `Service` the AWS runbooks call is in the bundled AWS models, and every `Api`
/// resolves but for the few the models really lack (reported as warnings).
#[test]
fn corpus_api_calls_resolve_in_the_aws_models() {
    let Some(dir) = corpus_dir() else { return };
    let output = runbook_tests::runbook(&["validate", dir.to_str().unwrap(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let count = |code: &str, text: &str| {
        report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["code"] == code && d["message"].as_str().unwrap().contains(text))
            .count()
    };
    assert_eq!(count("aws-service", "is not an AWS service"), 0, "a corpus service is missing from the bundle");
    // `SQS`, `EC2` (twice) and `Codedeploy`: accepted, with the boto3 name suggested.
    assert_eq!(count("aws-service", "the boto3 client name is"), 4);
    // AWSDocs-IncreaseAppAvailability calls ELB operations on ec2.
    assert_eq!(count("aws-operation", ""), 2);
}

#[test]
fn corpus_json_parses_the_same_as_yaml() {
    // JSON runbooks are read by the engine's one-pass reader (serde_json judges what it gives
    // up on) and YAML ones by saphyr: both loaders, and serde_json itself, must read every
    // corpus file to the same value, and put every value and key at the same place.
    let Some(dir) = corpus_dir() else { return };
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let as_serde: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let as_json = document::load("json".into(), bytes.clone(), Some(document::Format::Json));
        let as_yaml = document::load("yaml".into(), bytes, Some(document::Format::Yaml));
        assert!(as_yaml.diagnostics.iter().all(|d| !d.is_error()), "{}: {:?}", path.display(), as_yaml.diagnostics);
        assert_eq!(as_json.value.as_ref(), Some(&as_serde), "{}", path.display());
        assert_eq!(as_json.value, as_yaml.value, "{}", path.display());
        let mut pointers = Vec::new();
        every_pointer(&as_serde, String::new(), &mut pointers);
        let wanted: Vec<(&str, Target)> = pointers
            .iter()
            .flat_map(|pointer| [(pointer.as_str(), Target::Value), (pointer.as_str(), Target::Key)])
            .collect();
        let (json_at, yaml_at) = (as_json.locate_each(&wanted), as_yaml.locate_each(&wanted));
        for ((wanted, json_at), yaml_at) in wanted.iter().zip(json_at).zip(yaml_at) {
            assert_eq!(json_at, yaml_at, "{} {wanted:?}", path.display());
        }
    }
}

/// The pointers of `value` and of every value inside it.
fn every_pointer(value: &serde_json::Value, pointer: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                every_pointer(item, pointer_push(&pointer, key), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                every_pointer(item, pointer_push(&pointer, index), out);
            }
        }
        _ => {}
    }
    out.push(pointer);
}
