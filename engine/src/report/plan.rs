//! A plan for people and machines: text (each step, its inputs as far as known, where it
//! goes on each outcome), JSON (`schemas/plan.schema.json`), and Graphviz dot and Mermaid
//! pictures. Unknown values are shown as unknown, never invented.

use std::fmt::Write as _;
use std::io;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::{Value, json};

use crate::actions::branch::describe_condition;
use crate::plan::values::{Binding, Bound, Origin, PlanScope};
use crate::plan::{Edge, EndReason, Label, Next, Outcome, Plan, Preview, StepId};
use crate::redact::Redactor;
use crate::template::{self, Reference};

/// Everything the renderers show: the plan, the parameters, and each step's preview, with
/// the values of `x-secret` parameters redacted before any format sees them. Previews are
/// rendered one step at a time as the output is written, so a plan of any size is shown in
/// the memory of one step.
pub struct Shown<'a> {
    pub name: &'a str,
    pub plan: &'a Plan<'a>,
    pub parameters: Bound,
    scope: PlanScope<'a>,
    redactor: Redactor,
}

impl<'a> Shown<'a> {
    pub fn new(name: &'a str, plan: &'a Plan<'a>, parameters: &'a Bound) -> Shown<'a> {
        let redactor = Redactor::new(plan.runbook.secret_values(parameters.known()));
        let mut shown = parameters.clone();
        for binding in &mut shown.parameters {
            redactor.value_in_place(&mut binding.value);
        }
        Shown { name, plan, parameters: shown, scope: PlanScope::new(plan, parameters), redactor }
    }

    /// A step's inputs as far as known before the run, secrets redacted.
    pub fn preview(&self, id: StepId) -> Preview {
        let mut preview = self.plan.preview(id, &self.scope);
        if !self.redactor.is_empty() {
            self.redactor.value_in_place(&mut preview.inputs);
            if let Some(error) = &mut preview.error {
                self.redactor.text_in_place(error);
            }
        }
        preview
    }
}

/// Choice `i` of a branch, with the values known before the run filled in.
fn condition(preview: &Preview, i: usize) -> String {
    preview.inputs.get("Choices").and_then(|c| c.get(i)).map(describe_condition).unwrap_or_default()
}

/// The outcome as a person says it.
fn outcome_text(plan: &Plan<'_>, id: StepId, outcome: Outcome, preview: &Preview) -> String {
    match outcome {
        Outcome::Succeeded if plan.node(id).is_loop() => "after the last iteration".into(),
        Outcome::Succeeded => "on success".into(),
        Outcome::Chose(i) => format!("if {}", condition(preview, i)),
        Outcome::NoChoice => "otherwise".into(),
        Outcome::Failed | Outcome::TimedOut => "on failure".into(),
        Outcome::Cancelled => "on cancel".into(),
    }
}

/// The outcome as a stable word, for JSON.
fn outcome_key(outcome: Outcome) -> String {
    match outcome {
        Outcome::Succeeded => "success".into(),
        Outcome::Chose(i) => format!("choice[{i}]"),
        Outcome::NoChoice => "no_choice".into(),
        Outcome::Failed | Outcome::TimedOut => "failure".into(),
        Outcome::Cancelled => "cancel".into(),
    }
}

/// Where an end leads: the run, or (inside a loop body) the iteration.
fn end_text(plan: &Plan<'_>, id: StepId, reason: EndReason) -> String {
    match plan.node(id).parent {
        Some(_) => format!("end of iteration ({})", reason.as_str()),
        None => format!("the run completes ({})", reason.as_str()),
    }
}

fn next_text(plan: &Plan<'_>, id: StepId, next: Next<'_>) -> String {
    match next {
        Next::Step { step, label } => {
            let exit = if plan.node(id).parent.is_some() && plan.node(step).parent != plan.node(id).parent {
                ", leaves the loop"
            } else {
                ""
            };
            format!("-> {} ({label}{exit})", plan.step(step).name)
        }
        Next::End(reason) => format!("-> {}", end_text(plan, id, reason)),
        Next::Abort => "-> the run stops: Failed (TimedOut after a timeout)".into(),
        Next::Cancel => "-> the run stops: Cancelled".into(),
        Next::Unknown { name, label } => format!("-> {name} ({label}, no such step)"),
    }
}

