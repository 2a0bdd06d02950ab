//! Graph checks (reference 4.7 and 8.2): cycles (V11) with the path printed, unreachable
//! steps, step outputs referenced where the producer may not have
//! succeeded, and `onFailure: step:X` that still ends the run Failed.

use std::collections::HashSet;

use petgraph::algo::{dominators, tarjan_scc};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::{Label, Plan, StepId};
use crate::diagnostic::{Code, Diagnostic, pointer_push};
use crate::document::model::{OnFailure, Step};
use crate::template::{self, Reference};

pub fn check(plan: &Plan<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    cycles(plan, &mut out);
    let reachable = reachable(plan);
    for id in plan.steps() {
        let node = plan.node(id);
        // An unreachable loop is reported once, not once per body step.
        if !reachable[id.index()] && node.parent.is_none_or(|parent| reachable[parent.index()]) {
            let message = format!("step `{}` never runs: no path from the first step leads to it", node.step.name);
            out.push(
                Diagnostic::new(Code::UnreachableStep, message)
                    .at(node.step.field_pointer("name"))
                    .with_help("AWS accepts unreachable steps; remove it, or jump to it with nextStep or a branch"),
            );
        }
    }
    critical_failure_jumps(plan, &mut out);
    unset_outputs(plan, &reachable, &mut out);
    out
}

/// The pointer of the field that creates an edge: where to look to change it.
pub fn edge_pointer(step: &Step, label: Label) -> String {
    match label {
        Label::Choice(i) => pointer_push(&pointer_push(&step.input_pointer("Choices"), i), "NextStep"),
        Label::Default => step.input_pointer("Default"),
        Label::LoopBody => step.input_pointer("Steps"),
        Label::OnFailure | Label::Continue => step.field_pointer("onFailure"),
        Label::OnCancel => step.field_pointer("onCancel"),
        Label::Next | Label::Fallthrough | Label::LoopExit if step.next_step.is_some() => {
            step.field_pointer("nextStep")
        }
        Label::Next | Label::Fallthrough | Label::LoopExit => step.field_pointer("name"),
    }
}

/// V11: every strongly connected set of steps is a cycle; one path through it is printed.
fn cycles(plan: &Plan<'_>, out: &mut Vec<Diagnostic>) {
    let mut components = tarjan_scc(&plan.graph);
    components.iter_mut().for_each(|component| component.sort());
    components.sort();
    for component in components {
        let start = component[0];
        if component.len() == 1 && plan.graph.find_edge(start, start).is_none() {
            continue;
        }
        let path = cycle_path(plan, &component, start);
        let mut text = format!("`{}`", plan.step(start).name);
        for (_, label, to) in &path {
            text.push_str(&format!(" -[{label}]-> `{}`", plan.step(*to).name));
        }
        let (closing_from, closing_label, _) = path[path.len() - 1];
        out.push(
            Diagnostic::new(Code::Cycle, format!("steps can run in a circle forever: {text}")).at(edge_pointer(
                plan.step(closing_from),
                closing_label,
            )).with_help("AWS refuses runbooks whose steps form a cycle: repeat work with aws:loop, or end the circle with isEnd or another target"),
        );
    }
}

/// A shortest path from `start` back to itself inside `component`, as (from, label, to).
fn cycle_path(plan: &Plan<'_>, component: &[StepId], start: StepId) -> Vec<(StepId, Label, StepId)> {
    let inside: HashSet<StepId> = component.iter().copied().collect();
    let mut came_from: std::collections::HashMap<StepId, (StepId, Label)> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        for (to, edge) in plan.edges_from(current) {
            if to == start {
                let mut path = vec![(current, edge.label, start)];
                let mut at = current;
                while at != start {
                    let (previous, label) = came_from[&at];
                    path.push((previous, label, at));
                    at = previous;
                }
                path.reverse();
                return path;
            }
            if inside.contains(&to) && !came_from.contains_key(&to) {
                came_from.insert(to, (current, edge.label));
                queue.push_back(to);
            }
        }
    }
    unreachable!("a strongly connected component always has a cycle through each of its steps")
}

/// Which steps some path from the first step reaches, indexed by step.
fn reachable(plan: &Plan<'_>) -> Vec<bool> {
    let mut seen = vec![false; plan.graph.node_count()];
    let Some(entry) = plan.entry() else { return seen };
    let mut stack = vec![entry];
    seen[entry.index()] = true;
    while let Some(id) = stack.pop() {
        for to in plan.graph.neighbors(id) {
            if !seen[to.index()] {
                seen[to.index()] = true;
                stack.push(to);
            }
        }
    }
    seen
}

