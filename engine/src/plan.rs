//! Stage 3, planning: a validated runbook becomes a graph with one node per step and one
//! labelled edge per way control can pass between steps (reference sections 4.3, 4.5, 4.7).
//! [`Plan::successor`] answers "after this step, with this outcome, what runs next"; the
//! graph's edges are built by asking it about every outcome, and the runner asks it the same
//! questions, so plan and run cannot disagree.

mod checks;
pub mod saved;
pub mod values;

use std::fmt;

use foldhash::{HashMap, HashMapExt};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde_json::Value;

use crate::actions::{self, Kind, branch};
use crate::diagnostic::Diagnostic;
use crate::document::model::{OnCancel, OnFailure, Runbook, Step};
use crate::template;
use crate::validate::Validated;

/// A step of the plan; its index is the step's position in document order.
pub type StepId = NodeIndex<u32>;

/// How a step ended, as far as choosing the next step is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The step succeeded (for an `aws:loop`: the loop finished its iterations).
    Succeeded,
    /// An `aws:branch` succeeded with choice `i` as the first true one.
    Chose(usize),
    /// An `aws:branch` succeeded with no choice true.
    NoChoice,
    /// Failed after every attempt.
    Failed,
    /// Timed out on the last attempt.
    TimedOut,
    /// The user cancelled while the step ran.
    Cancelled,
}

/// What runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next<'r> {
    /// Run this step.
    Step { step: StepId, label: Label },
    /// The list ends here: `isEnd`, the end of the list, or a branch with nothing to take.
    /// At top level the run completes; inside a loop body the iteration ends.
    End(EndReason),
    /// The step failed with `onFailure: Abort`: the run stops.
    Abort,
    /// The step was cancelled with `onCancel: Abort`: the run stops.
    Cancel,
    /// The runbook names a step that does not exist (validation reports it; never run).
    Unknown { name: &'r str, label: Label },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// `isEnd: true`.
    IsEnd,
    /// The last step of its list, with no `nextStep`.
    EndOfList,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::IsEnd => "isEnd",
            EndReason::EndOfList => "end of list",
        }
    }
}

/// Why control passes along an edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// Success: `nextStep`, or the following step in list order.
    #[default]
    Next,
    /// A branch choice, by index.
    Choice(usize),
    /// A branch's `Default`, when no choice is true.
    Default,
    /// A branch with no true choice and no `Default`: `nextStep` or the following step.
    Fallthrough,
    /// `onFailure: step:X`.
    OnFailure,
    /// `onFailure: Continue`: the success path, taken after a failure.
    Continue,
    /// `onCancel: step:X`.
    OnCancel,
    /// An `aws:loop` to the first step of its body, at the start of every iteration.
    LoopBody,
    /// An `aws:loop` to the step after it, once the iterations are over.
    LoopExit,
}

impl Label {
    /// Whether the edge is taken after the source step failed or was cancelled.
    pub fn is_failure(self) -> bool {
        matches!(self, Label::OnFailure | Label::Continue | Label::OnCancel)
    }
}

