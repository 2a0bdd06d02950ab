//! The journal as an embedded SQLite database in the state directory: WAL mode with FULL
//! sync, so every commit reaches the disk before the call returns and readers (`runbook
//! executions`) never block the driver. Rows become typed records on read; a value that does
//! not parse is [`Error::Corrupt`].

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde_json::Value;

use super::record::{
    Answer, Attempt, Decision, Event, EventKind, Execution, Status, StepOutcome, StepRecord, WaitKind, WaitingOn, now,
};
use super::{Error, FILE_NAME, JournalRead, JournalWrite, Lease, Locks, Result, format, locks};

/// An open journal. One connection per process; SQLite serialises writers across processes.
pub struct Journal {
    connection: Connection,
    dir: PathBuf,
    /// Group commit (runs over targets): writes held in one open transaction until `flush`.
    /// Boxed, so that a `Store` holding a journal stays small.
    group: Box<std::cell::RefCell<Group>>,
}

/// The state of group commit.
#[derive(Default)]
struct Group {
    /// How many runs over targets asked for it (one may run inside another).
    on: u32,
    /// A transaction is open with writes in it.
    open: bool,
    /// How many batches were committed: a write made in batch N is durable once it passed N.
    generation: u64,
    /// Each execution's record tally, written when the group ends (a file per execution and
    /// per commit would cost more than the commits: the tally only narrows a check).
    tallies: std::collections::HashMap<String, u64>,
    /// Executions that ended in the group: once a checkpoint moved everything into the
    /// database file, they need no tally.
    ended: std::collections::HashSet<String>,
    /// Each execution's tally file, kept open: a tally is overwritten in place after every
    /// commit outside group commit, and a new file renamed into place each time cost as much
    /// as the commit.
    tally_files: std::collections::HashMap<String, std::fs::File>,
}

/// At most this many tally files are kept open.
const TALLY_FILES_OPEN: usize = 16;

/// A tally's width on disk: always written whole at offset 0, so a shorter count never
/// leaves digits of a longer one behind.
const TALLY_DIGITS: usize = 20;

/// Rolls back the open transaction when dropped before the commit.
struct RollbackUnlessCommitted<'c>(&'c Connection);

impl Drop for RollbackUnlessCommitted<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

fn parse_json(text: Option<String>, column: &'static str) -> Result<Option<Value>> {
    text.map(|text| serde_json::from_str(&text).map_err(|_| Error::Corrupt(column.to_owned()))).transpose()
}

/// A typed value from its stored text; anything else is damage, named with what was found.
fn parse_text<T>(text: &str, column: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| {
        let shown: String = text.chars().take(40).collect();
        Error::Corrupt(format!("{column}: `{shown}`"))
    })
}

