//! The [`Children`] seam as the runner implements it: `DocumentName` is looked up beside the
//! parent runbook (as is, or with `.yaml`, `.yml`, `.json`) and in the folders of
//! `RUNBOOK_PATH` (a local file has no versions: `DocumentVersion` applies to SSM only), then
//! fetched from SSM with GetDocument as `runbook run ssm:NAME` does. The child runs in this
//! process as its own execution in the same journal, linked to the parent's, with the
//! parent's secrets known to its redactor. Its idempotency
//! key derives from the parent's step, so a resumed parent resumes the same child instead of
//! starting another.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Config, Engine, PrepareError};
use crate::actions::{BoxFuture, ChildRun, Children, Context, Failure};
use crate::ssm::documents::{self, Reference};
use crate::timeline::{Event, Observer};
use crate::validate::Supplied;

/// How deep children may nest.
pub const MAX_DEPTH: u32 = 8;

pub struct ChildRuns<'a> {
    pub engine: &'a Engine<'a>,
    pub config: &'a Config,
    /// The named locks the parent runs under (name and token): the child runs under them too.
    pub inherited_locks: Vec<(String, u64)>,
}

impl Children for ChildRuns<'_> {
    fn run<'c>(
        &'c self,
        context: &'c Context<'c>,
        document: &'c str,
        parameters: Map<String, Value>,
        over: Option<Map<String, Value>>,
    ) -> BoxFuture<'c, Result<ChildRun, Failure>> {
        Box::pin(self.run_child(context, document, parameters, over))
    }
}

impl ChildRuns<'_> {
    /// The child's file: found locally, else fetched from SSM into the document cache.
    async fn find(&self, context: &Context<'_>, document: &str) -> Result<PathBuf, Failure> {
        let not_found = match find_runbook(context.settings.runbook_path, document) {
            Ok(path) => return Ok(path),
            Err(not_found) => not_found,
        };
        let reference = Reference::parse(&format!("{}{document}", documents::PREFIX));
        let (Some(cache), Some(Ok(reference))) = (&self.config.documents, reference) else {
            return Err(Failure::error(not_found));
        };
        match documents::fetch(context.settings.aws, cache, &reference).await {
            Ok(fetched) => Ok(fetched.path),
            Err(error) => Err(Failure::error(format!("{not_found}; {error}"))),
        }
    }

    async fn run_child(
        &self,
        context: &Context<'_>,
        document: &str,
        parameters: Map<String, Value>,
        over: Option<Map<String, Value>>,
    ) -> Result<ChildRun, Failure> {
        if self.config.depth >= MAX_DEPTH {
            return Err(Failure::error(format!("child runbooks nest deeper than {MAX_DEPTH} levels")));
        }
        let path = self.find(context, document).await?;
        let mut supplied: Vec<(String, Supplied)> =
            parameters.into_iter().map(|(name, value)| (name, Supplied::Json(value))).collect();
        let fan_out = match &over {
            Some(over) => Some(fan_out_of(context, &path, &supplied, over).await?),
            None => None,
        };
        // Each target's child gets its values; the runbook is checked with the first target's.
        if let Some(first) = fan_out.as_ref().and_then(|fan_out| fan_out.targets.first()) {
            for (name, value) in &first.parameters {
                supplied.retain(|(given, _)| given != name);
                supplied.push((name.clone(), Supplied::Json(value.clone())));
            }
        }
        let prepared = match super::prepare(&path, supplied, true) {
            Ok(prepared) => prepared,
            Err(PrepareError::Io(error)) => return Err(Failure::error(format!("{error:#}: {}", error.source))),
            Err(PrepareError::Invalid(validated)) => {
                let problems: Vec<String> =
                    validated.diagnostics.iter().filter(|d| d.is_error()).take(3).map(|d| d.message.clone()).collect();
                return Err(Failure::error(format!(
                    "child runbook {} is invalid: {}",
                    path.display(),
                    problems.join("; ")
                )));
            }
        };
        let plan = crate::plan::plan(&prepared.runbook);
        let request = prepared.request(&plan);
        let config = Config {
            resume: None,
            idempotency_key: Some(format!("{}/{}/{}", context.execution_id, context.step.name, context.iteration)),
            rerun: Vec::new(),
            depth: self.config.depth + 1,
            parent: Some((context.execution_id.to_owned(), context.step.name.clone())),
            // Whatever the parent keeps secret stays secret in the child's record too.
            secrets: context.timeline.redactor(),
            // The controls name the parent's steps.
            controls: super::Controls::default(),
            // The parent holds the run's locks, and the child runs under them; a saved plan is
            // the parent's.
            locks: Vec::new(),
            inherited_locks: self.inherited_locks.clone(),
            saved_plan: None,
            ..self.config.clone()
        };
        let linking = Linking { inner: self.engine.observer, context, linked: Cell::new(false) };
        let engine = Engine { observer: &linking, ..*self.engine };
        let finished = match &fan_out {
            Some(fan_out) => {
                Box::pin(super::fan_out::run(&request, &config, &engine, context.cancel.clone(), fan_out)).await
            }
            None => Box::pin(super::run(&request, &config, &engine, context.cancel.clone())).await,
        };
        let finished =
            finished.map_err(|error| Failure::error(format!("child runbook {}: {error}", path.display())))?;
        Ok(ChildRun { execution_id: finished.execution_id, status: finished.status, outputs: finished.outputs })
    }
}

