//! Stage 5, the durable record: an embedded SQLite database holding every execution, every
//! step attempt and an event timeline. Write-ahead: the runner commits an attempt as started
//! before its executor runs and as finished after, each commit synced to disk, so a crash
//! leaves an exact account of what may have happened. Resume reads it back.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

/// The database file inside the state directory.
pub const FILE_NAME: &str = "journal.sqlite";

/// The environment variable that overrides the state directory.
pub const STATE_DIR_VARIABLE: &str = "RUNBOOK_STATE_DIR";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("failed to use {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("execution {execution_id} is being driven by another process (lock {})", lock.display())]
    Locked { execution_id: String, lock: PathBuf },
    #[error("no execution {0} in the journal")]
    NotFound(String),
    #[error("the journal holds a malformed value in {0}")]
    Corrupt(&'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The state directory: `--state-dir`, else `$RUNBOOK_STATE_DIR`, else the XDG state
/// directory (`$XDG_STATE_HOME/runbook`, `~/.local/state/runbook`).
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(STATE_DIR_VARIABLE).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("runbook");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/runbook")
}

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
    error TEXT
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

/// An open journal. One connection per process; SQLite serialises writers across processes.
pub struct Journal {
    connection: Connection,
    dir: PathBuf,
}

/// An execution as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    pub id: String,
    pub runbook_path: String,
    pub runbook_hash: String,
    /// Supplied parameter values, secrets replaced by the redaction mark.
    pub parameters: Value,
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub idempotency_key: Option<String>,
    pub parent_id: Option<String>,
    pub parent_step: Option<String>,
    pub dry_run: bool,
    pub outputs: Option<Value>,
    pub error: Option<String>,
}

/// One try of one step.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub step: String,
    /// The loop iteration the step ran in (1-based), 0 outside loops.
    pub iteration: u32,
    pub attempt: u32,
    pub action: String,
    pub status: String,
    pub inputs: Value,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub log: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// How a step visit ended, after all its attempts: what resume restores.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub iteration: u32,
    pub action: String,
    pub status: String,
    /// The outcome as the runner names it (`succeeded`, `chose:1`, `failed`, `exited:X`...).
    pub outcome: String,
    pub outputs: Value,
    /// State changes besides outputs: variables written.
    pub effects: Value,
    pub error: Option<String>,
    pub attempts: u32,
    pub critical: bool,
    pub started_at: String,
    pub ended_at: String,
}

/// A timeline entry.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub at: String,
    pub kind: String,
    pub step: Option<String>,
    pub detail: Value,
}

/// A person's answer to an `aws:approve` or `aws:pause` step.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    pub step: String,
    pub iteration: u32,
    /// `Approve`, `Reject` or `Resume`.
    pub decision: String,
    pub by: String,
    pub comment: Option<String>,
    pub at: String,
}

/// The time now, as the journal writes it.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

fn parse_json(text: Option<String>, column: &'static str) -> Result<Option<Value>> {
    text.map(|text| serde_json::from_str(&text).map_err(|_| Error::Corrupt(column))).transpose()
}

