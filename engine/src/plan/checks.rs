//! Graph checks (reference 4.7 and 8.2): cycles (V11) with the path printed, unreachable
//! steps, step outputs referenced where the producer may not have
//! succeeded, and `onFailure: step:X` that still ends the run Failed.

use super::{Label, Plan, StepId};
use crate::diagnostic::{Code, Diagnostic, pointer_push};
use crate::document::model::{OnFailure, Step};
use crate::template;

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

/// V11: a depth-first walk (iterative: runbooks can have 100,000 steps) finds every edge
/// that leads back to a step still on the walk's path; each such edge closes a cycle, which
/// is printed step by step. Cycles sharing a step with one already reported are left out,
/// so one tangle gives one error.
fn cycles(plan: &Plan<'_>, out: &mut Vec<Diagnostic>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        OnPath,
        Done,
    }
    let count = plan.graph.node_count();
    let mut colour = vec![Colour::White; count];
    let mut reported = vec![false; count];
    // Edges by source, in the order they were added (two allocations, not one per step).
    let edges = Csr::new(
        count,
        plan.graph.raw_edges().iter().map(|edge| (edge.source().index() as u32, (edge.target(), edge.weight.label))),
    );
    // The walk's path: each step with the index of its next edge to follow, and the label
    // of the edge that led to it.
    let mut path: Vec<(StepId, usize, Label)> = Vec::new();
    for root in plan.steps() {
        if colour[root.index()] != Colour::White {
            continue;
        }
        colour[root.index()] = Colour::OnPath;
        path.push((root, 0, Label::Next));
        while let Some(&mut (id, ref mut next_edge, _)) = path.last_mut() {
            let Some(&(to, label)) = edges.of(id.index() as u32).get(*next_edge) else {
                colour[id.index()] = Colour::Done;
                path.pop();
                continue;
            };
            *next_edge += 1;
            match colour[to.index()] {
                Colour::White => {
                    colour[to.index()] = Colour::OnPath;
                    path.push((to, 0, label));
                }
                Colour::OnPath => {
                    let start = path.iter().position(|(step, ..)| *step == to).unwrap_or(0);
                    let cycle = &path[start..];
                    if cycle.iter().any(|(step, ..)| reported[step.index()]) {
                        continue;
                    }
                    cycle.iter().for_each(|(step, ..)| reported[step.index()] = true);
                    report_cycle(plan, cycle, (id, label, to), out);
                }
                Colour::Done => {}
            }
        }
    }
}

/// Reports the cycle `path` (each step with the label of the edge into it) closed by `closing`.
fn report_cycle(
    plan: &Plan<'_>,
    path: &[(StepId, usize, Label)],
    (closing_from, closing_label, closing_to): (StepId, Label, StepId),
    out: &mut Vec<Diagnostic>,
) {
    let mut text = format!("`{}`", plan.step(path[0].0).name);
    for (step, _, label) in &path[1..] {
        text.push_str(&format!(" -[{label}]-> `{}`", plan.step(*step).name));
    }
    text.push_str(&format!(" -[{closing_label}]-> `{}`", plan.step(closing_to).name));
    out.push(
        Diagnostic::new(Code::Cycle, format!("steps can run in a circle forever: {text}"))
            .at(edge_pointer(plan.step(closing_from), closing_label))
            .with_help(
                "AWS refuses runbooks whose steps form a cycle: repeat work with aws:loop, or end the circle with isEnd or another target",
            ),
    );
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
    let started = |id: StepId| 2 * id.index() as u32;
    let succeeded = |id: StepId| 2 * id.index() as u32 + 1;
    let mut split = Vec::with_capacity(count + plan.graph.edge_count());
    split.extend(plan.steps().map(|id| (started(id), succeeded(id))));
    for edge in plan.graph.raw_edges() {
        let label = edge.weight.label;
        let from = match label.is_failure() || label == Label::LoopBody {
            true => started(edge.source()),
            false => succeeded(edge.source()),
        };
        split.push((from, started(edge.target())));
    }
    let dominance = Dominance::new(2 * count, &split, started(entry));
    let config = template::config_for(plan.runbook);
    for consumer in plan.steps().filter(|id| reachable[id.index()]) {
        let step = plan.step(consumer);
        let node = plan.node(consumer);
        let mut reported: Vec<(&str, &str)> = Vec::new();
        for reference in step.output_references(config) {
            let (producer_name, output) = (reference.step.as_str(), reference.output.as_str());
            let Some(producer) = plan.find(producer_name) else { continue };
            // A loop's built-ins inside its body, and a loop condition reading its body's
            // outputs after an iteration, are not ordering problems.
            let related =
                producer == consumer || node.parent == Some(producer) || plan.node(producer).parent == Some(consumer);
            if related
                || dominance.dominates(succeeded(producer), started(consumer))
                || reported.contains(&(producer_name, output))
            {
                continue;
            }
            reported.push((producer_name, output));
            let why = if dominance.dominates(started(producer), started(consumer)) {
                format!(
                    "`{producer_name}` runs on every path to it, but a path continues after `{producer_name}` failed"
                )
            } else {
                format!("a path reaches it without running `{producer_name}`")
            };
            let message =
                format!("`{{{{ {producer_name}.{output} }}}}` may have no value when `{}` runs: {why}", step.name);
            out.push(Diagnostic::new(Code::OutputMayBeUnset, message).at(&reference.pointer).with_help(
                "at run time the reference would stay literal text; make the producer run on every path, or check the value",
            ));
        }
    }
}

