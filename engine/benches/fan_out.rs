//! Runs over targets (issue 17): 1,000 targets, each a child of a 5-step runbook of local
//! no-op actions, every step durable, 50 at once against one at a time; then the peak memory
//! of the process at 10,000 targets. The children's writes share commits (group commit), each
//! attempt's start still committed before its executor runs. Run with `make bench`. Prints
//! figures; asserts nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runbook::exec::fan_out::{FanOut, Limit, RateControl, Target};
use runbook::exec::{self, Status};
use runbook::journal::{Journal, Store};
use serde_json::{Map, json};

const STEPS: usize = 5;

const CHILD: &str = "schemaVersion: '0.3'
parameters:
  Target: {type: String}
variables:
  Count: {type: Integer, default: 0}
mainSteps:
  - {name: one, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: two, action: aws:updateVariable, inputs: {Name: 'variable:Count', Value: 1}}
  - {name: three, action: aws:branch, inputs: {Choices: [{NextStep: four, Variable: '{{ variable:Count }}', NumericEquals: 1}], Default: four}}
  - {name: four, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: five, action: aws:updateVariable, inputs: {Name: 'variable:Count', Value: 2}}
";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runbook-bench-fan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scratch folder with the child runbook, prepared with a first target's value.
fn child(name: &str) -> (PathBuf, exec::Prepared) {
    let dir = scratch(name);
    let path = dir.join("child.yaml");
    std::fs::write(&path, CHILD).unwrap();
    let supplied = vec![("Target".to_owned(), runbook::validate::Supplied::Text("t-0".into()))];
    let prepared = exec::prepare(&path, supplied, true).map_err(|_| "prepares").unwrap();
    (dir, prepared)
}

/// Runs the child over `targets` targets, `concurrency` at once, in a fresh journal.
fn fan_out(targets: usize, concurrency: u64, name: &str) -> Duration {
    let (dir, prepared) = child(name);
    let planned = runbook::plan::plan(&prepared.runbook);
    let request = prepared.request(&planned);
    let spread = FanOut {
        targets: (0..targets)
            .map(|i| {
                let parameters: Map<String, serde_json::Value> =
                    [("Target".to_owned(), json!(format!("t-{i}")))].into_iter().collect();
                Target { label: format!("t-{i}"), parameters }
            })
            .collect(),
        control: RateControl { max_concurrency: Limit::Count(concurrency), max_errors: Limit::Count(0) },
        described: format!("{targets} targets"),
    };
    let store = Store::Local(Journal::open(&dir.join("state")).unwrap());
    let engine = exec::Engine::new(&store, &exec::Silent);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_cancel, cancelled) = tokio::sync::watch::channel(exec::Interrupt::None);
    let start = Instant::now();
    let finished =
        runtime.block_on(exec::fan_out::run(&request, &exec::Config::default(), &engine, cancelled, &spread)).unwrap();
    let took = start.elapsed();
    assert_eq!(finished.status, Status::Success);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    took
}

/// The same work as plain durable runs, one target after another, each step committed on its
/// own (a start and an end per step, as every local run commits them): the serial durable rate.
fn plain_runs(targets: usize, name: &str) -> Duration {
    let (dir, prepared) = child(name);
    let planned = runbook::plan::plan(&prepared.runbook);
    let request = prepared.request(&planned);
    let store = Store::Local(Journal::open(&dir.join("state")).unwrap());
    let engine = exec::Engine::new(&store, &exec::Silent);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = Instant::now();
    for i in 0..targets {
        // As a run over targets gives each child its target: the runbook prepared once.
        let parameters = [("Target".to_owned(), json!(format!("t-{i}")))].into_iter().collect();
        let child = exec::Request { parameters, ..request.clone() };
        let (_cancel, cancelled) = tokio::sync::watch::channel(exec::Interrupt::None);
        let finished = runtime.block_on(exec::run(&child, &exec::Config::default(), &engine, cancelled)).unwrap();
        assert_eq!(finished.status, Status::Success);
    }
    let took = start.elapsed();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    took
}

/// The process's peak resident memory so far, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    println!("runs over targets: a {STEPS}-step child of local no-op actions per target, every step durable\n");
    let targets = 1_000;
    let plain = plain_runs(targets, "plain");
    let serial = fan_out(targets, 1, "serial");
    let wide = fan_out(targets, 50, "wide");
    let rate = |took: Duration| (targets * STEPS) as f64 / took.as_secs_f64();
    println!(
        "  {targets} plain runs, one after another {:>7.2} s   {:>7.0} durable steps/s   (the serial durable rate)",
        plain.as_secs_f64(),
        rate(plain)
    );
    println!(
        "  {targets} targets, MaxConcurrency 1     {:>7.2} s   {:>7.0} durable steps/s   ({:.1}x)",
        serial.as_secs_f64(),
        rate(serial),
        rate(serial) / rate(plain)
    );
    println!(
        "  {targets} targets, MaxConcurrency 50    {:>7.2} s   {:>7.0} durable steps/s   ({:.1}x; {:.1}x MaxConcurrency 1)",
        wide.as_secs_f64(),
        rate(wide),
        rate(wide) / rate(plain),
        rate(wide) / rate(serial)
    );
    let before = peak_mb();
    let large = fan_out(10_000, 50, "large");
    println!(
        "  10,000 targets, 50 at once    {:>7.2} s   {:>7.0} durable steps/s   peak memory {:.0} MB (was {before:.0} MB)",
        large.as_secs_f64(),
        (10_000 * STEPS) as f64 / large.as_secs_f64(),
        peak_mb()
    );
}
