//! One driver per execution: a lock file per execution under `locks/` in the state directory,
//! held with an advisory lock that the operating system drops when its process dies, even by
//! SIGKILL. The file of an execution that ended is removed by the process that ended it.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// The right to drive one execution, held until dropped or released.
pub struct Lease {
    held: Option<Box<dyn Held>>,
}

/// What a lock implementation keeps while its lease is held.
pub trait Held {
    /// Gives the lock up; `ended` says the execution is over, so its lock is not needed again.
    fn release(self: Box<Self>, ended: bool);
}

impl Lease {
    pub fn new(held: impl Held + 'static) -> Lease {
        Lease { held: Some(Box::new(held)) }
    }

    /// Gives the lease up now; `ended` lets the lock's traces go (the execution is over).
    pub fn release(mut self, ended: bool) {
        if let Some(held) = self.held.take() {
            held.release(ended);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.release(false);
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

/// The children of a run over targets: the parent's lease is the right to drive them all (a
/// lock file each would cost more than their steps). A child resumed on its own takes its
/// top-most parent's lease as well (`exec`), so it cannot race the parent's driver.
pub struct UnderParent;

struct Nothing;

impl Held for Nothing {
    fn release(self: Box<Self>, _: bool) {}
}

impl super::Locks for UnderParent {
    fn acquire(&self, _: &str) -> Result<Lease> {
        Ok(Lease::new(Nothing))
    }

    fn is_held(&self, _: &str) -> bool {
        false
    }
}

/// Two leases held as one.
struct Both(Lease, Lease);

impl Held for Both {
    fn release(self: Box<Self>, ended: bool) {
        let Both(first, second) = *self;
        first.release(ended);
        // The other (a parent's) is only borrowed: its execution has not ended.
        second.release(false);
    }
}

impl Lease {
    /// This lease and `other` (a parent's) held and given up together.
    pub fn with(self, other: Lease) -> Lease {
        Lease::new(Both(self, other))
    }
}

/// A lock file held with `flock`.
struct LockFile {
    file: File,
    path: PathBuf,
}

impl Held for LockFile {
    fn release(self: Box<Self>, ended: bool) {
        // Removed while still held, so no other process can have locked this file since.
        if ended {
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.file);
    }
}

/// Takes the lock file of `execution_id` in `dir`.
pub fn acquire(dir: &Path, execution_id: &str) -> Result<Lease> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    let path = dir.join(format!("{execution_id}.lock"));
    // A holder that ends removes its file; a process that opened the old file just before
    // then holds a lock on a file nobody else can find, so it checks and tries again. A
    // `runbook approve` asking whether the execution is driven holds the file for a moment
    // too: a few short retries tell that from a real driver.
    let mut busy = 0;
    for _ in 0..16 {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) if busy < 3 => {
                busy += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked { execution_id: execution_id.to_owned(), lock: path });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(Error::Io { path, source }),
        }
        if same_file(&file, &path) {
            return Ok(Lease::new(LockFile { file, path }));
        }
    }
    Err(Error::Locked { execution_id: execution_id.to_owned(), lock: path })
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

/// Whether some process holds the lock file of `execution_id`. A shared lock asks, so two
/// askers never see each other as drivers.
pub fn is_held(dir: &Path, execution_id: &str) -> bool {
    let path = dir.join(format!("{execution_id}.lock"));
    let Ok(file) = File::open(&path) else { return false };
    matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}
