//! The store that machines share (`--state s3://BUCKET/PREFIX`, `RUNBOOK_STATE`): the journal,
//! the driver of each execution and the named locks, as objects in S3, every change a
//! conditional write, as Terraform's S3 lock file is: `If-None-Match: *` creates an object
//! only where there is none, `If-Match: ETAG` replaces it only as it was read. Two writers
//! never both win; the loser reads again and, where its change still applies, tries again.
//!
//! Under the prefix:
//! - `format.json`: the store's format, checked on open;
//! - `executions/ID.json`: one execution with its attempts, step results, timeline and
//!   decisions, rewritten whole by each write (committed when S3 answers, so an attempt is
//!   recorded as started before its executor runs, as in the local journal);
//! - `keys/SHA256.json`: which execution has an idempotency key (created once);
//! - `drivers/ID.json`: who drives an execution, with a lease the driver renews from a thread
//!   of its own. A driver that dies leaves it until the lease runs out, or, on the same host,
//!   until its process is seen gone;
//! - `locks/NAME.json`: a named lock's grants, its newest token and the newest applied.
//!
//! The calls go through the engine's own AWS client, with the standard configuration
//! (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), on a thread
//! of their own, so the synchronous journal traits can wait for them from inside a run.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::named::{Grant, LockMode};
use super::{
    Attempt, Decision, Error, Event, EventKind, Execution, JournalRead, JournalWrite, Lease, Locks, NamedLocks, Result,
    Status, StepRecord, WaitingOn, now,
};
use crate::aws;

/// The environment variable naming the shared store (as `--state`).
pub const STATE_VARIABLE: &str = "RUNBOOK_STATE";

/// The store format this engine writes.
const FORMAT: u32 = 1;

/// How long a driver holds an execution without renewing (`RUNBOOK_S3_LEASE_SECONDS`).
const DRIVER_LEASE: Duration = Duration::from_secs(30);

/// Where the store is: `s3://BUCKET/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Empty, or ending with `/`.
    pub prefix: String,
}

