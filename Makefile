# The one test command (README.md): the moto virtual environment, formatting, lints, and
# every test, with the AWS tests required (RUNBOOK_REQUIRE_MOTO=1: a missing emulator fails
# them instead of skipping). CI (.ci/run) also sets RUNBOOK_REQUIRE_CORPUS=1 so tests that
# read ../shared fail instead of skipping.

VENV := .venv

.PHONY: test bench bench-peers venv tools fuzz

test: venv tools
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	RUNBOOK_REQUIRE_MOTO=1 cargo test --workspace --locked

# The AWS emulator the end-to-end tests start (tests/src/moto.rs), pinned in
# tests/moto/requirements.txt; rebuilt when the pins change.
venv: $(VENV)/.installed

$(VENV)/.installed: tests/moto/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/moto/requirements.txt
	touch $@

# Tools the tests run: Mermaid's own parser, in Node (tests/mermaid, pinned in its
# package-lock.json), Graphviz's dot (plan pictures, tests/tests/plan.rs), jq (the README
# tour, tests/tests/tour.rs), and Debian's Chromium driven by playwright-core (HTML reports,
# tests/browser, tests/tests/report.rs). Debian packages are installed when missing and this
# runs as root, as on CI.
tools: tests/mermaid/node_modules/.installed tests/browser/node_modules/.installed
	@missing=""; command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v jq >/dev/null || missing="$$missing jq"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "install the Debian packages:$$missing" >&2; exit 1; fi; \
	fi

tests/mermaid/node_modules/.installed: tests/mermaid/package-lock.json
	npm ci --prefix tests/mermaid --no-audit --no-fund --silent
	touch $@

tests/browser/node_modules/.installed: tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $@

bench: venv
	cargo bench -p runbook --bench validate --locked
	cargo bench -p runbook --bench plan --locked
	cargo bench -p runbook --bench run --locked
	cargo bench -p runbook --bench store --locked
	cargo bench -p runbook --bench fan_out --locked
	cargo build --release --locked
	cargo bench -p runbook --bench scenarios --locked

# The same work through runbook and its peers (../shared/bench), side by side, as ratios:
# about 15 minutes on 2 cores the first time (the peers install into a cache folder).
bench-peers:
	cargo build --release --locked -p runbook --bin runbook
	python3 engine/benches/peers.py --runbook target/release/runbook

# 10,000 hostile and mutated runbooks through validate, plan and dry-run (the test suite runs 240).
fuzz:
	cargo build --release --locked
	python3 tests/fuzz/fuzz.py --binary target/release/runbook --count 10000
