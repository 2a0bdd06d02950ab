//! The HTML report of an execution (`runbook report ID --html FILE`) or of a dry-run
//! (`runbook run --dry-run --report FILE`): one self-contained file, styles inline and no
//! script, that a browser opens without the network. The plan graph and the timeline are
//! inline SVG drawn here; the page around them is a minijinja template
//! (`report/report.html`), auto-escaped. Everything shown comes from the journal or the
//! dry-run, which are redacted already.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::exec::dry_run::{Target, Tree};
use crate::journal::{Attempt, Event, EventKind, Execution, Status, StepRecord};
use crate::plan::{Label, Plan};

const TEMPLATE: &str = include_str!("report.html");

/// The end of an attempt's log the page shows (where failures show), and what all logs of a
/// page may take together; an error is cut too. The journal keeps them whole.
const LOG_SHOWN: usize = 8 << 10;
const LOGS_SHOWN: usize = 1 << 20;
const ERROR_SHOWN: usize = 4 << 10;

/// What the journal holds of one execution.
pub struct Record<'a> {
    pub execution: &'a Execution,
    pub steps: &'a [StepRecord],
    pub attempts: &'a [Attempt],
    pub events: &'a [Event],
}

/// How a step of the graph is drawn: its status (or `not-run`), and how many visits.
struct Drawn {
    status: String,
    visits: usize,
    undo: Option<Status>,
}

/// How bad a status is, for a step visited several times (its worst shows).
fn severity(status: Status) -> u8 {
    match status {
        Status::Failed | Status::TimedOut => 7,
        Status::Cancelled => 6,
        Status::Interrupted => 5,
        Status::Waiting | Status::InProgress | Status::Pending => 4,
        Status::Exited => 3,
        Status::Success | Status::DryRun => 2,
        Status::Skipped => 1,
    }
}

/// The edges a set of step visits took: `(from, to, label)` by the successor of each visit's
/// outcome, and into the body of each loop that ran one.
fn taken_edges(plan: &Plan<'_>, steps: &[StepRecord]) -> HashSet<(String, String, String)> {
    let mut taken = HashSet::new();
    for record in steps {
        let Some(id) = plan.find(&record.step) else { continue };
        if let Some(outcome) = record.outcome.as_outcome()
            && let crate::plan::Next::Step { step, label } = plan.successor(id, outcome)
        {
            taken.insert((record.step.clone(), plan.step(step).name.clone(), label.to_string()));
        }
        if let Some(parent) = plan.node(id).parent
            && let Some(entry) = plan.node(parent).body_entry
        {
            let looped = plan.step(parent).name.clone();
            taken.insert((looped, plan.step(entry).name.clone(), Label::LoopBody.to_string()));
        }
    }
    taken
}

