//! The end-to-end tests, one binary (it links once). Each module is one area; shared helpers
//! live in `src/` (`runbook_tests`).

// Calling AWS: runbooks against a moto server, one or more per wire protocol.
mod aws;
// The import rules of ARCHITECTURE.md, checked on the sources.
mod architecture;
// The command line in-process: exit codes, output formats, parameters.
mod cli;
// Every AWS-published runbook validates with zero errors.
mod corpus;
// Hostile and mutated runbooks under time and memory budgets (tests/fuzz/fuzz.py).
mod fuzz;
// `runbook run --dry-run`: every path, mocks, read-only calls.
mod dry_run;
// Named locks: refusal, waiting, fencing tokens, a lease taken away.
mod locks;
// Game days: injected faults, where the walk starts and stops, pauses and operators' answers.
mod game_day;
// The journal damaged or contended: exit classes, typed records, races, interrupted attempts.
mod journal;
// Planning: the corpus in every output format, snapshots, mutations.
mod plan;
// The engine's process: signals cancel, a second one stops, no script outlives the engine.
mod process;
// The wire protocols against botocore, every operation of every bundled service.
mod protocols;
// HTML reports opened in headless Chromium: offline, no errors, the graph and the timeline.
mod report;
// Durability: crash and resume, refusals, approvals, idempotency keys.
mod resume;
// One broken runbook per diagnostic code.
mod rules;
// `runbook run`: successors, retries, timeouts, statuses, loops, variables, outputs.
mod run;
// `runbook test`: scenario files, mocks, the virtual clock, coverage, scaffolds, reports.
mod scenarios;
// Seams: a runner with executors that need no Python and no network, a transport that answers
// itself, paused time.
mod seams;
// The local journal and the S3 store: one contract; S3 across processes against moto.
mod store;
// Secrets: a canary through every command and output, and resumes that must not change data.
mod secrets;
// The outage behind issue 16: three DNS enactors racing, without locks and with them.
mod race;
// Runs over targets: rate control, MaxErrors, tag targets, a parent killed and resumed.
mod fan_out;
// Undo and rollback: x-undo, x-rollback, runbook undo, a rollback killed midway.
mod undo;
// The README's five-minute tour, run as written, its outputs compared.
mod tour;
// `aws:invokeWebhook` against a local HTTP server, from a local mapping or Parameter Store.
mod webhook;
// SSM as the managed engine: documents run by name, published, and run on SSM Automation (the
// harness's emulation of its execution APIs).
mod ssm;
// YAML read as PyYAML reads it: tests/yaml/ against a real PyYAML from the virtual environment.
mod yaml_compat;
