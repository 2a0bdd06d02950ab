//! Engine overhead per step: a generated 1,000-step runbook of local actions (sleep PT0S,
//! updateVariable, branch) run for real with the journal on (every attempt committed with
//! fsync before and after it runs), and dry-run. The floor for a durable step is two
//! synchronous SQLite commits, measured on the same disk and printed beside it. Run with
//! `make bench`. Prints figures; asserts nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runbook::exec::{self, dry_run};
use runbook::journal::{EventKind, Journal, JournalWrite};
use runbook::plan;

const STEPS: usize = 1_000;

fn runbook_text() -> String {
    let mut text = String::from("schemaVersion: '0.3'\nvariables:\n  Count: {type: Integer, default: 0}\nmainSteps:\n");
    for i in 0..STEPS {
        match i % 3 {
            0 => writeln!(text, "  - {{name: s{i}, action: aws:sleep, inputs: {{Duration: PT0S}}}}").unwrap(),
            1 => writeln!(
                text,
                "  - {{name: s{i}, action: aws:updateVariable, inputs: {{Name: 'variable:Count', Value: {i}}}}}"
            )
            .unwrap(),
            _ => writeln!(
                text,
                "  - {{name: s{i}, action: aws:branch, inputs: {{Choices: [{{NextStep: s{next}, Variable: '{{{{ variable:Count }}}}', NumericGreater: -1}}]}}}}",
                next = (i + 1).min(STEPS - 1)
            )
            .unwrap(),
        }
    }
    text
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runbook-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The floor: `pairs` pairs of synchronous commits through the journal's cheapest durable
/// write (one event row each), in the same kind of database.
fn commit_floor(dir: &Path, pairs: usize) -> Duration {
    let journal = Journal::open(dir).unwrap();
    let start = Instant::now();
    for i in 0..pairs {
        let detail = serde_json::json!({ "i": i });
        journal.event("floor", EventKind::Note, None, &detail).unwrap();
        journal.event("floor", EventKind::Note, None, &detail).unwrap();
    }
    start.elapsed()
}

fn main() {
    let dir = scratch("runbook");
    let path = dir.join("bench.yaml");
    std::fs::write(&path, runbook_text()).unwrap();
    let prepared = match exec::prepare(&path, Vec::new(), true) {
        Ok(prepared) => prepared,
        Err(error) => panic!("the generated runbook is invalid: {error}"),
    };
    let planned = plan::plan(&prepared.runbook);
    let request = prepared.request(&planned);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    println!("runbook run: {STEPS}-step local runbook (sleep PT0S, updateVariable, branch)\n");
    let mut durable = Vec::new();
    let mut floors = Vec::new();
    for round in 0..5 {
        let state = scratch(&format!("state-{round}"));
        let journal = runbook::journal::Store::Local(Journal::open(&state).unwrap());
        let (_cancel, cancelled) = tokio::sync::watch::channel(exec::Interrupt::None);
        let config = exec::Config::default();
        let engine = exec::Engine::new(&journal, &exec::Silent);
        let start = Instant::now();
        let finished = runtime.block_on(exec::run(&request, &config, &engine, cancelled)).unwrap();
        durable.push(start.elapsed());
        assert_eq!(finished.status, exec::Status::Success);
        floors.push(commit_floor(&scratch(&format!("floor-{round}")), STEPS));
    }
    durable.sort();
    floors.sort();
    let per_step = |d: Duration| d.as_secs_f64() * 1e6 / STEPS as f64;
    let run_us = per_step(durable[durable.len() / 2]);
    let floor_us = per_step(floors[floors.len() / 2]);
    println!("  durable run            {run_us:>8.1} µs/step   (median of 5; target ≤ 400)");
    println!("  two fsync'd commits    {floor_us:>8.1} µs/step   (the floor on this disk)");
    println!("  engine above the floor {:>8.1} µs/step", run_us - floor_us);

    let bound = plan::values::bind(&prepared.runbook, &Default::default(), &plan::values::NothingKnown);
    let mocks = dry_run::Mocks::default();
    let mut dry = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let tree = dry_run::dry_run(&planned, &bound, &mocks);
        dry.push(start.elapsed());
        std::hint::black_box(tree);
    }
    dry.sort();
    let tree = dry_run::dry_run(&planned, &bound, &mocks);
    println!(
        "  dry-run                {:>8.1} µs/step   (median of 20; target ≤ 20; {} paths, {} nodes)",
        per_step(dry[dry.len() / 2]),
        tree.paths,
        tree.nodes.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