impl Journal {
    /// Opens (creating if needed) the journal in a state directory.
    pub fn open(dir: &Path) -> Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        let connection = Connection::open(dir.join(FILE_NAME))?;
        // WAL with FULL sync: every commit reaches the disk before the call returns, and
        // readers (`runbook executions`) never block the driver.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.execute_batch(SCHEMA)?;
        Ok(Journal { connection, dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the exclusive right to drive an execution, held until the lock is dropped. The
    /// operating system releases it when the process dies, even by SIGKILL.
    pub fn lock(&self, execution_id: &str) -> Result<Lock> {
        let dir = self.dir.join("locks");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        let path = dir.join(format!("{execution_id}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(Error::Locked { execution_id: execution_id.to_owned(), lock: path })
            }
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Io { path, source }),
        }
    }

    /// Whether some process drives the execution right now.
    pub fn is_driven(&self, execution_id: &str) -> bool {
        matches!(self.lock(execution_id), Err(Error::Locked { .. }))
    }

    pub fn create_execution(&self, execution: &Execution) -> Result<()> {
        let transaction = self.connection.unchecked_transaction()?;
        transaction.execute(
            "INSERT INTO executions (id, runbook_path, runbook_hash, parameters, status, started_at, \
             idempotency_key, parent_id, parent_step, dry_run, outputs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                execution.id,
                execution.runbook_path,
                execution.runbook_hash,
                json_text(&execution.parameters),
                execution.status,
                execution.started_at,
                execution.idempotency_key,
                execution.parent_id,
                execution.parent_step,
                execution.dry_run,
                execution.outputs.as_ref().map(json_text),
            ],
        )?;
        insert_event(&transaction, &execution.id, "execution_created", None, &Value::Null)?;
        transaction.commit()?;
        Ok(())
    }

    /// Records the execution's status (and, once it ended, its end time, outputs and error).
    pub fn set_status(
        &self,
        execution_id: &str,
        status: &str,
        ended: bool,
        outputs: Option<&Value>,
        error: Option<&str>,
    ) -> Result<()> {
        let transaction = self.connection.unchecked_transaction()?;
        let ended_at = ended.then(now);
        transaction.execute(
            "UPDATE executions SET status = ?2, ended_at = ?3, outputs = COALESCE(?4, outputs), error = ?5 WHERE id = ?1",
            params![execution_id, status, ended_at, outputs.map(json_text), error],
        )?;
        insert_event(&transaction, execution_id, "status", None, &serde_json::json!({ "status": status }))?;
        transaction.commit()?;
        Ok(())
    }

    pub fn execution(&self, execution_id: &str) -> Result<Execution> {
        let mut statement = self.connection.prepare_cached(&format!("{EXECUTION_COLUMNS} WHERE id = ?1"))?;
        let row = statement.query_row(params![execution_id], execution_from_row).optional()?;
        row.ok_or_else(|| Error::NotFound(execution_id.to_owned()))?
    }

    pub fn find_by_key(&self, key: &str) -> Result<Option<Execution>> {
        let mut statement =
            self.connection.prepare_cached(&format!("{EXECUTION_COLUMNS} WHERE idempotency_key = ?1"))?;
        statement.query_row(params![key], execution_from_row).optional()?.transpose()
    }

    /// The most recent executions first.
    pub fn executions(&self, limit: u32) -> Result<Vec<Execution>> {
        let mut statement =
            self.connection.prepare(&format!("{EXECUTION_COLUMNS} ORDER BY started_at DESC, rowid DESC LIMIT ?1"))?;
        let rows = statement.query_map(params![limit], execution_from_row)?;
        rows.map(|row| row?).collect()
    }

    /// Children started by `aws:executeAutomation` steps of an execution.
    pub fn children(&self, execution_id: &str) -> Result<Vec<Execution>> {
        let mut statement =
            self.connection.prepare(&format!("{EXECUTION_COLUMNS} WHERE parent_id = ?1 ORDER BY started_at"))?;
        let rows = statement.query_map(params![execution_id], execution_from_row)?;
        rows.map(|row| row?).collect()
    }

