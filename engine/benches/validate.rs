//! Validation speed on the AWS corpus, against Python's `jsonschema` on the same documents.
//! Run with `make bench` (release build). Prints figures and ratios; asserts nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runbook::document;
use runbook::validate::{self, Config};

fn corpus() -> PathBuf {
    std::env::var_os("RUNBOOK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ssm-public"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn time_command(command: &mut Command, runs: usize) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("command runs");
            assert!(status.code().is_some(), "the command was killed");
            start.elapsed()
        })
        .collect();
    median(samples)
}

/// Peak resident memory of a command in KB, measured by GNU time when it is installed.
fn peak_memory_kb(binary: &str, args: &[&str]) -> Option<u64> {
    let output =
        Command::new("/usr/bin/time").arg("-f").arg("%M").arg(binary).args(args).stdout(Stdio::null()).output().ok()?;
    String::from_utf8_lossy(&output.stderr).lines().last()?.trim().parse().ok()
}

fn main() {
    let dir = corpus();
    if !dir.is_dir() {
        eprintln!("SKIPPED: corpus not found at {} (set RUNBOOK_CORPUS)", dir.display());
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let binary = env!("CARGO_BIN_EXE_runbook");
    let corpus_arg = dir.to_str().unwrap();

    // In-process, one thread: the engine's own cost per document.
    let in_process = median(
        (0..15)
            .map(|_| {
                let start = Instant::now();
                for path in &files {
                    let loaded = document::load_path(path).unwrap();
                    std::hint::black_box(validate::validate(loaded, &Config::default()));
                }
                start.elapsed()
            })
            .collect(),
    );
    let whole = time_command(Command::new(binary).args(["validate", corpus_arg]), 21);
    let single_file = files.iter().find(|f| f.ends_with("AWS-RestartEC2Instance.json")).unwrap_or(&files[0]);
    let single = time_command(Command::new(binary).args(["validate", single_file.to_str().unwrap()]), 51);
    let memory = peak_memory_kb(binary, &["validate", corpus_arg]);

    println!("corpus: {} runbooks, {:.1} MB", files.len(), total_size(&files) as f64 / 1e6);
    println!(
        "in-process, 1 thread:    {:7.1} ms  ({:.1} us per runbook)",
        ms(in_process),
        ms(in_process) * 1000.0 / files.len() as f64
    );
    println!("runbook validate CORPUS: {:7.1} ms  (target <= 40 ms)", ms(whole));
    println!("runbook validate FILE:   {:7.1} ms  (target < 5 ms)", ms(single));
    match memory {
        Some(kb) => println!("peak memory, corpus:     {:7.1} MB  (target < 50 MB)", kb as f64 / 1024.0),
        None => println!("peak memory, corpus:     not measured (/usr/bin/time is not installed)"),
    }
    match python_jsonschema(&dir) {
        Some(peer) => println!(
            "python jsonschema:       {:7.1} ms  (runbook is {:.0}x faster; target 50x)",
            ms(peer),
            peer.as_secs_f64() / whole.as_secs_f64()
        ),
        None => println!("python jsonschema:       not measured (python3 with jsonschema is not installed)"),
    }
}

fn total_size(files: &[PathBuf]) -> u64 {
    files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum()
}

/// Python's `jsonschema` validating the same documents against the same schema, as a process.
fn python_jsonschema(dir: &Path) -> Option<Duration> {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/runbook.schema.json");
    let script = "import glob, json, sys\n\
        import jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        validator = jsonschema.Draft202012Validator(schema)\n\
        errors = 0\n\
        for path in sorted(glob.glob(sys.argv[2] + '/*.json')):\n\
        \x20   errors += sum(1 for _ in validator.iter_errors(json.load(open(path))))\n\
        sys.exit(1 if errors else 0)\n";
    let probe = Command::new("python3").args(["-c", "import jsonschema"]).stderr(Stdio::null()).status().ok()?;
    if !probe.success() {
        return None;
    }
    let mut command = Command::new("python3");
    command.args(["-c", script, schema.to_str()?, dir.to_str()?]);
    Some(time_command(&mut command, 3))
}