impl Journal {
    /// Opens (creating if needed) the journal in a state directory.
    pub fn open(dir: &Path) -> Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        let path = dir.join(FILE_NAME);
        // SQLite may answer "busy" at once, without waiting in its busy handler, when a second
        // process opens a journal the first is creating (switching it to WAL, creating the
        // tables): try again for a while, as the busy handler would have waited.
        let mut tries = 0;
        loop {
            match Journal::open_once(dir, &path) {
                Err(Error::Sqlite(rusqlite::Error::SqliteFailure(failure, _)))
                    if failure.code == ErrorCode::DatabaseBusy && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                opened => return opened,
            }
        }
    }

    fn open_once(dir: &Path, path: &Path) -> Result<Journal> {
        let connection = Connection::open(path)?;
        // The timeout first: two processes opening a new journal at once wait for each other.
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        format::prepare(&connection, path)?;
        Ok(Journal { connection, dir: dir.to_owned(), group: Default::default() })
    }

    /// Runs one write as its own transaction, committed (and synced) before it returns; under
    /// group commit, as a savepoint of the open batch, committed by [`JournalWrite::flush`].
    fn write<T>(&self, change: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let grouped = self.group.borrow().on > 0;
        if !grouped {
            // Prepared once: a run commits twice per step. Anything that leaves before the
            // commit (an error, a panic) rolls back, as a dropped transaction does.
            self.connection.prepare_cached("BEGIN")?.execute([])?;
            let open = RollbackUnlessCommitted(&self.connection);
            let result = change(&self.connection)?;
            self.connection.prepare_cached("COMMIT")?.execute([])?;
            std::mem::forget(open);
            return Ok(result);
        }
        if !self.group.borrow().open {
            self.connection.execute_batch("BEGIN IMMEDIATE")?;
            self.group.borrow_mut().open = true;
        }
        // Prepared once: thousands of these run in a run over targets.
        self.connection.prepare_cached("SAVEPOINT write")?.execute([])?;
        match change(&self.connection) {
            Ok(result) => {
                self.connection.prepare_cached("RELEASE write")?.execute([])?;
                Ok(result)
            }
            Err(error) => {
                // An error that rolled the whole batch back (a full disk) ends it: what it held
                // is lost, and the next write starts another.
                if self.connection.is_autocommit() {
                    self.group.borrow_mut().open = false;
                    return Err(error);
                }
                self.connection.execute_batch("ROLLBACK TO write; RELEASE write")?;
                Err(error)
            }
        }
    }

    /// Records an execution's tally after its records commit (under group commit, at flush).
    fn tally(&self, execution_id: &str, records: Option<u64>) {
        let Some(records) = records else { return };
        let mut group = self.group.borrow_mut();
        if group.on > 0 {
            group.tallies.insert(execution_id.to_owned(), records);
        } else {
            drop(group);
            self.write_tally(execution_id, Some(records));
        }
    }

    /// Opens an existing journal for reading only (`runbook executions` on a read-only mount
    /// or a journal another user owns). A database whose shared-memory file cannot be created
    /// is read as immutable: its write-ahead log, if one was left, is then not read, and a
    /// warning says so.
    pub fn open_read_only(dir: &Path) -> Result<(Journal, Option<String>)> {
        use rusqlite::OpenFlags;
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Err(Error::Io { path, source: std::io::ErrorKind::NotFound.into() });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let check = |connection: Connection| -> Result<Journal> {
            let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            if version > format::FORMAT {
                return Err(Error::NewerFormat { path: path.clone(), found: version });
            }
            Ok(Journal { connection, dir: dir.to_owned(), group: Default::default() })
        };
        if let Ok(journal) = Connection::open_with_flags(&path, flags).map_err(Error::from).and_then(check) {
            return Ok((journal, None));
        }
        let uri = format!("file:{}?immutable=1", path.display());
        let journal = check(Connection::open_with_flags(uri, flags)?)?;
        let wal = dir.join(format!("{FILE_NAME}-wal"));
        let note = std::fs::metadata(&wal).is_ok_and(|wal| wal.len() > 0).then(|| {
            format!(
                "the journal is read-only and its write-ahead log {} cannot be read with it: records an \
                 execution wrote after the last checkpoint are not shown",
                wal.display()
            )
        });
        Ok((journal, note))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full id an execution was given as: the id, a unique prefix of it (as git takes
    /// commits), or `last` for the newest execution that was not started by another.
    pub fn resolve_id(&self, given: &str) -> Result<String> {
        let found: Vec<String> = if given == "last" {
            self.connection
                .prepare_cached(
                    "SELECT id FROM executions WHERE parent_id IS NULL ORDER BY started_at DESC, rowid DESC LIMIT 1",
                )?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        } else {
            // Compared as text, not LIKE, so `%` and `_` in what was typed mean themselves.
            self.connection
                .prepare_cached(
                    "SELECT id FROM executions WHERE id = ?1 \
                     UNION SELECT id FROM executions WHERE ?1 <> '' AND substr(id, 1, length(?1)) = ?1 LIMIT 6",
                )?
                .query_map([given], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        match found.as_slice() {
            [] => Err(Error::NotFound(given.to_owned())),
            [one] => Ok(one.clone()),
            _ if found.iter().any(|id| id == given) => Ok(given.to_owned()),
            _ => Err(Error::Ambiguous { prefix: given.to_owned(), matches: found }),
        }
    }

    fn locks_dir(&self) -> PathBuf {
        self.dir.join("locks")
    }

    /// The tally of an execution's records, kept outside the database so that losing the
    /// write-ahead log (which rolls the count back with the records) is still noticed.
    fn tally_path(&self, execution_id: &str) -> PathBuf {
        self.locks_dir().join(format!("{execution_id}.records"))
    }

    /// Writes the tally after a commit: a fixed-width count overwritten in place with one
    /// write, not synced (a tally behind the database after a power cut only weakens the
    /// check, never fails it). Another process (an approval) writing the same tally writes
    /// whole counts at the same offset too, and only under the execution's lease.
    fn write_tally(&self, execution_id: &str, records: Option<u64>) {
        use std::os::unix::fs::FileExt;
        let Some(records) = records else { return };
        let mut group = self.group.borrow_mut();
        if !group.tally_files.contains_key(execution_id) {
            // A few executions at a time write their tallies in place (a run, its children);
            // past that, files are closed rather than kept open by the thousand.
            if group.tally_files.len() >= TALLY_FILES_OPEN {
                group.tally_files.clear();
            }
            let _ = std::fs::create_dir_all(self.locks_dir());
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.tally_path(execution_id));
            let Ok(file) = opened else { return };
            group.tally_files.insert(execution_id.to_owned(), file);
        }
        let text = format!("{records:0TALLY_DIGITS$}");
        let _ = group.tally_files[execution_id].write_all_at(text.as_bytes(), 0);
    }

    /// Removes an execution's tally (the database file alone holds its records).
    fn remove_tally(&self, execution_id: &str) {
        self.group.borrow_mut().tally_files.remove(execution_id);
        let _ = std::fs::remove_file(self.tally_path(execution_id));
    }

    /// The most recent executions first, as [`JournalRead::executions`], except that a row
    /// that cannot be read is set aside with its id and what is wrong, rather than failing
    /// the whole list (`runbook executions list`).
    pub fn list(&self, limit: u32) -> Result<Listing> {
        let mut statement = self
            .connection
            .prepare_cached(&format!("{EXECUTION_COLUMNS} ORDER BY started_at DESC, rowid DESC LIMIT ?1"))?;
        let rows = statement.query_map([limit], |row| {
            let id = row.get::<_, String>(0).unwrap_or_else(|_| "(unreadable id)".to_owned());
            Ok((id, execution_from_row(row)))
        })?;
        let (mut listed, mut malformed) = (Vec::new(), Vec::new());
        for row in rows {
            let (id, execution) = row?;
            match execution {
                Ok(Ok(execution)) => listed.push(execution),
                Ok(Err(error)) => malformed.push((id, error)),
                Err(error) => malformed.push((id, Error::Sqlite(error))),
            }
        }
        Ok((listed, malformed))
    }

    fn query_executions(&self, filter: &str, parameter: &dyn rusqlite::ToSql) -> Result<Vec<Execution>> {
        let mut statement = self.connection.prepare_cached(&format!("{EXECUTION_COLUMNS} {filter}"))?;
        let rows = statement.query_map([parameter], execution_from_row)?;
        rows.map(|row| row?).collect()
    }
}

/// Executions as listed: those read, and the id of each row that could not be, with why.
pub type Listing = (Vec<Execution>, Vec<(String, Error)>);

impl JournalRead for Journal {
    fn execution(&self, execution_id: &str) -> Result<Execution> {
        let mut found = self.query_executions("WHERE id = ?1", &execution_id)?;
        found.pop().ok_or_else(|| Error::NotFound(execution_id.to_owned()))
    }

    fn find_by_key(&self, key: &str) -> Result<Option<Execution>> {
        Ok(self.query_executions("WHERE idempotency_key = ?1", &key)?.pop())
    }

    fn executions(&self, limit: u32) -> Result<Vec<Execution>> {
        self.query_executions("ORDER BY started_at DESC, rowid DESC LIMIT ?1", &limit)
    }

    fn children(&self, execution_id: &str) -> Result<Vec<Execution>> {
        self.query_executions("WHERE parent_id = ?1 ORDER BY started_at", &execution_id)
    }

    fn attempts(&self, execution_id: &str) -> Result<Vec<Attempt>> {
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
                status: parse_text(&status, "attempts.status", Status::parse)?,
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

    fn steps(&self, execution_id: &str) -> Result<Vec<StepRecord>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT step, iteration, action, status, outcome, outputs, effects, error, attempts, critical, \
             started_at, ended_at, sealed FROM steps WHERE execution_id = ?1 ORDER BY started_at, rowid",
        )?;
        let rows = statement.query_map(params![execution_id], |row| {
            Ok((
                (row.get::<_, String>(0)?, row.get::<_, u32>(1)?, row.get::<_, String>(2)?),
                (row.get::<_, String>(3)?, row.get::<_, String>(4)?),
                (row.get::<_, String>(5)?, row.get::<_, String>(6)?, row.get::<_, Option<String>>(7)?),
                (row.get::<_, u32>(8)?, row.get::<_, bool>(9)?),
                (row.get::<_, String>(10)?, row.get::<_, String>(11)?, row.get::<_, String>(12)?),
            ))
        })?;
        rows.map(|row| {
            let ((step, iteration, action), (status, outcome), (outputs, effects, error), (attempts, critical), times) =
                row?;
            let (started_at, ended_at, sealed) = times;
            let sealed = parse_json(Some(sealed), "steps.sealed")?.unwrap_or(Value::Null);
            let sealed = match sealed {
                Value::Array(names) => names
                    .into_iter()
                    .map(|name| {
                        name.as_str().map(str::to_owned).ok_or_else(|| Error::Corrupt("steps.sealed".to_owned()))
                    })
                    .collect::<Result<Vec<String>>>()?,
                _ => return Err(Error::Corrupt("steps.sealed".to_owned())),
            };
            Ok(StepRecord {
                step,
                iteration,
                action,
                status: parse_text(&status, "steps.status", Status::parse)?,
                outcome: parse_text(&outcome, "steps.outcome", StepOutcome::parse)?,
                outputs: parse_json(Some(outputs), "steps.outputs")?.unwrap_or(Value::Null),
                effects: parse_json(Some(effects), "steps.effects")?.unwrap_or(Value::Null),
                error,
                attempts,
                critical,
                started_at,
                ended_at,
                sealed,
            })
        })
        .collect()
    }

    fn events(&self, execution_id: &str) -> Result<Vec<Event>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT at, kind, step, detail FROM events WHERE execution_id = ?1 ORDER BY seq")?;
        let rows = statement.query_map(params![execution_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?, row.get(3)?))
        })?;
        rows.map(|row| {
            let (at, kind, step, detail) = row?;
            Ok(Event {
                at,
                kind: parse_text(&kind, "events.kind", EventKind::parse)?,
                step,
                detail: parse_json(Some(detail), "events.detail")?.unwrap_or(Value::Null),
            })
        })
        .collect()
    }

    fn decision(&self, execution_id: &str, step: &str, iteration: u32) -> Result<Option<Decision>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT decision, by, comment, at FROM decisions WHERE execution_id = ?1 AND step = ?2 AND iteration = ?3",
        )?;
        let row = statement
            .query_row(params![execution_id, step, iteration], |row| {
                Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        let Some((decision, by, comment, at)) = row else { return Ok(None) };
        let decision = parse_text(&decision, "decisions.decision", Answer::parse)?;
        Ok(Some(Decision { step: step.to_owned(), iteration, decision, by, comment, at }))
    }

    fn waiting_on(&self, execution_id: &str) -> Result<Option<WaitingOn>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT step, detail FROM events WHERE execution_id = ?1 AND kind = 'waiting' ORDER BY seq DESC LIMIT 1",
        )?;
        let row = statement
            .query_row(params![execution_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .optional()?;
        let Some((step, detail)) = row else { return Ok(None) };
        let detail: Value = serde_json::from_str(&detail).map_err(|_| Error::Corrupt("events.detail".to_owned()))?;
        let corrupt = || Error::Corrupt("events.detail of a wait".to_owned());
        let iteration = detail.get("iteration").and_then(Value::as_u64).ok_or_else(corrupt)?;
        let iteration = u32::try_from(iteration).map_err(|_| corrupt())?;
        let kind = detail.get("kind").and_then(Value::as_str).ok_or_else(corrupt)?;
        let kind = parse_text(kind, "events.detail.kind", WaitKind::parse)?;
        Ok(Some(WaitingOn { step, iteration, kind }))
    }

    fn missing_records(&self, execution_id: &str) -> Result<Option<String>> {
        let counted: Option<u64> = self
            .connection
            .query_row("SELECT records FROM executions WHERE id = ?1", [execution_id], |row| row.get(0))
            .optional()?
            .flatten();
        let Some(counted) = counted else { return Ok(None) };
        let held: u64 = self.connection.query_row(
            "SELECT (SELECT count(*) FROM attempts WHERE execution_id = ?1) \
             + (SELECT count(*) FROM steps WHERE execution_id = ?1) \
             + (SELECT count(*) FROM decisions WHERE execution_id = ?1)",
            [execution_id],
            |row| row.get(0),
        )?;
        let tally = std::fs::read_to_string(self.tally_path(execution_id))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok());
        Ok(if let Some(tally) = tally.filter(|tally| *tally > counted) {
            Some(format!(
                "{} of its {tally} records (attempts, step results, decisions) were written but the journal no \
                 longer holds them: its write-ahead log ({FILE_NAME}-wal) was lost or rolled back",
                tally - counted
            ))
        } else if held < counted {
            Some(format!(
                "{} of its {counted} records (attempts, step results, decisions) were deleted from the journal",
                counted - held
            ))
        } else {
            None
        })
    }
}

