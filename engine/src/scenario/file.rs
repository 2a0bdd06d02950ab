//! Scenario files: loaded like runbooks (YAML or JSON, line:col spans), checked against
//! `schemas/test.schema.json`, then against the runbook they test (steps, outputs, actions,
//! AWS calls, parameter values), and turned into typed [`Scenario`]s with defaults applied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};

use super::Range;
use crate::actions::{self, Kind};
use crate::aws::ServiceError;
use crate::diagnostic::{Code, Diagnostic, nearest, pointer_push};
use crate::document::{self, Loaded, model::Runbook};
use crate::exec::Answer;
use crate::journal::Status;
use crate::plan::Plan;
use crate::validate::Supplied;

/// The schema text, compiled into the binary like the runbook schema.
pub const TEST_SCHEMA: &str = include_str!("../../../schemas/test.schema.json");

/// The wall-clock time a scenario starts at unless it says otherwise.
pub const DEFAULT_NOW: &str = "2026-01-01T00:00:00Z";

/// How much virtual time a scenario may take before it counts as hung.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// One scenario, defaults applied.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Where it starts in its file (1-based line), for reports.
    pub line: usize,
    pub parameters: Vec<(String, Supplied)>,
    /// Mocks by step name, tried in order.
    pub steps: HashMap<String, Vec<StepMock>>,
    /// Mocks by AWS call, tried in order.
    pub aws: Vec<AwsMock>,
    pub answers: HashMap<String, Answer>,
    pub endpoint: Option<String>,
    pub now: jiff::Timestamp,
    pub region: String,
    pub account: String,
    pub time_limit: Duration,
    pub expect: Expect,
}

/// A mock of one step.
#[derive(Debug, Clone)]
pub struct StepMock {
    pub attempts: Option<Range>,
    pub iterations: Option<Range>,
    pub does: Does,
}

/// What a mocked attempt does.
#[derive(Debug, Clone)]
pub enum Does {
    /// Succeeds with these outputs by name.
    Outputs(Map<String, Value>),
    /// Succeeds with this object for the step's selectors.
    Response(Value),
    Error(String),
    Timeout,
    Cancel,
    /// Runs for real.
    Real,
}

/// A mock of AWS calls.
#[derive(Debug, Clone)]
pub struct AwsMock {
    /// `service.Operation`, canonical.
    pub call: String,
    pub request: Option<Value>,
    pub calls: Option<Range>,
    pub answer: Result<Value, ServiceError>,
}

/// An expected AWS call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallExpectation {
    pub call: String,
    pub request: Option<Value>,
}

/// Expected outputs: these (others may exist), or exactly these.
#[derive(Debug, Clone)]
pub struct OutputsExpectation {
    pub values: Map<String, Value>,
    pub exact: bool,
}

#[derive(Debug, Clone, Default)]
pub struct StepExpectation {
    pub status: Option<Status>,
    pub outputs: Option<OutputsExpectation>,
    pub error: Option<String>,
    pub attempts: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub status: Option<Status>,
    pub path: Option<Vec<String>>,
    /// By step name or `NAME#ITERATION`, in file order.
    pub steps: Vec<(String, StepExpectation)>,
    pub outputs: Option<OutputsExpectation>,
    pub calls: Option<Vec<CallExpectation>>,
    pub not_called: Vec<CallExpectation>,
}

/// A scenario file, checked. `scenarios` is empty when it has errors.
pub struct File {
    pub loaded: Loaded,
    pub runbook_path: Option<PathBuf>,
    pub scenarios: Vec<Scenario>,
    pub diagnostics: Vec<Diagnostic>,
}

impl File {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// The runbook a scenario file tests: its `runbook` key, else `NAME.yaml` (`.yml`, `.json`)
/// beside `NAME.test.yaml`.
pub fn runbook_beside(path: &Path, value: Option<&Value>) -> Option<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new(""));
    if let Some(named) = value.and_then(|v| v.get("runbook")).and_then(Value::as_str) {
        return Some(dir.join(named));
    }
    let name = path.file_name()?.to_str()?;
    let stem = [".test.yaml", ".test.yml", ".test.json"].iter().find_map(|suffix| name.strip_suffix(suffix))?;
    ["yaml", "yml", "json"].iter().map(|ext| dir.join(format!("{stem}.{ext}"))).find(|candidate| candidate.is_file())
}

