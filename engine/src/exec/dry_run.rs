//! Dry-runs (reference 4.7): walk the plan from the entry step without running anything.
//! Each step shows its inputs rendered as far as known and what it would do; outputs come
//! from mocks or stay unknown; a branch on an unknown value explores every choice that might
//! hold; failure paths are explored too and cancel edges listed. The result is a graph of
//! possible paths: where two paths reach the same step with the same known values, they share
//! one node, so the count of paths can be large while the output stays small.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::rc::Rc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::actions::branch::describe_condition;
use crate::actions::{self, Kind, branch, update_variable};
use crate::document::model::Step;
use crate::document::outputs;
use crate::journal::Status;
use crate::plan::values::Bound;
use crate::plan::{Next, Outcome, Plan, StepId};
use crate::redact::Redactor;
use crate::template::{self, Lookup, Reference, Scope};

/// Mocked step outputs: step name -> output name -> value.
pub type Mocks = HashMap<String, Map<String, Value>>;

/// Makes one AWS call for real (`--dry-run=read-only`): service, operation, parameters.
pub type Reader<'a> = dyn Fn(&str, &str, &Map<String, Value>) -> Result<Value, String> + Sync + 'a;

/// Every path a dry-run found.
#[derive(Debug, Serialize)]
pub struct Tree<'r> {
    /// Whether exploring stopped at [`MAX_NODES`]: ways past it are `unexplored`, and `paths`
    /// counts each as one (a lower bound).
    pub budget_spent: bool,
    /// Boxed: each is made while its step is explored and moved here when done, so the
    /// walk's open visits and the tree never hold a node twice.
    pub nodes: Vec<Box<Node<'r>>>,
    /// How many distinct paths lead from the first step to an end.
    pub paths: u64,
    /// `x-rollback`: at an end the policy covers, the steps that succeeded on the way are
    /// undone, newest first.
    pub rollback: &'static str,
    /// The first step's node; `None` for a runbook without steps.
    pub root: Option<usize>,
    /// The undo of each step that has one (`x-undo`), in document order.
    pub undos: Vec<UndoPreview>,
    /// Parameters with neither a value nor a default: unknown all along.
    pub unknown_parameters: Vec<String>,
    /// Steps whose action a dry-run cannot describe, and why.
    pub unpreviewable: Vec<Unpreviewable>,
}

#[derive(Debug, Serialize)]
pub struct UndoPreview {
    pub action: String,
    pub step: String,
    pub undo: String,
}

/// The most nodes a dry-run explores. Each step that can fail and writes a variable can double
/// the distinct states: 18 such steps once made a 3 KB runbook take 2 GB.
pub const MAX_NODES: usize = 10_000;

#[derive(Debug, Serialize)]
pub struct Unpreviewable {
    pub action: String,
    pub reason: String,
    pub step: String,
}

/// One step reached with one set of known values. A runbook's every step has one at least,
/// so it keeps what most nodes have and boxes the rest.
#[derive(Debug)]
pub struct Node<'r> {
    source: &'r Step,
    /// The inputs rendered as far as known where a reference could change them, or redacted;
    /// `None`: as the step has them.
    rendered: Option<Map<String, Value>>,
    /// Boxed rather than a `Vec`: a node's links are all made when its step is entered.
    pub next: Box<[Link]>,
    /// Where `onCancel` leads: a step name, or `abort`.
    pub on_cancel: &'r str,
    /// Paths from here to an end.
    pub paths: u64,
    /// What the step would do.
    pub would: String,
    rare: Option<Box<Rare<'r>>>,
}

/// What few nodes have.
#[derive(Debug, Default)]
struct Rare<'r> {
    in_loop: Option<&'r str>,
    mocked: Map<String, Value>,
    read: Option<String>,
    unknown: Vec<String>,
}

