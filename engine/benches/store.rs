//! The stores of issue 16: what a named lock costs to take and give back, and what a durable
//! step costs, in the local journal and in the S3 store against moto (the emulator the tests
//! use, started here from `.venv`; `make venv` makes it). Run with `make bench`. Prints
//! figures; asserts nothing. Against real S3 the figures would be network round trips: moto on
//! 127.0.0.1 shows the engine's share and the number of calls, not S3's latency.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runbook::aws::{self, Aws, Credentials};
use runbook::exec;
use runbook::journal::named::LockMode;
use runbook::journal::{Journal, S3Store, Store};
use runbook::plan;

const STEPS: usize = 100;

fn runbook_text() -> String {
    let mut text = String::from("schemaVersion: '0.3'\nvariables:\n  Count: {type: Integer, default: 0}\nmainSteps:\n");
    for i in 0..STEPS {
        if i % 2 == 0 {
            text.push_str(&format!("  - {{name: s{i}, action: aws:sleep, inputs: {{Duration: PT0S}}}}\n"));
        } else {
            text.push_str(&format!(
                "  - {{name: s{i}, action: aws:updateVariable, inputs: {{Name: 'variable:Count', Value: {i}}}}}\n"
            ));
        }
    }
    text
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runbook-bench-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Takes and gives back one lock `rounds` times: the time per pair.
fn lock_pairs(store: &Store, rounds: usize) -> Duration {
    let named = store.named();
    let start = Instant::now();
    for _ in 0..rounds {
        let grant = named.grant("bench/one", "bench", LockMode::Exclusive, Duration::from_secs(60)).unwrap();
        named.release(&grant).unwrap();
    }
    start.elapsed() / rounds as u32
}

/// Runs the runbook `rounds` times (a new execution each): the median time per step.
fn durable_step(store: &Store, path: &Path, rounds: usize) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let prepared = exec::prepare(path, Vec::new(), true).map_err(|_| "prepares").unwrap();
    let planned = plan::plan(&prepared.runbook);
    let request = prepared.request(&planned);
    let mut times = Vec::new();
    for _ in 0..rounds {
        let (_cancel, cancelled) = tokio::sync::watch::channel(exec::Interrupt::None);
        let engine = exec::Engine::new(store, &exec::Silent);
        let start = Instant::now();
        let finished = runtime.block_on(exec::run(&request, &exec::Config::default(), &engine, cancelled)).unwrap();
        times.push(start.elapsed());
        assert_eq!(finished.status, exec::Status::Success);
    }
    times.sort();
    times[times.len() / 2] / STEPS as u32
}

/// moto from the project's `.venv`, with a bucket; `None` (and why) where there is no venv.
struct Moto {
    url: String,
    _child: std::process::Child,
}

fn moto(root: &Path) -> Option<Moto> {
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        println!("  (no .venv: run `make venv` for the S3 figures)");
        return None;
    }
    let mut child = Command::new(&python)
        .arg(root.join("tests/moto/server.py"))
        .arg(std::env::temp_dir().join(format!("runbook-bench-moto-{}.log", std::process::id())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
    let url = format!("http://127.0.0.1:{}", line.trim());
    let created = Command::new(&python)
        .args(["-c", "import boto3, sys; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket='bench')"])
        .arg(&url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .status()
        .ok()?;
    created.success().then_some(Moto { url, _child: child })
}

fn s3_store(moto: &Moto, prefix: &str) -> Store {
    let settings =
        aws::Settings { endpoint_url: Some(moto.url.clone()), region: Some("us-east-1".into()), profile: None };
    let credentials = Credentials::new("testing", "testing", None, None, "bench");
    let client = Aws::with_transport(settings, Arc::new(aws::transport::Https::default()), Some(credentials));
    Store::S3(Box::new(S3Store::open_with(&format!("s3://bench/{prefix}"), client, true).unwrap()))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let dir = scratch("runbook");
    let path = dir.join("bench.yaml");
    std::fs::write(&path, runbook_text()).unwrap();
    println!("stores: named locks and durable steps ({STEPS}-step local runbook, sleep PT0S and updateVariable)\n");

    let local = Store::Local(Journal::open(&scratch("local")).unwrap());
    let local_lock = lock_pairs(&local, 1_000);
    let local_step = durable_step(&local, &path, 5);
    println!("  local journal: lock take + give back {:>9.1} µs", local_lock.as_secs_f64() * 1e6);
    println!("  local journal: durable step          {:>9.1} µs   (median of 5 runs)", local_step.as_secs_f64() * 1e6);

    if let Some(moto) = moto(&root) {
        let s3 = s3_store(&moto, "locks");
        let s3_lock = lock_pairs(&s3, 200);
        let s3_step = durable_step(&s3_store(&moto, "steps"), &path, 3);
        println!(
            "  S3 store (moto): lock take + give back {:>8.1} ms   ({:.0}x local; 4 calls: read and write each)",
            s3_lock.as_secs_f64() * 1e3,
            s3_lock.as_secs_f64() / local_lock.as_secs_f64()
        );
        println!(
            "  S3 store (moto): durable step          {:>8.1} ms   ({:.0}x local; median of 3 runs)",
            s3_step.as_secs_f64() * 1e3,
            s3_step.as_secs_f64() / local_step.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