/// Whether a file name says it holds scenarios.
pub fn is_scenario_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| [".test.yaml", ".test.yml", ".test.json"].iter().any(|suffix| name.ends_with(suffix)))
}

fn schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(TEST_SCHEMA).expect("the bundled test schema is valid JSON");
        jsonschema::draft202012::options().build(&schema).expect("the bundled test schema compiles")
    })
}

/// Checks a loaded scenario file against the schema and against `runbook` (already
/// validated and planned by the caller), and builds its scenarios.
pub fn check(mut loaded: Loaded, runbook_path: Option<PathBuf>, runbook: Option<(&Runbook, &Plan<'_>)>) -> File {
    let mut diagnostics = std::mem::take(&mut loaded.diagnostics);
    let mut scenarios = Vec::new();
    if let Some(value) = &loaded.value {
        let before = diagnostics.len();
        diagnostics.extend(schema_findings(value));
        // Shape first: the runbook checks assume it.
        if diagnostics.len() == before
            && let Some((runbook, plan)) = runbook
        {
            let mut checker = Checker { runbook, plan, diagnostics: &mut diagnostics };
            scenarios = checker.scenarios(value);
        }
    }
    loaded.locate_all(&mut diagnostics);
    diagnostics.sort_by_key(|d| (d.location.map(|l| (l.line, l.column)), d.code));
    // A problem in `defaults` is found once per scenario, and several schema branches may
    // report one place: each is reported once.
    diagnostics.dedup_by(|a, b| {
        a.pointer == b.pointer && a.code == b.code && (a.message == b.message || a.code == Code::ScenarioSchema)
    });
    let pointers: Vec<String> = scenarios.iter().map(|scenario| scenario_pointer(scenario.line)).collect();
    let wanted: Vec<_> = pointers.iter().map(|pointer| (pointer.as_str(), crate::diagnostic::Target::Value)).collect();
    for (scenario, location) in scenarios.iter_mut().zip(loaded.locate_each(&wanted)) {
        scenario.line = location.map_or(1, |location| location.line);
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        scenarios.clear();
    }
    File { loaded, runbook_path, scenarios, diagnostics }
}

/// `line` holds the scenario's index until the file is located.
fn scenario_pointer(index: usize) -> String {
    format!("/scenarios/{index}")
}

/// The schema's findings. A key whose value is wrong is also "not evaluated" by the schema
/// (`unevaluatedProperties`); only the problem inside it is reported.
fn schema_findings(value: &Value) -> Vec<Diagnostic> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let errors: Vec<_> = schema().iter_errors(value).collect();
    let pointers: Vec<String> = errors.iter().map(|error| error.instance_path().to_string()).collect();
    let mut findings = Vec::new();
    for (error, pointer) in errors.iter().zip(&pointers) {
        if let Kind::UnevaluatedProperties { unexpected } = error.kind() {
            let unknown: Vec<String> = unexpected
                .iter()
                .filter(|key| {
                    let inside = pointer_push(pointer, key);
                    !pointers.iter().any(|other| *other == inside || other.starts_with(&format!("{inside}/")))
                })
                .cloned()
                .collect();
            if !unknown.is_empty() {
                let plural = if unknown.len() == 1 { "" } else { "s" };
                let message = format!("unknown key{plural} {}", quoted(&unknown));
                findings.push(Diagnostic::new(Code::ScenarioSchema, message).at(pointer.clone()));
            }
            continue;
        }
        findings.push(Diagnostic::new(Code::ScenarioSchema, schema_message(error)).at(pointer.clone()));
    }
    findings
}

