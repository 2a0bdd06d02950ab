//! The seams a scenario fills: [`StepMocks`] stands in for the catalogue's executors (a
//! mocked attempt answers at once; the others run for real, a script in real time), and
//! [`AwsMocks`] answers AWS calls after the real executor built and checked them.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};
use tokio::sync::watch;

use super::Range;
use super::file::{AwsMock, Does, StepMock};
use crate::actions::{self, BoxFuture, Catalogue, Context, Executors, Failure, Interrupt, Output, Result};
use crate::aws::{Outgoing, Reply, Responder};
use crate::document::model::Runbook;

/// Answers the steps of the runbook under test from its mocks; everything else (steps without
/// a matching mock, child runbooks' steps) runs through the catalogue.
pub struct StepMocks<'s> {
    pub runbook: &'s Runbook,
    pub mocks: &'s HashMap<String, Vec<StepMock>>,
    /// The run's Ctrl-C, for "cancel here".
    pub cancel: &'s watch::Sender<Interrupt>,
    /// Whether the runtime's clock is paused (not for a scenario with an endpoint, which runs
    /// in real time).
    pub paused: bool,
    /// Whether the virtual clock is running in real time now (for a real script).
    pub real_time: Cell<bool>,
}

impl StepMocks<'_> {
    fn mock(&self, context: &Context<'_>) -> Option<&Does> {
        if !std::ptr::eq(context.settings.runbook, self.runbook) {
            return None;
        }
        let fits = |range: &Option<Range>, number: u32| range.as_ref().is_none_or(|range| range.contains(number));
        self.mocks
            .get(&context.step.name)?
            .iter()
            .find(|mock| fits(&mock.attempts, context.attempt) && fits(&mock.iterations, context.iteration))
            .map(|mock| &mock.does)
    }

    /// Whether a real attempt of this step waits on something outside the process, so that
    /// time must pass for real while it runs.
    fn needs_real_time(&self, context: &Context<'_>) -> bool {
        self.paused && actions::has(&context.step.action, |action| action.runs_script)
    }
}

impl Executors for StepMocks<'_> {
    fn execute<'c>(&'c self, context: &'c Context<'c>, inputs: &'c Map<String, Value>) -> BoxFuture<'c, Result> {
        let mocked = |root: Value, builtins: Map<String, Value>| Output { root, builtins, ..Output::empty() };
        match self.mock(context) {
            Some(Does::Outputs(values)) => {
                let output = mocked(Value::Object(Map::new()), values.clone());
                Box::pin(std::future::ready(Ok(output)))
            }
            Some(Does::Response(root)) => Box::pin(std::future::ready(Ok(mocked(root.clone(), Map::new())))),
            Some(Does::Error(message)) => Box::pin(std::future::ready(Err(Failure::error(message.clone())))),
            // The time limit (or the scenario's) ends it.
            Some(Does::Timeout) => Box::pin(std::future::pending()),
            Some(Does::Cancel) => {
                self.cancel.send_replace(Interrupt::Cancel);
                Box::pin(std::future::pending())
            }
            Some(Does::Real) | None if self.needs_real_time(context) && !self.real_time.get() => {
                Box::pin(async move {
                    // A real process is not driven by tokio's clock: let time pass as it does,
                    // until the attempt ends or is dropped (a time limit, a cancel).
                    let _real = RealTime::start(&self.real_time);
                    Catalogue.execute(context, inputs).await
                })
            }
            Some(Does::Real) | None => Catalogue.execute(context, inputs),
        }
    }
}

/// Real time while it lives; the virtual clock again once dropped.
struct RealTime<'a>(&'a Cell<bool>);

impl<'a> RealTime<'a> {
    fn start(flag: &'a Cell<bool>) -> RealTime<'a> {
        flag.set(true);
        tokio::time::resume();
        RealTime(flag)
    }
}

impl Drop for RealTime<'_> {
    fn drop(&mut self) {
        tokio::time::pause();
        self.0.set(false);
    }
}

/// One AWS call as it was made.
#[derive(Debug, Clone)]
pub struct Made {
    /// `service.Operation`.
    pub call: String,
    pub params: Value,
    /// Whether a mock (or the endpoint) answered it.
    pub answered: bool,
}

/// Answers AWS calls from a scenario's mocks and keeps the log of calls.
pub struct AwsMocks {
    mocks: Vec<AwsMock>,
    endpoint: bool,
    made: Mutex<Vec<Made>>,
    /// The sensitive members of every answer (a decrypted SecureString): redacted from reports.
    secrets: Mutex<Vec<Value>>,
}

impl AwsMocks {
    pub fn new(mocks: Vec<AwsMock>, endpoint: bool) -> AwsMocks {
        AwsMocks { mocks, endpoint, made: Mutex::new(Vec::new()), secrets: Mutex::new(Vec::new()) }
    }

    pub fn made(&self) -> Vec<Made> {
        self.made.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn secrets(&self) -> Vec<Value> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn learn(&self, call: &Outgoing<'_>, response: &Value) {
        let found = crate::aws::sensitive_values(call.service, call.operation, response);
        if !found.is_empty() {
            self.secrets.lock().unwrap_or_else(|e| e.into_inner()).extend(found);
        }
    }
}

impl Responder for AwsMocks {
    fn reply(&self, outgoing: &Outgoing<'_>) -> Reply {
        let call = format!("{}.{}", outgoing.service, outgoing.operation);
        let params = Value::Object(outgoing.params.clone());
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        let number = made.iter().filter(|made| made.call == call).count() as u32 + 1;
        let found = self.mocks.iter().find(|mock| {
            mock.call == call
                && mock.calls.as_ref().is_none_or(|range| range.contains(number))
                && mock.request.as_ref().is_none_or(|request| super::expect::contains(request, &params))
        });
        let reply = match found {
            Some(mock) => match &mock.answer {
                Ok(response) => {
                    self.learn(outgoing, response);
                    Reply::Respond(response.clone())
                }
                Err(error) => Reply::Fail(error.clone()),
            },
            None if self.endpoint => Reply::Send,
            None => Reply::Refuse(format!(
                "no mock answers {call} (call {number} of it) with request {}: add one under `aws:`",
                crate::diagnostic::short(&params)
            )),
        };
        made.push(Made { call, params, answered: !matches!(reply, Reply::Refuse(_)) });
        reply
    }

    fn received(&self, call: &Outgoing<'_>, response: &Value) {
        self.learn(call, response);
    }
}