impl Label {
    /// The label as text: only a choice's is made, the others are constants.
    pub fn text(self) -> std::borrow::Cow<'static, str> {
        match self {
            Label::Next => "next".into(),
            Label::Choice(i) => format!("choice[{i}]").into(),
            Label::Default => "default".into(),
            Label::Fallthrough => "fallthrough".into(),
            Label::OnFailure => "on_failure".into(),
            Label::Continue => "continue".into(),
            Label::OnCancel => "on_cancel".into(),
            Label::LoopBody => "loop_body".into(),
            Label::LoopExit => "loop_exit".into(),
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// A jump target as written: the step, or (in [`Plan::unresolved`]) the name no step has.
type Target = Result<StepId, Unresolved>;

/// A name a jump gives that no step has, by its index in [`Plan::unresolved`]: a node holds
/// five targets, so each stays eight bytes.
#[derive(Clone, Copy, Debug)]
struct Unresolved(u32);

/// One step in the graph, with its jump targets resolved.
#[derive(Debug)]
pub struct Node<'r> {
    pub step: &'r Step,
    /// What the catalogue says the step's action is, looked up once.
    pub kind: Kind,
    /// The `aws:loop` whose body holds this step.
    pub parent: Option<StepId>,
    /// The next step of the same list.
    pub following: Option<StepId>,
    /// For an `aws:loop`, the first step of its body.
    pub body_entry: Option<StepId>,
    next_step: Option<Target>,
    on_failure: Option<Target>,
    on_cancel: Option<Target>,
    /// For an `aws:branch`: each choice's `NextStep` (`None` when it has none) and `Default`.
    choices: Vec<Option<Target>>,
    default: Option<Target>,
}

impl Node<'_> {
    pub fn is_branch(&self) -> bool {
        self.kind == Kind::Branch
    }

    pub fn is_loop(&self) -> bool {
        self.kind == Kind::Loop
    }

    /// The outcomes this step can have, each of which [`Plan::successor`] resolves.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> + use<> {
        let (choices, success) = match self.is_branch() {
            true => (self.choices.len(), Outcome::NoChoice),
            false => (0, Outcome::Succeeded),
        };
        (0..choices).map(Outcome::Chose).chain([success, Outcome::Failed, Outcome::Cancelled])
    }
}

/// An edge of the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub label: Label,
    /// A jump from inside a loop body to a step outside it: the loop ends Exited.
    pub exits_loop: bool,
}

/// A planned runbook.
#[derive(Debug)]
pub struct Plan<'r> {
    pub runbook: &'r Runbook,
    pub graph: DiGraph<Node<'r>, Edge>,
    /// Graph findings: cycles, unreachable steps, outputs that may be unset, jumps that
    /// still fail the run. Pointers only; the caller locates them.
    pub diagnostics: Vec<Diagnostic>,
    by_name: HashMap<&'r str, StepId>,
    /// The names jumps give that no step has.
    unresolved: Vec<&'r str>,
}

impl<'r> Plan<'r> {
    /// The step by name.
    pub fn find(&self, name: &str) -> Option<StepId> {
        self.by_name.get(name).copied()
    }

