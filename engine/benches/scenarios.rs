//! `runbook test` speed: scenarios per second per core on a generated 100-step runbook whose
//! steps are AWS calls (`aws:executeAwsApi`, outputs selected from the response, a branch
//! every ten steps) answered by mocks at the AWS client, no scripts. Each scenario runs the
//! real runner with the in-memory journal on a paused clock, as `runbook test` does; the
//! figure is measured on one thread. A second figure times the whole `runbook test` process
//! on a file of 1,000 such scenarios (all cores). Run with `make bench`. Prints figures;
//! asserts nothing.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use runbook::scenario;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STEPS: usize = 100;

fn runbook_text() -> String {
    let mut text = String::from(
        "schemaVersion: '0.3'\nparameters:\n  Instance: {type: String, default: i-0123456789abcdef0}\nmainSteps:\n",
    );
    for i in 0..STEPS {
        if i % 10 == 9 && i + 1 < STEPS {
            let next = i + 1;
            writeln!(
                text,
                "  - {{name: s{i}, action: aws:branch, inputs: {{Choices: [{{NextStep: s{next}, Variable: '{{{{ s{prev}.State }}}}', StringEquals: running}}], Default: s{next}}}}}",
                prev = i - 1
            )
            .unwrap();
        } else {
            writeln!(
                text,
                "  - {{name: s{i}, action: aws:executeAwsApi, inputs: {{Service: ec2, Api: DescribeInstances, InstanceIds: ['{{{{ Instance }}}}']}}, outputs: [{{Name: State, Selector: '$.Reservations[0].Instances[0].State.Name', Type: String}}]}}"
            )
            .unwrap();
        }
    }
    text
}

fn scenarios_text(count: usize) -> String {
    let mut text = String::from(
        "defaults:\n  aws:\n    - call: ec2.DescribeInstances\n      response: {Reservations: [{Instances: [{InstanceId: i-0123456789abcdef0, State: {Name: running}}]}]}\nscenarios:\n",
    );
    for i in 0..count {
        writeln!(text, "  - name: scenario {i}\n    expect: {{status: Success}}").unwrap();
    }
    text
}

fn main() {
    let dir = std::env::temp_dir().join(format!("runbook-bench-scenarios-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runbook_path = dir.join("bench.yaml");
    std::fs::write(&runbook_path, runbook_text()).unwrap();
    let scenarios_path = dir.join("bench.test.yaml");
    std::fs::write(&scenarios_path, scenarios_text(1)).unwrap();

    // In process, one thread: the runner per scenario, nothing else.
    let target = scenario::target(&runbook_path).expect("the bench runbook is valid");
    let plan = runbook::plan::plan(&target.runbook);
    let loaded = runbook::document::load_path(&scenarios_path).unwrap();
    let file = scenario::file::check(loaded, Some(runbook_path.clone()), Some((&target.runbook, &plan)));
    assert!(file.diagnostics.is_empty(), "{:?}", file.diagnostics);
    let one = &file.scenarios[0];
    let runtime = scenario::runtime().unwrap();
    let base = scenario::base_config();
    for _ in 0..50 {
        let ran = scenario::run(&runtime, &target, &plan, one, &base);
        assert!(ran.passed(), "{:?}", ran.failures);
        assert_eq!(ran.actual.path.len(), STEPS);
    }
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let count = 1_000;
        let start = Instant::now();
        for _ in 0..count {
            scenario::run(&runtime, &target, &plan, one, &base);
        }
        rounds.push(start.elapsed() / count);
    }
    rounds.sort();
    let median = rounds[rounds.len() / 2];
    println!(
        "runbook test, in process, one thread: {:.1} µs per scenario of {STEPS} steps ({:.2} µs per step), \
         {:.0} scenarios per second per core (target 2,000)",
        micros(median),
        micros(median) / STEPS as f64,
        1.0 / median.as_secs_f64()
    );

    // The peer's work: cdk-ssm-documents' simulator is measured on N `aws:sleep` (PT0S) steps
    // (../shared/bench/cdk_simulate.py); the same runbook here, per step.
    let sleeps_path = dir.join("sleeps.yaml");
    let mut sleeps = String::from("schemaVersion: '0.3'\nmainSteps:\n");
    for i in 0..STEPS {
        writeln!(sleeps, "  - {{name: Sleep{i}, action: aws:sleep, inputs: {{Duration: PT0S}}}}").unwrap();
    }
    std::fs::write(&sleeps_path, sleeps).unwrap();
    let sleeps_target = scenario::target(&sleeps_path).unwrap();
    let sleeps_plan = runbook::plan::plan(&sleeps_target.runbook);
    let loaded = runbook::document::load_path(&scenarios_path).unwrap();
    let sleeps_file =
        scenario::file::check(loaded, Some(sleeps_path.clone()), Some((&sleeps_target.runbook, &sleeps_plan)));
    let sleep_scenario = &sleeps_file.scenarios[0];
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let count = 1_000;
        let start = Instant::now();
        for _ in 0..count {
            scenario::run(&runtime, &sleeps_target, &sleeps_plan, sleep_scenario, &base);
        }
        rounds.push(start.elapsed() / count);
    }
    rounds.sort();
    let sleep_median = rounds[rounds.len() / 2];
    println!(
        "runbook test, {STEPS} aws:sleep steps (the peer's bench): {:.2} µs per step, {:.0} scenarios per second per core",
        micros(sleep_median) / STEPS as f64,
        1.0 / sleep_median.as_secs_f64()
    );

    // The whole process on a suite of 1,000 scenarios, every core.
    std::fs::write(&scenarios_path, scenarios_text(1_000)).unwrap();
    let binary = std::env::var_os("RUNBOOK_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/runbook"));
    if binary.is_file() {
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let output = std::process::Command::new(&binary)
                .args(["test", &scenarios_path.display().to_string(), "--format", "json"])
                .output()
                .unwrap();
            times.push(start.elapsed());
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
        }
        times.sort();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "runbook test, whole process: 1,000 scenarios of {STEPS} steps in {:.0} ms on {cores} cores (median of 5)",
            millis(times[2])
        );
    } else {
        println!("(build the release binary for the whole-process figure: {} not found)", binary.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
