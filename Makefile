# The one test command (README.md): formatting, lints, and every test.
# CI (.ci/run) sets RUNBOOK_REQUIRE_CORPUS=1 so tests that read ../shared fail instead of skipping.

.PHONY: test bench

test:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo test --workspace --locked

bench:
	cargo bench -p runbook --bench validate --locked
	cargo bench -p runbook --bench plan --locked
	cargo bench -p runbook --bench run --locked
