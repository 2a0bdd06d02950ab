//! `runbook test --scaffold`: a scenario file written from a runbook's plan. The first
//! scenario takes the way every step succeeds; then, for each edge no scenario takes yet, one
//! scenario reaches it by the shortest way, takes it, and goes on succeeding. Each scenario
//! mocks the steps on its path (placeholder outputs by declared type, a failure where a
//! failure edge is taken, a cancel where an onCancel edge is), sets the values a branch choice
//! needs where the condition reads a parameter or a step output directly, answers approvals,
//! and expects the path the plan says. The author reviews the values marked TODO.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::{Map, Value, json};

use super::coverage::{self, Edge};
use crate::actions::{self, Kind};
use crate::document::model::{Runbook, Shape, Step};
use crate::plan::{Label, Next, Outcome, Plan, StepId};
use crate::template::{self, Reference};
use crate::validate::Supplied;

/// The placeholder text of a value the author fills in.
pub const TODO: &str = "TODO";

/// One planned scenario.
#[derive(Debug, Default)]
struct Planned {
    name: String,
    path: Vec<String>,
    status: &'static str,
    /// Step -> mock (outputs, error or cancel), in path order.
    mocks: Vec<(String, Value)>,
    parameters: Map<String, Value>,
    answers: BTreeMap<String, &'static str>,
    edges: HashSet<Edge>,
}

/// The scenario file for a runbook, as YAML text; `runbook` is how the file names it.
pub fn scaffold(runbook_name: &str, runbook: &Runbook, plan: &Plan<'_>) -> String {
    let mut covered: HashSet<Edge> = HashSet::new();
    let mut scenarios: Vec<Planned> = Vec::new();
    let add = |planned: Option<Planned>, covered: &mut HashSet<Edge>, scenarios: &mut Vec<Planned>| {
        if let Some(planned) = planned
            && !planned.edges.is_subset(covered)
        {
            covered.extend(planned.edges.iter().copied());
            scenarios.push(planned);
        }
    };
    if let Some(first) = simulate(runbook, plan, &HashMap::new(), "every step succeeds".to_owned()) {
        covered.extend(first.edges.iter().copied());
        scenarios.push(first);
    }
    for edge in coverage::all(plan) {
        if covered.contains(&edge) {
            continue;
        }
        let (from, to, label) = edge;
        let Some(outcome) = outcome_of(label) else { continue };
        let Some(mut forced) = route(plan, StepId::new(from)) else { continue };
        forced.insert(StepId::new(from), outcome);
        let name = format!("{} -[{label}]-> {}", plan.step(StepId::new(from)).name, plan.step(StepId::new(to)).name);
        add(simulate(runbook, plan, &forced, name), &mut covered, &mut scenarios);
    }
    render(runbook_name, runbook, plan, &scenarios)
}

/// The outcome that takes an edge with this label (a loop's body edge is taken by running it).
fn outcome_of(label: Label) -> Option<Outcome> {
    Some(match label {
        Label::Next | Label::LoopExit => Outcome::Succeeded,
        Label::Choice(i) => Outcome::Chose(i),
        Label::Default | Label::Fallthrough => Outcome::NoChoice,
        Label::OnFailure | Label::Continue => Outcome::Failed,
        Label::OnCancel => Outcome::Cancelled,
        Label::LoopBody => return None,
    })
}

/// The outcomes that lead from the first step to `target` by the fewest steps.
fn route(plan: &Plan<'_>, target: StepId) -> Option<HashMap<StepId, Outcome>> {
    let entry = plan.entry()?;
    let mut came: HashMap<StepId, (StepId, Label)> = HashMap::new();
    let mut queue = VecDeque::from([entry]);
    let mut seen = HashSet::from([entry]);
    while let Some(id) = queue.pop_front() {
        if id == target {
            break;
        }
        for (to, edge) in plan.edges_from(id) {
            if seen.insert(to) {
                came.insert(to, (id, edge.label));
                queue.push_back(to);
            }
        }
    }
    if !seen.contains(&target) {
        return None;
    }
    let mut forced = HashMap::new();
    let mut at = target;
    while let Some(&(from, label)) = came.get(&at) {
        if let Some(outcome) = outcome_of(label) {
            forced.insert(from, outcome);
        }
        at = from;
    }
    Some(forced)
}

/// How a list of steps ended in the simulation.
enum End {
    Completed,
    Aborted,
    Cancelled,
    ExitTo(StepId),
}

