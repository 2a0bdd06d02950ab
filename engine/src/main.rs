//! The `runbook` binary; everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    runbook::cli::main()
}