impl JournalWrite for Journal {
    fn create_execution(&self, execution: &Execution, detail: &Value) -> Result<()> {
        let created = self.write(|transaction| {
            let inserted = transaction.execute(
                "INSERT INTO executions (id, runbook_path, runbook_hash, parameters, status, started_at, ended_at, \
                 idempotency_key, parent_id, parent_step, dry_run, outputs, records) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0)",
                params![
                    execution.id,
                    execution.runbook_path,
                    execution.runbook_hash,
                    json_text(&execution.parameters),
                    execution.status.as_str(),
                    execution.started_at,
                    execution.ended_at,
                    execution.idempotency_key,
                    execution.parent_id,
                    execution.parent_step,
                    execution.dry_run,
                    execution.outputs.as_ref().map(json_text),
                ],
            );
            if let (Err(rusqlite::Error::SqliteFailure(failure, _)), Some(key)) =
                (&inserted, &execution.idempotency_key)
                && failure.code == ErrorCode::ConstraintViolation
            {
                return Ok(Some(key.clone()));
            }
            inserted?;
            insert_event(transaction, &execution.id, EventKind::ExecutionCreated, None, detail)?;
            Ok(None)
        })?;
        if let Some(key) = created {
            let holder = self.find_by_key(&key)?.map(|existing| existing.id).unwrap_or_default();
            return Err(Error::KeyTaken { key, execution_id: holder });
        }
        self.tally(&execution.id, Some(0));
        Ok(())
    }

