//! YAML as PyYAML reads it: every document under `tests/yaml/` must get from runbook the verdict
//! a real PyYAML gives it (`tests/yaml/pyyaml_verdicts.py`, run by the virtual environment's
//! Python), or be one of the known differences listed here. Where PyYAML accepts, runbook loads
//! the same value, warning at most that YAML 1.2 would not (`yaml-leniency`); where PyYAML
//! refuses, runbook refuses too or warns that PyYAML would (`yaml-ssm-refuses`), and every
//! refusal says what PyYAML does. Without that Python the test says so and passes as skipped.

use std::io::Write;
use std::process::Command;

use runbook::diagnostic::Code;
use runbook::document::{self, Format};
use runbook_tests::moto::venv_python;
use runbook_tests::project_root;
use serde_json::Value;

/// Documents where runbook parts from PyYAML, on purpose or for now: (file, why).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "duplicate-key.yaml",
        "PyYAML keeps the last value without a word; runbook refuses, since the first would be lost",
    ),
    (
        "comment-without-space-after-quoted.yaml",
        "PyYAML starts a comment at a `#` right after a closing quote; saphyr refuses, and the note says so",
    ),
    (
        "flow-key-question-prefix.yaml",
        "PyYAML reads `{?x: 1}` as the key `x`, saphyr (as YAML 1.2) as the key `?x`; runbook warns",
    ),
    (
        "yaml11-bool-and-sexagesimal.yaml",
        "PyYAML reads `yes`, `1:30`, `0755` and dates by YAML 1.1; runbook reads YAML 1.2's core schema",
    ),
];

/// runbook's reading of one document.
struct Reading {
    value: Option<Value>,
    /// Whether it warned that PyYAML would refuse the document or read it otherwise.
    flagged: bool,
    /// The help of the first error, when the document was refused.
    refusal_help: Option<String>,
}

fn read(path: &std::path::Path) -> Reading {
    let loaded = document::load(path.display().to_string(), std::fs::read(path).unwrap(), Some(Format::Yaml));
    let refusal = loaded.diagnostics.iter().find(|d| d.is_error());
    Reading {
        flagged: loaded.diagnostics.iter().any(|d| d.code == Code::YamlSsmRefuses),
        refusal_help: refusal.map(|d| d.help.clone().unwrap_or_default()),
        value: loaded.value,
    }
}

/// Why runbook's reading differs from PyYAML's verdict, or `None` when it does not.
fn difference(reading: &Reading, pyyaml: &Value) -> Option<String> {
    match (pyyaml["verdict"].as_str(), &reading.value) {
        (Some("accept"), None) => Some(format!("runbook refuses what PyYAML reads as {}", pyyaml["value"])),
        (Some("accept"), Some(_)) if reading.flagged => Some("runbook warns that PyYAML would refuse it".into()),
        (Some("accept"), Some(value)) if *value != pyyaml["value"] => {
            Some(format!("runbook reads {value}, PyYAML {}", pyyaml["value"]))
        }
        (Some("accept"), Some(_)) => None,
        (_, Some(value)) if !reading.flagged => {
            Some(format!("runbook reads {value} without a warning; PyYAML refuses: {}", pyyaml["problem"]))
        }
        _ => None,
    }
}

#[test]
fn yaml_documents_get_the_verdict_pyyaml_gives() {
    let Some(python) = venv_python("yaml_documents_get_the_verdict_pyyaml_gives") else {
        return;
    };
    let folder = project_root().join("tests/yaml");
    let output = Command::new(&python).arg(folder.join("pyyaml_verdicts.py")).arg(&folder).output().unwrap();
    assert!(output.status.success(), "pyyaml_verdicts.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let verdicts: Value = serde_json::from_slice(&output.stdout).unwrap();
    let files = verdicts["files"].as_object().unwrap();

    let mut failures = Vec::new();
    for (name, pyyaml) in files {
        let reading = read(&folder.join(name));
        let known = KNOWN_DIFFERENCES.iter().find(|(file, _)| file == name);
        match (difference(&reading, pyyaml), known) {
            (Some(problem), None) => failures.push(format!("{name}: {problem}")),
            (None, Some(_)) => failures.push(format!("{name}: listed as a known difference, but reads as PyYAML")),
            _ => {}
        }
        // A refusal says what PyYAML does with the same text.
        if let Some(help) = reading.refusal_help.filter(|help| !help.contains("PyYAML")) {
            failures.push(format!("{name}: refused without saying what PyYAML does (help: {help:?})"));
        }
    }
    for (file, _) in KNOWN_DIFFERENCES {
        if !files.contains_key(*file) {
            failures.push(format!("{file}: a known difference with no document"));
        }
    }
    assert!(failures.is_empty(), "{} differences from PyYAML:\n{}", failures.len(), failures.join("\n"));
    assert!(files.len() >= 40, "only {} documents under {}", files.len(), folder.display());

    // Straight to the terminal: the test harness captures `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "yaml_compat: {} documents read as PyYAML {} reads them, {} known differences",
        files.len(),
        verdicts["pyyaml"].as_str().unwrap_or("?"),
        KNOWN_DIFFERENCES.len()
    );
}