impl<'r> Node<'r> {
    pub fn step(&self) -> &'r str {
        &self.source.name
    }

    pub fn action(&self) -> &'r str {
        &self.source.action
    }

    /// The step's inputs as far as known.
    pub fn inputs(&self) -> &Map<String, Value> {
        self.rendered.as_ref().unwrap_or(&self.source.inputs)
    }

    /// Inside a loop body: the loop.
    pub fn in_loop(&self) -> Option<&'r str> {
        self.rare.as_ref().and_then(|rare| rare.in_loop)
    }

    /// Outputs taken from mocks, or selected from a read-only call's real response.
    pub fn mocked(&self) -> Option<&Map<String, Value>> {
        self.rare.as_ref().map(|rare| &rare.mocked).filter(|mocked| !mocked.is_empty())
    }

    /// In a read-only dry-run, what the call made for real returned (or why none was made).
    pub fn read(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|rare| rare.read.as_deref())
    }

    /// References whose values only a real run has.
    pub fn unknown(&self) -> &[String] {
        self.rare.as_ref().map_or(&[], |rare| &rare.unknown)
    }
}

/// The fields in alphabetical order, as every struct of the tree has them.
impl Serialize for Node<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let read = self.read();
        let mut node = serializer.serialize_struct("Node", 10 + usize::from(read.is_some()))?;
        node.serialize_field("action", self.action())?;
        node.serialize_field("in_loop", &self.in_loop())?;
        node.serialize_field("inputs", self.inputs())?;
        node.serialize_field("mocked", self.mocked().unwrap_or(&Map::new()))?;
        node.serialize_field("next", &self.next)?;
        node.serialize_field("on_cancel", self.on_cancel)?;
        node.serialize_field("paths", &self.paths)?;
        match read {
            Some(read) => node.serialize_field("read", read)?,
            None => node.skip_field("read")?,
        }
        node.serialize_field("step", self.step())?;
        node.serialize_field("unknown", self.unknown())?;
        node.serialize_field("would", &self.would)?;
        node.end()
    }
}

/// A way on from a node.
#[derive(Debug, Serialize)]
pub struct Link {
    /// `next`, `choice[0]`, `default`, `on_failure`, `continue`, `loop_body`, `loop_exit`...
    pub label: Cow<'static, str>,
    pub to: Target,
    /// When it is taken: `if ... (unknown)`, `if the step fails`.
    pub when: Cow<'static, str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node(usize),
    /// The run ends, with this final status.
    End {
        reason: Cow<'static, str>,
        #[serde(serialize_with = "status_text")]
        status: Status,
    },
    /// Not explored: the dry-run's budget of nodes ([`MAX_NODES`]) was spent.
    Unexplored,
}

fn status_text<S: serde::Serializer>(status: &Status, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(status.as_str())
}

/// Known values along one path.
#[derive(Clone, Debug, Default, Serialize)]
struct State {
    outputs: BTreeMap<String, BTreeMap<String, Value>>,
    /// Variables with a known value; the others are unknown.
    variables: BTreeMap<String, Value>,
    /// A critical step failed on this path: the run ends Failed.
    failed: bool,
}

/// Dry-runs a plan with bound parameters and mocked outputs. The tree comes back redacted:
/// the values of `x-secret` parameters (and of decrypted secrets a read-only call saw) never
/// reach it, whatever it is printed as.
pub fn dry_run<'r>(plan: &Plan<'r>, bound: &Bound, mocks: &Mocks) -> Tree<'r> {
    dry_run_with(plan, bound, mocks, None)
}

