//! Planning speed: the AWS corpus, and generated runbooks of 1,000, 10,000 and 100,000
//! steps (branches, loops, failure jumps and output references). Run with `make bench`.
//! Prints figures; asserts nothing.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use runbook::document::{self, Format};
use runbook::plan::{self, values};
use runbook::validate::{self, Config};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn time<T>(runs: usize, mut work: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(work());
                start.elapsed()
            })
            .collect(),
    )
}

/// Peak resident memory of this process so far, in MB (Linux).
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A valid, acyclic runbook of about `count` steps: every 10th step a script with an
/// output that the next script reads, every 10th a branch jumping ahead, every 100th a
/// loop of three steps, and failure jumps ahead on the rest.
fn generated(count: usize) -> String {
    // Each loop adds two body steps to the count.
    let loops = |top: usize| (0..top).filter(|i| i % 100 == 50).count();
    let mut top = count;
    while top + 2 * loops(top) > count {
        top -= 1;
    }
    let mut steps = String::new();
    let name = |i: usize| format!("s{i}");
    for i in 0..top {
        let jump = |ahead: usize| if i + ahead < top { name(i + ahead) } else { name(top - 1) };
        let step = match i % 100 {
            50 if i + 1 < top => {
                format!(
                    r#"{{"name": "{n}", "action": "aws:loop", "inputs": {{"Iterators": ["a", "b"], "Steps": [
  {{"name": "{n}_a", "action": "aws:sleep", "inputs": {{"Duration": "PT1S"}}}},
  {{"name": "{n}_b", "action": "aws:branch", "inputs": {{"Choices": [{{"NextStep": "{exit}", "Variable": "{{{{ Loop.CurrentIteratorValue }}}}", "StringEquals": "b"}}]}}, "isEnd": true}}
]}}}}"#,
                    n = name(i),
                    exit = jump(3)
                )
            }
            _ if i % 10 == 0 => format!(
                r#"{{"name": "{n}", "action": "aws:executeScript", "inputs": {{"Runtime": "python3.11", "Handler": "h", "Script": "def h(e, c): return e", "InputPayload": {{"previous": "{{{{ {previous}.Out }}}}"}}}}, "outputs": [{{"Name": "Out", "Selector": "$.Payload.previous", "Type": "String"}}]}}"#,
                n = name(i),
                previous = if i >= 10 { name(i - 10) } else { name(i) },
            ),
            _ if i % 10 == 5 && i + 2 < top => format!(
                r#"{{"name": "{n}", "action": "aws:branch", "inputs": {{"Choices": [{{"NextStep": "{a}", "Variable": "{{{{ Mode }}}}", "StringEquals": "fast"}}, {{"NextStep": "{b}", "And": [{{"Variable": "{{{{ Mode }}}}", "StartsWith": "s"}}, {{"Not": {{"Variable": "{{{{ Count }}}}", "NumericGreater": 3}}}}]}}], "Default": "{a}"}}}}"#,
                n = name(i),
                a = jump(1),
                b = jump(2)
            ),
            _ if i + 4 >= top => {
                format!(r#"{{"name": "{}", "action": "aws:sleep", "inputs": {{"Duration": "PT1S"}}}}"#, name(i))
            }
            _ => format!(
                r#"{{"name": "{n}", "action": "aws:sleep", "inputs": {{"Duration": "PT1S"}}, "onFailure": "step:{target}", "isCritical": false}}"#,
                n = name(i),
                target = jump(4)
            ),
        };
        if i > 0 {
            steps.push_str(",\n");
        }
        steps.push_str(&step);
    }
    let mut text = String::new();
    let _ = write!(
        text,
        r#"{{"schemaVersion": "0.3", "parameters": {{"Mode": {{"type": "String", "default": "fast"}}, "Count": {{"type": "Integer", "default": 2}}}}, "mainSteps": [
{steps}
]}}"#
    );
    text
}

