//! Stage 2, validation: the JSON Schema for shape, then the semantic rules, then (when the
//! caller supplied any) parameter values. Every problem is collected, none stops the others.

pub(crate) mod java_regex;
pub mod params;
pub mod portable;
pub(crate) mod rules;
pub mod schema;

use std::collections::HashSet;

use serde_json::{Map, Value};

use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::document::model::{self, Runbook, Step};
use crate::document::{self, Loaded, Source, StepSink};
pub use params::Supplied;

/// What to check besides the document itself.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Parameter values to check; `None` checks the document only (required parameters are
    /// then not asked for).
    pub parameters: Option<Vec<(String, Supplied)>>,
}

/// The outcome of validating one loaded document.
#[derive(Debug)]
pub struct Validated {
    /// The document the diagnostics point into (its value moved into `runbook`).
    document: Loaded,
    /// The typed model, when the document parsed.
    pub runbook: Option<Runbook>,
    /// Typed parameter values, when values were supplied.
    pub parameters: Map<String, Value>,
    /// Every finding, located and in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validated {
    /// The text the diagnostics point into.
    pub fn source(&self) -> &Source {
        &self.document.source
    }

    /// Lets the document's text go once nothing more will be reported from it (a dry-run of a
    /// valid runbook): a large runbook's text is as large again as what the dry-run adds.
    pub fn release_text(&mut self) {
        self.document.release_text();
    }

    /// Where a JSON pointer (a step's, say) is in the source. A YAML document over 64 KiB is
    /// parsed again for it: [`Validated::locate_each`] finds many with one parse.
    pub fn locate(&self, pointer: &str) -> Option<crate::diagnostic::Location> {
        self.document.locate(pointer, crate::diagnostic::Target::Key)
    }

    /// Where each of many pointers is, with one parse of the text at most.
    pub fn locate_each(&self, pointers: &[&str]) -> Vec<Option<crate::diagnostic::Location>> {
        let wanted: Vec<_> = pointers.iter().map(|pointer| (*pointer, crate::diagnostic::Target::Key)).collect();
        self.document.locate_each(&wanted)
    }