/// [`dry_run`] where API steps whose operation only reads are called for real through
/// `reader`, so outputs and branches see real values; nothing that could change is called.
pub fn dry_run_with<'r>(plan: &Plan<'r>, bound: &Bound, mocks: &Mocks, reader: Option<&Reader<'_>>) -> Tree<'r> {
    let mut state = State::default();
    for variable in &plan.runbook.variables {
        state.variables.insert(variable.name.clone(), variable.default.clone().unwrap_or(Value::Null));
    }
    let secrets = plan.runbook.secret_values(bound.known());
    let mut explorer = Explorer {
        plan,
        bound,
        mocks,
        reader,
        // A node per step at least, sized once: grown by doubling, each smaller copy's memory
        // stayed behind (the allocator keeps freed memory a while).
        nodes: Vec::with_capacity(plan.graph.node_count()),
        pending: Vec::new(),
        memo: HashMap::with_capacity(plan.graph.node_count()),
        states: HashMap::new(),
        unpreviewable: BTreeMap::new(),
        redactor: Redactor::new(secrets),
        budget_spent: false,
    };
    let root = plan.entry().map(|entry| explorer.walk(entry, Rc::new(state), None));
    let paths = root.map_or(0, |root| explorer.nodes[root].paths);
    let redactor = explorer.redactor;
    if !redactor.is_empty() {
        for node in &mut explorer.nodes {
            let mut inputs = Value::Object(node.inputs().clone());
            if redactor.value_in_place(&mut inputs)
                && let Value::Object(inputs) = inputs
            {
                node.rendered = Some(inputs);
            }
            redactor.text_in_place(&mut node.would);
            if let Some(rare) = &mut node.rare {
                rare.mocked.values_mut().for_each(|value| {
                    redactor.value_in_place(value);
                });
                if let Some(read) = &mut rare.read {
                    redactor.text_in_place(read);
                }
            }
            // A condition is written out only for a branch; the other texts are constants.
            for link in &mut node.next {
                if let Cow::Owned(when) = &mut link.when {
                    redactor.text_in_place(when);
                }
            }
        }
        for (_, reason) in explorer.unpreviewable.values_mut() {
            redactor.text_in_place(reason);
        }
    }
    let budget_spent = explorer.budget_spent;
    Tree {
        root,
        paths,
        budget_spent,
        unknown_parameters: bound.parameters.iter().filter(|b| !b.is_known()).map(|b| b.name.clone()).collect(),
        unpreviewable: explorer
            .unpreviewable
            .into_iter()
            .map(|(step, (action, reason))| Unpreviewable { step, action, reason })
            .collect(),
        nodes: explorer.nodes,
        rollback: plan.runbook.rollback.as_str(),
        undos: plan
            .runbook
            .all_steps()
            .into_iter()
            .filter_map(|step| {
                let undo = step.undo.as_deref()?;
                Some(UndoPreview { step: step.name.clone(), undo: undo.name.clone(), action: undo.action.clone() })
            })
            .collect(),
    }
}

struct Explorer<'p, 'r> {
    plan: &'p Plan<'r>,
    bound: &'p Bound,
    mocks: &'p Mocks,
    reader: Option<&'p Reader<'p>>,
    #[expect(clippy::vec_box, reason = "a node is boxed while explored; the tree takes the box, not a copy")]
    nodes: Vec<Box<Node<'r>>>,
    /// The ways the open visits have still to follow, each visit's above those of the visit
    /// below it, last first. Ways that end the run are linked when their step is entered.
    pending: Vec<Pending>,
    /// The node of each step reached within a loop (or not) with a state, by the state's number.
    memo: HashMap<(StepId, Option<StepId>, u32), usize>,
    /// Each distinct state seen, as JSON, numbered.
    states: HashMap<String, u32>,
    unpreviewable: BTreeMap<String, (String, String)>,
    /// Secret parameters, and secrets read-only calls returned: redacted from the tree.
    redactor: Redactor,
    budget_spent: bool,
}

struct DryScope<'a> {
    plan: &'a Plan<'a>,
    bound: &'a Bound,
    state: &'a State,
}

impl Scope for DryScope<'_> {
    fn lookup(&self, reference: Reference<'_>) -> Lookup<'_> {
        match reference {
            Reference::Parameter(name) => match self.bound.get(name) {
                Some(binding) if binding.is_known() => Lookup::Known(Cow::Borrowed(&binding.value)),
                Some(_) => Lookup::Unknown,
                None => Lookup::Missing,
            },
            Reference::StepOutput { step, output } => match self.state.outputs.get(step).and_then(|o| o.get(output)) {
                Some(value) => Lookup::Known(Cow::Borrowed(value)),
                None if step == "Loop" || self.plan.find(step).is_some() => Lookup::Unknown,
                None => Lookup::Missing,
            },
            Reference::Variable(name) => match self.state.variables.get(name) {
                Some(value) => Lookup::Known(Cow::Borrowed(value)),
                None if self.plan.runbook.variable(name).is_some() => Lookup::Unknown,
                None => Lookup::Missing,
            },
            Reference::Global(_) | Reference::Automation(_) | Reference::Ssm(_) => Lookup::Unknown,
        }
    }
}