fn main() {
    if let Some(count) = std::env::var("PLAN_PROFILE").ok().and_then(|v| v.parse().ok()) {
        // For a profiler: plan one generated runbook over and over, nothing else.
        let validated = validate::validate(
            document::load("g.json".into(), generated(count).into_bytes(), Some(Format::Json)),
            &Config::default(),
        );
        for _ in 0..20 {
            std::hint::black_box(plan::plan(validated.runbook.as_ref().unwrap()));
        }
        return;
    }
    if let Some(count) = std::env::var("PLAN_MEMORY").ok().and_then(|v| v.parse().ok()) {
        // Child process: one runbook through every stage, resident memory after each.
        let text = generated(count);
        let rss = |stage: &str| println!("  {stage:<28} {:>6.0} MB peak", peak_mb().unwrap_or(f64::NAN));
        rss("generated text");
        let loaded = document::load("g.json".into(), text.into_bytes(), Some(Format::Json));
        rss("loaded (JSON value)");
        let validated = validate::validate(loaded, &Config::default());
        rss("validated (typed model)");
        let before = peak_mb().unwrap_or(f64::NAN);
        let planned = plan::plan(validated.runbook.as_ref().unwrap());
        rss("planned (graph and checks)");
        println!("  the planner's own share:         {:>6.0} MB", peak_mb().unwrap_or(f64::NAN) - before);
        std::hint::black_box(planned);
        return;
    }
    corpus();
    println!();
    println!("{:>8} {:>10} {:>12} {:>12} {:>12}", "steps", "edges", "validate ms", "plan ms", "us/step");
    for count in [1_000, 10_000, 100_000] {
        let text = generated(count);
        let runs = if count >= 100_000 { 3 } else { 11 };
        let load = || document::load("generated.json".into(), text.clone().into_bytes(), Some(Format::Json));
        let validation = time(runs, || validate::validate(load(), &Config::default()));
        let validated = validate::validate(load(), &Config::default());
        let errors: Vec<_> = validated.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "the generated runbook is valid: {errors:?}");
        let runbook = validated.runbook.as_ref().unwrap();
        let planning = time(runs, || plan::plan(runbook));
        let planned = plan::plan(runbook);
        assert!(planned.diagnostics.iter().all(|d| !d.is_error()), "{:?}", planned.diagnostics.first());
        println!(
            "{:>8} {:>10} {:>12.1} {:>12.2} {:>12.2}",
            planned.graph.node_count(),
            planned.graph.edge_count(),
            ms(validation),
            ms(planning),
            ms(planning) * 1000.0 / planned.graph.node_count() as f64,
        );
    }
    println!("(plan = graph, successors, cycles, reachability, dominators; target: < 50 ms at 10,000 steps)");
    println!("\npeak memory of one 100,000-step runbook through each stage, in its own process (target < 200 MB):");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env("PLAN_MEMORY", "100000")
        .output()
        .expect("the benchmark can run itself");
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

/// The planner's share of `runbook validate` on the corpus: binding defaults and the graph
/// checks, on documents already validated.
fn corpus() {
    let dir = std::env::var_os("RUNBOOK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ssm-public"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: corpus not found at {} (set RUNBOOK_CORPUS)", dir.display());
        return;
    };
    let validated: Vec<_> = entries
        .map(|e| validate::validate(document::load_path(&e.unwrap().path()).unwrap(), &Config::default()))
        .collect();
    let runbooks: Vec<_> = validated.iter().filter_map(|v| v.runbook.as_ref()).collect();
    let runs = if std::env::var_os("PLAN_PROFILE_CORPUS").is_some() { 400 } else { 21 };
    let planning = time(runs, || {
        for runbook in &runbooks {
            std::hint::black_box(values::bind(runbook, &serde_json::Map::new(), &values::NothingKnown));
            std::hint::black_box(plan::plan(runbook));
        }
    });
    let binding = time(runs, || {
        for runbook in &runbooks {
            std::hint::black_box(values::bind(runbook, &serde_json::Map::new(), &values::NothingKnown));
        }
    });
    println!("  of which binding parameter defaults: {:.2} ms", ms(binding));
    let steps: usize = runbooks.iter().map(|r| r.all_steps().len()).sum();
    println!(
        "corpus: {} runbooks, {steps} steps planned in {:.2} ms ({:.1} us per runbook, 1 thread)",
        runbooks.len(),
        ms(planning),
        ms(planning) * 1000.0 / runbooks.len() as f64
    );
}
