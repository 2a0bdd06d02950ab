//! Hostile and mutated runbooks through validate, plan and dry-run (`tests/fuzz/fuzz.py`):
//! a bounded count here, each command a process under 10 s and 512 MB; `make fuzz` runs
//! 10,000.

use runbook_tests::{binary, corpus_dir, project_root};

#[test]
fn hostile_and_mutated_runbooks_never_crash_run_away_or_exhaust_memory() {
    let Some(corpus) = corpus_dir() else { return };
    let count = std::env::var("RUNBOOK_FUZZ_COUNT").unwrap_or_else(|_| "240".to_owned());
    let keep = std::env::temp_dir().join(format!("runbook-fuzz-failures-{}", std::process::id()));
    let output = std::process::Command::new("python3")
        .arg(project_root().join("tests/fuzz/fuzz.py"))
        .args(["--binary", binary().to_str().unwrap(), "--corpus", corpus.to_str().unwrap()])
        .args(["--count", &count, "--seed", "13", "--keep", keep.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{report}");
    assert!(report.contains(", 0 failures"), "{report}");
}
