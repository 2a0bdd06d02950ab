//! Engine overhead per step: a generated 1,000-step runbook of pure local actions (sleep
//! PT0S, updateVariable, branch) run for real with the journal on (each attempt committed once,
//! with fsync, after it ran), the same number of steps with effects (script steps answered at
//! once by an executor that does nothing: each attempt committed before and after it runs),
//! and a dry-run. The floor, one synchronous SQLite commit, is measured on the same disk and
//! printed beside them. Run with `make bench`. Prints figures; asserts nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use runbook::actions::{self, BoxFuture, Context, Executors, Output};
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

/// The same number of steps with effects: script steps, which are journaled ahead.
fn effectful_text() -> String {
    let mut text = String::from("schemaVersion: '0.3'\nmainSteps:\n");
    for i in 0..STEPS {
        writeln!(
            text,
            "  - {{name: s{i}, action: aws:executeScript, inputs: {{Runtime: python3.11, Handler: h, Script: 'def h(e, c): return 1'}}}}"
        )
        .unwrap();
    }
    text
}

/// Answers every step at once with no output: what is left is the engine and its journal.
struct Instant0;

impl Executors for Instant0 {
    fn execute<'c>(&'c self, _: &'c Context<'c>, _: &'c Map<String, Value>) -> BoxFuture<'c, actions::Result> {
        Box::pin(async { Ok(Output { root: Value::Null, ..Output::empty() }) })
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runbook-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The floor: `commits` synchronous commits through the journal's cheapest durable write
/// (one event row each), in the same kind of database.
fn commit_floor(dir: &Path, commits: usize) -> Duration {
    let journal = Journal::open(dir).unwrap();
    let start = Instant::now();
    for i in 0..commits {
        let detail = serde_json::json!({ "i": i });
        journal.event("floor", EventKind::Note, None, &detail).unwrap();
    }
    start.elapsed()
}

/// Runs `path` five times, each in a new journal, with `executors`; the median time.
fn run_median(path: &Path, executors: &dyn Executors, runtime: &tokio::runtime::Runtime) -> Duration {
    let prepared = match exec::prepare(path, Vec::new(), true) {
        Ok(prepared) => prepared,
        Err(error) => panic!("the generated runbook is invalid: {error}"),
    };
    let planned = plan::plan(&prepared.runbook);
    let request = prepared.request(&planned);
    let mut times = Vec::new();
    for round in 0..5 {
        let state = scratch(&format!("state-{round}"));
        let journal = runbook::journal::Store::Local(Journal::open(&state).unwrap());
        let (_cancel, cancelled) = tokio::sync::watch::channel(exec::Interrupt::None);
        let config = exec::Config::default();
        let engine = exec::Engine { executors, ..exec::Engine::new(&journal, &exec::Silent) };
        let start = Instant::now();
        let finished = runtime.block_on(exec::run(&request, &config, &engine, cancelled)).unwrap();
        times.push(start.elapsed());
        assert_eq!(finished.status, exec::Status::Success);
    }
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let dir = scratch("runbook");
    let path = dir.join("bench.yaml");
    std::fs::write(&path, runbook_text()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    println!("runbook run: {STEPS}-step local runbooks\n");
    let effectful = dir.join("effects.yaml");
    std::fs::write(&effectful, effectful_text()).unwrap();
    let pure = run_median(&path, &actions::Catalogue, &runtime);
    let effects = run_median(&effectful, &Instant0, &runtime);
    let mut floors: Vec<Duration> =
        (0..5).map(|round| commit_floor(&scratch(&format!("floor-{round}")), STEPS)).collect();
    floors.sort();
    let per_step = |d: Duration| d.as_secs_f64() * 1e6 / STEPS as f64;
    let floor_us = per_step(floors[floors.len() / 2]);
    let pure_us = per_step(pure);
    let effects_us = per_step(effects);
    println!("  pure steps (one commit each)        {pure_us:>8.1} µs/step   (median of 5; target ≤ 200)");
    println!("  steps with effects (two commits)    {effects_us:>8.1} µs/step   (median of 5; target ≤ 350)");
    println!("  one fsync'd commit                  {floor_us:>8.1} µs        (the floor on this disk)");
    println!("  engine above the floor, pure        {:>8.1} µs/step", pure_us - floor_us);
    println!("  engine above the floor, effects     {:>8.1} µs/step", effects_us - 2.0 * floor_us);

    let prepared = exec::prepare(&path, Vec::new(), true).unwrap();
    let planned = plan::plan(&prepared.runbook);
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