    /// Commits an attempt as started, before its executor runs.
    pub fn attempt_started(&self, execution_id: &str, attempt: &Attempt) -> Result<()> {
        let transaction = self.connection.unchecked_transaction()?;
        transaction
            .prepare_cached(
                "INSERT INTO attempts (execution_id, step, iteration, attempt, action, status, inputs, started_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                execution_id,
                attempt.step,
                attempt.iteration,
                attempt.attempt,
                attempt.action,
                attempt.status,
                json_text(&attempt.inputs),
                attempt.started_at,
            ])?;
        transaction.commit()?;
        Ok(())
    }

    /// Commits an attempt as finished, and with the last attempt of a visit, the step's result.
    pub fn attempt_finished(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()> {
        let transaction = self.connection.unchecked_transaction()?;
        transaction
            .prepare_cached(
                "UPDATE attempts SET status = ?5, outputs = ?6, error = ?7, log = ?8, ended_at = ?9 \
                 WHERE execution_id = ?1 AND step = ?2 AND iteration = ?3 AND attempt = ?4",
            )?
            .execute(params![
                execution_id,
                attempt.step,
                attempt.iteration,
                attempt.attempt,
                attempt.status,
                attempt.outputs.as_ref().map(json_text),
                attempt.error,
                attempt.log,
                attempt.ended_at,
            ])?;
        if let Some(step) = step {
            insert_step(&transaction, execution_id, step)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Records a step visit's result that needed no attempt row (a restored or control step).
    pub fn step_finished(&self, execution_id: &str, step: &StepRecord) -> Result<()> {
        let transaction = self.connection.unchecked_transaction()?;
        insert_step(&transaction, execution_id, step)?;
        transaction.commit()?;
        Ok(())
    }

    pub fn attempts(&self, execution_id: &str) -> Result<Vec<Attempt>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT step, iteration, attempt, action, status, inputs, outputs, error, log, started_at, ended_at \
             FROM attempts WHERE execution_id = ?1 ORDER BY seq",
        )?;
        let rows = statement.query_map(params![execution_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, u32>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<String>>(7)?,
                row.get::<_, Option<String>>(8)?,
                row.get::<_, String>(9)?,
                row.get::<_, Option<String>>(10)?,
            ))
        })?;
        rows.map(|row| {
            let (step, iteration, attempt, action, status, inputs, outputs, error, log, started_at, ended_at) = row?;
            Ok(Attempt {
                step,
                iteration,
                attempt,
                action,
                status,
                inputs: parse_json(Some(inputs), "attempts.inputs")?.unwrap_or(Value::Null),
                outputs: parse_json(outputs, "attempts.outputs")?,
                error,
                log,
                started_at,
                ended_at,
            })
        })
        .collect()
    }

    pub fn steps(&self, execution_id: &str) -> Result<Vec<StepRecord>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT step, iteration, action, status, outcome, outputs, effects, error, attempts, critical, \
             started_at, ended_at FROM steps WHERE execution_id = ?1 ORDER BY started_at, rowid",
        )?;
        let rows = statement.query_map(params![execution_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<String>>(7)?,
                row.get::<_, u32>(8)?,
                row.get::<_, bool>(9)?,
                row.get::<_, String>(10)?,
                row.get::<_, String>(11)?,
            ))
        })?;
        rows.map(|row| {
            let (step, iteration, action, status, outcome, outputs, effects, error, attempts, critical, started, ended) =
                row?;
            Ok(StepRecord {
                step,
                iteration,
                action,
                status,
                outcome,
                outputs: parse_json(Some(outputs), "steps.outputs")?.unwrap_or(Value::Null),
                effects: parse_json(Some(effects), "steps.effects")?.unwrap_or(Value::Null),
                error,
                attempts,
                critical,
                started_at: started,
                ended_at: ended,
            })
        })
        .collect()
    }

    /// Appends a timeline event on its own.
    pub fn event(&self, execution_id: &str, kind: &str, step: Option<&str>, detail: &Value) -> Result<()> {
        insert_event(&self.connection, execution_id, kind, step, detail)
    }

    pub fn events(&self, execution_id: &str) -> Result<Vec<Event>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT at, kind, step, detail FROM events WHERE execution_id = ?1 ORDER BY seq")?;
        let rows = statement.query_map(params![execution_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?, row.get(3)?))
        })?;
        rows.map(|row| {
            let (at, kind, step, detail) = row?;
            Ok(Event { at, kind, step, detail: parse_json(Some(detail), "events.detail")?.unwrap_or(Value::Null) })
        })
        .collect()
    }

    /// Records a decision; the first one for a step visit stands.
    pub fn decide(&self, execution_id: &str, decision: &Decision) -> Result<bool> {
        let transaction = self.connection.unchecked_transaction()?;
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO decisions (execution_id, step, iteration, decision, by, comment, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                execution_id,
                decision.step,
                decision.iteration,
                decision.decision,
                decision.by,
                decision.comment,
                decision.at
            ],
        )? == 1;
        if inserted {
            let detail = serde_json::json!({
                "iteration": decision.iteration, "decision": decision.decision, "by": decision.by,
                "comment": decision.comment,
            });
            insert_event(&transaction, execution_id, "decision", Some(&decision.step), &detail)?;
        }
        transaction.commit()?;
        Ok(inserted)
    }

    pub fn decision(&self, execution_id: &str, step: &str, iteration: u32) -> Result<Option<Decision>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT decision, by, comment, at FROM decisions WHERE execution_id = ?1 AND step = ?2 AND iteration = ?3",
        )?;
        let decision = statement
            .query_row(params![execution_id, step, iteration], |row| {
                Ok(Decision {
                    step: step.to_owned(),
                    iteration,
                    decision: row.get(0)?,
                    by: row.get(1)?,
                    comment: row.get(2)?,
                    at: row.get(3)?,
                })
            })
            .optional()?;
        Ok(decision)
    }

    /// The step visit an execution waits on (`aws:approve` or `aws:pause`), from its timeline.
    pub fn waiting_on(&self, execution_id: &str) -> Result<Option<(String, u32, String)>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT step, detail FROM events WHERE execution_id = ?1 AND kind = 'waiting' ORDER BY seq DESC LIMIT 1",
        )?;
        let row = statement
            .query_row(params![execution_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .optional()?;
        let Some((step, detail)) = row else { return Ok(None) };
        let detail: Value = serde_json::from_str(&detail).map_err(|_| Error::Corrupt("events.detail"))?;
        let iteration = detail.get("iteration").and_then(Value::as_u64).unwrap_or(0) as u32;
        let action = detail.get("action").and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok(Some((step, iteration, action)))
    }
}