    fn set_status(
        &self,
        execution_id: &str,
        status: Status,
        ended: bool,
        outputs: Option<&Value>,
        error: Option<&str>,
    ) -> Result<()> {
        self.write(|transaction| {
            let ended_at = ended.then(now);
            transaction.execute(
                "UPDATE executions SET status = ?2, ended_at = ?3, outputs = COALESCE(?4, outputs), error = ?5 \
                 WHERE id = ?1",
                params![execution_id, status.as_str(), ended_at, outputs.map(json_text), error],
            )?;
            let detail = serde_json::json!({ "status": status });
            insert_event(transaction, execution_id, EventKind::Status, None, &detail)
        })?;
        if ended && self.group.borrow().on > 0 {
            self.group.borrow_mut().ended.insert(execution_id.to_owned());
        }
        if ended && self.group.borrow().on == 0 {
            // At rest the database file alone holds everything: losing `journal.sqlite-wal`
            // then loses nothing. Another process reading now only delays it (best effort),
            // and the tally stays until a checkpoint completes. (Under group commit, once the
            // group ends.)
            self.checkpoint(&[execution_id]);
        }
        Ok(())
    }

    fn attempt_started(&self, execution_id: &str, attempt: &Attempt) -> Result<()> {
        let records = self.write(|transaction| {
            insert_attempt(transaction, execution_id, attempt, false)?;
            count_records(transaction, execution_id, 1)
        })?;
        self.tally(execution_id, records);
        Ok(())
    }