    pub fn node(&self, id: StepId) -> &Node<'r> {
        &self.graph[id]
    }

    pub fn step(&self, id: StepId) -> &'r Step {
        self.graph[id].step
    }

    /// The first step of the run.
    pub fn entry(&self) -> Option<StepId> {
        (self.graph.node_count() > 0).then(|| StepId::new(0))
    }

    /// Every step in document order (loop bodies right after their loop).
    pub fn steps(&self) -> impl Iterator<Item = StepId> + '_ {
        self.graph.node_indices()
    }

    /// Outgoing edges of a step, in the order they were added (by outcome).
    pub fn edges_from(&self, id: StepId) -> Vec<(StepId, Edge)> {
        let mut edges: Vec<_> = self.graph.edges(id).map(|e| (e.id(), e.target(), *e.weight())).collect();
        // petgraph lists a node's edges newest first.
        edges.sort_by_key(|(edge, ..)| *edge);
        edges.into_iter().map(|(_, target, edge)| (target, edge)).collect()
    }

    /// The successor resolution of reference section 4.3 and 4.5. The runner and the graph
    /// both come through here.
    pub fn successor(&self, id: StepId, outcome: Outcome) -> Next<'r> {
        let node = &self.graph[id];
        let step = node.step;
        match outcome {
            Outcome::Cancelled => match node.on_cancel {
                Some(target) => self.goto(target, Label::OnCancel),
                None => Next::Cancel,
            },
            // `node.on_failure` holds the target of `onFailure: step:X`, and only that.
            Outcome::Failed | Outcome::TimedOut => match (node.on_failure, &step.on_failure) {
                // isEnd does not prevent the jump: "jump on failure, stop on success".
                (Some(target), _) => self.goto(target, Label::OnFailure),
                (None, Some(OnFailure::Continue)) if step.is_end => Next::End(EndReason::IsEnd),
                (None, Some(OnFailure::Continue)) => self.success_successor(node, Label::Continue),
                (None, _) => Next::Abort,
            },
            Outcome::Chose(i) => match node.choices.get(i).copied().flatten() {
                Some(target) => self.goto(target, Label::Choice(i)),
                // A choice without NextStep is a validation error; treat it like no match.
                None => self.successor(id, Outcome::NoChoice),
            },
            Outcome::NoChoice => match node.default {
                Some(target) => self.goto(target, Label::Default),
                None if step.is_end => Next::End(EndReason::IsEnd),
                None => self.success_successor(node, Label::Fallthrough),
            },
            Outcome::Succeeded if node.is_branch() => self.successor(id, Outcome::NoChoice),
            Outcome::Succeeded if step.is_end => Next::End(EndReason::IsEnd),
            Outcome::Succeeded if node.is_loop() => self.success_successor(node, Label::LoopExit),
            Outcome::Succeeded => self.success_successor(node, Label::Next),
        }
    }

    fn goto(&self, target: Target, label: Label) -> Next<'r> {
        match target {
            Ok(step) => Next::Step { step, label },
            Err(Unresolved(index)) => Next::Unknown { name: self.unresolved[index as usize], label },
        }
    }

    fn success_successor(&self, node: &Node<'r>, label: Label) -> Next<'r> {
        match (node.next_step, node.following) {
            (Some(target), _) => self.goto(target, label),
            (None, Some(following)) => Next::Step { step: following, label },
            (None, None) => Next::End(EndReason::EndOfList),
        }
    }
}

/// A step's inputs rendered with what is known before the run.
#[derive(Debug)]
pub struct Preview {
    /// The inputs (a loop's body aside), with unknown references left as written.
    pub inputs: Value,
    /// References whose values only the run has.
    pub unknown: Vec<String>,
    /// Why the inputs could not be rendered (an opt-in expression that fails).
    pub error: Option<String>,
}

impl Plan<'_> {
    /// Renders the inputs of a step as far as `scope` knows their values.
    pub fn preview(&self, id: StepId, scope: &dyn template::Scope) -> Preview {
        let step = self.step(id);
        match render_inputs(step, scope, template::config_for(self.runbook)) {
            Ok((inputs, unknown)) => Preview { inputs: Value::Object(inputs), unknown, error: None },
            Err(error) => {
                let inputs = own_inputs(step).map(|(key, value)| (key.clone(), value.clone())).collect();
                Preview { inputs: Value::Object(inputs), unknown: Vec::new(), error: Some(error.to_string()) }
            }
        }
    }
}

/// A step's own inputs: a loop's body belongs to its steps.
fn own_inputs(step: &Step) -> impl Iterator<Item = (&String, &Value)> {
    let is_loop = actions::kind_of(&step.action) == Kind::Loop;
    step.inputs.iter().filter(move |(key, _)| !(is_loop && key.as_str() == "Steps"))
}

/// Renders a step's own inputs value by value (nothing is copied first), with the references
/// left unknown, sorted. The runner and previews both render through here.
pub fn render_inputs(
    step: &Step,
    scope: &dyn template::Scope,
    config: template::Config,
) -> Result<(serde_json::Map<String, Value>, Vec<String>), template::Error> {
    let mut inputs = serde_json::Map::new();
    let mut unknown = Vec::new();
    for (key, value) in own_inputs(step) {
        let rendered = template::render(value, scope, config)?;
        inputs.insert(key.clone(), rendered.value);
        unknown.extend(rendered.unknown);
    }
    unknown.sort();
    unknown.dedup();
    Ok((inputs, unknown))
}