struct Simulation<'p, 'r> {
    runbook: &'p Runbook,
    plan: &'p Plan<'r>,
    forced: &'p HashMap<StepId, Outcome>,
    planned: Planned,
    cancelling: bool,
    critical_failure: bool,
    visits: usize,
    /// What branch choices need of values: `Param` or `step.Output`, operator, operand, and
    /// whether the comparison must hold.
    pinned: Vec<(String, String, Value, bool)>,
}

/// The run the plan says happens when the forced steps have their outcomes and every other
/// step succeeds (a branch takes its default); `None` when it goes round in circles.
fn simulate(runbook: &Runbook, plan: &Plan<'_>, forced: &HashMap<StepId, Outcome>, name: String) -> Option<Planned> {
    let mut simulation = Simulation {
        runbook,
        plan,
        forced,
        planned: Planned { name, ..Planned::default() },
        cancelling: false,
        critical_failure: false,
        visits: 0,
        pinned: Vec::new(),
    };
    let end = match plan.entry() {
        Some(entry) => simulation.walk(entry, 0, None)?,
        None => End::Completed,
    };
    simulation.planned.status = match end {
        End::Cancelled => "Cancelled",
        End::Aborted => "Failed",
        _ if simulation.cancelling => "Cancelled",
        _ if simulation.critical_failure => "Failed",
        _ => "Success",
    };
    simulation.apply_pins(runbook);
    Some(simulation.planned)
}

impl Simulation<'_, '_> {
    fn walk(&mut self, start: StepId, iteration: u32, within: Option<StepId>) -> Option<End> {
        let mut current = start;
        loop {
            self.visits += 1;
            if self.visits > 4 * self.plan.graph.node_count() + 100 {
                return None;
            }
            let step = self.plan.step(current);
            self.planned.path.push(super::entry(&step.name, iteration));
            let outcome = if self.plan.node(current).is_loop() {
                let mut exit = None;
                if let Some(entry) = self.plan.node(current).body_entry {
                    self.planned.edges.insert((current.index(), entry.index(), Label::LoopBody));
                    for body_iteration in 1..=iterations(self.runbook, step) {
                        match self.walk(entry, body_iteration, Some(current))? {
                            End::Completed => {}
                            End::ExitTo(target) => {
                                exit = Some(target);
                                break;
                            }
                            other => return Some(other),
                        }
                    }
                }
                // A jump out of the body ends the loop Exited; the walk goes on there.
                if let Some(target) = exit {
                    current = target;
                    continue;
                }
                Outcome::Succeeded
            } else {
                self.visit(current, step)
            };
            match self.plan.successor(current, outcome) {
                Next::Step { step: to, label } => {
                    self.planned.edges.insert((current.index(), to.index(), label));
                    if within.is_some() && self.plan.node(to).parent != within {
                        return Some(End::ExitTo(to));
                    }
                    current = to;
                }
                Next::End(_) if self.cancelling && within.is_none() => return Some(End::Cancelled),
                Next::End(_) => return Some(End::Completed),
                Next::Abort => return Some(End::Aborted),
                Next::Cancel => return Some(End::Cancelled),
                Next::Unknown { .. } => return Some(End::Aborted),
            }
        }
    }

    /// A step that is not a loop: its outcome, with the mock or answer it needs.
    fn visit(&mut self, id: StepId, step: &Step) -> Outcome {
        let kind = actions::kind_of(&step.action);
        let default = if kind == Kind::Branch { Outcome::NoChoice } else { Outcome::Succeeded };
        let mut outcome = self.forced.get(&id).copied().unwrap_or(default);
        // A cancel is handled once; on the cancellation path steps run on.
        if outcome == Outcome::Cancelled && self.cancelling {
            outcome = default;
        }
        let mock = match outcome {
            Outcome::Failed | Outcome::TimedOut => {
                if step.effective_is_critical() {
                    self.critical_failure = true;
                }
                Some(json!({"error": {"code": "ScenarioError", "message": "a failure on purpose"}}))
            }
            Outcome::Cancelled => {
                self.cancelling = true;
                Some(json!({"cancel": true}))
            }
            Outcome::Chose(choice) => {
                self.pin_choice(step, choice);
                None
            }
            Outcome::NoChoice if kind == Kind::Branch => {
                self.pin_no_choice(step);
                None
            }
            _ => success_mock(step),
        };
        if actions::has(&step.action, |action| action.asks_person.is_some()) && outcome == Outcome::Succeeded {
            self.planned.answers.insert(step.name.clone(), "approve");
        }
        if let Some(mock) = mock {
            match self.planned.mocks.iter_mut().find(|(name, _)| *name == step.name) {
                // Visited again with another outcome: keep the first (the author refines it
                // with `attempts`).
                Some(_) => {}
                None => self.planned.mocks.push((step.name.clone(), mock)),
            }
        }
        outcome
    }