/// Held while a process drives an execution.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

const EXECUTION_COLUMNS: &str = "SELECT id, runbook_path, runbook_hash, parameters, status, started_at, ended_at, \
     idempotency_key, parent_id, parent_step, dry_run, outputs, error FROM executions";

type Row = rusqlite::Result<Result<Execution>>;

fn execution_from_row(row: &rusqlite::Row<'_>) -> Row {
    let parameters: String = row.get(3)?;
    let outputs: Option<String> = row.get(11)?;
    let build = |parameters: String, outputs: Option<String>| -> Result<Execution> {
        Ok(Execution {
            id: row.get(0)?,
            runbook_path: row.get(1)?,
            runbook_hash: row.get(2)?,
            parameters: parse_json(Some(parameters), "executions.parameters")?.unwrap_or(Value::Null),
            status: row.get(4)?,
            started_at: row.get(5)?,
            ended_at: row.get(6)?,
            idempotency_key: row.get(7)?,
            parent_id: row.get(8)?,
            parent_step: row.get(9)?,
            dry_run: row.get(10)?,
            outputs: parse_json(outputs, "executions.outputs")?,
            error: row.get(12)?,
        })
    };
    Ok(build(parameters, outputs))
}

fn insert_event(
    connection: &Connection,
    execution_id: &str,
    kind: &str,
    step: Option<&str>,
    detail: &Value,
) -> Result<()> {
    connection
        .prepare_cached("INSERT INTO events (execution_id, at, kind, step, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![execution_id, now(), kind, step, json_text(detail)])?;
    Ok(())
}

fn insert_step(connection: &Connection, execution_id: &str, step: &StepRecord) -> Result<()> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO steps (execution_id, step, iteration, action, status, outcome, outputs, effects, \
             error, attempts, critical, started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            execution_id,
            step.step,
            step.iteration,
            step.action,
            step.status,
            step.outcome,
            json_text(&step.outputs),
            json_text(&step.effects),
            step.error,
            step.attempts,
            step.critical,
            step.started_at,
            step.ended_at,
        ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runbook-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn execution(id: &str) -> Execution {
        Execution {
            id: id.into(),
            runbook_path: "r.yaml".into(),
            runbook_hash: "h".into(),
            parameters: serde_json::json!({"A": "1"}),
            status: "InProgress".into(),
            started_at: now(),
            ended_at: None,
            idempotency_key: Some(format!("key-{id}")),
            parent_id: None,
            parent_step: None,
            dry_run: false,
            outputs: None,
            error: None,
        }
    }

    #[test]
    fn attempts_and_steps_round_trip() {
        let dir = temp_dir("round-trip");
        let journal = Journal::open(&dir).unwrap();
        journal.create_execution(&execution("e1")).unwrap();
        let mut attempt = Attempt {
            step: "a".into(),
            iteration: 0,
            attempt: 1,
            action: "aws:sleep".into(),
            status: "InProgress".into(),
            inputs: serde_json::json!({"Duration": "PT0S"}),
            outputs: None,
            error: None,
            log: None,
            started_at: now(),
            ended_at: None,
        };
        journal.attempt_started("e1", &attempt).unwrap();
        assert_eq!(journal.attempts("e1").unwrap()[0].status, "InProgress");
        attempt.status = "Success".into();
        attempt.ended_at = Some(now());
        let record = StepRecord {
            step: "a".into(),
            iteration: 0,
            action: "aws:sleep".into(),
            status: "Success".into(),
            outcome: "succeeded".into(),
            outputs: serde_json::json!({}),
            effects: serde_json::json!({}),
            error: None,
            attempts: 1,
            critical: true,
            started_at: attempt.started_at.clone(),
            ended_at: now(),
        };
        journal.attempt_finished("e1", &attempt, Some(&record)).unwrap();
        // A second connection, as another process would open it, sees everything.
        let other = Journal::open(&dir).unwrap();
        assert_eq!(other.attempts("e1").unwrap()[0].status, "Success");
        assert_eq!(other.steps("e1").unwrap()[0].outcome, "succeeded");
        assert_eq!(other.find_by_key("key-e1").unwrap().unwrap().id, "e1");
        let kinds: Vec<_> = other.events("e1").unwrap().into_iter().map(|e| e.kind).collect();
        // Attempts are their own timeline; events hold the rest (status, decisions, waits).
        assert_eq!(kinds, ["execution_created"]);
        assert!(matches!(other.execution("nope"), Err(Error::NotFound(_))));
    }

    #[test]
    fn one_driver_per_execution() {
        let dir = temp_dir("lock");
        let journal = Journal::open(&dir).unwrap();
        let lock = journal.lock("e1").unwrap();
        assert!(matches!(journal.lock("e1"), Err(Error::Locked { .. })));
        assert!(journal.is_driven("e1"));
        drop(lock);
        assert!(!journal.is_driven("e1"));
    }

    #[test]
    fn the_first_decision_stands() {
        let dir = temp_dir("decide");
        let journal = Journal::open(&dir).unwrap();
        let decision = |answer: &str| Decision {
            step: "ask".into(),
            iteration: 0,
            decision: answer.into(),
            by: "ana".into(),
            comment: None,
            at: now(),
        };
        assert!(journal.decide("e1", &decision("Approve")).unwrap());
        assert!(!journal.decide("e1", &decision("Reject")).unwrap());
        assert_eq!(journal.decision("e1", "ask", 0).unwrap().unwrap().decision, "Approve");
    }
}