    /// Adds findings of a later stage, located in this document, keeping source order.
    pub fn add(&mut self, mut diagnostics: Vec<Diagnostic>) {
        if diagnostics.is_empty() {
            return;
        }
        self.document.locate_all(&mut diagnostics);
        self.diagnostics.extend(diagnostics);
        sort(&mut self.diagnostics);
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Validates a loaded document, taking it over: the value becomes the typed model.
pub fn validate(loaded: Loaded, config: &Config) -> Validated {
    validate_as(loaded, None, config, false)
}

/// [`validate`] for a run that starts now: also refuses what cannot run here (a child run
/// over targets), which a document check only describes.
pub fn validate_to_start(loaded: Loaded, config: &Config) -> Validated {
    validate_as(loaded, None, config, true)
}

/// A runbook loaded for validation (see [`load`]).
pub struct Loading {
    pub loaded: Loaded,
    taken: Option<Taken>,
}

impl Loading {
    pub fn validate(self, config: &Config) -> Validated {
        validate_as(self.loaded, self.taken, config, false)
    }

    pub fn validate_to_start(self, config: &Config) -> Validated {
        validate_as(self.loaded, self.taken, config, true)
    }
}

/// Loads runbook bytes to validate them. A document larger than AWS accepts has each step
/// checked (schema, document rules) and taken apart as soon as it is parsed, so it is never
/// one value in memory: that value weighs some 1.3 KB a step (a step and its inputs are a
/// B-tree node of 632 bytes each however few keys they hold), 130 MB for 100,000 steps. The
/// findings are the same either way.
pub fn load(name: String, bytes: Vec<u8>, format: Option<document::Format>) -> Loading {
    let step_by_step = bytes.len() > document::AWS_MAX_DOCUMENT_BYTES;
    load_as(name, bytes, format, step_by_step)
}

/// [`load`] of a file.
pub fn load_path(path: &Path) -> Result<Loading, document::Error> {
    Ok(load(path.display().to_string(), document::read(path)?, document::format_of(path)))
}

/// [`load`], step by step or not whatever the size.
pub fn load_as(name: String, bytes: Vec<u8>, format: Option<document::Format>, step_by_step: bool) -> Loading {
    if !step_by_step {
        return Loading { loaded: document::load(name, bytes, format), taken: None };
    }
    // Each step names its action: the steps are sized once, not grown by doubling, which left
    // the memory of each smaller copy behind (the allocator keeps freed memory a while). A
    // count too high costs little (memory never written is not taken), and it is bounded by
    // the smallest a step can be written in, and asked for without failing.
    let actions = memchr::memmem::find_iter(&bytes, b"action").count().min(bytes.len() / 24).min(1 << 20);
    let mut taken = Taken::default();
    let _ = taken.steps.try_reserve_exact(actions);
    let _ = taken.indexes.try_reserve_exact(actions);
    let loaded = document::load_with(name, bytes, format, Some(&mut taken));
    Loading { loaded, taken: Some(taken) }
}

/// The steps of a document checked and taken apart as it was parsed.
#[derive(Default)]
struct Taken {
    /// The index in `mainSteps` of each step taken, in order.
    indexes: Vec<usize>,
    steps: Vec<Step>,
    schema: Vec<Diagnostic>,
    rules: Vec<Diagnostic>,
}

impl StepSink for Taken {
    fn step(&mut self, index: usize, step: Map<String, Value>) {
        let pointer = format!("/mainSteps/{index}");
        let Value::Object(step) = schema::check_step(Value::Object(step), &pointer, &mut self.schema) else {
            return;
        };
        rules::check_step_document(&step, index, &mut self.rules);
        self.steps.push(model::step(step, pointer));
        self.indexes.push(index);
    }

    fn restart(&mut self) {
        self.indexes.clear();
        self.steps.clear();
        self.schema.clear();
        self.rules.clear();
    }
}

fn validate_as(mut loaded: Loaded, taken: Option<Taken>, config: &Config, starting: bool) -> Validated {
    // Without a step taken (`mainSteps` is an alias, say), the document is whole.
    let taken = taken.filter(|taken| !taken.indexes.is_empty());
    let mut diagnostics = std::mem::take(&mut loaded.diagnostics);
    let Some(mut value) = loaded.value.take() else {
        return Validated { document: loaded, runbook: None, parameters: Map::new(), diagnostics };
    };
    let mut schema_findings = match &taken {
        Some(taken) => schema::check_without_steps(&mut value, &taken.indexes),
        None => schema::check(&value),
    };
    let mut rule_findings = match loaded.literal_keys() {
        true => rules::check_change_template_keys(&value),
        false => rules::check_document(&value),
    };
    let steps = taken.map(|taken| {
        schema_findings.extend(taken.schema);
        rule_findings.extend(taken.rules);
        taken.steps
    });
    let runbook = Runbook::from_parts(value, steps);
    rule_findings.extend(rules::check(&runbook, starting));
    // The rules give the more specific message where both see the same problem, and they
    // own branch conditions entirely.
    let rule_pointers: HashSet<&str> = rule_findings.iter().filter_map(|d| d.pointer.as_deref()).collect();
    let schema_findings: Vec<Diagnostic> = schema_findings
        .into_iter()
        .filter(|d| {
            let pointer = d.pointer.as_deref().unwrap_or("");
            !rule_pointers.contains(pointer) && schema::Area::of(pointer) != schema::Area::BranchCondition
        })
        .collect();
    diagnostics.extend(schema_findings);
    diagnostics.extend(rule_findings);
    let mut parameters = Map::new();
    if let Some(supplied) = &config.parameters {
        let bound = params::bind(&runbook, supplied);
        diagnostics.extend(bound.diagnostics);
        parameters = bound.values;
    }
    loaded.locate_all(&mut diagnostics);
    sort(&mut diagnostics);
    Validated { document: loaded, runbook: Some(runbook), parameters, diagnostics }
}

fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by_key(|d| (d.location.map(|l| (l.line, l.column)), d.code));
    diagnostics.dedup();
}
