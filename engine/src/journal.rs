//! Stage 5, the durable record: every execution, every step attempt and a timeline of events
//! and decisions. Write-ahead: the runner commits an attempt as started before its executor
//! runs and as finished after, each commit synced to disk, so a crash leaves an exact account
//! of what may have happened. Resume reads it back.
//!
//! The runner talks to the journal through three small traits, so that a test, a shared store
//! or a remote driver can stand in: [`JournalRead`], [`JournalWrite`] and [`Locks`]. The one
//! implementation here is [`Journal`], an SQLite database in the state directory
//! (`sqlite.rs`) with a format version checked on open (`format.rs`) and lock files the
//! operating system drops when their process dies (`locks.rs`).

mod format;
mod locks;
mod memory;
pub mod named;
pub mod record;
pub mod s3;
mod sqlite;

use std::path::PathBuf;

use serde_json::Value;

pub use format::FORMAT;
pub use locks::{Held, Lease, UnderParent};
pub use memory::Memory;
pub use record::{
    Answer, Attempt, Decision, Event, EventKind, Execution, Status, StepOutcome, StepRecord, WaitKind, WaitingOn, now,
    time_of,
};
pub use s3::S3Store;
pub use sqlite::Journal;

/// The database file inside the state directory.
pub const FILE_NAME: &str = "journal.sqlite";

/// The environment variable that overrides the state directory.
pub const STATE_DIR_VARIABLE: &str = "RUNBOOK_STATE_DIR";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The shared store (S3) could not be reached or refused a call.
    #[error("the state store {location} failed: {message}")]
    Store { location: String, message: String },
    #[error("failed to use {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("execution {execution_id} is being driven by another process (lock {})", lock.display())]
    Locked { execution_id: String, lock: PathBuf },
    #[error("no execution {0} in the journal")]
    NotFound(String),
    /// A prefix given for an execution id names more than one.
    #[error("`{prefix}` names {} executions: {}", matches.len(), matches.join(", "))]
    Ambiguous { prefix: String, matches: Vec<String> },
    #[error("the journal holds a malformed value in {0}")]
    Corrupt(String),
    #[error(
        "the journal {} has format {found}, newer than this runbook reads (format {FORMAT}): use a newer runbook",
        path.display()
    )]
    NewerFormat { path: PathBuf, found: i64 },
    /// Another execution took the idempotency key first (two processes started at once).
    #[error("idempotency key `{key}` already names execution {execution_id}")]
    KeyTaken { key: String, execution_id: String },
    /// A named lock is held by another execution whose grant conflicts.
    #[error(
        "lock `{name}` is held by execution {holder} for {:.1} s more, unless it renews it (wait with --lock-timeout)",
        (*expires_at - jiff::Timestamp::now().as_millisecond()).max(0) as f64 / 1000.0
    )]
    LockHeld { name: String, holder: String, expires_at: i64 },
    /// A named lock's lease ran out (or it was released by force): another may hold it now.
    #[error("the lease of lock `{name}` (token {token}) was lost")]
    LeaseLost { name: String, token: u64 },
}

impl Error {
    /// The engine refuses to go on: another process holds what this one needs.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Locked { .. } | Error::KeyTaken { .. } | Error::LockHeld { .. } | Error::LeaseLost { .. })
    }

    /// The caller named something the journal does not hold.
    pub fn is_caller_fault(&self) -> bool {
        matches!(self, Error::NotFound(_) | Error::Ambiguous { .. })
    }
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

/// Writes `bytes` to `path` whole: to a file beside it (named for this process, so two
/// writers never share one), synced, then renamed over it; a reader never sees half a file.
pub fn write_whole(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })
}

/// Where the state lives: the embedded SQLite journal in a state directory (the default), or
/// the S3 store that machines share (`--state s3://BUCKET/PREFIX`). Both stand behind the same
/// traits; it dereferences to the journal, so `store.execution(id)` reads either.
pub enum Store {
    Local(Journal),
    S3(Box<S3Store>),
}

impl Store {
    pub fn journal(&self) -> &(dyn JournalWrite + 'static) {
        match self {
            Store::Local(journal) => journal,
            Store::S3(store) => store.as_ref(),
        }
    }

    pub fn locks(&self) -> &dyn Locks {
        match self {
            Store::Local(journal) => journal,
            Store::S3(store) => store.as_ref(),
        }
    }

    pub fn named(&self) -> &dyn NamedLocks {
        match self {
            Store::Local(journal) => journal,
            Store::S3(store) => store.as_ref(),
        }
    }

    /// The full id an execution was given as: the id, a unique prefix of it, or `last`.
    pub fn resolve_id(&self, given: &str) -> Result<String> {
        match self {
            Store::Local(journal) => journal.resolve_id(given),
            Store::S3(store) => store.resolve_id(given),
        }
    }

    /// The most recent executions first, with the records that could not be read set aside.
    pub fn list(&self, limit: u32) -> Result<sqlite::Listing> {
        match self {
            Store::Local(journal) => journal.list(limit),
            Store::S3(store) => store.list(limit),
        }
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Local(journal) => journal.dir().display().to_string(),
            Store::S3(store) => store.location().to_string(),
        }
    }
}

impl std::ops::Deref for Store {
    type Target = dyn JournalWrite;

    fn deref(&self) -> &Self::Target {
        self.journal()
    }
}