fn schema_message(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    match error.kind() {
        Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
            format!("unknown key{} {}", if unexpected.len() == 1 { "" } else { "s" }, quoted(unexpected))
        }
        Kind::OneOfNotValid { .. } | Kind::OneOfMultipleValid { .. } => {
            "give exactly one of the allowed forms (see schemas/test.schema.json)".to_owned()
        }
        _ => error.to_string(),
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

struct Checker<'c, 'r> {
    runbook: &'r Runbook,
    plan: &'c Plan<'r>,
    diagnostics: &'c mut Vec<Diagnostic>,
}

impl<'r> Checker<'_, 'r> {
    fn error(&mut self, code: Code, pointer: &str, message: String) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic::new(code, message).at(pointer));
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn scenarios(&mut self, value: &Value) -> Vec<Scenario> {
        let empty = Map::new();
        let defaults = value.get("defaults").and_then(Value::as_object).unwrap_or(&empty);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut scenarios = Vec::new();
        for (index, item) in value["scenarios"].as_array().into_iter().flatten().enumerate() {
            let pointer = scenario_pointer(index);
            let Some(object) = item.as_object() else { continue };
            let name = object["name"].as_str().unwrap_or_default();
            if let Some(first) = seen.insert(name, index) {
                self.error(
                    Code::ScenarioDuplicateName,
                    &pointer_push(&pointer, "name"),
                    format!("scenario `{name}` is already the name of scenario {}", first + 1),
                );
            }
            scenarios.push(self.scenario(index, &pointer, object, defaults));
        }
        scenarios
    }

    fn scenario(
        &mut self,
        index: usize,
        pointer: &str,
        own: &Map<String, Value>,
        defaults: &Map<String, Value>,
    ) -> Scenario {
        let name = own["name"].as_str().unwrap_or_default().to_owned();
        // What a key says: the scenario's own, else the default, each with its pointer.
        let setting = |key: &str| -> Option<(&Value, String)> {
            own.get(key)
                .map(|value| (value, pointer_push(pointer, key)))
                .or_else(|| defaults.get(key).map(|value| (value, pointer_push("/defaults", key))))
        };
        // Parameters: the defaults' with the scenario's on top.
        let mut parameters: Vec<(String, Supplied, String)> = Vec::new();
        for (source, base) in [(defaults, "/defaults"), (own, pointer)] {
            for (key, value) in source.get("parameters").and_then(Value::as_object).into_iter().flatten() {
                parameters.retain(|(name, ..)| name != key);
                let supplied = match value {
                    Value::String(text) => Supplied::Text(text.clone()),
                    other => Supplied::Json(other.clone()),
                };
                parameters.push((key.clone(), supplied, pointer_push(&pointer_push(base, "parameters"), key)));
            }
        }
        self.check_parameters(pointer, &parameters);
        let mut steps: HashMap<String, Vec<StepMock>> = HashMap::new();
        for (source, base) in [(defaults, "/defaults"), (own, pointer)] {
            for (step, mocks) in source.get("steps").and_then(Value::as_object).into_iter().flatten() {
                let at = pointer_push(&pointer_push(base, "steps"), step);
                steps.insert(step.clone(), self.step_mocks(step, mocks, &at));
            }
        }
        let mut aws = Vec::new();
        for (source, base) in [(own, pointer), (defaults, "/defaults")] {
            for (i, mock) in source.get("aws").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let at = pointer_push(&pointer_push(base, "aws"), i);
                if let Some(mock) = self.aws_mock(mock, &at) {
                    aws.push(mock);
                }
            }
        }
        let mut answers = HashMap::new();
        for (source, base) in [(defaults, "/defaults"), (own, pointer)] {
            for (step, answer) in source.get("answers").and_then(Value::as_object).into_iter().flatten() {
                let at = pointer_push(&pointer_push(base, "answers"), step);
                if self.mocked_step(step, &at).is_some() {
                    self.check_waits(step, &at);
                }
                let answer = match answer.as_str() {
                    Some("reject") => Answer::Reject,
                    _ => Answer::Approve,
                };
                answers.insert(step.clone(), answer);
            }
        }
        let now = match setting("now") {
            Some((value, at)) => match value.as_str().unwrap_or_default().parse::<jiff::Timestamp>() {
                Ok(now) => now,
                Err(error) => {
                    self.error(Code::ScenarioValue, &at, format!("`now` is not an RFC 3339 time: {error}"));
                    DEFAULT_NOW.parse().expect("a valid default")
                }
            },
            None => DEFAULT_NOW.parse().expect("a valid default"),
        };
        let time_limit = match setting("time_limit") {
            Some((value, at)) => match actions::sleep::parse_duration(value.as_str().unwrap_or_default()) {
                Ok(limit) => limit,
                Err(error) => {
                    self.error(Code::ScenarioValue, &at, error.replace("`Duration`", "`time_limit`"));
                    DEFAULT_TIME_LIMIT
                }
            },
            None => DEFAULT_TIME_LIMIT,
        };
        let text = |key: &str, default: &str| {
            setting(key).and_then(|(value, _)| value.as_str().map(str::to_owned)).unwrap_or_else(|| default.to_owned())
        };
        let expect = self.expect(&own["expect"], &pointer_push(pointer, "expect"));
        Scenario {
            name,
            line: index,
            parameters: parameters.into_iter().map(|(name, supplied, _)| (name, supplied)).collect(),
            steps,
            aws,
            answers,
            endpoint: setting("endpoint").and_then(|(value, _)| value.as_str().map(str::to_owned)),
            now,
            region: text("region", "us-east-1"),
            account: text("account", "123456789012"),
            time_limit,
            expect,
        }
    }

    /// Parameter values typed and checked as `-p` values are, every problem pointed at the
    /// value in the scenario file (required parameters are asked of each scenario).
    fn check_parameters(&mut self, scenario: &str, parameters: &[(String, Supplied, String)]) {
        let supplied: Vec<(String, Supplied)> =
            parameters.iter().map(|(name, value, _)| (name.clone(), value.clone())).collect();
        let bound = crate::validate::params::bind(self.runbook, &supplied);
        for mut diagnostic in bound.diagnostics {
            let named = parameters.iter().find(|(name, ..)| {
                diagnostic.message.contains(&format!("`{name}`"))
                    || self.runbook.parameter(name).is_some_and(|p| diagnostic.pointer.as_deref() == Some(&p.pointer))
            });
            diagnostic.pointer = Some(match named {
                Some((.., at)) => at.clone(),
                None => scenario.to_owned(),
            });
            diagnostic.location = None;
            self.diagnostics.push(diagnostic);
        }
    }

    /// The step a mock or an answer is for: a plain name (`iterations:` picks loop iterations).
    fn mocked_step(&mut self, name: &str, at: &str) -> Option<&'r crate::document::model::Step> {
        if let Some((bare, _)) = name.split_once('#') {
            self.error(
                Code::ScenarioValue,
                at,
                format!(
                    "`{name}`: mocks and answers name the step alone (`{bare}`); pick iterations with `iterations:`"
                ),
            );
            return None;
        }
        self.known_step(name, at)
    }

    /// The step with this name, or a diagnostic naming the nearest one.
    fn known_step(&mut self, name: &str, at: &str) -> Option<&'r crate::document::model::Step> {
        let bare = name.split_once('#').map_or(name, |(bare, _)| bare);
        if let Some(id) = self.plan.find(bare) {
            return Some(self.plan.step(id));
        }
        // `undo:NAME`: the step that reverses NAME on rollback (its `x-undo`).
        if let Some(undo) = bare
            .strip_prefix(crate::document::model::UNDO_PREFIX)
            .and_then(|undone| self.plan.find(undone))
            .and_then(|id| self.plan.step(id).undo.as_deref())
        {
            return Some(undo);
        }
        let names: Vec<&str> = self.plan.steps().map(|id| self.plan.step(id).name.as_str()).collect();
        let suggestion = nearest(bare, names.into_iter()).map(str::to_owned);
        let diagnostic = self.error(Code::ScenarioUnknownStep, at, format!("the runbook has no step named `{bare}`"));
        if let Some(near) = suggestion {
            *diagnostic = diagnostic.clone().with_help(format!("did you mean `{near}`?"));
        }
        None
    }

    fn check_waits(&mut self, name: &str, at: &str) {
        let Some(id) = self.plan.find(name) else { return };
        let action = self.plan.step(id).action.clone();
        if !actions::has(&action, |action| action.asks_person.is_some()) {
            self.error(
                Code::ScenarioMock,
                at,
                format!("`{name}` is an {action} step: only aws:approve and aws:pause steps take answers"),
            );
        }
    }

    fn step_mocks(&mut self, step: &str, mocks: &Value, at: &str) -> Vec<StepMock> {
        let list: Vec<(&Value, String)> = match mocks {
            Value::Array(items) => items.iter().enumerate().map(|(i, item)| (item, pointer_push(at, i))).collect(),
            single => vec![(single, at.to_owned())],
        };
        let Some(found) = self.mocked_step(step, at) else { return Vec::new() };
        let action = found.action.clone();
        let outputs = declared(found);
        let builtins = builtins_of(found);
        let in_loop = self.plan.find(step).is_some_and(|id| self.plan.node(id).parent.is_some());
        let kind = actions::kind_of(&action);
        if kind == Kind::Loop {
            self.error(
                Code::ScenarioMock,
                at,
                format!("`{step}` is an aws:loop, which the engine walks itself: mock the steps of its body"),
            );
            return Vec::new();
        }
        // The engine computes a branch's choice and a variable's value from what they read.
        let computed = matches!(kind, Kind::Branch | Kind::Variable);
        let mut built = Vec::new();
        for (mock, at) in list {
            let range = |checker: &mut Self, key: &str| {
                let value = mock.get(key)?;
                match Range::parse(value) {
                    Ok(range) => Some(range),
                    Err(message) => {
                        checker.error(Code::ScenarioValue, &pointer_push(&at, key), message);
                        None
                    }
                }
            };
            let attempts = range(self, "attempts");
            let iterations = range(self, "iterations");
            if iterations.is_some() && !in_loop {
                self.error(
                    Code::ScenarioMock,
                    &pointer_push(&at, "iterations"),
                    format!("`{step}` is not in a loop body: it has no iterations"),
                );
            }
            if computed && ["outputs", "response", "payload"].iter().any(|key| mock.get(*key).is_some()) {
                self.error(
                    Code::ScenarioMock,
                    &at,
                    format!(
                        "`{step}` is an {action} step, whose result the engine computes from what it reads: \
                         mock those steps, or mock a failure here"
                    ),
                );
            }
            let does = if let Some(values) = mock.get("outputs").and_then(Value::as_object) {
                for (name, value) in values {
                    let at = pointer_push(&pointer_push(&at, "outputs"), name);
                    match outputs.iter().find(|(declared, _)| declared == name) {
                        Some((_, Some(shape))) if !shape.admits(value) => {
                            self.error(
                                Code::ScenarioOutputType,
                                &at,
                                format!(
                                    "output `{step}.{name}` is {}, so its value must be {}",
                                    shape.a_name(),
                                    shape.description()
                                ),
                            );
                        }
                        Some(_) => {}
                        None if builtins.contains(&name.as_str()) => {}
                        None => self.unknown_output(step, name, &outputs, builtins, &at),
                    }
                }
                Does::Outputs(values.clone())
            } else if let Some(response) = mock.get("response") {
                Does::Response(response.clone())
            } else if let Some(payload) = mock.get("payload") {
                if !actions::has(&action, |action| action.runs_script) {
                    self.error(
                        Code::ScenarioMock,
                        &pointer_push(&at, "payload"),
                        format!("`{step}` is an {action} step: only script steps (aws:executeScript) return a payload"),
                    );
                }
                Does::Response(serde_json::json!({ "Payload": payload }))
            } else if let Some(error) = mock.get("error") {
                Does::Error(error_text(error))
            } else if mock.get("timeout").is_some() {
                Does::Timeout
            } else if mock.get("cancel").is_some() {
                Does::Cancel
            } else {
                Does::Real
            };
            built.push(StepMock { attempts, iterations, does });
        }
        built
    }

    fn unknown_output(&mut self, step: &str, name: &str, outputs: &Declared, builtins: &[&str], at: &str) {
        let candidates = outputs.iter().map(|(name, _)| name.as_str()).chain(builtins.iter().copied());
        let suggestion = nearest(name, candidates).map(str::to_owned);
        let mut known: Vec<&str> =
            outputs.iter().map(|(name, _)| name.as_str()).chain(builtins.iter().copied()).collect();
        known.sort_unstable();
        let diagnostic = self.error(Code::ScenarioUnknownOutput, at, format!("step `{step}` has no output `{name}`"));
        let help = match (suggestion, known.is_empty()) {
            (Some(near), _) => format!("did you mean `{near}`?"),
            (None, true) => "it declares no outputs".to_owned(),
            (None, false) => format!("its outputs: {}", known.join(", ")),
        };
        *diagnostic = diagnostic.clone().with_help(help);
    }

    /// `service.Operation` named by a mock or an expectation, canonical; `None` (reported)
    /// when the AWS models know no such call.
    fn call_name(&mut self, text: &str, at: &str) -> Option<String> {
        let (service, api) = text.split_once('.')?;
        match crate::aws::resolve(service, api) {
            Ok((_, operation)) => {
                let service = crate::aws::model::canonical_service(service).unwrap_or(service);
                Some(format!("{service}.{operation}"))
            }
            Err(error) => {
                self.error(Code::ScenarioMock, at, error.to_string());
                None
            }
        }
    }

    fn aws_mock(&mut self, mock: &Value, at: &str) -> Option<AwsMock> {
        let call_at = pointer_push(at, "call");
        let call = self.call_name(mock["call"].as_str().unwrap_or_default(), &call_at)?;
        let calls = match mock.get("calls").map(Range::parse) {
            Some(Err(message)) => {
                self.error(Code::ScenarioValue, &pointer_push(at, "calls"), message);
                None
            }
            Some(Ok(range)) => Some(range),
            None => None,
        };
        let answer = match (mock.get("response"), mock.get("error")) {
            (Some(response), _) => {
                let (service, api) = call.split_once('.').expect("a canonical call has a dot");
                let (model, operation) = crate::aws::resolve(service, api).ok()?;
                let operation = &model.operations[&operation];
                let (checked, problems) =
                    crate::aws::check::check_response(&model, operation, response.as_object().unwrap_or(&Map::new()));
                for problem in problems {
                    let at = problem_pointer(&pointer_push(at, "response"), &problem.path);
                    self.error(Code::ScenarioMock, &at, format!("{call} response: {problem}"));
                }
                // Brought to the model's types once, here: the client trusts a mock's answer.
                Ok(Value::Object(checked))
            }
            (None, Some(error)) => Err(service_error(error)),
            (None, None) => return None,
        };
        let request = mock.get("request").map(|request| self.request(&call, request, &pointer_push(at, "request")));
        Some(AwsMock { call, request, calls, answer })
    }

    /// A request subset, checked against the operation's input and brought to its types (as
    /// the request it is compared with is); no member is required.
    fn request(&mut self, call: &str, request: &Value, at: &str) -> Value {
        let Some((service, api)) = call.split_once('.') else { return request.clone() };
        let Ok((model, operation)) = crate::aws::resolve(service, api) else { return request.clone() };
        let operation = &model.operations[&operation];
        let Some(object) = request.as_object() else { return request.clone() };
        let required: Vec<&str> = operation
            .input
            .as_ref()
            .map(|input| model.shape(input).required.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let (checked, problems) = crate::aws::check::check(&model, operation, object, &required);
        for problem in problems {
            self.error(Code::ScenarioMock, &problem_pointer(at, &problem.path), format!("{call} request: {problem}"));
        }
        Value::Object(checked)
    }

    fn call_expectations(&mut self, list: Option<&Value>, at: &str) -> Option<Vec<CallExpectation>> {
        let items = list?.as_array()?;
        let mut calls = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = pointer_push(at, i);
            let (text, request, text_at) = match item {
                Value::String(text) => (text.as_str(), None, at.clone()),
                other => (other["call"].as_str().unwrap_or_default(), other.get("request"), pointer_push(&at, "call")),
            };
            if let Some(call) = self.call_name(text, &text_at) {
                let request = request.map(|request| self.request(&call, request, &pointer_push(&at, "request")));
                calls.push(CallExpectation { call, request });
            }
        }
        Some(calls)
    }

    fn expect(&mut self, value: &Value, at: &str) -> Expect {
        let status = |value: Option<&Value>| value.and_then(Value::as_str).and_then(Status::parse);
        let mut expect =
            Expect { status: status(value.get("status")), outputs: outputs_expectation(value), ..Expect::default() };
        if let Some(path) = value.get("path").and_then(Value::as_array) {
            let path: Vec<String> = path.iter().filter_map(Value::as_str).map(str::to_owned).collect();
            for (i, entry) in path.iter().enumerate() {
                self.known_step(entry, &pointer_push(&pointer_push(at, "path"), i));
            }
            expect.path = Some(path);
        }
        for (name, expected) in value.get("steps").and_then(Value::as_object).into_iter().flatten() {
            let step_at = pointer_push(&pointer_push(at, "steps"), name);
            let Some(step) = self.known_step(name, &step_at) else { continue };
            let declared = declared(step);
            let builtins = builtins_of(step);
            let step_expectation = match expected {
                Value::String(_) => StepExpectation { status: status(Some(expected)), ..StepExpectation::default() },
                object => {
                    let outputs = outputs_expectation(object);
                    for key in ["outputs", "exact_outputs"] {
                        for output in object.get(key).and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k) {
                            if !declared.iter().any(|(name, _)| name == output) && !builtins.contains(&output.as_str())
                            {
                                let output_at = pointer_push(&pointer_push(&step_at, key), output);
                                self.unknown_output(name, output, &declared, builtins, &output_at);
                            }
                        }
                    }
                    StepExpectation {
                        status: status(object.get("status")),
                        outputs,
                        error: object.get("error").and_then(Value::as_str).map(str::to_owned),
                        attempts: object.get("attempts").and_then(Value::as_u64).map(|n| n as u32),
                    }
                }
            };
            expect.steps.push((name.clone(), step_expectation));
        }
        let (calls, not_called) = (value.get("calls"), value.get("not_called"));
        expect.calls = self.call_expectations(calls, &pointer_push(at, "calls"));
        expect.not_called = self.call_expectations(not_called, &pointer_push(at, "not_called")).unwrap_or_default();
        let document_outputs: Vec<&str> = self.runbook.outputs.iter().map(|output| output.text.as_str()).collect();
        for key in ["outputs", "exact_outputs"] {
            for name in value.get(key).and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k) {
                if !document_outputs.contains(&name.as_str()) {
                    let suggestion = nearest(name, document_outputs.iter().copied()).map(str::to_owned);
                    let diagnostic = self.error(
                        Code::ScenarioUnknownOutput,
                        &pointer_push(&pointer_push(at, key), name),
                        format!("the runbook has no document output `{name}`"),
                    );
                    let help = match suggestion {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("its outputs: {}", document_outputs.join(", ")),
                    };
                    *diagnostic = diagnostic.clone().with_help(help);
                }
            }
        }
        expect
    }
}