/// The text form.
pub fn text(shown: &Shown<'_>) -> String {
    let mut out = Vec::new();
    write_text(shown, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("the text form is UTF-8")
}

/// The text form, written step by step.
pub fn write_text(shown: &Shown<'_>, writer: &mut dyn io::Write) -> io::Result<()> {
    let plan = shown.plan;
    let mut out = String::new();
    let count = plan.graph.node_count();
    let entry = plan.entry().map_or("-".to_owned(), |id| plan.step(id).name.clone());
    let _ = writeln!(out, "Plan of {}: {count} step{}, starting at `{entry}`", shown.name, plural(count));
    if !shown.parameters.parameters.is_empty() {
        out.push_str("\nParameters\n");
        let width = shown.parameters.parameters.iter().map(|b| b.name.len()).max().unwrap_or(0);
        for binding in &shown.parameters.parameters {
            let value =
                if binding.origin == Origin::NotSupplied { "unknown".to_owned() } else { one_line(&binding.value) };
            let mut note = binding.origin.as_str().to_owned();
            if !binding.unknown.is_empty() {
                let _ = write!(note, "; unknown until the run: {}", binding.unknown.join(", "));
            }
            let _ = writeln!(out, "  {:<width$}  {value}  ({note})", binding.name);
        }
    }
    if !plan.runbook.locks.is_empty() {
        out.push_str("\nLocks (x-locks: taken before the first step, released at the end)\n");
        for lock in &plan.runbook.locks {
            let mode = if lock.shared { "shared" } else { "exclusive" };
            let _ = writeln!(out, "  {}  ({mode}, lease {} s)", lock.name, lock.lease_seconds);
        }
    }
    out.push_str("\nSteps\n");
    for id in plan.steps() {
        writer.write_all(out.as_bytes())?;
        out.clear();
        let node = plan.node(id);
        let indent = if node.parent.is_some() { "    " } else { "  " };
        let step = node.step;
        let _ = writeln!(out, "{indent}{}. {}  {}", id.index() + 1, step.name, step.action);
        let inner = format!("{indent}   ");
        let preview = shown.preview(id);
        if let Some(object) = preview.inputs.as_object() {
            for (key, value) in object {
                if node.is_branch() && key == "Choices" {
                    continue;
                }
                let _ = writeln!(out, "{inner}{key}: {}", input_text(value, &inner));
            }
        }
        if !preview.unknown.is_empty() {
            let _ = writeln!(out, "{inner}unknown until the run: {}", preview.unknown.join(", "));
        }
        if let Some(error) = &preview.error {
            let _ = writeln!(out, "{inner}cannot render: {error}");
        }
        for output in &step.outputs {
            let kind = output.kind.map_or("", |k| k.name());
            let _ = writeln!(out, "{inner}output {} = {} {kind}", output.name, output.selector);
        }
        for outcome in node.outcomes() {
            let next = plan.successor(id, outcome);
            let _ =
                writeln!(out, "{inner}{}  {}", outcome_text(plan, id, outcome, &preview), next_text(plan, id, next));
        }
        if let Some(entry) = node.body_entry {
            let _ = writeln!(out, "{inner}each iteration  -> {} (loop_body)", plan.step(entry).name);
        }
        if let Some(undo) = &step.undo {
            let rollback = plan.runbook.rollback;
            let _ = writeln!(
                out,
                "{inner}undo  {} as {} (x-rollback: {}: {}; or `runbook undo ID`)",
                undo.action,
                undo.name,
                rollback.as_str(),
                rollback.when()
            );
        }
    }
    writer.write_all(out.as_bytes())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A value on one line: strings as they are, the rest as compact JSON.
fn one_line(value: &Value) -> String {
    match value {
        Value::String(text) if !text.is_empty() && text.trim() == text => text.clone(),
        other => other.to_string(),
    }
}

/// An input's value: short values on the line, scripts and long text as a few lines.
fn input_text(value: &Value, indent: &str) -> String {
    const SHOWN_LINES: usize = 4;
    let Value::String(text) = value else { return value.to_string() };
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= 1 {
        return text.clone();
    }
    let mut out = String::from("|");
    for line in lines.iter().take(SHOWN_LINES) {
        let _ = write!(out, "\n{indent}  {line}");
    }
    if lines.len() > SHOWN_LINES {
        let _ = write!(out, "\n{indent}  ... {} more lines", lines.len() - SHOWN_LINES);
    }
    out
}

/// The JSON form, described by `schemas/plan.schema.json`, as a value.
pub fn json(shown: &Shown<'_>, diagnostics: Vec<Value>) -> Value {
    serde_json::to_value(PlanJson { shown, diagnostics: &diagnostics }).expect("a plan is plain JSON")
}

/// The JSON form written as it is made: each step's object is built, written and dropped, so
/// the whole document is never in memory.
pub fn write_json(shown: &Shown<'_>, diagnostics: &[Value], writer: impl io::Write) -> serde_json::Result<()> {
    serde_json::to_writer_pretty(writer, &PlanJson { shown, diagnostics })
}

/// The plan's JSON document. Its fields are written in alphabetical order, the order of a
/// JSON object built as a value, so both forms are the same bytes.
struct PlanJson<'s, 'a> {
    shown: &'s Shown<'a>,
    diagnostics: &'s [Value],
}

impl Serialize for PlanJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shown = self.shown;
        let plan = shown.plan;
        let name = |id: StepId| plan.step(id).name.as_str();
        let mut document = serializer.serialize_struct("Plan", 7)?;
        document.serialize_field("diagnostics", self.diagnostics)?;
        document.serialize_field(
            "edges",
            &Each(|| {
                plan.steps().flat_map(move |id| {
                    edges_with_conditions(shown, id).into_iter().map(move |edge| edge_json(shown, id, edge))
                })
            }),
        )?;
        document.serialize_field("entry", &plan.entry().map(name))?;
        document.serialize_field("parameters", &Each(|| shown.parameters.parameters.iter().map(parameter_json)))?;
        document.serialize_field("rollback", plan.runbook.rollback.as_str())?;
        document.serialize_field("runbook", shown.name)?;
        document.serialize_field("steps", &Each(|| plan.steps().map(|id| step_json(shown, id))))?;
        document.end()
    }
}

