//! Stage 2, validation: the JSON Schema for shape, then the semantic rules, then (when the
//! caller supplied any) parameter values. Every problem is collected, none stops the others.

pub(crate) mod java_regex;
pub mod params;
pub mod portable;
pub(crate) mod rules;
pub mod schema;

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;
use crate::document::model::Runbook;
use crate::document::{Loaded, Source};
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

    /// Where a JSON pointer (a step's, say) is in the source.
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
    validate_as(loaded, config, false)
}

/// [`validate`] for a run that starts now: also refuses what cannot run here (a child run
/// over targets), which a document check only describes.
pub fn validate_to_start(loaded: Loaded, config: &Config) -> Validated {
    validate_as(loaded, config, true)
}

fn validate_as(mut loaded: Loaded, config: &Config, starting: bool) -> Validated {
    let mut diagnostics = std::mem::take(&mut loaded.diagnostics);
    let Some(value) = loaded.value.take() else {
        return Validated { document: loaded, runbook: None, parameters: Map::new(), diagnostics };
    };
    let schema_findings = schema::check(&value);
    let mut rule_findings = rules::check_document(&value);
    let runbook = Runbook::from_value(value);
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