/// A step's declared outputs with their types.
type Declared = Vec<(String, Option<document::model::Shape>)>;

fn declared(step: &crate::document::model::Step) -> Declared {
    step.outputs.iter().map(|output| (output.name.clone(), output.kind)).collect()
}

/// The outputs a step of its action has without declaring them.
fn builtins_of(step: &crate::document::model::Step) -> &'static [&'static str] {
    actions::lookup(&step.action).map_or(&[], |action| action.builtin_outputs)
}

fn outputs_expectation(value: &Value) -> Option<OutputsExpectation> {
    match (value.get("outputs"), value.get("exact_outputs")) {
        (Some(Value::Object(values)), _) => Some(OutputsExpectation { values: values.clone(), exact: false }),
        (_, Some(Value::Object(values))) => Some(OutputsExpectation { values: values.clone(), exact: true }),
        _ => None,
    }
}

/// A problem path inside a response (`Grants[0].Permission`) as a JSON pointer under `base`.
fn problem_pointer(base: &str, path: &str) -> String {
    let mut pointer = base.to_owned();
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(name, rest)| (name, rest));
        pointer = pointer_push(&pointer, name);
        for index in indexes.split('[').map(|index| index.trim_end_matches(']')).filter(|i| !i.is_empty()) {
            pointer = pointer_push(&pointer, index);
        }
    }
    pointer
}

/// A mocked failure's text: as given, or `Code: message` for an AWS-style error.
fn error_text(error: &Value) -> String {
    match error {
        Value::String(text) => text.clone(),
        object => {
            let code = object.get("code").and_then(Value::as_str);
            let message = object.get("message").and_then(Value::as_str).unwrap_or("mocked failure");
            match code {
                Some(code) => format!("{code}: {message}"),
                None => message.to_owned(),
            }
        }
    }
}

fn service_error(error: &Value) -> ServiceError {
    let (code, message) = match error {
        Value::String(text) => ("MockedError".to_owned(), text.clone()),
        object => (
            object.get("code").and_then(Value::as_str).unwrap_or("MockedError").to_owned(),
            object.get("message").and_then(Value::as_str).unwrap_or("mocked failure").to_owned(),
        ),
    };
    let status = error.get("status").and_then(Value::as_u64).map_or(400, |status| status as u16);
    ServiceError { status, code, message, request_id: None }
}
