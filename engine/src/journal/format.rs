//! The journal's stored format: the schema, its version (SQLite's `user_version`), checked on
//! every open, and the migrations from older versions. A journal written by a newer engine is
//! refused rather than misread.

use std::path::Path;

use rusqlite::Connection;
use serde_json::Value;

use super::{Error, Result};
use crate::redact::REDACTED;

/// The format this engine writes. 1: the first journals (no version stored); 2: typed
/// records and `steps.sealed`; 3: `executions.records`, the count that finds lost records;
/// 4: the `Skipped` status and `control` events of game days (same tables: an older journal
/// needs no change, but an older engine must not read these values); 5: named locks
/// (`lock_tokens`, `lock_grants`); 6: `lock_tokens.applied` and `saved_plans`, what saved
/// plans are checked against.
pub const FORMAT: i64 = 6;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    runbook_path TEXT NOT NULL,
    runbook_hash TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    idempotency_key TEXT UNIQUE,
    parent_id TEXT,
    parent_step TEXT,
    dry_run INTEGER NOT NULL DEFAULT 0,
    outputs TEXT,
    error TEXT,
    records INTEGER
);
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    step TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT,
    error TEXT,
    log TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_execution ON attempts (execution_id, step, iteration);
CREATE TABLE IF NOT EXISTS steps (
    execution_id TEXT NOT NULL,
    step TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outputs TEXT NOT NULL,
    effects TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL,
    critical INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    sealed TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (execution_id, step, iteration)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_execution ON events (execution_id);
CREATE TABLE IF NOT EXISTS decisions (
    execution_id TEXT NOT NULL,
    step TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    decision TEXT NOT NULL,
    by TEXT NOT NULL,
    comment TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (execution_id, step, iteration)
);
";

/// Brings a freshly opened database to [`FORMAT`]: creates it, migrates an older one, or
/// refuses a newer one.
pub fn prepare(connection: &Connection, path: &Path) -> Result<()> {
    let version = stored_version(connection)?;
    if version > FORMAT {
        return Err(Error::NewerFormat { path: path.to_owned(), found: version });
    }
    if version == FORMAT {
        return Ok(());
    }
    // Immediate: two processes opening a new journal at once take turns, and the second
    // sees what the first did.
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let migrated = migrate(connection);
    connection.execute_batch(if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    migrated
}

/// Format 1 stored secrets redacted without saying which values held one: every output or
/// variable that holds the redaction mark is sealed, so a resume never passes it on.
fn seal_redacted_values(connection: &Connection) -> Result<()> {
    let rows: Vec<(i64, String, String)> = connection
        .prepare(
            "SELECT rowid, outputs, effects FROM steps WHERE outputs LIKE '%********%' OR effects LIKE '%********%'",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (rowid, outputs, effects) in rows {
        let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let holds = |value: &Value| value.to_string().contains(REDACTED);
        let mut sealed: Vec<String> = Vec::new();
        if let Value::Object(outputs) = parse(&outputs) {
            sealed.extend(outputs.iter().filter(|(_, value)| holds(value)).map(|(name, _)| name.clone()));
        }
        if let Some(Value::Object(variables)) = parse(&effects).get("variables") {
            sealed
                .extend(variables.iter().filter(|(_, value)| holds(value)).map(|(name, _)| format!("variable:{name}")));
        }
        connection.execute(
            "UPDATE steps SET sealed = ?1 WHERE rowid = ?2",
            rusqlite::params![Value::from(sealed).to_string(), rowid],
        )?;
    }
    Ok(())
}

fn stored_version(connection: &Connection) -> Result<i64> {
    Ok(connection.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

fn migrate(connection: &Connection) -> Result<()> {
    if stored_version(connection)? == FORMAT {
        return Ok(());
    }
    let columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('steps')")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // Format 1 (stored as 0: the first journals) lacks `steps.sealed` and the kind of a wait.
    let format_1 = !columns.is_empty() && !columns.iter().any(|column| column == "sealed");
    if format_1 {
        connection.execute_batch("ALTER TABLE steps ADD COLUMN sealed TEXT NOT NULL DEFAULT '[]'")?;
    }
    let execution_columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('executions')")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // Before format 3 nothing was counted: those executions keep `records` NULL, unchecked.
    if !execution_columns.is_empty() && !execution_columns.iter().any(|column| column == "records") {
        connection.execute_batch("ALTER TABLE executions ADD COLUMN records INTEGER")?;
    }
    connection.execute_batch(SCHEMA)?;
    connection.execute_batch(super::named::SCHEMA)?;
    let token_columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('lock_tokens')")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // Format 5 had no `applied`: no plan was saved against it.
    if !token_columns.iter().any(|column| column == "applied") {
        connection.execute_batch("ALTER TABLE lock_tokens ADD COLUMN applied INTEGER NOT NULL DEFAULT 0")?;
    }
    if format_1 {
        seal_redacted_values(connection)?;
        // Format 1 named the action a step waited in; format 2 says what it waits for. (The
        // one place outside the catalogue that names actions: it reads old records.)
        connection.execute_batch(
            "UPDATE events SET detail = json_set(detail, '$.kind', \
             CASE json_extract(detail, '$.action') WHEN 'aws:pause' THEN 'pause' \
             WHEN 'aws:executeAutomation' THEN 'child' ELSE 'approval' END) \
             WHERE kind = 'waiting' AND json_extract(detail, '$.kind') IS NULL",
        )?;
    }
    connection.pragma_update(None, "user_version", FORMAT)?;
    Ok(())
}