impl<'p, 'r> Explorer<'p, 'r> {
    fn scope<'a>(&'a self, state: &'a State) -> DryScope<'a> {
        DryScope { plan: self.plan, bound: self.bound, state }
    }

    /// Whether the budget of nodes is spent (and noted so).
    fn spend(&mut self) -> bool {
        if self.nodes.len() >= MAX_NODES {
            self.budget_spent = true;
        }
        self.budget_spent
    }

    /// Explores from step `id` and returns its node. Paths can be as long as the runbook, so
    /// the walk keeps its own stack of the steps under exploration, each with the ways on it
    /// has still to follow, in order; a node is made when all its ways are followed.
    fn walk(&mut self, id: StepId, state: Rc<State>, within: Option<StepId>) -> usize {
        let mut stack = match self.enter(id, &state, within) {
            Ok(node) => return node,
            Err(visit) => {
                // As deep as the longest path, at most: memory never written is not taken.
                let mut stack = Vec::with_capacity(self.plan.graph.node_count());
                stack.push(visit);
                stack
            }
        };
        // The node of the last visit finished, for the link of the visit below it.
        let mut finished: Option<usize> = None;
        loop {
            let top = stack.last_mut().expect("the walk returns when its stack empties");
            if let Some(node) = finished.take() {
                let slot = top.waiting.take().expect("a visit waits for the node it entered");
                top.node.next[slot].to = Target::Node(node);
            }
            let way = if self.pending.len() > top.ways_from { self.pending.pop() } else { None };
            let Some(way) = way else {
                let visit = stack.pop().expect("the top was there");
                let node = self.finish(visit);
                if stack.is_empty() {
                    return node;
                }
                finished = Some(node);
                continue;
            };
            // With the budget spent, the link stays `Unexplored`.
            if !self.spend() {
                top.waiting = Some(way.slot);
                match self.enter(way.step, &way.state, way.within) {
                    Ok(node) => finished = Some(node),
                    Err(visit) => stack.push(visit),
                }
            }
        }
    }