    /// Values that make choice `choice` of a branch hold (where a leaf reads one value).
    fn pin_choice(&mut self, step: &Step, choice: usize) {
        let choices = step.inputs.get("Choices").and_then(Value::as_array);
        if let Some(condition) = choices.and_then(|choices| choices.get(choice)) {
            for (reference, operator, operand) in leaves(self.runbook, condition, true) {
                self.pinned.push((reference, operator, operand, true));
            }
        }
    }

    /// Values that make no choice of a branch hold.
    fn pin_no_choice(&mut self, step: &Step) {
        for choice in step.inputs.get("Choices").and_then(Value::as_array).into_iter().flatten() {
            if let Some((reference, operator, operand)) = leaves(self.runbook, choice, false).into_iter().next() {
                self.pinned.push((reference, operator, operand, false));
            }
        }
    }

    /// Values for what the branches need, into the parameters and the step mocks that produce
    /// them: for each value, the first candidate that meets every need (and, for a parameter,
    /// its declared checks).
    fn apply_pins(&mut self, runbook: &Runbook) {
        let pinned = std::mem::take(&mut self.pinned);
        let mut names: Vec<&str> = pinned.iter().map(|(reference, ..)| reference.as_str()).collect();
        names.dedup();
        let mut done = HashSet::new();
        for reference in names {
            if !done.insert(reference) {
                continue;
            }
            let needs: Vec<&(String, String, Value, bool)> = pinned.iter().filter(|(r, ..)| r == reference).collect();
            let mut candidates: Vec<Value> = Vec::new();
            let parameter = runbook.parameter(reference);
            if let Some(parameter) = parameter {
                candidates.extend(parameter.allowed_values.iter().flatten().cloned());
            }
            for (_, operator, operand, holds) in &needs {
                candidates.extend(satisfying(operator, operand, *holds));
            }
            if let Some(parameter) = parameter {
                candidates.push(parameter_value(runbook, &parameter.name));
            }
            let fits = |candidate: &Value| {
                needs.iter().all(|(_, operator, operand, holds)| {
                    actions::branch::compare(operator, candidate, operand) == Ok(*holds)
                }) && parameter.is_none_or(|parameter| passes_checks(runbook, &parameter.name, candidate))
            };
            let Some(value) = candidates.into_iter().find(fits) else { continue };
            match reference.split_once('.') {
                None if parameter.is_some() => {
                    self.planned.parameters.insert(reference.to_owned(), value);
                }
                None => {}
                Some((step, output)) => {
                    let mock = match self.planned.mocks.iter_mut().find(|(name, _)| name == step) {
                        Some((_, mock)) => mock,
                        None => {
                            self.planned.mocks.push((step.to_owned(), json!({"outputs": {}})));
                            &mut self.planned.mocks.last_mut().expect("just pushed").1
                        }
                    };
                    if let Some(outputs) = mock.get_mut("outputs").and_then(Value::as_object_mut) {
                        outputs.insert(output.to_owned(), value);
                    }
                }
            }
        }
    }
}

/// How many times a loop runs its body: as many as its `Iterators` (literal, or a parameter's
/// default), else once.
fn iterations(runbook: &Runbook, step: &Step) -> u32 {
    match step.inputs.get("Iterators").map(|value| known_value(runbook, value)) {
        Some(Value::Array(items)) if !items.is_empty() => items.len().min(100) as u32,
        _ => 1,
    }
}

/// A value with a lone `{{ Param }}` reference replaced by the parameter's value in the
/// scaffold: its default, or the placeholder the scaffold gives it.
fn known_value(runbook: &Runbook, value: &Value) -> Value {
    if let Some(text) = value.as_str() {
        let references: Vec<_> = template::references(text).collect();
        let trimmed = text.trim();
        if let [(_, Reference::Parameter(name))] = references.as_slice()
            && trimmed.starts_with("{{")
            && trimmed.ends_with("}}")
            && let Some(parameter) = runbook.parameter(name)
        {
            return match &parameter.default {
                Some(default) if !default.is_null() => default.clone(),
                _ => parameter_value(runbook, name),
            };
        }
    }
    value.clone()
}

