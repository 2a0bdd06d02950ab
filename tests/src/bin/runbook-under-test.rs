//! The `runbook` binary, built inside the tests package so that end-to-end tests can start it
//! as a separate process (to kill it, interrupt it, or run two at once).

fn main() -> std::process::ExitCode {
    runbook::cli::main()
}