    fn attempt_finished(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()> {
        let records = self.write(|transaction| {
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
                    attempt.status.as_str(),
                    attempt.outputs.as_ref().map(json_text),
                    attempt.error,
                    attempt.log,
                    attempt.ended_at,
                ])?;
            let added = match step {
                Some(step) => insert_step(transaction, execution_id, step)?,
                None => 0,
            };
            count_records(transaction, execution_id, added)
        })?;
        self.tally(execution_id, records);
        Ok(())
    }

    fn attempt_done(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()> {
        let records = self.write(|transaction| {
            insert_attempt(transaction, execution_id, attempt, true)?;
            let added = match step {
                Some(step) => insert_step(transaction, execution_id, step)?,
                None => 0,
            };
            count_records(transaction, execution_id, 1 + added)
        })?;
        self.tally(execution_id, records);
        Ok(())
    }

    fn step_finished(&self, execution_id: &str, step: &StepRecord) -> Result<()> {
        let records = self.write(|transaction| {
            let added = insert_step(transaction, execution_id, step)?;
            count_records(transaction, execution_id, added)
        })?;
        self.tally(execution_id, records);
        Ok(())
    }

    fn event(&self, execution_id: &str, kind: EventKind, step: Option<&str>, detail: &Value) -> Result<()> {
        if self.group.borrow().on > 0 {
            return self.write(|transaction| insert_event(transaction, execution_id, kind, step, detail));
        }
        insert_event(&self.connection, execution_id, kind, step, detail)
    }

    fn decide(&self, execution_id: &str, decision: &Decision) -> Result<bool> {
        let (inserted, records) = self.write(|transaction| {
            let inserted = transaction.execute(
                "INSERT OR IGNORE INTO decisions (execution_id, step, iteration, decision, by, comment, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    execution_id,
                    decision.step,
                    decision.iteration,
                    decision.decision.as_str(),
                    decision.by,
                    decision.comment,
                    decision.at
                ],
            )? == 1;
            if inserted {
                let detail = decision.detail();
                insert_event(transaction, execution_id, EventKind::Decision, Some(&decision.step), &detail)?;
            }
            Ok((inserted, count_records(transaction, execution_id, u32::from(inserted))?))
        })?;
        self.tally(execution_id, records);
        Ok(inserted)
    }

    fn group(&self, on: bool) -> Result<()> {
        if on {
            self.group.borrow_mut().on += 1;
            return Ok(());
        }
        let last = self.group.borrow().on == 1;
        {
            let mut group = self.group.borrow_mut();
            group.on = group.on.saturating_sub(1);
        }
        if last {
            self.flush()?;
            let (tallies, ended) = {
                let mut group = self.group.borrow_mut();
                (std::mem::take(&mut group.tallies), std::mem::take(&mut group.ended))
            };
            // Executions that ended need no tally once the database file holds everything;
            // the others (and all, if another process kept the checkpoint from completing)
            // get theirs.
            let settled = self.checkpoint(&[]);
            for (execution_id, records) in tallies {
                if !(settled && ended.contains(&execution_id)) {
                    self.write_tally(&execution_id, Some(records));
                }
            }
            if settled {
                // A tally an earlier process left (a resumed child) goes too.
                for execution_id in ended {
                    self.remove_tally(&execution_id);
                }
            }
        }
        Ok(())
    }

    fn pending(&self) -> Option<u64> {
        let group = self.group.borrow();
        group.open.then_some(group.generation)
    }

    fn flush(&self) -> Result<()> {
        let mut group = self.group.borrow_mut();
        if !group.open {
            return Ok(());
        }
        self.connection.execute_batch("COMMIT")?;
        group.open = false;
        group.generation += 1;
        Ok(())
    }
}