/// The report of an execution. `plan` is the runbook as it is now; without it (the file is
/// gone) the page has no graph.
/// `changed`: the runbook's file is not the one the execution ran (its hash differs): the graph
/// is the runbook as it is now, and the page says so.
pub fn execution(plan: Option<&Plan<'_>>, changed: bool, record: &Record<'_>) -> Result<String, String> {
    let execution = record.execution;
    let mut drawn: HashMap<&str, Drawn> = HashMap::new();
    let mut worst: HashMap<&str, Status> = HashMap::new();
    let mut undos: Vec<(&str, Status)> = Vec::new();
    for step in record.steps {
        if let Some(undone) = step.step.strip_prefix(crate::document::model::UNDO_PREFIX) {
            undos.push((undone, step.status));
            continue;
        }
        let entry = drawn.entry(&step.step).or_insert(Drawn { status: String::new(), visits: 0, undo: None });
        entry.visits += 1;
        let status = worst.entry(&step.step).or_insert(step.status);
        if severity(step.status) > severity(*status) {
            *status = step.status;
        }
        entry.status = status.as_str().to_owned();
    }
    // An undo that failed in any iteration shows as failed.
    for (undone, status) in undos {
        if let Some(entry) = drawn.get_mut(undone) {
            let shown = entry.undo.get_or_insert(status);
            if severity(status) > severity(*shown) {
                *shown = status;
            }
        }
    }
    let mut order: Vec<&StepRecord> = record.steps.iter().collect();
    order.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let graph = plan.map(|plan| graph_svg(plan, &drawn, &taken_edges(plan, record.steps))).unwrap_or_default();
    // Steps the journal holds that the runbook no longer has (it changed since the run).
    let missing: Vec<&str> = plan
        .map(|plan| {
            let mut names: Vec<&str> = drawn.keys().copied().filter(|name| plan.find(name).is_none()).collect();
            names.sort_unstable();
            names
        })
        .unwrap_or_default();
    let timeline = timeline_svg(record);
    let mut attempts_of: HashMap<(&str, u32), Vec<&Attempt>> = HashMap::new();
    for attempt in record.attempts {
        attempts_of.entry((attempt.step.as_str(), attempt.iteration)).or_default().push(attempt);
    }
    let mut log_budget = LOGS_SHOWN;
    let visits: Vec<Value> = order
        .iter()
        .map(|step| {
            let attempts = attempts_of.get(&(step.step.as_str(), step.iteration)).map_or(&[][..], Vec::as_slice);
            visit_json(&execution.id, step, attempts, &mut log_budget)
        })
        .collect();
    let mut counts: Vec<(String, usize)> = Vec::new();
    let is_undo = |step: &&StepRecord| step.step.starts_with(crate::document::model::UNDO_PREFIX);
    let undone = record.steps.iter().filter(is_undo).count();
    for step in record.steps.iter().filter(|step| !is_undo(step)) {
        match counts.iter_mut().find(|(status, _)| status == step.status.as_str()) {
            Some((_, count)) => *count += 1,
            None => counts.push((step.status.as_str().to_owned(), 1)),
        }
    }
    let controls: Vec<Value> = record
        .events
        .iter()
        .filter(|event| event.kind == EventKind::Control)
        .map(|event| json!({ "at": event.at, "step": event.step, "control": event.detail["control"], "text": event.detail["text"] }))
        .collect();
    let context = json!({
        "kind": "execution",
        "title": format!("{} · {}", execution.runbook_path, execution.status),
        "runbook": execution.runbook_path,
        "execution": execution.id,
        "status": execution.status.as_str(),
        "started": execution.started_at,
        "ended": execution.ended_at,
        "duration": execution.ended_at.as_deref().map(|end| seconds_between(&execution.started_at, end)),
        "parameters": pretty(&execution.parameters),
        "outputs": execution.outputs.as_ref().map(pretty),
        "error": execution.error,
        "counts": counts.iter().map(|(status, count)| json!({ "status": status, "count": count })).collect::<Vec<_>>(),
        "undos": undone,
        "attempts": record.attempts.len(),
        "controls": controls,
        "visits": visits,
        "no_graph": plan.is_none(),
        "changed": changed,
        "missing": missing,
    });
    render(context, &graph, &timeline)
}

/// The report of a dry-run: the plan graph with the steps some path reaches, and each way.
pub fn dry_run(plan: &Plan<'_>, tree: &Tree, name: &str) -> Result<String, String> {
    let mut drawn: HashMap<&str, Drawn> = HashMap::new();
    for node in &tree.nodes {
        drawn.entry(node.step()).or_insert(Drawn { status: "Reached".into(), visits: 0, undo: None }).visits += 1;
    }
    let mut taken = HashSet::new();
    for node in &tree.nodes {
        for link in &node.next {
            if let Target::Node(next) = link.to {
                taken.insert((node.step().to_owned(), tree.nodes[next].step().to_owned(), link.label.to_string()));
            }
        }
    }
    let graph = graph_svg(plan, &drawn, &taken);
    let nodes: Vec<Value> = tree
        .nodes
        .iter()
        .map(|node| {
            let ways: Vec<Value> = node
                .next
                .iter()
                .map(|link| {
                    let to = match &link.to {
                        Target::Node(next) => tree.nodes[*next].step().to_owned(),
                        Target::End { status, reason } => format!("end: {} ({reason})", status.as_str()),
                        Target::Unexplored => "not explored (budget spent)".to_owned(),
                    };
                    json!({ "when": link.when, "label": link.label, "to": to })
                })
                .collect();
            json!({
                "step": node.step(), "action": node.action(), "would": node.would, "unknown": node.unknown(),
                "inputs": pretty(node.inputs()), "ways": ways,
            })
        })
        .collect();
    let context = json!({
        "kind": "dry-run",
        "title": format!("Dry-run of {name}"),
        "runbook": name,
        "paths": tree.paths,
        "budget_spent": tree.budget_spent,
        "nodes": nodes,
        "rollback": tree.rollback,
        "undos": tree.undos,
    });
    render(context, &graph, "")
}