/// Dominator tree of a graph given as edge lists, numbered so "a dominates b" is two
/// comparisons. The tree is built with Cooper, Harvey and Kennedy's iterative algorithm on
/// plain vectors (petgraph's version keeps hash maps, which dominated planning time).
struct Dominance {
    enter: Vec<u32>,
    leave: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Dominance {
    fn new(count: usize, edges: &[(u32, u32)], root: u32) -> Dominance {
        let successors = Csr::new(count, edges.iter().copied());
        let predecessors = Csr::new(count, edges.iter().map(|&(from, to)| (to, from)));
        // Reverse postorder from the root, iteratively.
        let mut order = Vec::with_capacity(count);
        let mut visited = vec![false; count];
        let mut stack = vec![(root, 0usize)];
        visited[root as usize] = true;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            match successors.of(node).get(*next) {
                Some(&to) => {
                    *next += 1;
                    if !visited[to as usize] {
                        visited[to as usize] = true;
                        stack.push((to, 0));
                    }
                }
                None => {
                    order.push(node);
                    stack.pop();
                }
            }
        }
        order.reverse();
        let mut rank = vec![NONE; count];
        for (i, &node) in order.iter().enumerate() {
            rank[node as usize] = i as u32;
        }
        let mut idom = vec![NONE; count];
        idom[root as usize] = root;
        let intersect = |idom: &[u32], mut a: u32, mut b: u32| {
            while a != b {
                while rank[a as usize] > rank[b as usize] {
                    a = idom[a as usize];
                }
                while rank[b as usize] > rank[a as usize] {
                    b = idom[b as usize];
                }
            }
            a
        };
        let mut changed = true;
        while changed {
            changed = false;
            for &node in &order[1..] {
                let mut new_idom = NONE;
                for &pred in predecessors.of(node) {
                    if idom[pred as usize] == NONE {
                        continue;
                    }
                    new_idom = if new_idom == NONE { pred } else { intersect(&idom, pred, new_idom) };
                }
                if new_idom != idom[node as usize] {
                    idom[node as usize] = new_idom;
                    changed = true;
                }
            }
        }
        let tree = Csr::new(
            count,
            order[1..].iter().filter(|&&node| idom[node as usize] != NONE).map(|&node| (idom[node as usize], node)),
        );
        // Unreached nodes keep an empty interval, so nothing dominates them.
        let mut enter = vec![NONE; count];
        let mut leave = vec![0; count];
        let mut clock = 0;
        let mut stack = vec![(root, false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                leave[node as usize] = clock;
                continue;
            }
            enter[node as usize] = clock;
            clock += 1;
            stack.push((node, true));
            stack.extend(tree.of(node).iter().map(|&child| (child, false)));
        }
        Dominance { enter, leave }
    }

    fn dominates(&self, a: u32, b: u32) -> bool {
        let (a, b) = (a as usize, b as usize);
        self.enter[a] != NONE
            && self.enter[b] != NONE
            && self.enter[a] <= self.enter[b]
            && self.leave[b] <= self.leave[a]
    }
}

/// Adjacency lists in two vectors (compressed sparse rows): for each node, its entries in
/// the order given.
struct Csr<T> {
    start: Vec<u32>,
    entries: Vec<T>,
}

impl<T: Copy + Default> Csr<T> {
    fn new(count: usize, edges: impl Iterator<Item = (u32, T)> + Clone) -> Csr<T> {
        let mut start = vec![0u32; count + 1];
        for (from, _) in edges.clone() {
            start[from as usize + 1] += 1;
        }
        for i in 0..count {
            start[i + 1] += start[i];
        }
        let mut entries = vec![T::default(); start[count] as usize];
        let mut filled = start.clone();
        for (from, entry) in edges {
            entries[filled[from as usize] as usize] = entry;
            filled[from as usize] += 1;
        }
        Csr { start, entries }
    }

    fn of(&self, node: u32) -> &[T] {
        &self.entries[self.start[node as usize] as usize..self.start[node as usize + 1] as usize]
    }
}