impl Journal {
    /// Moves the write-ahead log into the database file, and, where that completed, drops the
    /// tallies of these executions (ended: the file alone holds them). Whether it completed.
    fn checkpoint(&self, ended: &[&str]) -> bool {
        let busy = self.connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
        let settled = busy.is_ok_and(|busy| busy == 0);
        if settled {
            for execution_id in ended {
                self.remove_tally(execution_id);
            }
        }
        settled
    }

    /// Commits what group commit holds before a write of another kind (a named lock's own
    /// transaction).
    fn settle(&self) -> Result<()> {
        self.flush()
    }
}

impl super::NamedLocks for Journal {
    fn grant(
        &self,
        name: &str,
        holder: &str,
        mode: super::named::LockMode,
        lease: std::time::Duration,
    ) -> Result<super::named::Grant> {
        self.settle()?;
        super::named::grant(&self.connection, name, holder, mode, lease)
    }

    fn renew(&self, held: &super::named::Grant, lease: std::time::Duration) -> Result<super::named::Grant> {
        self.settle()?;
        super::named::renew(&self.connection, held, lease)
    }

    fn release(&self, held: &super::named::Grant) -> Result<()> {
        self.settle()?;
        super::named::release(&self.connection, held)
    }

    fn force_release(&self, name: &str, holder: &str) -> Result<bool> {
        self.settle()?;
        super::named::force_release(&self.connection, name, holder)
    }

    fn grants(&self) -> Result<Vec<super::named::Grant>> {
        super::named::grants(&self.connection)
    }

    fn last_token(&self, name: &str) -> Result<u64> {
        super::named::last_token(&self.connection, name)
    }

    fn mark_applied(&self, held: &super::named::Grant) -> Result<()> {
        self.settle()?;
        super::named::mark_applied(&self.connection, held)
    }

    fn applied(&self, name: &str) -> Result<u64> {
        super::named::applied(&self.connection, name)
    }

    fn record_plan(&self, digest: &str) -> Result<()> {
        self.settle()?;
        super::named::record_plan(&self.connection, digest)
    }

    fn plan_recorded(&self, digest: &str) -> Result<bool> {
        super::named::plan_recorded(&self.connection, digest)
    }
}

impl Locks for Journal {
    fn acquire(&self, execution_id: &str) -> Result<Lease> {
        locks::acquire(&self.locks_dir(), execution_id)
    }

    fn is_held(&self, execution_id: &str) -> bool {
        locks::is_held(&self.locks_dir(), execution_id)
    }

    /// One process writes this journal's executions under one lease: a lock file per child
    /// would cost more than the children's steps.
    fn children_share_lease(&self) -> bool {
        true
    }
}

const EXECUTION_COLUMNS: &str = "SELECT id, runbook_path, runbook_hash, parameters, status, started_at, ended_at, \
     idempotency_key, parent_id, parent_step, dry_run, outputs, error FROM executions";