    /// A step reached with `state`: its node if one was made for the same state, or a visit
    /// with what is known of it and the ways on from it.
    fn enter(&mut self, id: StepId, state: &Rc<State>, within: Option<StepId>) -> Result<usize, Visit<'r>> {
        let json = serde_json::to_string(&**state).unwrap_or_default();
        let count = self.states.len() as u32;
        let key = (id, within, *self.states.entry(json).or_insert(count));
        if let Some(&node) = self.memo.get(&key) {
            return Ok(node);
        }
        let step = self.plan.step(id);
        let preview = self.plan.preview(id, &self.scope(state));
        if let Some(error) = &preview.error {
            self.unpreviewable.insert(step.name.clone(), (step.action.clone(), error.clone()));
        }
        let would = match actions::describe(step, &preview.inputs) {
            Ok(would) => would,
            Err(reason) => {
                self.unpreviewable.insert(step.name.clone(), (step.action.clone(), reason.clone()));
                reason
            }
        };
        let kind = actions::kind_of(&step.action);
        let (mut mocked, read) = self.read_for_real(step, kind, &preview.inputs, &preview.unknown);
        mocked.extend(self.mocks.get(&step.name).cloned().unwrap_or_default());
        let on_cancel = match self.plan.successor(id, Outcome::Cancelled) {
            Next::Step { step, .. } => self.plan.step(step).name.as_str(),
            _ => "abort",
        };
        // Success: the state gains the mocked outputs and the step's effects.
        let success = if mocked.is_empty() && kind != Kind::Variable {
            Rc::clone(state)
        } else {
            let mut success = (**state).clone();
            if !mocked.is_empty() {
                success.outputs.insert(step.name.clone(), mocked.clone().into_iter().collect());
            }
            if kind == Kind::Variable {
                self.update_variable(step, &preview.inputs, &preview.unknown, &mut success);
            }
            Rc::new(success)
        };
        let outcomes = if kind == Kind::Loop { Vec::new() } else { self.success_outcomes(step, kind, state) };
        let mut ways = Vec::with_capacity(outcomes.len().max(1) + 1);
        if kind == Kind::Loop {
            ways.push(self.loop_way(id, step, state));
        }
        for (outcome, when) in outcomes {
            let next = self.plan.successor(id, outcome);
            let (label, state) = (label_of(next, outcome), Rc::clone(&success));
            ways.push(Way { label, when, toward: Toward::Next(next), state, within, outcome });
        }
        // Failure: explored like any other path.
        let failed = match step.effective_is_critical() && !state.failed {
            true => Rc::new(State { failed: true, ..(**state).clone() }),
            false => Rc::clone(state),
        };
        let next = self.plan.successor(id, Outcome::Failed);
        ways.push(Way {
            label: label_of(next, Outcome::Failed),
            when: "if the step fails".into(),
            toward: Toward::Next(next),
            state: failed,
            within,
            outcome: Outcome::Failed,
        });
        // Inputs without a reference are shown as written: the node borrows them instead of
        // keeping the copy rendered (a loop's rendered inputs leave its body out).
        let mut templated = kind == Kind::Loop || preview.error.is_some();
        step.visit_input_templates(|_, _| templated = true);
        let rendered = match preview.inputs {
            Value::Object(inputs) if templated => Some(inputs),
            _ => None,
        };
        let in_loop = within.map(|loop_id| self.plan.step(loop_id).name.as_str());
        let rare = (in_loop.is_some() || !mocked.is_empty() || read.is_some() || !preview.unknown.is_empty())
            .then(|| Box::new(Rare { in_loop, mocked, read, unknown: preview.unknown }));
        let mut node =
            Box::new(Node { source: step, rendered, would, rare, on_cancel, next: Box::default(), paths: 0 });
        // A link per way, in order: an end is known now; a step's node is filled in when the
        // way is followed, which is from the end.
        let ways_from = self.pending.len();
        let mut next = Vec::with_capacity(ways.len());
        for way in ways {
            let to = match self.route(&way) {
                Route::End(target) => target,
                Route::Step(step, within) => {
                    self.pending.push(Pending { slot: next.len(), step, within, state: way.state });
                    Target::Unexplored
                }
            };
            next.push(Link { label: way.label, when: way.when, to });
        }
        node.next = next.into_boxed_slice();
        self.pending[ways_from..].reverse();
        Err(Visit { key, node, ways_from, waiting: None })
    }

    /// A visit whose ways are all followed becomes a node.
    fn finish(&mut self, visit: Visit<'r>) -> usize {
        let mut node = visit.node;
        node.paths = node
            .next
            .iter()
            .map(|link| match link.to {
                Target::Node(next) => self.nodes[next].paths,
                Target::End { .. } | Target::Unexplored => 1,
            })
            .fold(0u64, u64::saturating_add);
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.memo.insert(visit.key, index);
        index
    }

    /// In a read-only dry-run, an API step's call made for real when its operation only reads
    /// and its inputs are known: the outputs selected from the response, and what happened.
    fn read_for_real(
        &mut self,
        step: &Step,
        kind: Kind,
        inputs: &Value,
        unknown: &[String],
    ) -> (Map<String, Value>, Option<String>) {
        let Some(reader) = self.reader else { return (Map::new(), None) };
        let Kind::Api { property } = kind else { return (Map::new(), None) };
        let Some(inputs) = inputs.as_object() else { return (Map::new(), None) };
        let Ok((service, api, params)) = actions::api::split(inputs) else { return (Map::new(), None) };
        match crate::aws::resolve(&service, &api) {
            Ok((model, operation)) if model.operations[&operation].read_only() => {}
            Ok((_, operation)) => return (Map::new(), Some(format!("not called: {operation} could change something"))),
            Err(error) => return (Map::new(), Some(format!("not called: {error}"))),
        }
        if !unknown.is_empty() {
            return (Map::new(), Some(format!("not called: {} unknown until run", unknown.join(", "))));
        }
        let response = match reader(&service, &api, &params) {
            Ok(response) => response,
            Err(error) => return (Map::new(), Some(format!("called for real: {error}"))),
        };
        // A decrypted value is a secret: it may decide a branch, but it is never shown.
        self.redactor.extend(crate::aws::sensitive_values(&service, &api, &response));
        let mut read = format!("called for real: HTTP {}", response["ResponseMetadata"]["HTTPStatusCode"]);
        if property {
            match actions::api::property_matches(inputs, &response) {
                Ok((true, found)) => read.push_str(&format!("; the property is {found}, as desired")),
                Ok((false, found)) => read.push_str(&format!("; the property is {found}, not as desired now")),
                Err(_) => {}
            }
        }
        let outputs = outputs::step_outputs(&step.outputs, &response).unwrap_or_default();
        (outputs, Some(read))
    }

    /// The success outcomes a step may have, each with when it happens.
    fn success_outcomes(&self, step: &Step, kind: Kind, state: &State) -> Vec<(Outcome, Cow<'static, str>)> {
        if kind != Kind::Branch {
            return vec![(Outcome::Succeeded, "if the step succeeds".into())];
        }
        let config = template::config_for(self.plan.runbook);
        let scope = self.scope(state);
        let mut outcomes = Vec::new();
        let choices = step.inputs.get("Choices").and_then(Value::as_array).cloned().unwrap_or_default();
        for (index, choice) in choices.iter().enumerate() {
            let holds = branch::evaluate(choice, &mut |leaf| match template::render(leaf, &scope, config) {
                Ok(rendered) if rendered.unknown.is_empty() => Ok(Some(rendered.value)),
                _ => Ok(None),
            });
            let condition = describe_condition(choice);
            match holds {
                Ok(Some(true)) => {
                    outcomes.push((Outcome::Chose(index), format!("because {condition}").into()));
                    return outcomes;
                }
                Ok(Some(false)) => {}
                Ok(None) => {
                    outcomes.push((Outcome::Chose(index), format!("if {condition} (unknown until run)").into()))
                }
                // A comparison that fails at run time fails the step: the failure link covers it.
                Err(_) => {}
            }
        }
        outcomes.push((Outcome::NoChoice, "if no choice holds".into()));
        outcomes
    }

    fn update_variable(&self, step: &Step, inputs: &Value, unknown: &[String], state: &mut State) {
        let Some(name) = update_variable::target(step) else { return };
        match inputs.get("Value") {
            Some(value) if unknown.is_empty() => {
                state.variables.insert(name.to_owned(), value.clone());
            }
            _ => {
                state.variables.remove(name);
            }
        }
    }

    /// A loop: its body, explored once with the iteration's values unknown, then the exit.
    fn loop_way(&self, id: StepId, step: &Step, state: &State) -> Way<'r> {
        let mut body_state = state.clone();
        // Variables the body writes change from one iteration to the next.
        for body_step in &step.body {
            if actions::kind_of(&body_step.action) == Kind::Variable
                && let Some(name) = update_variable::target(body_step)
            {
                body_state.variables.remove(name);
            }
        }
        let state = Rc::new(body_state);
        match self.plan.node(id).body_entry {
            Some(body) => Way {
                label: "loop_body".into(),
                when: "each iteration".into(),
                toward: Toward::Body(body),
                state,
                within: Some(id),
                outcome: Outcome::Succeeded,
            },
            None => Way {
                label: "loop_exit".into(),
                when: "after the last iteration".into(),
                toward: Toward::Next(self.plan.successor(id, Outcome::Succeeded)),
                state,
                within: None,
                outcome: Outcome::Succeeded,
            },
        }
    }

    /// Where a way leads, by the plan alone.
    fn route(&self, way: &Way<'r>) -> Route {
        let next = match way.toward {
            Toward::Body(body) => return Route::Step(body, way.within),
            Toward::Next(next) => next,
        };
        let (mut next, mut within, mut outcome) = (next, way.within, way.outcome);
        loop {
            return match next {
                Next::Step { step, .. } => {
                    let leaves = within.is_some() && self.plan.node(step).parent != within;
                    Route::Step(step, if leaves { None } else { within })
                }
                Next::End(reason) => match within {
                    // The iteration ends; after the last one the loop goes on.
                    Some(loop_id) => {
                        (next, within, outcome) =
                            (self.plan.successor(loop_id, Outcome::Succeeded), None, Outcome::Succeeded);
                        continue;
                    }
                    None => Route::End(Target::End {
                        status: if way.state.failed { Status::Failed } else { Status::Success },
                        reason: reason.as_str().into(),
                    }),
                },
                Next::Abort => Route::End(Target::End {
                    status: if outcome == Outcome::TimedOut { Status::TimedOut } else { Status::Failed },
                    reason: "onFailure: Abort".into(),
                }),
                Next::Cancel => Route::End(Target::End { status: Status::Cancelled, reason: "onCancel: Abort".into() }),
                Next::Unknown { name, .. } => {
                    let reason = format!("no step named `{name}`").into();
                    Route::End(Target::End { status: Status::Failed, reason })
                }
            };
        }
    }
}