/// Named locks (`x-locks`, `--lock`): see [`named`].
pub trait NamedLocks {
    fn grant(
        &self,
        name: &str,
        holder: &str,
        mode: named::LockMode,
        lease: std::time::Duration,
    ) -> Result<named::Grant>;
    fn renew(&self, held: &named::Grant, lease: std::time::Duration) -> Result<named::Grant>;
    fn release(&self, held: &named::Grant) -> Result<()>;
    fn force_release(&self, name: &str, holder: &str) -> Result<bool>;
    fn grants(&self) -> Result<Vec<named::Grant>>;
    fn last_token(&self, name: &str) -> Result<u64>;
    /// Records that the holder of `held` began to change what the lock guards.
    fn mark_applied(&self, held: &named::Grant) -> Result<()>;
    /// The token of the newest holder that began to apply under `name` (0 when none did).
    fn applied(&self, name: &str) -> Result<u64>;
    /// Records that a plan with this digest was saved against this store (`plan --out`).
    fn record_plan(&self, digest: &str) -> Result<()>;
    /// Whether a plan with this digest was saved against this store: `run --plan` refuses
    /// one that was not (edited, or saved against another store).
    fn plan_recorded(&self, digest: &str) -> Result<bool>;
}

/// Reading the record: what `runbook executions`, resumes and decisions look at.
pub trait JournalRead {
    fn execution(&self, execution_id: &str) -> Result<Execution>;
    fn find_by_key(&self, key: &str) -> Result<Option<Execution>>;
    /// The most recent executions first.
    fn executions(&self, limit: u32) -> Result<Vec<Execution>>;
    /// Children started by `aws:executeAutomation` steps of an execution.
    fn children(&self, execution_id: &str) -> Result<Vec<Execution>>;
    fn attempts(&self, execution_id: &str) -> Result<Vec<Attempt>>;
    fn steps(&self, execution_id: &str) -> Result<Vec<StepRecord>>;
    fn events(&self, execution_id: &str) -> Result<Vec<Event>>;
    fn decision(&self, execution_id: &str, step: &str, iteration: u32) -> Result<Option<Decision>>;
    /// The step visit an execution waits on (`aws:approve`, `aws:pause`, a waiting child).
    fn waiting_on(&self, execution_id: &str) -> Result<Option<WaitingOn>>;
    /// What the journal is missing of an execution's committed records (rows deleted, or a
    /// write-ahead log lost after a crash), said for a person; `None` when nothing is missing.
    fn missing_records(&self, _execution_id: &str) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Writing the record. Every write is one transaction, committed (and synced) before the
/// call returns.
pub trait JournalWrite: JournalRead {
    /// Fails with [`Error::KeyTaken`] when another execution has the idempotency key.
    /// `detail` goes with the `execution_created` event, in the same commit (what the
    /// execution must know on every resume: the part of the runbook it walks).
    fn create_execution(&self, execution: &Execution, detail: &Value) -> Result<()>;
    /// Records the execution's status (and, once it ended, its end time, outputs and error).
    fn set_status(
        &self,
        execution_id: &str,
        status: Status,
        ended: bool,
        outputs: Option<&Value>,
        error: Option<&str>,
    ) -> Result<()>;
    /// Commits an attempt as started, before its executor runs.
    fn attempt_started(&self, execution_id: &str, attempt: &Attempt) -> Result<()>;
    /// Commits an attempt as finished, and with the last attempt of a visit, the step's result.
    fn attempt_finished(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()>;
    /// Commits a finished attempt whose start was not journaled (a pure step,
    /// [`crate::actions::is_pure`]): the whole attempt and, with the last attempt of a visit,
    /// the step's result, in one commit. No default: a store that finishes an attempt by
    /// updating its row would lose this one.
    fn attempt_done(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()>;
    /// Records a step visit's result that needed no attempt row (a loop).
    fn step_finished(&self, execution_id: &str, step: &StepRecord) -> Result<()>;
    /// Appends a timeline event.
    fn event(&self, execution_id: &str, kind: EventKind, step: Option<&str>, detail: &Value) -> Result<()>;
    /// Records a decision; the first one for a step visit stands (returns whether this one did).
    fn decide(&self, execution_id: &str, decision: &Decision) -> Result<bool>;
    /// Group commit (runs over targets, children side by side): with `on`, writes are held in
    /// one open transaction until [`JournalWrite::flush`], so one sync commits many
    /// children's; off, what is held is committed. A store without it ignores this.
    fn group(&self, _on: bool) -> Result<()> {
        Ok(())
    }
    /// Under group commit, the batch that holds writes not committed yet (its number, which
    /// grows with each commit); `None` when nothing waits.
    fn pending(&self) -> Option<u64> {
        None
    }
    /// Commits (and syncs) what group commit holds.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// Who drives which execution: one process at a time, released when it dies.
pub trait Locks {
    /// Takes the exclusive right to drive an execution, or fails with [`Error::Locked`].
    fn acquire(&self, execution_id: &str) -> Result<Lease>;
    /// Whether some process drives the execution right now.
    fn is_held(&self, execution_id: &str) -> bool;
    /// Whether the children of a run over targets may run under their parent's lease
    /// ([`UnderParent`]) instead of each taking its own.
    fn children_share_lease(&self) -> bool {
        false
    }
}
