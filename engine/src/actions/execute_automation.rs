//! `aws:executeAutomation` (reference 6.11) for a child runbook on disk: `DocumentName` is
//! looked up beside the parent runbook (as is, or with `.yaml`, `.yml`, `.json`) and in the
//! folders of `RUNBOOK_PATH`. The child runs in this process with its own execution in the
//! same journal, linked to the parent's; its idempotency key is derived from the parent's
//! step, so a resumed parent resumes the same child instead of starting another.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::{Context, Failure, Output, Result};
use crate::exec::{self, Config, PrepareError, Status};
use crate::template::render::to_text;
use crate::validate::Supplied;

/// How deep children may nest.
pub const MAX_DEPTH: u32 = 8;

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    if context.config.depth >= MAX_DEPTH {
        return Err(Failure::error(format!("child runbooks nest deeper than {MAX_DEPTH} levels")));
    }
    let name = inputs.get("DocumentName").and_then(Value::as_str).unwrap_or_default();
    let path = find_runbook(context.runbook_path, name)?;
    let supplied: Vec<(String, Supplied)> = match inputs.get("RuntimeParameters") {
        Some(Value::Object(values)) => {
            values.iter().map(|(name, value)| (name.clone(), Supplied::Json(value.clone()))).collect()
        }
        None | Some(Value::Null) => Vec::new(),
        Some(other) => return Err(Failure::error(format!("`RuntimeParameters` must be a mapping, found {other}"))),
    };
    let prepared = match exec::prepare(&path, supplied, true) {
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
        force: context.config.force,
        rerun: Vec::new(),
        depth: context.config.depth + 1,
        parent: Some((context.execution_id.to_owned(), context.step.name.clone())),
        ..context.config.clone()
    };
    let finished = exec::run(&request, &config, context.journal, context.observer, context.cancel.clone())
        .await
        .map_err(|error| Failure::error(format!("child runbook {}: {error}", path.display())))?;
    let id = finished.execution_id.clone();
    match finished.status {
        Status::Success => {}
        Status::Waiting => {
            return Err(Failure::Waiting {
                message: Some(format!("child execution {id} waits for a decision")),
                approvers: Value::Null,
            });
        }
        Status::Cancelled => return Err(Failure::Cancelled),
        status => return Err(Failure::error(format!("child execution {id} ended {status}"))),
    }
    // `Output` is a StringList: the child's document outputs, each value as text.
    let output: Vec<Value> = match &finished.outputs {
        Value::Object(outputs) => outputs
            .values()
            .flat_map(|values| match values {
                Value::Array(items) => items.iter().map(|item| Value::String(to_text(item))).collect(),
                other => vec![Value::String(to_text(other))],
            })
            .collect(),
        _ => Vec::new(),
    };
    let root = json!({ "Output": output, "ExecutionId": id, "Status": finished.status.as_str() });
    let builtins = root.as_object().cloned().unwrap_or_default();
    Ok(Output { root, builtins, ..Output::empty() })
}

fn find_runbook(parent: &Path, name: &str) -> std::result::Result<PathBuf, Failure> {
    if name.is_empty() {
        return Err(Failure::error("`DocumentName` is required"));
    }
    let mut dirs = vec![parent.parent().unwrap_or(Path::new(".")).to_owned()];
    if let Some(path) = std::env::var_os("RUNBOOK_PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    // ARNs name the document last.
    let name = name.rsplit('/').next().unwrap_or(name);
    for dir in &dirs {
        for candidate in [name.to_owned(), format!("{name}.yaml"), format!("{name}.yml"), format!("{name}.json")] {
            let path = dir.join(candidate);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    let looked: Vec<String> = dirs.iter().map(|dir| dir.display().to_string()).collect();
    Err(Failure::error(format!(
        "child runbook `{name}` not found in {} (set RUNBOOK_PATH to add folders)",
        looked.join(", ")
    )))
}
