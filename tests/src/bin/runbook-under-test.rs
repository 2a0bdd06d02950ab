//! The `runbook` binary, built inside the tests package so that end-to-end tests can start it
//! as a separate process (to kill it, interrupt it, or run two at once).
//!
//! `runbook-under-test lock-hammer STATE NAME COUNT LOG HOLDER` is the tests' own mode: it
//! takes the named lock NAME from the store STATE (a state directory or `s3://BUCKET/PREFIX`)
//! COUNT times, each
//! time appending to LOG the token and when it held the lock, so that a test running several
//! at once can check that no two grants overlapped and no token was reused.

use std::io::Write;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("lock-hammer") {
        return hammer(&args[2..]);
    }
    runbook::cli::main()
}

fn hammer(args: &[String]) -> std::process::ExitCode {
    let [state, name, count, log, holder] = args else {
        eprintln!("usage: runbook-under-test lock-hammer STATE NAME COUNT LOG HOLDER");
        return std::process::ExitCode::from(2);
    };
    let count: u32 = count.parse().expect("COUNT is a number");
    let store: Box<dyn runbook::journal::NamedLocks> = if state.starts_with("s3://") {
        Box::new(runbook::journal::S3Store::open(state).expect("the store opens"))
    } else {
        Box::new(runbook::journal::Journal::open(std::path::Path::new(state)).expect("the store opens"))
    };
    // A remote store is asked less often by those waiting.
    let patience = if state.starts_with("s3://") { 8 } else { 1 };
    let mut log = std::fs::File::options().create(true).append(true).open(log).expect("the log opens");
    let lease = std::time::Duration::from_secs(30);
    let mut taken = 0;
    let mut seed = u64::from(std::process::id());
    while taken < count {
        let granted = store.grant(name, holder, runbook::journal::named::LockMode::Exclusive, lease);
        match granted {
            Ok(grant) => {
                let start = nanos();
                // Hold it a moment, as a step would.
                std::thread::yield_now();
                let end = nanos();
                // One write per line: appends of this size are never interleaved.
                log.write_all(format!("{} {holder} {start} {end}\n", grant.token).as_bytes()).expect("logged");
                store.release(&grant).expect("released");
                taken += 1;
            }
            Err(runbook::journal::Error::LockHeld { .. }) => {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                std::thread::sleep(std::time::Duration::from_micros((seed >> 54) * patience));
            }
            Err(error) => {
                eprintln!("lock-hammer: {error}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}

/// Nanoseconds since the epoch: the one clock every process on the machine shares.
fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos()
}
