//! A journal held in memory, for runs that need no record after the process ends:
//! `runbook test` scenarios. Same traits, same answers as the SQLite journal, nothing
//! synced; it also keeps every step record in the order the steps finished, revisits
//! included, which is what test coverage is computed from.

use std::cell::RefCell;
use std::collections::HashSet;

use serde_json::Value;

use super::{
    Attempt, Decision, Error, Event, EventKind, Execution, JournalRead, JournalWrite, Lease, Locks, Result, Status,
    StepRecord, WaitingOn, now,
};

#[derive(Default)]
struct Records {
    executions: Vec<Execution>,
    attempts: Vec<(String, Attempt)>,
    /// Every step record, in the order the steps finished.
    steps: Vec<(String, StepRecord)>,
    events: Vec<(String, Event)>,
    decisions: Vec<(String, Decision)>,
}

/// The in-memory journal. Single-threaded, as runs are.
#[derive(Default)]
pub struct Memory {
    records: RefCell<Records>,
    held: std::rc::Rc<RefCell<HashSet<String>>>,
}

impl Memory {
    pub fn new() -> Memory {
        Memory::default()
    }

    /// Every step record of an execution in the order the steps finished, a step visited
    /// twice (a retry loop through `nextStep`) twice.
    pub fn history(&self, execution_id: &str) -> Vec<StepRecord> {
        self.with_history(execution_id, |records| records.into_iter().cloned().collect())
    }

    /// [`Memory::history`] without copying it.
    pub fn with_history<T>(&self, execution_id: &str, read: impl FnOnce(Vec<&StepRecord>) -> T) -> T {
        let records = self.records.borrow();
        read(records.steps.iter().filter(|(id, _)| id == execution_id).map(|(_, step)| step).collect())
    }
}

fn of<'r, T>(rows: &'r [(String, T)], execution_id: &'r str) -> impl Iterator<Item = &'r T> {
    rows.iter().filter(move |(id, _)| id == execution_id).map(|(_, row)| row)
}

impl JournalRead for Memory {
    fn execution(&self, execution_id: &str) -> Result<Execution> {
        let records = self.records.borrow();
        let found = records.executions.iter().find(|execution| execution.id == execution_id);
        found.cloned().ok_or_else(|| Error::NotFound(execution_id.to_owned()))
    }

    fn find_by_key(&self, key: &str) -> Result<Option<Execution>> {
        let records = self.records.borrow();
        Ok(records.executions.iter().find(|execution| execution.idempotency_key.as_deref() == Some(key)).cloned())
    }

    fn executions(&self, limit: u32) -> Result<Vec<Execution>> {
        let records = self.records.borrow();
        Ok(records.executions.iter().rev().take(limit as usize).cloned().collect())
    }

    fn children(&self, execution_id: &str) -> Result<Vec<Execution>> {
        let records = self.records.borrow();
        let children =
            records.executions.iter().filter(|execution| execution.parent_id.as_deref() == Some(execution_id));
        Ok(children.cloned().collect())
    }

    fn attempts(&self, execution_id: &str) -> Result<Vec<Attempt>> {
        Ok(of(&self.records.borrow().attempts, execution_id).cloned().collect())
    }

    fn steps(&self, execution_id: &str) -> Result<Vec<StepRecord>> {
        // The latest record of each step visit, as the SQLite journal keeps them.
        let mut latest: Vec<StepRecord> = Vec::new();
        for record in self.history(execution_id) {
            latest.retain(|kept| (kept.step.as_str(), kept.iteration) != (record.step.as_str(), record.iteration));
            latest.push(record);
        }
        Ok(latest)
    }

    fn events(&self, execution_id: &str) -> Result<Vec<Event>> {
        Ok(of(&self.records.borrow().events, execution_id).cloned().collect())
    }

    fn decision(&self, execution_id: &str, step: &str, iteration: u32) -> Result<Option<Decision>> {
        let records = self.records.borrow();
        let mut decisions = of(&records.decisions, execution_id);
        Ok(decisions.find(|decision| decision.step == step && decision.iteration == iteration).cloned())
    }

    fn waiting_on(&self, execution_id: &str) -> Result<Option<WaitingOn>> {
        let records = self.records.borrow();
        let events: Vec<&Event> = of(&records.events, execution_id).collect();
        Ok(WaitingOn::last_in(events.into_iter()))
    }
}

