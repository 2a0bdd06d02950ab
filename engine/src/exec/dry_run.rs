//! Dry-runs: every path a runbook could take, without running anything.