impl Location {
    /// Reads `s3://BUCKET[/PREFIX]`, refusing what S3 would not take as a bucket name.
    pub fn parse(url: &str) -> std::result::Result<Location, String> {
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(format!("`{url}` is not an S3 location: give s3://BUCKET/PREFIX"));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return Err(format!(
                "`{bucket}` is not a valid S3 bucket name (3 to 63 lower-case letters, digits, `-` and `.`)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(Location { bucket: bucket.to_owned(), prefix })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// A conditional write lost to another writer.
struct Conflict;

/// The AWS client on a thread of its own, waited on synchronously.
struct Client {
    aws: Arc<aws::Aws>,
    jobs: tokio::sync::mpsc::UnboundedSender<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl Client {
    fn new(aws: Arc<aws::Aws>) -> std::io::Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (jobs, mut queue) =
            tokio::sync::mpsc::unbounded_channel::<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>();
        std::thread::Builder::new().name("runbook-s3".into()).spawn(move || {
            runtime.block_on(async move {
                while let Some(job) = queue.recv().await {
                    tokio::spawn(job);
                }
            });
        })?;
        Ok(Client { aws, jobs })
    }

    /// One S3 call, waited for.
    fn call(&self, api: &'static str, params: Value) -> std::result::Result<Value, aws::Error> {
        let aws = self.aws.clone();
        let (answer, answered) = std::sync::mpsc::channel();
        let job = Box::pin(async move {
            let params = params.as_object().cloned().unwrap_or_default();
            let call = aws::Call { service: "s3", api, params: &params, role: None, token_seed: "" };
            let _ = answer.send(aws.call(&call).await);
        });
        if self.jobs.send(job).is_err() {
            return Err(aws::Error::Refused("the S3 client stopped".into()));
        }
        answered.recv().unwrap_or_else(|_| Err(aws::Error::Refused("the S3 client stopped".into())))
    }
}

/// What the store says when S3 refuses: the call, the code, and what to check.
fn store_error(location: &Location, error: &aws::Error) -> Error {
    let help = match error.code() {
        Some("NoSuchBucket") => format!(": create the bucket `{}` or name another with --state", location.bucket),
        Some("AccessDenied" | "Forbidden" | "403") => {
            ": the credentials need s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on it".to_owned()
        }
        _ => String::new(),
    };
    Error::Store { location: location.to_string(), message: format!("{}{help}", crate::diagnostic::causes(error)) }
}

/// An object read: its ETag and text.
struct Object {
    etag: String,
    text: String,
}

/// The calls the store makes, named for what they do.
struct Bucket {
    client: Client,
    location: Location,
}

impl Bucket {
    fn get(&self, name: &str) -> Result<Option<Object>> {
        let params = json!({ "Bucket": self.location.bucket, "Key": self.location.key(name) });
        match self.client.call("GetObject", params) {
            Ok(response) => Ok(Some(Object {
                etag: response["ETag"].as_str().unwrap_or_default().to_owned(),
                text: response["Body"].as_str().unwrap_or_default().to_owned(),
            })),
            Err(error) if matches!(error.code(), Some("NoSuchKey" | "404")) => Ok(None),
            Err(error) => Err(store_error(&self.location, &error)),
        }
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<(String, T)>> {
        let Some(object) = self.get(name)? else { return Ok(None) };
        let value = serde_json::from_str(&object.text)
            .map_err(|error| Error::Corrupt(format!("{}{name}: {error}", self.location)))?;
        Ok(Some((object.etag, value)))
    }

    /// Writes `name` only where it is absent (`None`) or as it was read (`Some(etag)`). A
    /// write the client sent again (its answer lost) finds its own first try there: the object
    /// holds exactly what was sent, and that is no conflict.
    fn put(
        &self,
        name: &str,
        value: &impl Serialize,
        expected: Option<&str>,
    ) -> Result<std::result::Result<String, Conflict>> {
        let body = serde_json::to_string(value).map_err(|error| Error::Corrupt(error.to_string()))?;
        let mut params = json!({
            "Bucket": self.location.bucket,
            "Key": self.location.key(name),
            "Body": body,
            "ContentType": "application/json",
        });
        match expected {
            Some(etag) => params["IfMatch"] = json!(etag),
            None => params["IfNoneMatch"] = json!("*"),
        }
        match self.client.call("PutObject", params) {
            Ok(response) => match response["ETag"].as_str() {
                Some(etag) if !etag.is_empty() => Ok(Ok(etag.to_owned())),
                _ => Err(Error::Store {
                    location: self.location.to_string(),
                    message: format!("PutObject of {name} answered without an ETag"),
                }),
            },
            Err(error) if is_conflict(&error) => match self.get(name)? {
                Some(object) if object.text == body && !object.etag.is_empty() => Ok(Ok(object.etag)),
                _ => Ok(Err(Conflict)),
            },
            Err(error) => Err(store_error(&self.location, &error)),
        }
    }

    /// Deletes `name` if it is still as it was read; whether it was.
    fn delete(&self, name: &str, etag: &str) -> Result<bool> {
        let params = json!({ "Bucket": self.location.bucket, "Key": self.location.key(name), "IfMatch": etag });
        match self.client.call("DeleteObject", params) {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) || matches!(error.code(), Some("NoSuchKey" | "404")) => Ok(false),
            Err(error) => Err(store_error(&self.location, &error)),
        }
    }

    /// The names under `folder` (without the prefix).
    fn list(&self, folder: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = json!({ "Bucket": self.location.bucket, "Prefix": self.location.key(folder) });
            if let Some(token) = &token {
                params["ContinuationToken"] = json!(token);
            }
            let response =
                self.client.call("ListObjectsV2", params).map_err(|error| store_error(&self.location, &error))?;
            for object in response["Contents"].as_array().into_iter().flatten() {
                if let Some(key) = object["Key"].as_str() {
                    names.push(key[self.location.prefix.len()..].to_owned());
                }
            }
            match response["NextContinuationToken"].as_str() {
                Some(next) if response["IsTruncated"] == json!(true) => token = Some(next.to_owned()),
                _ => return Ok(names),
            }
        }
    }
}

fn is_conflict(error: &aws::Error) -> bool {
    matches!(error.code(), Some("PreconditionFailed" | "ConditionalRequestConflict" | "412" | "409"))
}

/// One execution's record, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    format: u32,
    execution: Execution,
    /// Who drives it now (see [`Driver`]): a driver that lost its lease cannot write.
    #[serde(default)]
    driver: Option<String>,
    /// The epoch of that driver: a takeover writes a newer one.
    #[serde(default)]
    driver_epoch: u64,
    /// Rows written so far, in order (what the local journal's sequence numbers order).
    attempts: Vec<Attempt>,
    steps: Vec<StepRecord>,
    events: Vec<Event>,
    decisions: Vec<Decision>,
}

/// Who drives an execution, until when.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Driver {
    owner: String,
    /// The machine and process namespace it runs in (see [`Process`]); empty where unknown.
    host: String,
    pid: u32,
    /// When the process started, in clock ticks since boot: a pid used again is another process.
    started: u64,
    /// Grows with every driver that takes the execution over, so a late one cannot write
    /// itself back in.
    epoch: u64,
    expires_at: i64,
}

/// This process as a driver record names it.
#[derive(Clone, Debug, Default)]
struct Process {
    /// The boot's id and the pid namespace: the same value means `/proc` shows the same
    /// processes. Empty where they cannot be read (then only the lease tells a driver gone).
    host: String,
    pid: u32,
    started: u64,
}

impl Process {
    fn this() -> Process {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let namespace =
            std::fs::read_link("/proc/self/ns/pid").map(|link| link.display().to_string()).unwrap_or_default();
        let pid = std::process::id();
        let host = if boot.trim().is_empty() || namespace.is_empty() {
            String::new()
        } else {
            format!("{}/{namespace}", boot.trim())
        };
        Process { host, pid, started: started(pid).unwrap_or(0) }
    }
}

/// When process `pid` started (field 22 of `/proc/PID/stat`), if it runs.
fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: the fields after it follow its `)`.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

impl Driver {
    /// Whether a driver can no longer be driving: its lease ran out, or it ran where this
    /// process can see its processes and it is gone (a pid now another process's counts).
    fn is_gone(&self, here: &Process) -> bool {
        if self.expires_at <= now_ms() {
            return true;
        }
        !here.host.is_empty() && self.host == here.host && started(self.pid) != Some(self.started)
    }
}

/// Execution records read, and the id of each that could not be, with why.
type Records = (Vec<Record>, Vec<(String, Error)>);

/// A named lock, as stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct LockRecord {
    token: u64,
    #[serde(default)]
    applied: u64,
    grants: Vec<Grant>,
}