fn render(context: Value, graph: &str, timeline: &str) -> Result<String, String> {
    let mut environment = minijinja::Environment::new();
    // `.html`: values are escaped as HTML unless marked safe (the SVG drawn here).
    environment.add_template("report.html", TEMPLATE).map_err(|error| error.to_string())?;
    let template = environment.get_template("report.html").map_err(|error| error.to_string())?;
    let mut context = minijinja::Value::from(minijinja::value::Serde(&context));
    let pictures = minijinja::context! {
        graph => minijinja::Value::from_safe_string(graph.to_owned()),
        timeline => minijinja::Value::from_safe_string(timeline.to_owned()),
    };
    context = minijinja::context! { ..context, ..pictures };
    template.render(context).map_err(|error| format!("{error:#}"))
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn visit_json(execution_id: &str, step: &StepRecord, attempts: &[&Attempt], log_budget: &mut usize) -> Value {
    let mut previous_inputs: Option<&Value> = None;
    let tries: Vec<Value> = attempts
        .iter()
        .map(|attempt| {
            let log = attempt.log.as_deref().filter(|log| !log.is_empty()).map(|log| {
                let shown = LOG_SHOWN.min(*log_budget);
                *log_budget -= shown.min(log.len());
                if log.len() <= shown {
                    return log.to_owned();
                }
                // The end of the log, where failures show.
                let start = (log.len() - shown..=log.len()).find(|at| log.is_char_boundary(*at)).unwrap_or(log.len());
                format!(
                    "… {start} bytes before this: runbook executions show {execution_id} --logs {}\n{}",
                    step.step,
                    &log[start..]
                )
            });
            // Inputs once, unless an attempt's differ (a retry renders them again).
            let inputs = (previous_inputs != Some(&attempt.inputs)).then(|| pretty(&attempt.inputs));
            previous_inputs = Some(&attempt.inputs);
            let duration = match attempt.ended_at.as_deref() {
                Some(end) => seconds_between(&attempt.started_at, end),
                None => "no end recorded".to_owned(),
            };
            json!({
                "attempt": attempt.attempt, "status": attempt.status.as_str(), "started": attempt.started_at,
                "duration": duration, "inputs": inputs,
                "error": attempt.error.as_deref().map(|error| clip(error, ERROR_SHOWN)), "log": log,
            })
        })
        .collect();
    json!({
        "name": if step.iteration > 0 { format!("{} #{}", step.step, step.iteration) } else { step.step.clone() },
        "action": step.action, "status": step.status.as_str(), "attempts": tries.len(),
        "duration": seconds_between(&step.started_at, &step.ended_at),
        "outputs": pretty(&step.outputs),
        "error": step.error.as_deref().map(|error| clip(error, ERROR_SHOWN)), "tries": tries,
    })
}

fn parse(at: &str) -> Option<jiff::Timestamp> {
    at.parse().ok()
}

fn seconds_between(start: &str, end: &str) -> String {
    match (parse(start), parse(end)) {
        (Some(start), Some(end)) => format!("{:.3} s", end.duration_since(start).as_secs_f64()),
        _ => "?".to_owned(),
    }
}

/// Text for SVG: escaped for XML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `chars` characters, with an ellipsis when cut.
fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

const ROW: usize = 30;
const NODE_WIDTH: usize = 330;
const LEFT: usize = 16;
const INDENT: usize = 28;

/// The plan as an arc diagram: one box per step in document order (a loop's body indented
/// under it), coloured by status, with each jump that is not "on to the next step" drawn as an
/// arc on the right, its colour by kind, thick where the run took it.
fn graph_svg(plan: &Plan<'_>, drawn: &HashMap<&str, Drawn>, taken: &HashSet<(String, String, String)>) -> String {
    let ids: Vec<_> = plan.steps().collect();
    let position: HashMap<usize, usize> = ids.iter().enumerate().map(|(row, id)| (id.index(), row)).collect();
    let y = |row: usize| 14 + row * ROW;
    let mut arcs = String::new();
    let mut widest = 0usize;
    let right = LEFT + INDENT + NODE_WIDTH;
    for &id in &ids {
        let from = position[&id.index()];
        let name = &plan.step(id).name;
        for (to, edge) in plan.edges_from(id) {
            let to_row = position[&to.index()];
            let target = &plan.step(to).name;
            let was_taken = taken.contains(&(name.clone(), target.clone(), edge.label.to_string()));
            let kind = match edge.label {
                Label::Next | Label::Continue if to_row == from + 1 => "next",
                Label::Next => "jump",
                Label::Continue => "continue",
                Label::Choice(_) => "choice",
                Label::Default | Label::Fallthrough => "default",
                Label::OnFailure => "failure",
                Label::OnCancel => "cancel",
                Label::LoopBody | Label::LoopExit => "loop",
            };
            let class = format!("edge {kind}{}", if was_taken { " taken" } else { "" });
            let (y1, y2) = (y(from) + ROW / 2 - 2, y(to_row) + ROW / 2 - 2);
            let title = format!("{name} → {target} ({})", edge.label);
            if kind == "next" {
                let x = LEFT + 12;
                let _ = write!(
                    arcs,
                    "<line class=\"{class}\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"><title>{}</title></line>",
                    y(from) + ROW - 6,
                    y(to_row),
                    escape(&title)
                );
                continue;
            }
            let reach = 24 + 14 * from.abs_diff(to_row).min(24);
            widest = widest.max(reach);
            let _ = write!(
                arcs,
                "<path class=\"{class}\" d=\"M{right} {y1} C{c} {y1}, {c} {y2}, {right} {y2}\" marker-end=\"url(#arrow)\"><title>{}</title></path>",
                escape(&title),
                c = right + reach
            );
        }
    }
    let mut nodes = String::new();
    for (row, &id) in ids.iter().enumerate() {
        let node = plan.node(id);
        let step = node.step;
        let x = LEFT + if node.parent.is_some() { INDENT } else { 0 };
        let state = drawn.get(step.name.as_str());
        let status = state.map_or("not-run", |state| state.status.as_str());
        let visits = state.map_or(0, |state| state.visits);
        let mut label = format!("{}  {}", clip(&step.name, 34), clip(&step.action, 28));
        if visits > 1 {
            let _ = write!(label, "  ×{visits}");
        }
        let undo = state.and_then(|state| state.undo);
        let badge = match undo {
            Some(Status::Success) => "<text class=\"badge\" x=\"%X\" y=\"%Y\">↶ undone</text>",
            Some(_) => "<text class=\"badge failed\" x=\"%X\" y=\"%Y\">↶ undo failed</text>",
            None => "",
        }
        .replace("%X", &(x + NODE_WIDTH - 84).to_string())
        .replace("%Y", &(y(row) + 17).to_string());
        let _ = write!(
            nodes,
            "<g class=\"node s-{}\" data-step=\"{}\" data-status=\"{}\"><title>{} ({}): {}</title>\
             <rect x=\"{x}\" y=\"{}\" width=\"{NODE_WIDTH}\" height=\"{}\" rx=\"5\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>{badge}</g>",
            status.to_ascii_lowercase(),
            escape(&step.name),
            escape(status),
            escape(&step.name),
            escape(&step.action),
            escape(status),
            y(row),
            ROW - 6,
            x + 8,
            y(row) + 17,
            escape(&label)
        );
    }
    let width = right + widest + 40;
    let height = 20 + ids.len() * ROW;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-label=\"plan graph\"><defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0 0 L8 4 L0 8 z\"/></marker></defs>\
         <g class=\"edges\">{arcs}</g><g class=\"nodes\">{nodes}</g></svg>"
    )
}