/// A sequence written as its items are produced, never held whole.
struct Each<F>(F);

impl<F, I> Serialize for Each<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

fn parameter_json(binding: &Binding) -> Value {
    json!({
        "name": binding.name,
        "origin": match binding.origin {
            Origin::Supplied => "supplied",
            Origin::Default => "default",
            Origin::NotSupplied => "not_supplied",
        },
        "known": binding.is_known(),
        "value": binding.value,
        "unknown": binding.unknown,
    })
}

fn step_json(shown: &Shown<'_>, id: StepId) -> Value {
    let plan = shown.plan;
    let config = template::config_for(plan.runbook);
    let name = |id: StepId| plan.step(id).name.as_str();
    let node = plan.node(id);
    let step = node.step;
    let preview = shown.preview(id);
    let successors: Vec<Value> = node
        .outcomes()
        .map(|outcome| {
            let mut entry = json!({ "outcome": outcome_key(outcome) });
            if let Outcome::Chose(i) = outcome {
                entry["condition"] = json!(condition(&preview, i));
            }
            match plan.successor(id, outcome) {
                Next::Step { step, label } => {
                    entry["step"] = json!(name(step));
                    entry["label"] = json!(label.to_string());
                }
                Next::End(reason) => {
                    let end = if node.parent.is_some() { "iteration" } else { "complete" };
                    entry["end"] = json!(end);
                    entry["reason"] = json!(match reason {
                        EndReason::IsEnd => "is_end",
                        EndReason::EndOfList => "end_of_list",
                    });
                }
                Next::Abort => entry["end"] = json!("abort"),
                Next::Cancel => entry["end"] = json!("cancel"),
                Next::Unknown { name, label } => {
                    entry["missing_step"] = json!(name);
                    entry["label"] = json!(label.to_string());
                }
            }
            entry
        })
        .collect();
    let references: Vec<Value> = step
        .input_templates()
        .into_iter()
        .flat_map(|(text, pointer)| {
            template::references_in(text, config).map(move |(_, reference)| reference_json(reference, &pointer))
        })
        .collect();
    json!({
        "name": step.name,
        "action": step.action,
        "index": id.index(),
        "loop": node.parent.map(name),
        "pointer": step.pointer,
        "inputs": preview.inputs,
        "unknown": preview.unknown,
        "error": preview.error,
        "outputs": step.outputs.iter().map(|o| json!({
            "name": o.name, "selector": o.selector, "type": o.kind.map(|k| k.name()),
        })).collect::<Vec<_>>(),
        "max_attempts": step.max_attempts.unwrap_or(1),
        "timeout_seconds": step.timeout_seconds,
        "is_critical": step.effective_is_critical(),
        "successors": successors,
        "references": references,
        "undo": step.undo.as_ref().map(|undo| json!({
            "step": undo.name, "action": undo.action, "pointer": undo.pointer,
        })),
    })
}