/// The planner's findings for a validated runbook (graph checks, parameter defaults), added
/// to its diagnostics: `runbook validate` reports them with the rest.
pub fn check(validated: &mut Validated) {
    let Some(runbook) = validated.runbook.take() else { return };
    let bound = values::bind(&runbook, &validated.parameters, &values::NothingKnown);
    add_findings(validated, &bound, &plan(&runbook));
    validated.runbook = Some(runbook);
}

/// Adds the findings of binding and planning to a validated runbook's diagnostics, for a
/// caller that keeps the plan (`runbook plan`) and so plans only once.
pub fn add_findings(validated: &mut Validated, bound: &values::Bound, plan: &Plan<'_>) {
    validated.add(bound.diagnostics.iter().chain(&plan.diagnostics).cloned().collect());
}

/// Plans a runbook: the graph, then the graph checks. Never fails: what cannot be planned
/// (a jump to a step that does not exist) is left out, and validation reports it.
pub fn plan<'r>(runbook: &'r Runbook) -> Plan<'r> {
    // Sized once: a graph grown by doubling left the memory of each smaller copy behind.
    let steps = runbook.all_steps().len();
    let mut graph = DiGraph::with_capacity(steps, 2 * steps);
    add_steps(&mut graph, &runbook.steps, None);
    let mut by_name = HashMap::with_capacity(graph.node_count());
    for id in graph.node_indices() {
        // The first of two steps with one name wins, as validation reports the second.
        by_name.entry(graph[id].step.name.as_str()).or_insert(id);
    }
    let mut unresolved = Vec::new();
    for id in graph.node_indices().collect::<Vec<_>>() {
        let step: &Step = graph[id].step;
        let mut target = |name: &'r str| {
            by_name.get(name).copied().ok_or_else(|| {
                unresolved.push(name);
                Unresolved(unresolved.len() as u32 - 1)
            })
        };
        let next_step = step.next_step.as_deref().map(&mut target);
        let on_failure = match &step.on_failure {
            Some(OnFailure::Step(name)) => Some(target(name)),
            _ => None,
        };
        let on_cancel = match &step.on_cancel {
            Some(OnCancel::Step(name)) => Some(target(name)),
            _ => None,
        };
        let (choices, default) = if graph[id].is_branch() {
            let choices = branch::choice_targets(step).into_iter().map(|choice| choice.map(&mut target)).collect();
            (choices, branch::default_target(step).map(&mut target))
        } else {
            (Vec::new(), None)
        };
        let node = &mut graph[id];
        node.next_step = next_step;
        node.on_failure = on_failure;
        node.on_cancel = on_cancel;
        node.choices = choices;
        node.default = default;
    }
    let mut plan = Plan { runbook, graph, diagnostics: Vec::new(), by_name, unresolved };
    add_edges(&mut plan);
    plan.diagnostics = checks::check(&plan);
    plan
}

/// Adds one node per step of `steps` (and of loop bodies, right after their loop).
fn add_steps<'r>(graph: &mut DiGraph<Node<'r>, Edge>, steps: &'r [Step], parent: Option<StepId>) {
    let mut list = Vec::with_capacity(steps.len());
    for step in steps {
        let id = graph.add_node(Node {
            step,
            kind: actions::kind_of(&step.action),
            parent,
            following: None,
            body_entry: None,
            next_step: None,
            on_failure: None,
            on_cancel: None,
            choices: Vec::new(),
            default: None,
        });
        list.push(id);
        if !step.body.is_empty() {
            graph[id].body_entry = Some(StepId::new(graph.node_count()));
            add_steps(graph, &step.body, Some(id));
        }
    }
    for pair in list.windows(2) {
        graph[pair[0]].following = Some(pair[1]);
    }
}