/// The leaves of a condition that read one value directly (`{{ Param }}`, `{{ step.Out }}`):
/// all of them for an `And`, the first of an `Or`, none under a `Not`. For falsifying, the
/// roles of `And` and `Or` swap.
fn leaves(runbook: &Runbook, condition: &Value, holds: bool) -> Vec<(String, String, Value)> {
    let Some(object) = condition.as_object() else { return Vec::new() };
    let (all, any) = if holds { ("And", "Or") } else { ("Or", "And") };
    if let Some(items) = object.get(all).and_then(Value::as_array) {
        return items.iter().flat_map(|item| leaves(runbook, item, holds)).collect();
    }
    if let Some(items) = object.get(any).and_then(Value::as_array) {
        return items.iter().find_map(|item| leaves(runbook, item, holds).into_iter().next()).into_iter().collect();
    }
    if object.contains_key("Not") {
        return Vec::new();
    }
    let Some(variable) = object.get("Variable").and_then(Value::as_str) else { return Vec::new() };
    let references: Vec<_> = template::references(variable).collect();
    let single = references.len() == 1 && variable.trim().starts_with("{{") && variable.trim().ends_with("}}");
    let name = match references.first() {
        Some((_, Reference::Parameter(name))) if single => (*name).to_owned(),
        Some((_, Reference::StepOutput { step, output })) if single => format!("{step}.{output}"),
        _ => return Vec::new(),
    };
    actions::branch::OPERATORS
        .iter()
        .find_map(|operator| {
            object.get(*operator).map(|operand| (name.clone(), (*operator).to_owned(), known_value(runbook, operand)))
        })
        .into_iter()
        .collect()
}

/// A value for which `value OPERATOR operand` is `holds`, found among candidates by the
/// branch's own comparison.
fn satisfying(operator: &str, operand: &Value, holds: bool) -> Vec<Value> {
    let number = operand.as_f64().or_else(|| operand.as_str().and_then(|text| text.parse().ok()));
    let mut candidates = vec![operand.clone(), json!(TODO), json!("none"), json!(true), json!(false)];
    if let Some(number) = number {
        let numeric = |value: f64| if value.fract() == 0.0 { json!(value as i64) } else { json!(value) };
        candidates.extend([numeric(number), numeric(number + 1.0), numeric(number - 1.0)]);
    }
    candidates.retain(|candidate| actions::branch::compare(operator, candidate, operand) == Ok(holds));
    candidates
}

/// The mock a step on a succeeding path needs: none for what runs offline as it is (sleeps,
/// branches, variables, approvals and pauses with an answer), placeholder outputs otherwise.
fn success_mock(step: &Step) -> Option<Value> {
    if actions::has(&step.action, |action| action.self_contained) {
        return None;
    }
    let mut outputs = Map::new();
    for builtin in actions::lookup(&step.action).map_or(&[][..], |action| action.builtin_outputs) {
        let value = match *builtin {
            "Status" => json!("Success"),
            "Output" => json!([]),
            _ => json!(TODO),
        };
        outputs.insert((*builtin).to_owned(), value);
    }
    for output in &step.outputs {
        outputs.insert(output.name.clone(), placeholder(output.kind.unwrap_or(Shape::String)));
    }
    Some(json!({ "outputs": outputs }))
}

/// A value of a shape for the author to fill in.
pub fn placeholder(shape: Shape) -> Value {
    match shape {
        Shape::String => json!(TODO),
        Shape::StringList => json!([TODO]),
        Shape::Integer => json!(0),
        Shape::Boolean => json!(false),
        Shape::StringMap => json!({}),
        Shape::MapList => json!([{}]),
    }
}

/// Values tried for a required parameter until one passes its checks (allowed values first).
const CANDIDATES: &[&str] = &[
    TODO,
    "todo",
    "i-0123456789abcdef0",
    "arn:aws:iam::123456789012:role/TODO",
    "us-east-1",
    "123456789012",
    "sg-0123456789abcdef0",
    "vol-0123456789abcdef0",
    "ami-0123456789abcdef0",
    "subnet-0123456789abcdef0",
    "vpc-0123456789abcdef0",
    "TODO-1",
    "1",
    "true",
];