/// A step under exploration: its node so far, and the ways on from it still to follow. A
/// path as long as the runbook has as many visits open: the node is boxed, so the stack of
/// them stays small.
struct Visit<'r> {
    key: (StepId, Option<StepId>, u32),
    node: Box<Node<'r>>,
    /// Where its ways start in [`Explorer::pending`].
    ways_from: usize,
    /// The link (by index) of the way whose step is being explored above this visit.
    waiting: Option<usize>,
}

/// Where a way leads.
enum Route {
    End(Target),
    /// A step, in the loop whose body it is in.
    Step(StepId, Option<StepId>),
}

/// A way on from a step, and the values known along it.
struct Way<'r> {
    label: Cow<'static, str>,
    when: Cow<'static, str>,
    toward: Toward<'r>,
    state: Rc<State>,
    /// The loop whose body the step is in.
    within: Option<StepId>,
    outcome: Outcome,
}

/// A way to a step, waiting on [`Explorer::pending`] to be followed.
struct Pending {
    /// Its link in the node of the step it leaves.
    slot: usize,
    step: StepId,
    /// The loop whose body the step is in.
    within: Option<StepId>,
    state: Rc<State>,
}

enum Toward<'r> {
    /// Where the plan goes on an outcome.
    Next(Next<'r>),
    /// A loop's first body step, entered with the loop as `within`.
    Body(StepId),
}