fn edge_json(shown: &Shown<'_>, from: StepId, (to, edge, condition): (StepId, Edge, Option<String>)) -> Value {
    let plan = shown.plan;
    let mut value = json!({
        "from": plan.step(from).name,
        "to": plan.step(to).name,
        "label": edge.label.to_string(),
        "exits_loop": edge.exits_loop,
    });
    if let Some(condition) = condition {
        value["condition"] = json!(condition);
    }
    value
}

/// A step's edges, each with its condition when it is a choice of a branch (the step's
/// preview is rendered once for all of them).
fn edges_with_conditions(shown: &Shown<'_>, id: StepId) -> Vec<(StepId, Edge, Option<String>)> {
    let edges = shown.plan.edges_from(id);
    let preview = edges.iter().any(|(_, edge)| matches!(edge.label, Label::Choice(_))).then(|| shown.preview(id));
    edges
        .into_iter()
        .map(|(to, edge)| {
            let condition = match (edge.label, &preview) {
                (Label::Choice(i), Some(preview)) => Some(condition(preview, i)),
                _ => None,
            };
            (to, edge, condition)
        })
        .collect()
}

fn reference_json(reference: Reference<'_>, pointer: &str) -> Value {
    let (kind, producer) = match reference {
        Reference::Parameter(_) => ("parameter", None),
        Reference::StepOutput { step, .. } => ("step_output", Some(step)),
        Reference::Global(_) => ("global", None),
        Reference::Automation(_) => ("automation", None),
        Reference::Variable(_) => ("variable", None),
        Reference::Ssm(_) => ("ssm", None),
    };
    json!({ "reference": reference.to_string(), "kind": kind, "producer": producer, "pointer": pointer })
}

/// Graphviz: `runbook plan x.yaml --format dot | dot -Tsvg > x.svg`.
pub fn dot(shown: &Shown<'_>) -> String {
    let plan = shown.plan;
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_string(shown.name));
    out.push_str("  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  end [shape=doublecircle, label=\"end\", width=0.3];\n");
    for id in plan.steps().filter(|id| plan.node(*id).parent.is_none()) {
        dot_node(&mut out, plan, id, "  ");
    }
    for id in plan.steps() {
        for (to, edge, condition) in edges_with_conditions(shown, id) {
            let style = match edge.label {
                Label::OnFailure | Label::Continue => ", color=\"firebrick\", style=dashed",
                Label::OnCancel => ", color=\"darkorange\", style=dotted",
                Label::LoopBody => ", style=bold",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  s{} -> s{} [label={}{style}];",
                id.index(),
                to.index(),
                dot_string(&edge_text(edge.label, condition))
            );
        }
        if let Some(reason) = completes(plan, id) {
            let _ = writeln!(out, "  s{} -> end [label={}, style=dotted];", id.index(), dot_string(reason.as_str()));
        }
    }
    out.push_str("}\n");
    out
}