const LABELS: usize = 230;
const CHART: usize = 880;
const BAR_ROW: usize = 20;

/// The timeline: one row per step visit in the order they started, a bar per attempt placed
/// on the execution's clock, and marks for waits, decisions and controls (injected faults,
/// operators' actions, rollbacks).
fn timeline_svg(record: &Record<'_>) -> String {
    let Some(start) = parse(&record.execution.started_at) else { return String::new() };
    let mut end = record.execution.ended_at.as_deref().and_then(parse).unwrap_or(start);
    for attempt in record.attempts {
        for at in std::iter::once(&attempt.started_at).chain(&attempt.ended_at) {
            if let Some(at) = parse(at) {
                end = end.max(at);
            }
        }
    }
    for event in record.events {
        if let Some(at) = parse(&event.at) {
            end = end.max(at);
        }
    }
    let total = end.duration_since(start).as_secs_f64().max(0.001);
    let x = |at: jiff::Timestamp| LABELS as f64 + (at.duration_since(start).as_secs_f64() / total * CHART as f64);
    // Rows: the execution itself, then each visit as it first started.
    let mut rows: Vec<(String, u32)> = vec![(String::new(), 0)];
    let mut index: HashMap<(String, u32), usize> = HashMap::new();
    let mut attempts: Vec<&Attempt> = record.attempts.iter().collect();
    attempts.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    // Each visit where it first started: a loop (no attempt of its own) before its body.
    let mut visits: Vec<(&str, (String, u32))> = attempts
        .iter()
        .map(|attempt| (attempt.started_at.as_str(), (attempt.step.clone(), attempt.iteration)))
        .chain(record.steps.iter().map(|step| (step.started_at.as_str(), (step.step.clone(), step.iteration))))
        .collect();
    visits.sort_by(|a, b| a.0.cmp(b.0));
    for (_, key) in visits {
        if !index.contains_key(&key) {
            index.insert(key.clone(), rows.len());
            rows.push(key);
        }
    }
    let row_of = |step: &str, iteration: u32| index.get(&(step.to_owned(), iteration)).copied();
    let y = |row: usize| 24 + row * BAR_ROW;
    let mut out = String::new();
    for (row, (step, iteration)) in rows.iter().enumerate() {
        let label = match (step.as_str(), iteration) {
            ("", _) => "execution".to_owned(),
            (step, 0) => clip(step, 30),
            (step, iteration) => format!("{} #{iteration}", clip(step, 26)),
        };
        let _ = write!(out, "<text class=\"row\" x=\"4\" y=\"{}\">{}</text>", y(row) + 13, escape(&label));
    }
    let _ = write!(
        out,
        "<rect class=\"bar execution s-{}\" x=\"{LABELS}\" y=\"{}\" width=\"{CHART}\" height=\"12\"><title>execution: {}</title></rect>",
        record.execution.status.as_str().to_ascii_lowercase(),
        y(0) + 3,
        escape(record.execution.status.as_str())
    );
    for attempt in &attempts {
        let (Some(row), Some(started)) = (row_of(&attempt.step, attempt.iteration), parse(&attempt.started_at)) else {
            continue;
        };
        let ended = attempt.ended_at.as_deref().and_then(parse);
        let (x1, x2) = (x(started), x(ended.unwrap_or(end)));
        let took = match ended {
            Some(ended) => format!("in {:.3} s", ended.duration_since(started).as_secs_f64()),
            None => "no end recorded".to_owned(),
        };
        let mut title = format!("{} attempt {}: {} {took}", attempt.step, attempt.attempt, attempt.status);
        if let Some(error) = &attempt.error {
            let _ = write!(title, "\n{}", clip(error, 300));
        }
        let _ = write!(
            out,
            "<rect class=\"bar s-{}\" data-step=\"{}\" x=\"{x1:.1}\" y=\"{}\" width=\"{:.1}\" height=\"12\"><title>{}</title></rect>",
            attempt.status.as_str().to_ascii_lowercase(),
            escape(&attempt.step),
            y(row) + 3,
            (x2 - x1).max(2.0),
            escape(&title)
        );
    }
    for event in record.events {
        let (symbol, kind) = match event.kind {
            EventKind::Waiting => ("‖", "waiting"),
            EventKind::Decision => ("✔", "decision"),
            EventKind::CancelRequested => ("✖", "cancel"),
            EventKind::Control => ("⚑", "control"),
            EventKind::AttemptInterrupted => ("⚡", "interrupted"),
            // What a run over targets or a run on SSM said (its start there, a lost connection).
            EventKind::Note if event.detail["text"].is_string() => ("•", "note"),
            _ => continue,
        };
        let Some(at) = parse(&event.at) else { continue };
        let iteration = event.detail["iteration"].as_u64().unwrap_or(0) as u32;
        let row = event.step.as_deref().and_then(|step| row_of(step, iteration)).unwrap_or(0);
        let text = event.detail["text"].as_str().or(event.detail["message"].as_str()).unwrap_or(kind);
        let _ = write!(
            out,
            "<text class=\"mark {kind}\" data-kind=\"{kind}\" x=\"{:.1}\" y=\"{}\">{symbol}<title>{}: {}</title></text>",
            x(at) - 5.0,
            y(row) + 13,
            escape(kind),
            escape(&clip(text, 300))
        );
    }
    let width = LABELS + CHART + 20;
    let height = y(rows.len()) + 8;
    let _ = write!(
        out,
        "<text class=\"axis\" x=\"{LABELS}\" y=\"12\">0 s</text><text class=\"axis end\" x=\"{}\" y=\"12\">{total:.3} s</text>",
        LABELS + CHART
    );
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-label=\"timeline\">{out}</svg>"
    )
}
