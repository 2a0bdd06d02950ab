//! Edge coverage: which edges of a runbook's plan (next, choice[i], default, on_failure,
//! continue, on_cancel, loop_body, loop_exit) its scenarios took. An edge is taken when a
//! step visit ended with the outcome whose successor it is, which is how the runner itself
//! chose its way ([`Plan::successor`]); a loop's body edge, when its body ran.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use crate::journal::StepRecord;
use crate::plan::{Label, Next, Plan, StepId};

/// An edge of a plan: from step, to step (indexes in the plan), label.
pub type Edge = (usize, usize, Label);

/// The edges taken by the run whose step records these are (in the order steps finished),
/// `path` the step visits that started (`NAME` or `NAME#ITERATION`): an edge counts when its
/// target started, so a run stopped after a step does not take the edge it would have.
pub fn taken(plan: &Plan<'_>, history: &[&StepRecord], path: &[String]) -> HashSet<Edge> {
    let started: HashSet<&str> =
        path.iter().map(|entry| entry.split_once('#').map_or(entry.as_str(), |(name, _)| name)).collect();
    let mut edges = HashSet::new();
    for record in history {
        let Some(id) = plan.find(&record.step) else { continue };
        let node = plan.node(id);
        if let Some(entry) = node.body_entry
            && history.iter().any(|other| plan.find(&other.step).is_some_and(|o| plan.node(o).parent == Some(id)))
        {
            edges.insert((id.index(), entry.index(), Label::LoopBody));
        }
        if let Some(outcome) = record.outcome.as_outcome()
            && let Next::Step { step, label } = plan.successor(id, outcome)
            && started.contains(plan.step(step).name.as_str())
        {
            edges.insert((id.index(), step.index(), label));
        }
    }
    edges
}

/// Every edge of a plan.
pub fn all(plan: &Plan<'_>) -> Vec<Edge> {
    let mut edges = Vec::new();
    for id in plan.steps() {
        for (to, edge) in plan.edges_from(id) {
            edges.push((id.index(), to.index(), edge.label));
        }
    }
    edges
}

/// How much of one runbook's plan its scenarios took.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub runbook: String,
    pub edges: usize,
    pub taken: usize,
    /// The edges never taken, as `from -[label]-> to`.
    pub untaken: Vec<String>,
}

impl Coverage {
    pub fn of(runbook: String, plan: &Plan<'_>, taken: &HashSet<Edge>) -> Coverage {
        let all = all(plan);
        let name = |index: usize| plan.step(StepId::new(index)).name.clone();
        let untaken: BTreeSet<(usize, usize, Label)> =
            all.iter().filter(|edge| !taken.contains(edge)).copied().collect();
        Coverage {
            runbook,
            edges: all.len(),
            taken: all.len() - untaken.len(),
            untaken: untaken
                .into_iter()
                .map(|(from, to, label)| format!("{} -[{label}]-> {}", name(from), name(to)))
                .collect(),
        }
    }

    /// Percent of edges taken; a runbook without edges is fully covered.
    pub fn percent(&self) -> f64 {
        if self.edges == 0 { 100.0 } else { 100.0 * self.taken as f64 / self.edges as f64 }
    }
}