fn critical_failure_jumps(plan: &Plan<'_>, out: &mut Vec<Diagnostic>) {
    for id in plan.steps() {
        let step = plan.step(id);
        // An explicit `isCritical: true` says the author wants the run to end Failed.
        if let (Some(OnFailure::Step(target)), None) = (&step.on_failure, step.is_critical) {
            let message = format!(
                "`{}` jumps to `{target}` on failure but stays critical: the run ends Failed even if `{target}` recovers",
                step.name
            );
            out.push(
                Diagnostic::new(Code::CriticalFailureJump, message).at(step.field_pointer("onFailure")).with_help(
                    "add `isCritical: false` if the failure is handled, or `isCritical: true` to keep it failing",
                ),
            );
        }
    }
}

/// Section 4.7: a `{{ step.Output }}` needs its producer to have succeeded on every path to
/// the consumer, or at run time the reference stays literal text. Each step is split into
/// "started" and "succeeded"; success edges leave "succeeded", failure and cancel edges
/// leave "started"; the producer's "succeeded" must dominate the consumer's "started".
fn unset_outputs(plan: &Plan<'_>, reachable: &[bool], out: &mut Vec<Diagnostic>) {
    let Some(entry) = plan.entry() else { return };
    let count = plan.graph.node_count();
    let started = |id: StepId| NodeIndex::<u32>::new(2 * id.index());
    let succeeded = |id: StepId| NodeIndex::<u32>::new(2 * id.index() + 1);
    let mut split: DiGraph<(), ()> = DiGraph::with_capacity(2 * count, 2 * count + plan.graph.edge_count());
    for _ in 0..2 * count {
        split.add_node(());
    }
    for id in plan.steps() {
        split.add_edge(started(id), succeeded(id), ());
    }
    for edge in plan.graph.edge_references() {
        let label = edge.weight().label;
        let from = if label.is_failure() || label == Label::LoopBody {
            started(edge.source())
        } else {
            succeeded(edge.source())
        };
        split.add_edge(from, started(edge.target()), ());
    }
    let dominance = Dominance::new(&split, started(entry));
    for consumer in plan.steps().filter(|id| reachable[id.index()]) {
        let step = plan.step(consumer);
        let node = plan.node(consumer);
        let mut seen = HashSet::new();
        for (text, pointer) in step.input_templates() {
            for (_, reference) in template::references(text) {
                let Reference::StepOutput { step: producer_name, output } = reference else { continue };
                let Some(producer) = plan.find(producer_name) else { continue };
                // A loop's built-ins inside its body, and a loop condition reading its body's
                // outputs after an iteration, are not ordering problems.
                let related = producer == consumer
                    || node.parent == Some(producer)
                    || plan.node(producer).parent == Some(consumer);
                if related || dominance.dominates(succeeded(producer), started(consumer)) {
                    continue;
                }
                if !seen.insert((producer_name, output)) {
                    continue;
                }
                let why = if dominance.dominates(started(producer), started(consumer)) {
                    format!(
                        "`{producer_name}` runs on every path to it, but a path continues after `{producer_name}` failed"
                    )
                } else {
                    format!("a path reaches it without running `{producer_name}`")
                };
                let message =
                    format!("`{{{{ {producer_name}.{output} }}}}` may have no value when `{}` runs: {why}", step.name);
                out.push(Diagnostic::new(Code::OutputMayBeUnset, message).at(pointer.clone()).with_help(
                    "at run time the reference would stay literal text; make the producer run on every path, or check the value",
                ));
            }
        }
    }
}

/// Dominator tree of a graph, numbered so "a dominates b" is two comparisons.
struct Dominance {
    enter: Vec<u32>,
    leave: Vec<u32>,
}

impl Dominance {
    fn new(graph: &DiGraph<(), ()>, root: NodeIndex<u32>) -> Dominance {
        let tree = dominators::simple_fast(graph, root);
        let count = graph.node_count();
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); count];
        for node in graph.node_indices() {
            if let Some(parent) = tree.immediate_dominator(node) {
                children[parent.index()].push(node.index() as u32);
            }
        }
        // Unreached nodes keep an empty interval, so nothing dominates them.
        let mut enter = vec![u32::MAX; count];
        let mut leave = vec![0; count];
        let mut clock = 0;
        let mut stack = vec![(root.index() as u32, false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                leave[node as usize] = clock;
                continue;
            }
            enter[node as usize] = clock;
            clock += 1;
            stack.push((node, true));
            stack.extend(children[node as usize].iter().map(|&child| (child, false)));
        }
        Dominance { enter, leave }
    }

    fn dominates(&self, a: NodeIndex<u32>, b: NodeIndex<u32>) -> bool {
        let (a, b) = (a.index(), b.index());
        self.enter[a] != u32::MAX
            && self.enter[b] != u32::MAX
            && self.enter[a] <= self.enter[b]
            && self.leave[b] <= self.leave[a]
    }
}