/// How many times a conditional write is tried before the store gives up.
const MAX_TRIES: u32 = 64;

/// A pause before trying a conditional write again: a few milliseconds, more the more it
/// lost, with jitter so that writers that collided part.
fn back_off(tries: u32) {
    let ceiling = 2u64.saturating_pow(tries.min(7)).min(100);
    std::thread::sleep(Duration::from_micros((aws::random_unit() * ceiling as f64 * 1000.0) as u64));
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The S3 store. Single-threaded, as runs are; each driver's lease is renewed by a thread.
pub struct S3Store {
    bucket: Arc<Bucket>,
    /// Each execution's record as this process last wrote or read it, with its ETag.
    cache: RefCell<HashMap<String, (String, Record)>>,
    /// The executions this process drives: the owner id and epoch written in their records.
    driving: Arc<Mutex<HashMap<String, (String, u64)>>>,
    process: Process,
    lease: Duration,
}

impl S3Store {
    /// Opens the store at `url` (`s3://BUCKET/PREFIX`): the bucket is reached and the format
    /// checked before anything else, so a bucket that does not exist or denies access is one
    /// clear error and nothing is written.
    pub fn open(url: &str) -> Result<S3Store> {
        S3Store::open_with(url, aws::Aws::new(aws::Settings::default()), true)
    }

    /// [`S3Store::open`] through the given client (a test's, with its own credentials);
    /// `create`: a new store's format is written (reading commands write nothing).
    pub fn open_with(url: &str, aws: Arc<aws::Aws>, create: bool) -> Result<S3Store> {
        let location = Location::parse(url).map_err(|message| Error::Store { location: url.to_owned(), message })?;
        let client = Client::new(aws).map_err(|source| Error::Io { path: PathBuf::from(url), source })?;
        let bucket = Bucket { client, location };
        let lease = std::env::var("RUNBOOK_S3_LEASE_SECONDS")
            .ok()
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .filter(|seconds| *seconds > 0)
            .map_or(DRIVER_LEASE, Duration::from_secs);
        let store = S3Store {
            bucket: Arc::new(bucket),
            cache: RefCell::new(HashMap::new()),
            driving: Arc::new(Mutex::new(HashMap::new())),
            process: Process::this(),
            lease,
        };
        store.check_format(create)?;
        Ok(store)
    }

    fn check_format(&self, create: bool) -> Result<()> {
        match self.bucket.read::<Value>("format.json")? {
            Some((_, value)) => {
                let found = value["format"].as_i64().unwrap_or(0);
                if found > i64::from(FORMAT) {
                    let path = PathBuf::from(format!("{}format.json", self.bucket.location));
                    return Err(Error::NewerFormat { path, found });
                }
                Ok(())
            }
            // Two processes creating it at once write the same thing: either wins.
            None if create => self.bucket.put("format.json", &json!({ "format": FORMAT }), None).map(|_| ()),
            // Reaching the bucket is the check (a listing needs no object).
            None => self.bucket.list("format.json").map(|_| ()),
        }
    }

    pub fn location(&self) -> &Location {
        &self.bucket.location
    }

    fn record_name(execution_id: &str) -> String {
        format!("executions/{execution_id}.json")
    }

    /// Reads an execution's record afresh.
    fn fetch(&self, execution_id: &str) -> Result<Record> {
        let Some((etag, record)) = self.bucket.read::<Record>(&Self::record_name(execution_id))? else {
            return Err(Error::NotFound(execution_id.to_owned()));
        };
        self.cache.borrow_mut().insert(execution_id.to_owned(), (etag, record.clone()));
        Ok(record)
    }

    /// Applies `change` to an execution's record and writes it as it was read; when another
    /// writer got there first, reads it again and applies the change to that.
    fn update<T>(&self, execution_id: &str, change: impl Fn(&mut Record) -> Result<T>) -> Result<T> {
        self.update_as(execution_id, true, change)
    }

    /// [`S3Store::update`]; `as_driver`: refused when another driver took the execution over
    /// from this process (a driver taking it over writes itself in without the check).
    fn update_as<T>(
        &self,
        execution_id: &str,
        as_driver: bool,
        change: impl Fn(&mut Record) -> Result<T>,
    ) -> Result<T> {
        let name = Self::record_name(execution_id);
        let mut fresh = false;
        for tries in 0..MAX_TRIES {
            if tries > 0 {
                back_off(tries);
            }
            let cached = self.cache.borrow().get(execution_id).cloned();
            let (etag, mut record) = match cached {
                Some(cached) if !fresh => cached,
                _ => {
                    self.fetch(execution_id)?;
                    self.cache.borrow().get(execution_id).cloned().expect("just fetched")
                }
            };
            // A driver whose lease another took over writes nothing more.
            if as_driver
                && let Some((owner, _)) = self.driving.lock().expect("not poisoned").get(execution_id)
                && record.driver.as_deref().is_some_and(|driver| driver != owner)
            {
                return Err(Error::Locked {
                    execution_id: execution_id.to_owned(),
                    lock: PathBuf::from(format!("{}drivers/{execution_id}.json", self.bucket.location)),
                });
            }
            let result = change(&mut record)?;
            match self.bucket.put(&name, &record, Some(&etag))? {
                Ok(etag) => {
                    self.cache.borrow_mut().insert(execution_id.to_owned(), (etag, record));
                    return Ok(result);
                }
                Err(Conflict) => fresh = true,
            }
        }
        Err(self.contended(&name))
    }

    /// A write that lost to other writers every time it was tried.
    fn contended(&self, name: &str) -> Error {
        Error::Store {
            location: self.bucket.location.to_string(),
            message: format!("{name} was changed by others each of the {MAX_TRIES} times it was written"),
        }
    }

    /// Every execution's record (for listings), newest first, with the id of each that could
    /// not be read and why (set aside, as the local journal sets aside a damaged row).
    fn records(&self) -> Result<Records> {
        let (mut records, mut malformed) = (Vec::new(), Vec::new());
        for name in self.bucket.list("executions/")? {
            let Some(id) = name.strip_prefix("executions/").and_then(|rest| rest.strip_suffix(".json")) else {
                continue;
            };
            match self.fetch(id) {
                Ok(record) => records.push(record),
                // Deleted between the listing and the read.
                Err(Error::NotFound(_)) => {}
                Err(error @ Error::Corrupt(_)) => malformed.push((id.to_owned(), error)),
                Err(error) => return Err(error),
            }
        }
        records.sort_by(|a, b| b.execution.started_at.cmp(&a.execution.started_at));
        Ok((records, malformed))
    }

    /// The most recent executions first, as [`JournalRead::executions`], with those that
    /// could not be read set aside (`runbook executions list`).
    pub fn list(&self, limit: u32) -> Result<super::sqlite::Listing> {
        let (records, malformed) = self.records()?;
        Ok((records.into_iter().take(limit as usize).map(|record| record.execution).collect(), malformed))
    }

    /// The full id an execution was given as: the id, a unique prefix of it, or `last`.
    pub fn resolve_id(&self, given: &str) -> Result<String> {
        let found: Vec<String> = if given == "last" {
            let newest = self.records()?.0.into_iter().find(|record| record.execution.parent_id.is_none());
            newest.map(|record| record.execution.id).into_iter().collect()
        } else {
            self.bucket
                .list(&format!("executions/{given}"))?
                .iter()
                .filter_map(|name| name.strip_prefix("executions/")?.strip_suffix(".json").map(str::to_owned))
                .collect()
        };
        match found.as_slice() {
            [] => Err(Error::NotFound(given.to_owned())),
            [one] => Ok(one.clone()),
            _ if found.iter().any(|id| id == given) => Ok(given.to_owned()),
            _ => Err(Error::Ambiguous { prefix: given.to_owned(), matches: found.into_iter().take(6).collect() }),
        }
    }

    fn key_name(key: &str) -> String {
        format!("keys/{}.json", crate::exec::content_hash(key.as_bytes()))
    }

    fn lock_name(name: &str) -> String {
        format!("locks/{name}.json")
    }

    /// Applies `change` to a named lock's record as it was read, again on a conflict.
    fn update_lock<T>(&self, name: &str, change: impl Fn(&mut LockRecord) -> Result<T>) -> Result<T> {
        let object = Self::lock_name(name);
        for tries in 0..MAX_TRIES {
            if tries > 0 {
                back_off(tries);
            }
            let (etag, mut record) = match self.bucket.read::<LockRecord>(&object)? {
                Some((etag, record)) => (Some(etag), record),
                None => (None, LockRecord::default()),
            };
            let result = change(&mut record)?;
            if self.bucket.put(&object, &record, etag.as_deref())?.is_ok() {
                return Ok(result);
            }
        }
        Err(self.contended(&object))
    }
}

impl JournalRead for S3Store {
    fn execution(&self, execution_id: &str) -> Result<Execution> {
        Ok(self.fetch(execution_id)?.execution)
    }

    fn find_by_key(&self, key: &str) -> Result<Option<Execution>> {
        let Some((_, holder)) = self.bucket.read::<Value>(&Self::key_name(key))? else { return Ok(None) };
        let Some(execution_id) = holder["execution_id"].as_str() else { return Ok(None) };
        match self.execution(execution_id) {
            Ok(execution) => Ok(Some(execution)),
            // Its record was taken away by hand.
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn executions(&self, limit: u32) -> Result<Vec<Execution>> {
        Ok(self.list(limit)?.0)
    }

    fn children(&self, execution_id: &str) -> Result<Vec<Execution>> {
        let mut children: Vec<Execution> = self
            .records()?
            .0
            .into_iter()
            .map(|record| record.execution)
            .filter(|execution| execution.parent_id.as_deref() == Some(execution_id))
            .collect();
        children.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        Ok(children)
    }

    fn attempts(&self, execution_id: &str) -> Result<Vec<Attempt>> {
        Ok(self.fetch(execution_id)?.attempts)
    }

    fn steps(&self, execution_id: &str) -> Result<Vec<StepRecord>> {
        Ok(self.fetch(execution_id)?.steps)
    }

    fn events(&self, execution_id: &str) -> Result<Vec<Event>> {
        Ok(self.fetch(execution_id)?.events)
    }

    fn decision(&self, execution_id: &str, step: &str, iteration: u32) -> Result<Option<Decision>> {
        let record = self.fetch(execution_id)?;
        Ok(record.decisions.into_iter().find(|decision| decision.step == step && decision.iteration == iteration))
    }

    fn waiting_on(&self, execution_id: &str) -> Result<Option<WaitingOn>> {
        Ok(WaitingOn::last_in(self.fetch(execution_id)?.events.iter()))
    }
}

fn event(kind: EventKind, step: Option<&str>, detail: &Value) -> Event {
    Event { at: now(), kind, step: step.map(str::to_owned), detail: detail.clone() }
}

impl JournalWrite for S3Store {
    fn create_execution(&self, execution: &Execution, detail: &Value) -> Result<()> {
        let driving = self.driving.lock().expect("not poisoned").get(&execution.id).cloned();
        let record = Record {
            format: FORMAT,
            execution: execution.clone(),
            driver: driving.as_ref().map(|(owner, _)| owner.clone()),
            driver_epoch: driving.map_or(0, |(_, epoch)| epoch),
            attempts: Vec::new(),
            steps: Vec::new(),
            events: vec![event(EventKind::ExecutionCreated, None, detail)],
            decisions: Vec::new(),
        };
        let name = Self::record_name(&execution.id);
        let Ok(etag) = self.bucket.put(&name, &record, None)? else {
            return Err(Error::Corrupt(format!("execution {} exists already", execution.id)));
        };
        // The record first, then the key: a key always names a record. Of two executions
        // started at once with one key, the one whose key write loses takes its record back.
        if let Some(key) = &execution.idempotency_key {
            let holder = json!({ "key": key, "execution_id": execution.id });
            if self.bucket.put(&Self::key_name(key), &holder, None)?.is_err() {
                self.bucket.delete(&name, &etag)?;
                let other = self.bucket.read::<Value>(&Self::key_name(key))?;
                let other = other.and_then(|(_, holder)| holder["execution_id"].as_str().map(str::to_owned));
                return Err(Error::KeyTaken {
                    key: key.clone(),
                    execution_id: other.unwrap_or_else(|| "(unknown)".to_owned()),
                });
            }
        }
        self.cache.borrow_mut().insert(execution.id.clone(), (etag, record));
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
        self.update(execution_id, |record| {
            record.execution.status = status;
            record.execution.ended_at = ended.then(now);
            if let Some(outputs) = outputs {
                record.execution.outputs = Some(outputs.clone());
            }
            record.execution.error = error.map(str::to_owned);
            record.events.push(event(EventKind::Status, None, &json!({ "status": status })));
            Ok(())
        })
    }

    fn attempt_started(&self, execution_id: &str, attempt: &Attempt) -> Result<()> {
        self.update(execution_id, |record| {
            record.attempts.push(attempt.clone());
            Ok(())
        })
    }

    /// An attempt this store never saw start is added whole by `attempt_finished`.
    fn attempt_done(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()> {
        self.attempt_finished(execution_id, attempt, step)
    }

    fn attempt_finished(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()> {
        self.update(execution_id, |record| {
            let same = |kept: &&mut Attempt| {
                (kept.step.as_str(), kept.iteration, kept.attempt)
                    == (attempt.step.as_str(), attempt.iteration, attempt.attempt)
            };
            match record.attempts.iter_mut().rev().find(same) {
                // Its inputs were kept when it started.
                Some(kept) => kept.finish_from(attempt),
                None => record.attempts.push(attempt.clone()),
            }
            if let Some(step) = step {
                keep_step(record, step);
            }
            Ok(())
        })
    }

    fn step_finished(&self, execution_id: &str, step: &StepRecord) -> Result<()> {
        self.update(execution_id, |record| {
            keep_step(record, step);
            Ok(())
        })
    }

    fn event(&self, execution_id: &str, kind: EventKind, step: Option<&str>, detail: &Value) -> Result<()> {
        self.update(execution_id, |record| {
            record.events.push(event(kind, step, detail));
            Ok(())
        })
    }

    fn decide(&self, execution_id: &str, decision: &Decision) -> Result<bool> {
        self.update(execution_id, |record| {
            let taken = record.decisions.iter().any(|d| d.step == decision.step && d.iteration == decision.iteration);
            if taken {
                return Ok(false);
            }
            record.decisions.push(decision.clone());
            let detail = decision.detail();
            record.events.push(event(EventKind::Decision, Some(&decision.step), &detail));
            Ok(true)
        })
    }
}

/// The latest result of each step visit is kept, as the local journal keeps it.
fn keep_step(record: &mut Record, step: &StepRecord) {
    record.steps.retain(|kept| (kept.step.as_str(), kept.iteration) != (step.step.as_str(), step.iteration));
    record.steps.push(step.clone());
}

/// A driver's lease on an execution, renewed by a thread until released.
struct Driving {
    bucket: Arc<Bucket>,
    driving: Arc<Mutex<HashMap<String, (String, u64)>>>,
    execution_id: String,
    /// The lease object's ETag, and whether the renewals should stop.
    state: Arc<Mutex<(String, bool)>>,
}

impl super::Held for Driving {
    fn release(self: Box<Self>, _ended: bool) {
        let mut state = self.state.lock().expect("not poisoned");
        state.1 = true;
        let _ = self.bucket.delete(&format!("drivers/{}.json", self.execution_id), &state.0);
        self.driving.lock().expect("not poisoned").remove(&self.execution_id);
    }
}

impl Locks for S3Store {
    fn acquire(&self, execution_id: &str) -> Result<Lease> {
        let name = format!("drivers/{execution_id}.json");
        let locked = || Error::Locked {
            execution_id: execution_id.to_owned(),
            lock: PathBuf::from(format!("{}{name}", self.bucket.location)),
        };
        // Epochs go on from the record's: a driver after a clean release is newer still.
        let recorded = match self.fetch(execution_id) {
            Ok(record) => record.driver_epoch,
            Err(Error::NotFound(_)) => 0,
            Err(error) => return Err(error),
        };
        let owner = uuid::Uuid::new_v4().to_string();
        let mut driver = Driver {
            owner: owner.clone(),
            host: self.process.host.clone(),
            pid: self.process.pid,
            started: self.process.started,
            epoch: recorded + 1,
            expires_at: now_ms() + millis(self.lease),
        };
        let etag = match self.bucket.put(&name, &driver, None)? {
            Ok(etag) => etag,
            Err(Conflict) => {
                let Some((etag, holder)) = self.bucket.read::<Driver>(&name)? else { return Err(locked()) };
                if !holder.is_gone(&self.process) {
                    return Err(locked());
                }
                // Taken over from a driver that is gone: only one of several takers wins.
                driver.epoch = driver.epoch.max(holder.epoch + 1);
                self.bucket.put(&name, &driver, Some(&etag))?.map_err(|Conflict| locked())?
            }
        };
        let epoch = driver.epoch;
        // The record says who drives it now, unless a newer driver wrote itself in already (a
        // new execution's record is written with it).
        let written = self.update_as(execution_id, false, |record| {
            if record.driver_epoch > epoch {
                return Err(locked());
            }
            record.driver = Some(owner.clone());
            record.driver_epoch = epoch;
            Ok(())
        });
        match written {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(error) => {
                let _ = self.bucket.delete(&name, &etag);
                return Err(error);
            }
        }
        self.driving.lock().expect("not poisoned").insert(execution_id.to_owned(), (owner.clone(), epoch));
        let state = Arc::new(Mutex::new((etag, false)));
        let renewal = (self.bucket.clone(), state.clone(), driver, self.lease, name);
        std::thread::spawn(move || {
            let (bucket, state, mut driver, lease, name) = renewal;
            loop {
                std::thread::sleep(lease / 3);
                let mut state = state.lock().expect("not poisoned");
                if state.1 {
                    return;
                }
                driver.expires_at = now_ms() + millis(lease);
                match bucket.put(&name, &driver, Some(&state.0)) {
                    Ok(Ok(etag)) => state.0 = etag,
                    // Taken over (this process was paused past its lease): its record refuses
                    // this driver's writes from now on.
                    Ok(Err(Conflict)) => return,
                    // Tried again at the next renewal.
                    Err(_) => {}
                }
            }
        });
        Ok(Lease::new(Driving {
            bucket: self.bucket.clone(),
            driving: self.driving.clone(),
            execution_id: execution_id.to_owned(),
            state,
        }))
    }

    fn is_held(&self, execution_id: &str) -> bool {
        match self.bucket.read::<Driver>(&format!("drivers/{execution_id}.json")) {
            Ok(Some((_, driver))) => !driver.is_gone(&self.process),
            _ => false,
        }
    }
}

impl NamedLocks for S3Store {
    fn grant(&self, name: &str, holder: &str, mode: LockMode, lease: Duration) -> Result<Grant> {
        self.update_lock(name, |record| {
            let now = now_ms();
            record.grants.retain(|grant| grant.expires_at > now);
            if let Some(conflict) = record.grants.iter().find(|other| {
                other.holder != holder && (mode == LockMode::Exclusive || other.mode == LockMode::Exclusive)
            }) {
                return Err(Error::LockHeld {
                    name: name.to_owned(),
                    holder: conflict.holder.clone(),
                    expires_at: conflict.expires_at,
                });
            }
            record.token += 1;
            let grant = Grant {
                name: name.to_owned(),
                holder: holder.to_owned(),
                mode,
                token: record.token,
                granted_at: now,
                expires_at: now.saturating_add(millis(lease)),
            };
            record.grants.retain(|other| other.holder != holder);
            record.grants.push(grant.clone());
            Ok(grant)
        })
    }

    fn renew(&self, held: &Grant, lease: Duration) -> Result<Grant> {
        self.update_lock(&held.name, |record| {
            let now = now_ms();
            let kept = record
                .grants
                .iter_mut()
                .find(|grant| grant.holder == held.holder && grant.token == held.token && grant.expires_at > now);
            let Some(kept) = kept else {
                return Err(Error::LeaseLost { name: held.name.clone(), token: held.token });
            };
            kept.expires_at = now.saturating_add(millis(lease));
            Ok(kept.clone())
        })
    }

    fn release(&self, held: &Grant) -> Result<()> {
        self.update_lock(&held.name, |record| {
            record.grants.retain(|grant| !(grant.holder == held.holder && grant.token == held.token));
            Ok(())
        })
    }

    fn force_release(&self, name: &str, holder: &str) -> Result<bool> {
        if self.bucket.get(&Self::lock_name(name))?.is_none() {
            return Ok(false);
        }
        self.update_lock(name, |record| {
            let before = record.grants.len();
            record.grants.retain(|grant| grant.holder != holder);
            Ok(record.grants.len() < before)
        })
    }

    fn grants(&self) -> Result<Vec<Grant>> {
        let now = now_ms();
        let mut grants = Vec::new();
        for object in self.bucket.list("locks/")? {
            if let Some((_, record)) = self.bucket.read::<LockRecord>(&object)? {
                grants.extend(record.grants.into_iter().filter(|grant| grant.expires_at > now));
            }
        }
        grants.sort_by(|a, b| (&a.name, a.token).cmp(&(&b.name, b.token)));
        Ok(grants)
    }

    fn last_token(&self, name: &str) -> Result<u64> {
        Ok(self.bucket.read::<LockRecord>(&Self::lock_name(name))?.map_or(0, |(_, record)| record.token))
    }

    fn mark_applied(&self, held: &Grant) -> Result<()> {
        self.update_lock(&held.name, |record| {
            record.applied = record.applied.max(held.token);
            Ok(())
        })
    }

    fn applied(&self, name: &str) -> Result<u64> {
        Ok(self.bucket.read::<LockRecord>(&Self::lock_name(name))?.map_or(0, |(_, record)| record.applied))
    }

    fn record_plan(&self, digest: &str) -> Result<()> {
        let saved = json!({ "digest": digest, "saved_at": now() });
        // The same plan saved twice is recorded once.
        self.bucket.put(&format!("plans/{digest}.json"), &saved, None).map(|_| ())
    }

    fn plan_recorded(&self, digest: &str) -> Result<bool> {
        Ok(self.bucket.get(&format!("plans/{digest}.json"))?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_and_bad_ones_refused() {
        let location = Location::parse("s3://team-state/runbooks/prod/").unwrap();
        assert_eq!(location, Location { bucket: "team-state".into(), prefix: "runbooks/prod/".into() });
        assert_eq!(location.key("format.json"), "runbooks/prod/format.json");
        assert_eq!(Location::parse("s3://team-state").unwrap().prefix, "");
        assert!(Location::parse("team-state/x").unwrap_err().contains("not an S3 location"));
        assert!(Location::parse("s3://Team_State/x").unwrap_err().contains("not a valid S3 bucket name"));
        assert!(Location::parse("s3:///x").unwrap_err().contains("not a valid S3 bucket name"));
    }
}