fn dot_node(out: &mut String, plan: &Plan<'_>, id: StepId, indent: &str) {
    let step = plan.step(id);
    let label = format!("{}\n{}", step.name, step.action);
    match plan.node(id).body_entry {
        Some(_) => {
            let _ = writeln!(out, "{indent}subgraph cluster_s{} {{", id.index());
            let _ = writeln!(out, "{indent}  label={}; style=dashed;", dot_string(&format!("loop {}", step.name)));
            let _ = writeln!(out, "{indent}  s{} [label={}, shape=hexagon];", id.index(), dot_string(&label));
            for child in plan.steps().filter(|child| plan.node(*child).parent == Some(id)) {
                dot_node(out, plan, child, &format!("{indent}  "));
            }
            let _ = writeln!(out, "{indent}}}");
        }
        None => {
            let shape = if plan.node(id).is_branch() { ", shape=diamond, style=\"\"" } else { "" };
            let _ = writeln!(out, "{indent}s{} [label={}{shape}];", id.index(), dot_string(&label));
        }
    }
}

/// An edge's caption: the label, and a choice's condition.
fn edge_text(label: Label, condition: Option<String>) -> String {
    match condition {
        Some(condition) => format!("{label}: {condition}"),
        None => label.to_string(),
    }
}

/// Whether a top-level step can end the run successfully, and why.
fn completes(plan: &Plan<'_>, id: StepId) -> Option<EndReason> {
    if plan.node(id).parent.is_some() {
        return None;
    }
    plan.node(id).outcomes().find_map(|outcome| match plan.successor(id, outcome) {
        Next::End(reason) => Some(reason),
        _ => None,
    })
}

fn dot_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// Mermaid: paste into a Markdown ```mermaid block (GitHub renders it).
pub fn mermaid(shown: &Shown<'_>) -> String {
    let plan = shown.plan;
    let mut out = String::from("flowchart TD\n");
    for id in plan.steps().filter(|id| plan.node(*id).parent.is_none()) {
        mermaid_node(&mut out, plan, id, "  ");
    }
    out.push_str("  end_((end))\n");
    for id in plan.steps() {
        for (to, edge, condition) in edges_with_conditions(shown, id) {
            let arrow = match edge.label {
                Label::OnFailure | Label::Continue | Label::OnCancel => "-.->",
                Label::LoopBody => "==>",
                _ => "-->",
            };
            let _ = writeln!(
                out,
                "  s{} {arrow}|\"{}\"| s{}",
                id.index(),
                mermaid_text(&edge_text(edge.label, condition)),
                to.index()
            );
        }
        if let Some(reason) = completes(plan, id) {
            let _ = writeln!(out, "  s{} -.->|\"{}\"| end_", id.index(), mermaid_text(reason.as_str()));
        }
    }
    out
}

fn mermaid_node(out: &mut String, plan: &Plan<'_>, id: StepId, indent: &str) {
    let step = plan.step(id);
    let label = format!("{}<br/>{}", mermaid_text(&step.name), mermaid_text(&step.action));
    match plan.node(id).body_entry {
        Some(_) => {
            let _ = writeln!(
                out,
                "{indent}subgraph s{}_body [\"{}\"]",
                id.index(),
                mermaid_text(&format!("loop {}", step.name))
            );
            let _ = writeln!(out, "{indent}  s{}{{{{\"{label}\"}}}}", id.index());
            for child in plan.steps().filter(|child| plan.node(*child).parent == Some(id)) {
                mermaid_node(out, plan, child, &format!("{indent}  "));
            }
            let _ = writeln!(out, "{indent}end");
        }
        None if plan.node(id).is_branch() => {
            let _ = writeln!(out, "{indent}s{}{{\"{label}\"}}", id.index());
        }
        None => {
            let _ = writeln!(out, "{indent}s{}[\"{label}\"]", id.index());
        }
    }
}

/// Text for inside a quoted Mermaid label (`id["..."]`, `-->|"..."|`): inside quotes only `"`
/// ends the text, but Mermaid reads every `#name;` as an entity, drops what looks like HTML
/// and starts markdown at a backquote, so those are written as entities too, in one pass.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}
