//! Named locks (`x-locks`, `runbook run --lock`; issue 16): exclusive or shared, held for a
//! lease the holder renews, each grant carrying a fencing token that only grows per name, so
//! a resource can refuse an older holder. This is the SQLite store's implementation: a grant,
//! a renewal and a release are each one immediate transaction, and a grant whose lease ran
//! out is taken over (its holder finds out when it next renews).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Exclusive,
    Shared,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Exclusive => "exclusive",
            LockMode::Shared => "shared",
        }
    }

    pub fn parse(text: &str) -> Option<LockMode> {
        [LockMode::Exclusive, LockMode::Shared].into_iter().find(|mode| mode.as_str() == text)
    }
}

/// One holder's grant of a named lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub name: String,
    /// Who holds it: an execution id.
    pub holder: String,
    pub mode: LockMode,
    /// Grows with every grant of this name, never reused.
    pub token: u64,
    /// Unix milliseconds.
    pub granted_at: i64,
    pub expires_at: i64,
}

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lock_tokens (
    name TEXT PRIMARY KEY,
    token INTEGER NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS saved_plans (
    digest TEXT PRIMARY KEY,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lock_grants (
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    mode TEXT NOT NULL,
    token INTEGER NOT NULL,
    granted_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (name, holder)
);
";

/// The longest lock name, in bytes.
pub const NAME_MAX: usize = 200;

/// What is wrong with a lock name, if anything. A name is 1 to 200 ASCII letters, digits and
/// `- _ . / : = @ +`, in segments split by `/` that are neither empty nor `.` or `..`, so it is
/// the same name in every store (an S3 key among them) and in a shell.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("a lock name cannot be empty".into());
    }
    if name.len() > NAME_MAX {
        return Err(format!("a lock name is at most {NAME_MAX} bytes; this one has {}", name.len()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_./:=@+".contains(*c))) {
        return Err(format!(
            "a lock name cannot hold {bad:?}: use letters, digits and - _ . / : = @ + (as in dns/Z0123456789)"
        ));
    }
    if name.split('/').any(|segment| matches!(segment, "" | "." | "..")) {
        return Err("a lock name's `/`-separated parts cannot be empty, `.` or `..`".into());
    }
    Ok(())
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

fn grant_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64, i64, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

fn typed(raw: (String, String, String, i64, i64, i64)) -> Result<Grant> {
    let (name, holder, mode, token, granted_at, expires_at) = raw;
    let mode = LockMode::parse(&mode).ok_or_else(|| Error::Corrupt(format!("lock_grants.mode: `{mode}`")))?;
    let token = u64::try_from(token).map_err(|_| Error::Corrupt(format!("lock_grants.token: {token}")))?;
    Ok(Grant { name, holder, mode, token, granted_at, expires_at })
}

const COLUMNS: &str = "SELECT name, holder, mode, token, granted_at, expires_at FROM lock_grants";

/// Grants `name` to `holder` for `lease`, or fails with [`Error::LockHeld`] naming a holder
/// whose grant conflicts (any other for an exclusive grant; an exclusive one for a shared).
pub fn grant(connection: &Connection, name: &str, holder: &str, mode: LockMode, lease: Duration) -> Result<Grant> {
    let transaction = rusqlite::Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
    let now = now_ms();
    transaction.execute("DELETE FROM lock_grants WHERE name = ?1 AND expires_at <= ?2", params![name, now])?;
    let held: Vec<Grant> = transaction
        .prepare(&format!("{COLUMNS} WHERE name = ?1 AND holder != ?2 ORDER BY token"))?
        .query_map(params![name, holder], grant_from)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(typed)
        .collect::<Result<_>>()?;
    if let Some(conflict) =
        held.into_iter().find(|other| mode == LockMode::Exclusive || other.mode == LockMode::Exclusive)
    {
        return Err(Error::LockHeld {
            name: name.to_owned(),
            holder: conflict.holder,
            expires_at: conflict.expires_at,
        });
    }
    let last: Option<i64> =
        transaction.query_row("SELECT token FROM lock_tokens WHERE name = ?1", [name], |row| row.get(0)).optional()?;
    let token = last.unwrap_or(0) + 1;
    transaction.execute(
        "INSERT INTO lock_tokens (name, token) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET token = ?2",
        params![name, token],
    )?;
    let expires_at = now.saturating_add(lease_ms(lease));
    transaction.execute(
        "INSERT OR REPLACE INTO lock_grants (name, holder, mode, token, granted_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![name, holder, mode.as_str(), token, now, expires_at],
    )?;
    transaction.commit()?;
    Ok(Grant {
        name: name.to_owned(),
        holder: holder.to_owned(),
        mode,
        token: token as u64,
        granted_at: now,
        expires_at,
    })
}

/// Extends a grant that is still held; fails with [`Error::LeaseLost`] when its lease ran out
/// (and another may have taken it) or it was released by force.
pub fn renew(connection: &Connection, held: &Grant, lease: Duration) -> Result<Grant> {
    let now = now_ms();
    let expires_at = now.saturating_add(lease_ms(lease));
    let changed = connection.execute(
        "UPDATE lock_grants SET expires_at = ?1 WHERE name = ?2 AND holder = ?3 AND token = ?4 AND expires_at > ?5",
        params![expires_at, held.name, held.holder, held.token as i64, now],
    )?;
    if changed == 0 {
        return Err(Error::LeaseLost { name: held.name.clone(), token: held.token });
    }
    Ok(Grant { expires_at, ..held.clone() })
}

/// Gives a grant up (nothing happens when it was lost already).
pub fn release(connection: &Connection, held: &Grant) -> Result<()> {
    connection.execute(
        "DELETE FROM lock_grants WHERE name = ?1 AND holder = ?2 AND token = ?3",
        params![held.name, held.holder, held.token as i64],
    )?;
    Ok(())
}

/// `runbook locks release NAME --force HOLDER`: whether there was such a grant.
pub fn force_release(connection: &Connection, name: &str, holder: &str) -> Result<bool> {
    Ok(connection.execute("DELETE FROM lock_grants WHERE name = ?1 AND holder = ?2", params![name, holder])? > 0)
}

/// Every grant whose lease has not run out, by name and token.
pub fn grants(connection: &Connection) -> Result<Vec<Grant>> {
    connection
        .prepare(&format!("{COLUMNS} WHERE expires_at > ?1 ORDER BY name, token"))?
        .query_map([now_ms()], grant_from)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(typed)
        .collect()
}

/// Records that the holder of `held` began to change what the lock guards (its first step
/// runs): plans saved before then are stale. Only grows.
pub fn mark_applied(connection: &Connection, held: &Grant) -> Result<()> {
    connection.execute(
        "UPDATE lock_tokens SET applied = max(applied, ?2) WHERE name = ?1",
        params![held.name, held.token as i64],
    )?;
    Ok(())
}

/// The token of the newest holder of `name` that began to apply (0 when none did).
pub fn applied(connection: &Connection, name: &str) -> Result<u64> {
    let token: Option<i64> =
        connection.query_row("SELECT applied FROM lock_tokens WHERE name = ?1", [name], |row| row.get(0)).optional()?;
    Ok(token.map_or(0, |token| token as u64))
}

/// Records a saved plan's digest (`plan --out`); saving the same plan again changes nothing.
pub fn record_plan(connection: &Connection, digest: &str) -> Result<()> {
    connection.execute(
        "INSERT OR IGNORE INTO saved_plans (digest, saved_at) VALUES (?1, ?2)",
        params![digest, super::now()],
    )?;
    Ok(())
}

/// Whether a plan with this digest was saved against this journal.
pub fn plan_recorded(connection: &Connection, digest: &str) -> Result<bool> {
    let found: Option<i64> =
        connection.query_row("SELECT 1 FROM saved_plans WHERE digest = ?1", [digest], |row| row.get(0)).optional()?;
    Ok(found.is_some())
}

/// The newest token granted for `name` (0 when never granted).
pub fn last_token(connection: &Connection, name: &str) -> Result<u64> {
    let token: Option<i64> =
        connection.query_row("SELECT token FROM lock_tokens WHERE name = ?1", [name], |row| row.get(0)).optional()?;
    Ok(token.map_or(0, |token| token as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> (tempdir::Dir, Connection) {
        let dir = tempdir::Dir::new();
        let connection = open(&dir.0);
        (dir, connection)
    }

    fn open(dir: &std::path::Path) -> Connection {
        let connection = Connection::open(dir.join("locks.sqlite")).unwrap();
        connection.busy_timeout(Duration::from_secs(10)).unwrap();
        connection.pragma_update(None, "journal_mode", "WAL").unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        connection
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);

        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU64, Ordering};
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let dir = std::env::temp_dir().join(format!(
                    "runbook-named-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir).unwrap();
                Dir(dir)
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_exclusive_grant_excludes_every_other_and_tokens_only_grow() {
        let (_dir, db) = journal();
        let first = grant(&db, "dns/zone-a", "e1", LockMode::Exclusive, MINUTE).unwrap();
        assert_eq!(first.token, 1);
        match grant(&db, "dns/zone-a", "e2", LockMode::Shared, MINUTE) {
            Err(Error::LockHeld { holder, .. }) => assert_eq!(holder, "e1"),
            other => panic!("{other:?}"),
        }
        // Another name is another lock.
        assert_eq!(grant(&db, "dns/zone-b", "e2", LockMode::Exclusive, MINUTE).unwrap().token, 1);
        release(&db, &first).unwrap();
        let second = grant(&db, "dns/zone-a", "e2", LockMode::Exclusive, MINUTE).unwrap();
        assert_eq!(second.token, 2, "a token is never reused");
        assert_eq!(last_token(&db, "dns/zone-a").unwrap(), 2);
        assert_eq!(grants(&db).unwrap().len(), 2);
        // Applying is recorded per name and only grows.
        assert_eq!(applied(&db, "dns/zone-a").unwrap(), 0);
        mark_applied(&db, &second).unwrap();
        mark_applied(&db, &first).unwrap();
        assert_eq!(applied(&db, "dns/zone-a").unwrap(), 2);
    }

    #[test]
    fn malformed_names_are_refused_with_the_reason() {
        for good in ["dns/Z0123", "fleet", "a:b=c@d+e_f-g.h", &"n".repeat(NAME_MAX)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("dns zone", "' '"),
            ("dns/\n", "'\\n'"),
            ("/dns", "`.` or `..`"),
            ("dns//a", "`.` or `..`"),
            ("dns/../b", "`.` or `..`"),
            ("zone*", "'*'"),
            ("é", "'é'"),
        ] {
            let message = check_name(bad).unwrap_err();
            assert!(message.contains(why), "{bad:?}: {message}");
        }
        assert!(check_name(&"n".repeat(NAME_MAX + 1)).unwrap_err().contains("at most"));
    }

    #[test]
    fn shared_grants_coexist_and_exclude_an_exclusive_one() {
        let (_dir, db) = journal();
        let a = grant(&db, "fleet", "e1", LockMode::Shared, MINUTE).unwrap();
        let b = grant(&db, "fleet", "e2", LockMode::Shared, MINUTE).unwrap();
        assert!(b.token > a.token);
        assert!(matches!(grant(&db, "fleet", "e3", LockMode::Exclusive, MINUTE), Err(Error::LockHeld { .. })));
        release(&db, &a).unwrap();
        release(&db, &b).unwrap();
        assert!(grant(&db, "fleet", "e3", LockMode::Exclusive, MINUTE).is_ok());
    }

    #[test]
    fn a_lease_that_ran_out_is_taken_over_and_its_holder_cannot_renew_it() {
        let (_dir, db) = journal();
        let stale = grant(&db, "dns/zone-a", "slow", LockMode::Exclusive, Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let fresh = grant(&db, "dns/zone-a", "fast", LockMode::Exclusive, MINUTE).unwrap();
        assert!(fresh.token > stale.token);
        assert!(matches!(renew(&db, &stale, MINUTE), Err(Error::LeaseLost { .. })));
        // The new holder renews; releasing the lost grant changes nothing.
        assert!(renew(&db, &fresh, MINUTE).is_ok());
        release(&db, &stale).unwrap();
        let held: Vec<(String, u64)> = grants(&db).unwrap().into_iter().map(|g| (g.holder, g.token)).collect();
        assert_eq!(held, [("fast".to_owned(), fresh.token)]);
        assert!(force_release(&db, "dns/zone-a", "fast").unwrap());
        assert!(matches!(renew(&db, &fresh, MINUTE), Err(Error::LeaseLost { .. })));
    }

    /// Four connections (as four processes would have) take one lock 50 times each: the
    /// intervals between grant and release never overlap and every token is new.
    #[test]
    fn grants_never_overlap_across_connections() {
        let dir = tempdir::Dir::new();
        let _ = open(&dir.0);
        let log = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for holder in 0..4 {
                let (dir, log) = (&dir.0, &log);
                scope.spawn(move || {
                    let db = open(dir);
                    let mut taken = 0;
                    while taken < 50 {
                        match grant(&db, "one", &format!("h{holder}"), LockMode::Exclusive, MINUTE) {
                            Ok(held) => {
                                let start = std::time::Instant::now();
                                std::thread::yield_now();
                                let end = std::time::Instant::now();
                                release(&db, &held).unwrap();
                                log.lock().unwrap().push((held.token, start, end));
                                taken += 1;
                            }
                            Err(Error::LockHeld { .. }) => std::thread::yield_now(),
                            Err(error) => panic!("{error}"),
                        }
                    }
                });
            }
        });
        let mut log = log.into_inner().unwrap();
        log.sort_by_key(|(token, ..)| *token);
        assert_eq!(log.len(), 200);
        let tokens: Vec<u64> = log.iter().map(|(token, ..)| *token).collect();
        assert_eq!(tokens, (1..=200).collect::<Vec<u64>>(), "every grant has a new token, none lost");
        for pair in log.windows(2) {
            assert!(pair[0].2 <= pair[1].1, "grant {} overlaps grant {}", pair[0].0, pair[1].0);
        }
    }
}