/// The run over targets a step's target inputs ask for: the targets resolved (tags through
/// AWS) and typed by the child runbook, and the rate.
async fn fan_out_of(
    context: &Context<'_>,
    path: &Path,
    supplied: &[(String, Supplied)],
    over: &Map<String, Value>,
) -> Result<super::fan_out::FanOut, Failure> {
    use super::fan_out::{FanOut, Limit, RateControl};
    let runbook = match super::prepare(path, supplied.to_vec(), false) {
        Ok(prepared) => prepared.runbook,
        Err(PrepareError::Io(error)) => return Err(Failure::error(format!("{error:#}: {}", error.source))),
        Err(PrepareError::Invalid(_)) => {
            return Err(Failure::error(format!("child runbook {} is invalid", path.display())));
        }
    };
    let limit = |input: &str, default: Limit| match over.get(input) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => Limit::parse(&crate::template::render::to_text(value))
            .map_err(|problem| Failure::error(format!("`{input}`: {problem}"))),
    };
    let control = RateControl {
        max_concurrency: limit("MaxConcurrency", Limit::Count(10))?,
        max_errors: limit("MaxErrors", Limit::Count(0))?,
    };
    let (targets, described) = match over.get("TargetMaps") {
        Some(Value::Array(maps)) => {
            (super::targets::from_maps(&runbook, maps).map_err(Failure::error)?, "TargetMaps".to_owned())
        }
        Some(other) => return Err(Failure::error(format!("`TargetMaps` must be a list of maps, found {other}"))),
        None => {
            let parameter = over.get("TargetParameterName").and_then(Value::as_str).unwrap_or_default();
            let keys = match over.get("Targets") {
                Some(Value::Array(keys)) => keys
                    .iter()
                    .map(super::targets::TargetKey::from_value)
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(Failure::error)?,
                _ => return Err(Failure::error("`Targets` must be a list of {Key, Values}")),
            };
            let (values, described) =
                super::targets::resolve(context.settings.aws, &keys).await.map_err(Failure::error)?;
            let targets = super::targets::from_values(&runbook, parameter, &values).map_err(Failure::error)?;
            (targets, format!("{parameter} over {described}"))
        }
    };
    if targets.is_empty() {
        return Err(Failure::error(format!("no targets: {described} resolved to none")));
    }
    Ok(FanOut { targets, control, described })
}

/// Passes the child's events on, and links the child to the parent's step in the parent's
/// timeline as soon as the child starts.
struct Linking<'a> {
    inner: &'a dyn Observer,
    context: &'a Context<'a>,
    linked: Cell<bool>,
}

impl Observer for Linking<'_> {
    fn event(&self, event: &Event) {
        self.inner.event(event);
        if let Event::ExecutionStarted { execution_id, parent_id: Some(parent), .. } = event
            && parent == self.context.execution_id
            && !self.linked.replace(true)
        {
            let step = &self.context.step.name;
            let _ = self.context.timeline.child_linked(step, self.context.iteration, execution_id);
        }
    }
}

fn find_runbook(parent: &Path, name: &str) -> Result<PathBuf, String> {
    let mut dirs = vec![parent.parent().unwrap_or(Path::new(".")).to_owned()];
    if let Some(path) = std::env::var_os("RUNBOOK_PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    // ARNs name the document last; a version follows it.
    let name = name.rsplit('/').next().unwrap_or(name);
    let name = name.split(':').next().unwrap_or(name);
    for dir in &dirs {
        for candidate in [name.to_owned(), format!("{name}.yaml"), format!("{name}.yml"), format!("{name}.json")] {
            let path = dir.join(candidate);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    let looked: Vec<String> = dirs.iter().map(|dir| dir.display().to_string()).collect();
    Err(format!("child runbook `{name}` not found in {} (set RUNBOOK_PATH to add folders)", looked.join(", ")))
}
