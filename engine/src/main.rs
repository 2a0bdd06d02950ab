//! The `runbook` binary; everything lives in the library's `cli` module.

/// mimalloc: a run allocates and frees many small JSON values per step; glibc's allocator
/// took a third of `runbook test`'s time, mimalloc half as much.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    runbook::cli::main()
}