/// Adds the edges: for every step, the successor of every outcome it can have.
fn add_edges(plan: &mut Plan<'_>) {
    let mut edges = Vec::new();
    for id in plan.graph.node_indices() {
        let node = &plan.graph[id];
        if let Some(entry) = node.body_entry {
            edges.push((id, entry, Edge { label: Label::LoopBody, exits_loop: false }));
        }
        let first = edges.len();
        for outcome in node.outcomes() {
            if let Next::Step { step, label } = plan.successor(id, outcome) {
                if edges[first..]
                    .iter()
                    .any(|&(_, to, edge): &(StepId, StepId, Edge)| to == step && edge.label == label)
                {
                    continue;
                }
                let exits_loop = node.parent.is_some() && plan.graph[step].parent != node.parent;
                edges.push((id, step, Edge { label, exits_loop }));
            }
        }
    }
    plan.graph.reserve_edges(edges.len());
    for (from, to, edge) in edges {
        plan.graph.add_edge(from, to, edge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;
    use crate::document::{self, Format};

    fn runbook(steps: &str) -> Runbook {
        let yaml = format!("schemaVersion: '0.3'\nmainSteps:\n{steps}");
        let loaded = document::load("t.yaml".into(), yaml.into_bytes(), Some(Format::Yaml));
        Runbook::from_value(loaded.value.expect("test runbooks parse"))
    }

    /// Every edge as `from -label-> to`, with `!` marking a jump out of a loop.
    fn edges(plan: &Plan<'_>) -> Vec<String> {
        plan.steps()
            .flat_map(|id| {
                plan.edges_from(id).into_iter().map(move |(to, edge)| {
                    let exit = if edge.exits_loop { "!" } else { "" };
                    format!("{} -{}-> {}{exit}", plan.step(id).name, edge.label, plan.step(to).name)
                })
            })
            .collect()
    }

    fn next(plan: &Plan<'_>, name: &str, outcome: Outcome) -> String {
        match plan.successor(plan.find(name).unwrap(), outcome) {
            Next::Step { step, label } => format!("{label} {}", plan.step(step).name),
            Next::End(reason) => format!("end ({})", reason.as_str()),
            Next::Abort => "abort".into(),
            Next::Cancel => "cancel".into(),
            Next::Unknown { name, label } => format!("{label} unknown {name}"),
        }
    }

    fn codes(plan: &Plan<'_>) -> Vec<(&'static str, String)> {
        plan.diagnostics.iter().map(|d| (d.code.as_str(), d.message.clone())).collect()
    }

    const SLEEP: &str = "action: aws:sleep\n    inputs: {Duration: PT1S}";

    #[test]
    fn success_follows_next_step_then_list_order_then_ends() {
        let rb = runbook(&format!(
            "  - name: a\n    {SLEEP}\n    nextStep: c\n  - name: b\n    {SLEEP}\n  - name: c\n    {SLEEP}\n"
        ));
        let plan = plan(&rb);
        assert_eq!(next(&plan, "a", Outcome::Succeeded), "next c");
        assert_eq!(next(&plan, "b", Outcome::Succeeded), "next c");
        assert_eq!(next(&plan, "c", Outcome::Succeeded), "end (end of list)");
    }

    #[test]
    fn is_end_stops_on_success_but_not_a_failure_jump() {
        let rb = runbook(&format!(
            "  - name: a\n    {SLEEP}\n    isEnd: true\n    onFailure: step:b\n  - name: b\n    {SLEEP}\n    isEnd: 'True'\n"
        ));
        let plan = plan(&rb);
        assert_eq!(next(&plan, "a", Outcome::Succeeded), "end (isEnd)");
        assert_eq!(next(&plan, "a", Outcome::Failed), "on_failure b");
        assert_eq!(next(&plan, "a", Outcome::TimedOut), "on_failure b");
        assert_eq!(edges(&plan), ["a -on_failure-> b"]);
    }

    #[test]
    fn failures_abort_by_default_and_continue_takes_the_success_path() {
        let rb = runbook(&format!(
            "  - name: a\n    {SLEEP}\n  - name: b\n    {SLEEP}\n    onFailure: Continue\n    nextStep: d\n  - name: c\n    {SLEEP}\n    onFailure: Abort\n  - name: d\n    {SLEEP}\n    onFailure: Continue\n    isEnd: true\n"
        ));
        let plan = plan(&rb);
        assert_eq!(next(&plan, "a", Outcome::Failed), "abort");
        assert_eq!(next(&plan, "a", Outcome::TimedOut), "abort");
        assert_eq!(next(&plan, "b", Outcome::Failed), "continue d");
        assert_eq!(next(&plan, "c", Outcome::Failed), "abort");
        // isEnd wins over Continue (reference 11, question 10).
        assert_eq!(next(&plan, "d", Outcome::Failed), "end (isEnd)");
        assert_eq!(edges(&plan), ["a -next-> b", "b -next-> d", "b -continue-> d", "c -next-> d"]);
    }

    #[test]
    fn cancel_jumps_or_stops() {
        let rb = runbook(&format!(
            "  - name: a\n    {SLEEP}\n    onCancel: step:cleanup\n    isEnd: true\n  - name: b\n    {SLEEP}\n    onCancel: Abort\n  - name: cleanup\n    action: aws:executeScript\n    inputs: {{Runtime: python3.11, Handler: h, Script: x}}\n"
        ));
        let plan = plan(&rb);
        assert_eq!(next(&plan, "a", Outcome::Cancelled), "on_cancel cleanup");
        assert_eq!(next(&plan, "b", Outcome::Cancelled), "cancel");
        assert_eq!(next(&plan, "cleanup", Outcome::Cancelled), "cancel");
    }

    const BRANCH: &str = "action: aws:branch\n    inputs:\n      Choices:\n        - {NextStep: x, Variable: '{{ P }}', StringEquals: a}\n        - {NextStep: y, Variable: '{{ P }}', StringEquals: b}";

    fn branch_runbook(extra: &str) -> Runbook {
        runbook(&format!(
            "  - name: br\n    {BRANCH}\n{extra}  - name: after\n    {SLEEP}\n  - name: x\n    {SLEEP}\n  - name: y\n    {SLEEP}\n  - name: z\n    {SLEEP}\n"
        ))
    }

    #[test]
    fn branch_choices_default_is_end_next_step_and_fallthrough() {
        let rb = branch_runbook("");
        let plain = plan(&rb);
        assert_eq!(next(&plain, "br", Outcome::Chose(0)), "choice[0] x");
        assert_eq!(next(&plain, "br", Outcome::Chose(1)), "choice[1] y");
        assert_eq!(next(&plain, "br", Outcome::NoChoice), "fallthrough after");
        assert_eq!(edges(&plain)[..3], ["br -choice[0]-> x", "br -choice[1]-> y", "br -fallthrough-> after"]);

        let rb = branch_runbook("      Default: z\n    nextStep: y\n    isEnd: true\n");
        let with_default = plan(&rb);
        assert_eq!(next(&with_default, "br", Outcome::NoChoice), "default z");

        let rb = branch_runbook("    isEnd: true\n    nextStep: y\n");
        let is_end = plan(&rb);
        // A matching choice still jumps; isEnd applies only when nothing matches.
        assert_eq!(next(&is_end, "br", Outcome::Chose(1)), "choice[1] y");
        assert_eq!(next(&is_end, "br", Outcome::NoChoice), "end (isEnd)");

        let rb = branch_runbook("    nextStep: z\n    onFailure: Continue\n");
        let next_step = plan(&rb);
        assert_eq!(next(&next_step, "br", Outcome::NoChoice), "fallthrough z");
        // Continue takes the success path, which for a branch is nextStep, not Default.
        assert_eq!(next(&next_step, "br", Outcome::Failed), "continue z");
    }

    #[test]
    fn a_branch_last_in_its_list_ends_the_list() {
        let rb = runbook(&format!(
            "  - name: x\n    {SLEEP}\n  - name: br\n    {BRANCH}\n  - name: y\n    {SLEEP}\n    isEnd: true\n"
        ));
        let plan = plan(&rb);
        assert_eq!(next(&plan, "br", Outcome::NoChoice), "fallthrough y");
        let rb = runbook(&format!(
            "  - name: x\n    {SLEEP}\n    isEnd: true\n  - name: y\n    {SLEEP}\n    isEnd: true\n  - name: br\n    {BRANCH}\n"
        ));
        let plan = super::plan(&rb);
        assert_eq!(next(&plan, "br", Outcome::NoChoice), "end (end of list)");
    }

    const LOOP: &str = "  - name: each
    action: aws:loop
    inputs:
      Iterators: [a, b]
      Steps:
        - name: first
          action: aws:sleep
          inputs: {Duration: PT1S}
          onFailure: step:rescue
        - name: check
          action: aws:branch
          inputs:
            Choices:
              - {NextStep: done, Variable: '{{ Loop.CurrentIteratorValue }}', StringEquals: b}
          isEnd: true
        - name: last
          action: aws:sleep
          inputs: {Duration: PT1S}
  - name: done
    action: aws:sleep
    inputs: {Duration: PT1S}
    isEnd: true
  - name: rescue
    action: aws:sleep
    inputs: {Duration: PT1S}
";

    #[test]
    fn loops_enter_their_body_end_iterations_and_exit() {
        let rb = runbook(LOOP);
        let plan = plan(&rb);
        assert_eq!(plan.node(plan.find("first").unwrap()).parent, plan.find("each"));
        assert_eq!(next(&plan, "each", Outcome::Succeeded), "loop_exit done");
        assert_eq!(next(&plan, "first", Outcome::Succeeded), "next check");
        // Inside a body, isEnd and the end of the list end the iteration (the runner knows
        // the step is in a body from `parent`).
        assert_eq!(next(&plan, "check", Outcome::NoChoice), "end (isEnd)");
        assert_eq!(next(&plan, "last", Outcome::Succeeded), "end (end of list)");
        assert_eq!(
            edges(&plan),
            [
                "each -loop_body-> first",
                "each -loop_exit-> done",
                "first -next-> check",
                "first -on_failure-> rescue!",
                "check -choice[0]-> done!",
            ]
        );
        assert_eq!(codes(&plan), [
            ("unreachable-step", "step `last` never runs: no path from the first step leads to it".into()),
            ("critical-failure-jump", "`first` jumps to `rescue` on failure but stays critical: the run ends Failed even if `rescue` recovers".into()),
        ]);
    }

    /// Plans `steps` and expects exactly one finding: a cycle with this path, reported at
    /// the field that closes it.
    fn assert_cycle(steps: &str, path: &str, pointer: &str) {
        let rb = runbook(steps);
        let plan = plan(&rb);
        assert_eq!(codes(&plan), [("cycle", format!("steps can run in a circle forever: {path}"))]);
        assert_eq!(plan.diagnostics[0].pointer.as_deref(), Some(pointer));
    }

    #[test]
    fn cycle_through_branch_choices() {
        assert_cycle(
            &format!(
                "  - name: x\n    {SLEEP}\n  - name: br\n    action: aws:branch\n    inputs:\n      Choices:\n        - {{NextStep: x, Variable: '{{{{ P }}}}', StringEquals: a}}\n      Default: y\n  - name: y\n    {SLEEP}\n"
            ),
            "`x` -[next]-> `br` -[choice[0]]-> `x`",
            "/mainSteps/1/inputs/Choices/0/NextStep",
        );
    }

    #[test]
    fn cycle_through_failure_jumps() {
        assert_cycle(
            &format!(
                "  - name: a\n    {SLEEP}\n    onFailure: step:b\n    isCritical: false\n    isEnd: true\n  - name: b\n    {SLEEP}\n    onFailure: step:a\n    isCritical: false\n    isEnd: true\n"
            ),
            "`a` -[on_failure]-> `b` -[on_failure]-> `a`",
            "/mainSteps/1/onFailure",
        );
    }

    #[test]
    fn cycle_through_a_loop_exit() {
        assert_cycle(
            &format!(
                "  - name: start\n    {SLEEP}\n  - name: each\n    action: aws:loop\n    inputs:\n      LoopCondition: {{Variable: '{{{{ P }}}}', StringEquals: a}}\n      Steps:\n        - name: inner\n          action: aws:sleep\n          inputs: {{Duration: PT1S}}\n          nextStep: start\n"
            ),
            "`start` -[next]-> `each` -[loop_body]-> `inner` -[next]-> `start`",
            "/mainSteps/1/inputs/Steps/0/nextStep",
        );
    }

    #[test]
    fn a_self_jump_is_a_cycle() {
        assert_cycle(
            &format!("  - name: a\n    {SLEEP}\n    nextStep: a\n"),
            "`a` -[next]-> `a`",
            "/mainSteps/0/nextStep",
        );
    }

    #[test]
    fn outputs_must_be_produced_on_every_path() {
        let script = "action: aws:executeScript\n    inputs: {Runtime: python3.11, Handler: h, Script: x}\n    outputs: [{Name: Out, Selector: $.Payload, Type: String}]";
        let rb = runbook(&format!(
            "  - name: br\n    {BRANCH}\n  - name: after\n    {SLEEP}\n  - name: x\n    {script}\n    nextStep: use\n  - name: y\n    {script}\n    onFailure: Continue\n  - name: use\n    action: aws:sleep\n    inputs: {{Duration: 'PT{{{{ x.Out }}}}S'}}\n  - name: use2\n    action: aws:sleep\n    inputs: {{Duration: 'PT{{{{ y.Out }}}}S'}}\n"
        ));
        let plan = plan(&rb);
        let unset: Vec<_> = plan.diagnostics.iter().filter(|d| d.code == Code::OutputMayBeUnset).collect();
        // `use` and `use2` run after `x` or after `y`, never after both.
        assert_eq!(unset.len(), 2, "{unset:#?}");
        assert_eq!(
            unset[0].message,
            "`{{ x.Out }}` may have no value when `use` runs: a path reaches it without running `x`"
        );
        assert_eq!(unset[0].pointer.as_deref(), Some("/mainSteps/4/inputs/Duration"));
        assert_eq!(
            unset[1].message,
            "`{{ y.Out }}` may have no value when `use2` runs: a path reaches it without running `y`"
        );
        let rb = runbook(&format!(
            "  - name: y\n    {script}\n    onFailure: Continue\n  - name: use\n    action: aws:sleep\n    inputs: {{Duration: 'PT{{{{ y.Out }}}}S'}}\n"
        ));
        assert_eq!(
            super::plan(&rb).diagnostics[0].message,
            "`{{ y.Out }}` may have no value when `use` runs: `y` runs on every path to it, but a path continues after `y` failed"
        );

        // On a straight line the producer always succeeded first.
        let rb = runbook(&format!(
            "  - name: x\n    {script}\n  - name: use\n    action: aws:sleep\n    inputs: {{Duration: 'PT{{{{ x.Out }}}}S'}}\n"
        ));
        assert!(plan_codes(&rb).is_empty());
    }

    fn plan_codes(rb: &Runbook) -> Vec<&'static str> {
        plan(rb).diagnostics.iter().map(|d| d.code.as_str()).collect()
    }

    #[test]
    fn unknown_targets_are_left_out_of_the_graph() {
        let rb = runbook(&format!("  - name: a\n    {SLEEP}\n    nextStep: nowhere\n    onFailure: step:gone\n"));
        let plan = plan(&rb);
        assert_eq!(next(&plan, "a", Outcome::Succeeded), "next unknown nowhere");
        assert_eq!(next(&plan, "a", Outcome::Failed), "on_failure unknown gone");
        assert!(edges(&plan).is_empty());
    }
}