fn execution_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Execution>> {
    let parameters: String = row.get(3)?;
    let status: String = row.get(4)?;
    let outputs: Option<String> = row.get(11)?;
    let build = || -> Result<Execution> {
        Ok(Execution {
            id: row.get(0)?,
            runbook_path: row.get(1)?,
            runbook_hash: row.get(2)?,
            parameters: parse_json(Some(parameters), "executions.parameters")?.unwrap_or(Value::Null),
            status: parse_text(&status, "executions.status", Status::parse)?,
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
    Ok(build())
}

fn insert_event(
    connection: &Connection,
    execution_id: &str,
    kind: EventKind,
    step: Option<&str>,
    detail: &Value,
) -> Result<()> {
    connection
        .prepare_cached("INSERT INTO events (execution_id, at, kind, step, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![execution_id, now(), kind.as_str(), step, json_text(detail)])?;
    Ok(())
}

/// Adds `added` records (attempt, step and decision rows) to the execution's count, and
/// returns the count (`None` for an execution from before counting, or none at all).
fn count_records(connection: &Connection, execution_id: &str, added: u32) -> Result<Option<u64>> {
    // An update then a read: `RETURNING` made SQLite build a temporary table on every call.
    connection
        .prepare_cached("UPDATE executions SET records = records + ?2 WHERE id = ?1 AND records IS NOT NULL")?
        .execute(params![execution_id, added])?;
    Ok(connection
        .prepare_cached("SELECT records FROM executions WHERE id = ?1")?
        .query_row([execution_id], |row| row.get::<_, Option<u64>>(0))
        .optional()?
        .flatten())
}

/// Inserts an attempt's row: as started (its end, outputs, error and log left empty, as the
/// attempt has them then), or `whole`, ended (a pure step's, journaled once).
fn insert_attempt(connection: &Connection, execution_id: &str, attempt: &Attempt, whole: bool) -> Result<()> {
    let ended = |value| if whole { value } else { None };
    connection
        .prepare_cached(
            "INSERT INTO attempts (execution_id, step, iteration, attempt, action, status, inputs, outputs, error, \
             log, started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            execution_id,
            attempt.step,
            attempt.iteration,
            attempt.attempt,
            attempt.action,
            attempt.status.as_str(),
            json_text(&attempt.inputs),
            ended(attempt.outputs.as_ref().map(json_text)),
            ended(attempt.error.clone()),
            ended(attempt.log.clone()),
            attempt.started_at,
            ended(attempt.ended_at.clone()),
        ])?;
    Ok(())
}

/// Records a step visit's result; returns 1 when the row is new, 0 when it replaced one.
fn insert_step(connection: &Connection, execution_id: &str, step: &StepRecord) -> Result<u32> {
    let existed: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM steps WHERE execution_id = ?1 AND step = ?2 AND iteration = ?3)")?
        .query_row(params![execution_id, step.step, step.iteration], |row| row.get(0))?;
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO steps (execution_id, step, iteration, action, status, outcome, outputs, effects, \
             error, attempts, critical, started_at, ended_at, sealed) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![
            execution_id,
            step.step,
            step.iteration,
            step.action,
            step.status.as_str(),
            step.outcome.to_string(),
            json_text(&step.outputs),
            json_text(&step.effects),
            step.error,
            step.attempts,
            step.critical,
            step.started_at,
            step.ended_at,
            json_text(&Value::from(step.sealed.clone())),
        ])?;
    Ok(u32::from(!existed))
}

#[cfg(test)]
mod tests {
    use super::super::FORMAT;
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
            status: Status::InProgress,
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

    fn record(step: &str) -> StepRecord {
        StepRecord {
            step: step.into(),
            iteration: 0,
            action: "aws:sleep".into(),
            status: Status::Success,
            outcome: StepOutcome::Succeeded,
            outputs: serde_json::json!({}),
            effects: serde_json::json!({}),
            error: None,
            attempts: 1,
            critical: true,
            started_at: now(),
            ended_at: now(),
            sealed: vec!["Token".into()],
        }
    }

    #[test]
    fn attempts_and_steps_round_trip() {
        let dir = temp_dir("round-trip");
        let journal = Journal::open(&dir).unwrap();
        journal.create_execution(&execution("e1"), &Value::Null).unwrap();
        let mut attempt = Attempt {
            step: "a".into(),
            iteration: 0,
            attempt: 1,
            action: "aws:sleep".into(),
            status: Status::InProgress,
            inputs: serde_json::json!({"Duration": "PT0S"}),
            outputs: None,
            error: None,
            log: None,
            started_at: now(),
            ended_at: None,
        };
        journal.attempt_started("e1", &attempt).unwrap();
        assert_eq!(journal.attempts("e1").unwrap()[0].status, Status::InProgress);
        attempt.status = Status::Success;
        attempt.ended_at = Some(now());
        journal.attempt_finished("e1", &attempt, Some(&record("a"))).unwrap();
        // A second connection, as another process would open it, sees everything.
        let other = Journal::open(&dir).unwrap();
        assert_eq!(other.attempts("e1").unwrap()[0].status, Status::Success);
        let steps = other.steps("e1").unwrap();
        assert_eq!((&steps[0].outcome, &steps[0].sealed), (&StepOutcome::Succeeded, &vec!["Token".to_owned()]));
        assert_eq!(other.find_by_key("key-e1").unwrap().unwrap().id, "e1");
        let kinds: Vec<_> = other.events("e1").unwrap().into_iter().map(|e| e.kind).collect();
        // Attempts are their own timeline; events hold the rest (status, decisions, waits).
        assert_eq!(kinds, [EventKind::ExecutionCreated]);
        assert!(matches!(other.execution("nope"), Err(Error::NotFound(_))));
    }

    #[test]
    fn r_a_taken_idempotency_key_names_its_execution() {
        let dir = temp_dir("key-taken");
        let journal = Journal::open(&dir).unwrap();
        journal.create_execution(&execution("e1"), &Value::Null).unwrap();
        let mut second = execution("e2");
        second.idempotency_key = Some("key-e1".into());
        match journal.create_execution(&second, &Value::Null) {
            Err(Error::KeyTaken { key, execution_id }) => {
                assert_eq!((key.as_str(), execution_id.as_str()), ("key-e1", "e1"))
            }
            other => panic!("expected KeyTaken, got {other:?}"),
        }
    }

    #[test]
    fn r_an_unknown_status_is_damage_not_success() {
        let dir = temp_dir("corrupt-status");
        let journal = Journal::open(&dir).unwrap();
        journal.create_execution(&execution("e1"), &Value::Null).unwrap();
        journal.step_finished("e1", &record("a")).unwrap();
        journal.connection.execute("UPDATE steps SET status = 'Succes'", []).unwrap();
        match journal.steps("e1") {
            Err(Error::Corrupt(what)) => assert_eq!(what, "steps.status: `Succes`"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn the_format_is_checked_and_old_journals_migrate() {
        let dir = temp_dir("format");
        std::fs::create_dir_all(&dir).unwrap();
        // A format-1 journal: no version stored, no `sealed` column.
        let old = Connection::open(dir.join(FILE_NAME)).unwrap();
        old.execute_batch(
            "CREATE TABLE steps (execution_id TEXT NOT NULL, step TEXT NOT NULL, iteration INTEGER NOT NULL, \
             action TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT NOT NULL, outputs TEXT NOT NULL, \
             effects TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL, critical INTEGER NOT NULL, \
             started_at TEXT NOT NULL, ended_at TEXT NOT NULL, PRIMARY KEY (execution_id, step, iteration))",
        )
        .unwrap();
        old.execute_batch(
            "INSERT INTO steps VALUES ('e0', 'a', 0, 'aws:executeScript', 'Success', 'succeeded', \
             '{\"Token\": \"got ********\", \"Plain\": 1}', '{\"variables\": {\"V\": \"********\"}}', \
             NULL, 1, 1, 't', 't'); \
             CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT NOT NULL, at TEXT NOT NULL, \
             kind TEXT NOT NULL, step TEXT, detail TEXT NOT NULL); \
             INSERT INTO events (execution_id, at, kind, step, detail) VALUES ('e0', 't', 'waiting', 'hold', \
             '{\"iteration\": 0, \"action\": \"aws:pause\", \"message\": null}')",
        )
        .unwrap();
        drop(old);
        let journal = Journal::open(&dir).unwrap();
        // What format 1 kept redacted is sealed, and its waits say what they wait for.
        assert_eq!(journal.steps("e0").unwrap()[0].sealed, ["Token", "variable:V"]);
        let waiting = journal.waiting_on("e0").unwrap().unwrap();
        assert_eq!((waiting.step.as_str(), waiting.kind), ("hold", WaitKind::Pause));
        journal.step_finished("e1", &record("a")).unwrap();
        assert_eq!(journal.steps("e1").unwrap()[0].sealed, ["Token"]);
        journal.connection.pragma_update(None, "user_version", FORMAT + 1).unwrap();
        drop(journal);
        assert!(matches!(Journal::open(&dir), Err(Error::NewerFormat { found, .. }) if found == FORMAT + 1));
    }

    #[test]
    fn one_driver_per_execution_and_ended_locks_go() {
        let dir = temp_dir("lock");
        let journal = Journal::open(&dir).unwrap();
        let lease = journal.acquire("e1").unwrap();
        assert!(matches!(journal.acquire("e1"), Err(Error::Locked { .. })));
        assert!(journal.is_held("e1"));
        drop(lease);
        assert!(!journal.is_held("e1"));
        journal.acquire("e1").unwrap().release(true);
        assert!(!dir.join("locks/e1.lock").exists());
        assert!(!journal.is_held("e2") && !dir.join("locks/e2.lock").exists());
    }

    #[test]
    fn the_first_decision_stands() {
        let dir = temp_dir("decide");
        let journal = Journal::open(&dir).unwrap();
        let decision = |answer: Answer| Decision {
            step: "ask".into(),
            iteration: 0,
            decision: answer,
            by: "ana".into(),
            comment: None,
            at: now(),
        };
        assert!(journal.decide("e1", &decision(Answer::Approve)).unwrap());
        assert!(!journal.decide("e1", &decision(Answer::Reject)).unwrap());
        assert_eq!(journal.decision("e1", "ask", 0).unwrap().unwrap().decision, Answer::Approve);
    }
}