/// Whether a value passes a parameter's declared checks (type, allowed values, pattern).
fn passes_checks(runbook: &Runbook, name: &str, value: &Value) -> bool {
    let bound = crate::validate::params::bind(runbook, &[(name.to_owned(), Supplied::Json(value.clone()))]);
    let mine = |d: &crate::diagnostic::Diagnostic| d.message.contains(&format!("`{name}`"));
    !bound.diagnostics.iter().any(|d| d.is_error() && mine(d))
}

/// A value for a parameter that passes its declared checks: its first allowed value, a
/// common placeholder, or a value made from its pattern.
fn parameter_value(runbook: &Runbook, name: &str) -> Value {
    let Some(parameter) = runbook.parameter(name) else { return json!(TODO) };
    if let Some(first) = parameter.allowed_values.as_ref().and_then(|values| values.first()) {
        return first.clone();
    }
    let shape = parameter.kind.map(|kind| kind.shape()).unwrap_or(Shape::String);
    let example = parameter.allowed_pattern.as_deref().and_then(crate::validate::java_regex::example);
    let texts = CANDIDATES.iter().map(|c| (*c).to_owned()).chain(example);
    let candidates: Vec<Value> = match shape {
        Shape::String => texts.map(Value::String).collect(),
        Shape::StringList => texts.map(|text| json!([text])).collect(),
        other => vec![placeholder(other)],
    };
    candidates.into_iter().find(|value| passes_checks(runbook, name, value)).unwrap_or_else(|| placeholder(shape))
}

/// The scenario file as YAML (values in JSON's flow style, which YAML reads as it is).
fn render(runbook_name: &str, runbook: &Runbook, plan: &Plan<'_>, scenarios: &[Planned]) -> String {
    let quote = |text: &str| serde_json::to_string(text).expect("strings serialize");
    let all = coverage::all(plan);
    let taken: HashSet<Edge> = scenarios.iter().flat_map(|s| s.edges.iter().copied()).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "# Scenarios for {runbook_name}, written by `runbook test --scaffold`: {} scenario(s) taking {} of the \
         plan's {} edges.\n",
        scenarios.len(),
        all.iter().filter(|edge| taken.contains(edge)).count(),
        all.len()
    ));
    out.push_str("# Review each one: mocked outputs say TODO, failures are placeholders, and a branch's choice\n");
    out.push_str("# holds only where its condition reads a parameter or a step output directly.\n");
    out.push_str(&format!("runbook: {}\n", quote(runbook_name)));
    let required: Vec<&str> = runbook.parameters.iter().filter(|p| p.is_required()).map(|p| p.name.as_str()).collect();
    if !required.is_empty() {
        out.push_str("defaults:\n  parameters:\n");
        for name in &required {
            out.push_str(&format!("    {}: {}\n", quote(name), parameter_value(runbook, name)));
        }
    }
    let mut ssm_names: Vec<&str> = Vec::new();
    for parameter in &runbook.parameters {
        if let Some(Value::String(default)) = &parameter.default {
            for (_, reference) in template::references(default) {
                if let Reference::Ssm(name) = reference
                    && !ssm_names.contains(&name)
                {
                    ssm_names.push(name);
                }
            }
        }
    }
    if !ssm_names.is_empty() {
        if required.is_empty() {
            out.push_str("defaults:\n");
        }
        out.push_str("  aws:\n");
        for name in ssm_names {
            let parameter = json!({"Name": name, "Type": "String", "Value": TODO});
            out.push_str(&format!(
                "    - {{call: ssm.GetParameter, request: {}, response: {}}}\n",
                json!({"Name": name}),
                json!({"Parameter": parameter})
            ));
        }
    }
    out.push_str("scenarios:\n");
    for scenario in scenarios {
        out.push_str(&format!("  - name: {}\n", quote(&scenario.name)));
        if !scenario.parameters.is_empty() {
            out.push_str(&format!("    parameters: {}\n", Value::Object(scenario.parameters.clone())));
        }
        if !scenario.mocks.is_empty() {
            out.push_str("    steps:\n");
            for (step, mock) in &scenario.mocks {
                out.push_str(&format!("      {}: {mock}\n", quote(step)));
            }
        }
        if !scenario.answers.is_empty() {
            out.push_str("    answers:\n");
            for (step, answer) in &scenario.answers {
                out.push_str(&format!("      {}: {answer}\n", quote(step)));
            }
        }
        out.push_str("    expect:\n");
        out.push_str(&format!("      status: {}\n", scenario.status));
        let path: Vec<String> = scenario.path.iter().map(|entry| quote(entry)).collect();
        out.push_str(&format!("      path: [{}]\n", path.join(", ")));
    }
    out
}