impl JournalWrite for Memory {
    fn create_execution(&self, execution: &Execution, detail: &Value) -> Result<()> {
        if let Some(key) = &execution.idempotency_key
            && let Some(holder) = self.find_by_key(key)?
        {
            return Err(Error::KeyTaken { key: key.clone(), execution_id: holder.id });
        }
        self.records.borrow_mut().executions.push(execution.clone());
        self.event(&execution.id, EventKind::ExecutionCreated, None, detail)
    }

    fn set_status(
        &self,
        execution_id: &str,
        status: Status,
        ended: bool,
        outputs: Option<&Value>,
        error: Option<&str>,
    ) -> Result<()> {
        {
            let mut records = self.records.borrow_mut();
            let execution = records
                .executions
                .iter_mut()
                .find(|execution| execution.id == execution_id)
                .ok_or_else(|| Error::NotFound(execution_id.to_owned()))?;
            execution.status = status;
            execution.ended_at = ended.then(now);
            if let Some(outputs) = outputs {
                execution.outputs = Some(outputs.clone());
            }
            execution.error = error.map(str::to_owned);
        }
        self.event(execution_id, EventKind::Status, None, &serde_json::json!({ "status": status }))
    }

    fn attempt_started(&self, execution_id: &str, attempt: &Attempt) -> Result<()> {
        self.records.borrow_mut().attempts.push((execution_id.to_owned(), attempt.clone()));
        Ok(())
    }

    /// An attempt this store never saw start is added whole by `attempt_finished`.
    fn attempt_done(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()> {
        self.attempt_finished(execution_id, attempt, step)
    }

    fn attempt_finished(&self, execution_id: &str, attempt: &Attempt, step: Option<&StepRecord>) -> Result<()> {
        {
            let mut records = self.records.borrow_mut();
            let same = |(id, kept): &&mut (String, Attempt)| {
                id == execution_id
                    && (kept.step.as_str(), kept.iteration, kept.attempt)
                        == (attempt.step.as_str(), attempt.iteration, attempt.attempt)
            };
            match records.attempts.iter_mut().rev().find(same) {
                // Its inputs were kept when it started.
                Some((_, kept)) => kept.finish_from(attempt),
                None => records.attempts.push((execution_id.to_owned(), attempt.clone())),
            }
        }
        match step {
            Some(step) => self.step_finished(execution_id, step),
            None => Ok(()),
        }
    }

    fn step_finished(&self, execution_id: &str, step: &StepRecord) -> Result<()> {
        self.records.borrow_mut().steps.push((execution_id.to_owned(), step.clone()));
        Ok(())
    }

    fn event(&self, execution_id: &str, kind: EventKind, step: Option<&str>, detail: &Value) -> Result<()> {
        let event = Event { at: now(), kind, step: step.map(str::to_owned), detail: detail.clone() };
        self.records.borrow_mut().events.push((execution_id.to_owned(), event));
        Ok(())
    }

    fn decide(&self, execution_id: &str, decision: &Decision) -> Result<bool> {
        if self.decision(execution_id, &decision.step, decision.iteration)?.is_some() {
            return Ok(false);
        }
        self.records.borrow_mut().decisions.push((execution_id.to_owned(), decision.clone()));
        let detail = decision.detail();
        self.event(execution_id, EventKind::Decision, Some(&decision.step), &detail)?;
        Ok(true)
    }
}

/// A lease on an execution of the in-memory journal.
struct HeldHere {
    held: std::rc::Rc<RefCell<HashSet<String>>>,
    execution_id: String,
}

impl super::Held for HeldHere {
    fn release(self: Box<Self>, _ended: bool) {
        self.held.borrow_mut().remove(&self.execution_id);
    }
}

impl Locks for Memory {
    fn acquire(&self, execution_id: &str) -> Result<Lease> {
        if !self.held.borrow_mut().insert(execution_id.to_owned()) {
            let lock = std::path::PathBuf::from(format!("memory:{execution_id}"));
            return Err(Error::Locked { execution_id: execution_id.to_owned(), lock });
        }
        Ok(Lease::new(HeldHere { held: self.held.clone(), execution_id: execution_id.to_owned() }))
    }

    fn is_held(&self, execution_id: &str) -> bool {
        self.held.borrow().contains(execution_id)
    }
}