fn label_of(next: Next<'_>, outcome: Outcome) -> Cow<'static, str> {
    match next {
        Next::Step { label, .. } => label.text(),
        _ if matches!(outcome, Outcome::Failed | Outcome::TimedOut) => "on_failure".into(),
        _ => "end".into(),
    }
}

/// The tree as text, written as it is rendered: one block per node, links indented under it,
/// shared nodes shown once.
pub fn write_text(tree: &Tree, name: &str, out: &mut impl Write) -> io::Result<()> {
    let rollback = crate::document::model::Rollback::parse(tree.rollback).unwrap_or_default();
    let at_least = if tree.budget_spent { "at least " } else { "" };
    writeln!(
        out,
        "Dry-run of {name}: {at_least}{} possible path{}",
        tree.paths,
        if tree.paths == 1 { "" } else { "s" }
    )?;
    if tree.budget_spent {
        writeln!(
            out,
            "Exploring stopped after {MAX_NODES} steps (the dry-run's budget): ways marked `not explored` go on \
             past it."
        )?;
    }
    if !tree.unknown_parameters.is_empty() {
        writeln!(out, "Unknown parameters (no value, no default): {}", tree.unknown_parameters.join(", "))?;
    }
    writeln!(out)?;
    let Some(root) = tree.root else {
        return writeln!(out, "(no steps)");
    };
    let mut shown = BTreeSet::new();
    write_node(tree, root, 0, rollback, &mut shown, out)?;
    if !tree.unpreviewable.is_empty() {
        writeln!(out, "\nCannot be previewed:")?;
        for item in &tree.unpreviewable {
            writeln!(out, "  {} ({}): {}", item.step, item.action, item.reason)?;
        }
    }
    if !tree.undos.is_empty() {
        write!(
            out,
            "\nRollback (x-rollback: {}): {}, the steps that succeeded are undone, newest first; `runbook undo ID` \
             does it on demand:\n",
            tree.rollback,
            rollback.when()
        )?;
        for undo in &tree.undos {
            writeln!(out, "  {} → {} ({})", undo.step, undo.undo, undo.action)?;
        }
    }
    Ok(())
}

fn write_node(
    tree: &Tree,
    root: usize,
    root_depth: usize,
    rollback: crate::document::model::Rollback,
    shown: &mut BTreeSet<usize>,
    out: &mut impl Write,
) -> io::Result<()> {
    // An explicit stack: a path can be as long as the runbook.
    enum Item {
        Node(usize, usize),
        Line(String),
    }
    let mut stack = vec![Item::Node(root, root_depth)];
    while let Some(item) = stack.pop() {
        let (index, depth) = match item {
            Item::Line(line) => {
                out.write_all(line.as_bytes())?;
                continue;
            }
            Item::Node(index, depth) => (index, depth),
        };
        let pad = "  ".repeat(depth);
        let node = &tree.nodes[index];
        if !shown.insert(index) {
            writeln!(out, "{pad}↪ {} (as shown above)", node.step())?;
            continue;
        }
        writeln!(out, "{pad}● {} ({})", node.step(), node.action())?;
        writeln!(out, "{pad}  would {}", node.would)?;
        if !node.unknown().is_empty() {
            writeln!(out, "{pad}  unknown until run: {}", node.unknown().join(", "))?;
        }
        if let Some(read) = node.read() {
            writeln!(out, "{pad}  {read}")?;
        }
        if let Some(mocked) = node.mocked() {
            let kind = if node.read().is_some_and(|r| r.starts_with("called")) { "outputs" } else { "mocked outputs" };
            writeln!(out, "{pad}  {kind}: {}", Value::Object(mocked.clone()))?;
        }
        if node.on_cancel != "abort" {
            writeln!(out, "{pad}  on cancel: {}", node.on_cancel)?;
        }
        // Ends first; then the one certain way on stays at this depth, and forks indent.
        for link in &node.next {
            match &link.to {
                Target::End { status, reason } => {
                    let status = status.as_str();
                    let then =
                        if rollback.applies(status) && !tree.undos.is_empty() { ", then rolls back" } else { "" };
                    writeln!(out, "{pad}  {} [{}] → end: {status} ({reason}){then}", link.when, link.label)?;
                }
                Target::Unexplored => {
                    writeln!(out, "{pad}  {} [{}] → not explored (budget spent)", link.when, link.label)?;
                }
                Target::Node(_) => {}
            }
        }
        let ways: Vec<(&Link, usize)> = node
            .next
            .iter()
            .filter_map(|link| match link.to {
                Target::Node(next) => Some((link, next)),
                Target::End { .. } | Target::Unexplored => None,
            })
            .collect();
        let forks = ways.len() > 1;
        for (link, next) in ways.into_iter().rev() {
            if forks {
                stack.push(Item::Node(next, depth + 2));
                stack.push(Item::Line(format!("{pad}  {} [{}] →\n", link.when, link.label)));
            } else {
                stack.push(Item::Node(next, depth));
            }
        }
    }
    Ok(())
}

/// The tree as JSON, with the runbook's name, written as it is serialized. The fields of
/// every struct of the tree are declared in alphabetical order, so keys come out sorted.
pub fn write_json(tree: &Tree, name: &str, writer: impl Write) -> serde_json::Result<()> {
    #[derive(Serialize)]
    struct Document<'a> {
        runbook: &'a str,
        tree: &'a Tree<'a>,
    }
    serde_json::to_writer_pretty(writer, &Document { runbook: name, tree })
}
