//! YAML to a JSON value plus a span tree, with the limits that keep hostile input harmless:
//! a nesting depth cap, an alias expansion budget, and duplicate keys reported.
//!
//! YAML is read the way PyYAML, SnakeYAML and libyaml read it, which AWS tools are built on,
//! where they are laxer than YAML 1.2 and saphyr: lines inside `[…]` or `{…}`, and the
//! continuation lines of a quoted string, may sit at or left of their key's column. saphyr has
//! no switch for this, so such a document is parsed again with just those lines indented
//! further (`repair`), positions are mapped back to the original text, and a `yaml-leniency`
//! warning says so. What saphyr reads but PyYAML refuses or reads differently gets a
//! `yaml-ssm-refuses` warning, and a document still refused says what PyYAML would do
//! (`pyyaml`).

mod pyyaml;
mod repair;

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};
use serde_json::{Map, Number, Value};

use super::spans::{LineIndex, Span, SpanNode};
use super::{StepSink, reborrow};
use crate::diagnostic::{Code, Diagnostic, Location};
use pyyaml::{
    ALIAS_BUDGET_HELP, DUPLICATE_KEY_HELP, FLOAT_HELP, KEY_NOT_SCALAR_HELP, SECOND_DOCUMENT_HELP, TAG_HELP,
    TAGGED_VALUE_HELP, TOO_DEEP_HELP, UNKNOWN_ANCHOR_HELP, refusal_help,
};
use repair::{Budget, Repair, Repaired};

/// Deepest nesting accepted; serde_json uses the same limit for JSON.
pub const MAX_DEPTH: usize = 128;
/// Most nodes that alias expansion may add. A billion-laughs document hits it within a few
/// levels; real runbooks use no aliases at all.
pub const ALIAS_BUDGET: usize = 100_000;
/// Most characters parsed for one document over the attempts of the indentation repair,
/// counted up to where each attempt stopped. With guesses (see `repair`) a runbook takes a few
/// parses however many lines need moving; one at a time, 4 MiB is some 130 repairs spread
/// through a 64 KB runbook (the largest AWS accepts), 2.5 s in a debug build and 0.4 s in a
/// release one. Past it the error saphyr gives is reported, saying PyYAML would accept it.
const REPAIR_BUDGET_CHARS: usize = 4 << 20;

/// The largest document whose span tree [`build`] keeps: a tree costs some ten times the
/// text, so past this size spans are found only for the pointers asked about
/// ([`spans_for`]).
pub const SPANS_KEPT_BYTES: usize = 64 * 1024;

pub struct Built {
    pub value: Option<Value>,
    /// The span tree of the whole document, if it is at most [`SPANS_KEPT_BYTES`] long.
    pub spans: Option<SpanNode>,
    /// The span of the document's root value.
    pub root: Option<Span>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses `text` as one YAML document. Diagnostics carry resolved locations.
pub fn build(text: &str) -> Built {
    build_taking(text, None)
}

/// [`build`], handing each mapping of the top-level `mainSteps` list to `sink` as soon as it
/// is parsed, with `null` left in its place.
pub fn build_taking(text: &str, sink: Option<&mut dyn StepSink>) -> Built {
    let spans = if text.len() <= SPANS_KEPT_BYTES { Record::All } else { Record::Nothing };
    build_within(text, true, spans, REPAIR_BUDGET_CHARS, sink)
}

/// Only the span tree of `text` (which is known to parse).
#[cfg(test)]
pub fn spans(text: &str) -> Option<SpanNode> {
    build_within(text, false, Record::All, REPAIR_BUDGET_CHARS, None).spans
}

/// The spans of `text` (which is known to parse) along the paths to `wanted`, and of nothing
/// else: the memory it takes does not grow with the document.
pub fn spans_for(text: &str, wanted: &Wanted) -> Option<SpanNode> {
    build_within(text, false, Record::Along(wanted), REPAIR_BUDGET_CHARS, None).spans
}

/// JSON pointers to locate, as a tree of their segments.
#[derive(Debug, Default)]
pub struct Wanted {
    children: HashMap<String, Wanted>,
}

impl Wanted {
    pub fn new<'p>(pointers: impl IntoIterator<Item = &'p str>) -> Wanted {
        let mut root = Wanted::default();
        for pointer in pointers {
            let mut node = &mut root;
            for segment in crate::diagnostic::pointer_segments(pointer) {
                node = node.children.entry(segment.into_owned()).or_default();
            }
        }
        root
    }
}

/// Which spans a collection records of its children.
#[derive(Clone, Copy)]
enum Record<'w> {
    All,
    /// Those on the way to a wanted pointer (the others are kept as spans without children).
    Along(&'w Wanted),
    Nothing,
}

impl<'w> Record<'w> {
    /// What the child at `segment` records.
    fn child(self, segment: impl FnOnce() -> String) -> Record<'w> {
        match self {
            Record::All => Record::All,
            Record::Along(wanted) => match wanted.children.get(&segment()) {
                Some(child) if !child.children.is_empty() => Record::Along(child),
                _ => Record::Nothing,
            },
            Record::Nothing => Record::Nothing,
        }
    }

    fn any(self) -> bool {
        !matches!(self, Record::Nothing)
    }
}

/// Parses `original`, and again after each repair of an indentation PyYAML accepts, until it
/// parses, fails otherwise, or the budget is spent. Only the last attempt's findings count.
fn build_within(
    original: &str,
    keep_values: bool,
    spans: Record<'_>,
    budget: usize,
    mut sink: Option<&mut dyn StepSink>,
) -> Built {
    let lines = LineIndex::new(original);
    let tabs = keep_values && memchr::memchr(b'\t', original.as_bytes()).is_some();
    let checks = Checks { keep_values, tabs, repaired: false };
    let mut budget = Budget(budget);
    // A wrong guess shows after the parse: then again without guesses. A repair found wrong
    // without guesses would be a bug here: then the document is read as strictly as saphyr does.
    for repairs in [Repairs::Guessing, Repairs::OneAtATime] {
        let sink = reborrow(&mut sink);
        if let Some(built) = build_repairing(original, &lines, checks, spans, repairs, &mut budget, sink) {
            return built;
        }
    }
    // Without repairs nothing can turn out wrong: this is never `None`.
    let strict = build_repairing(original, &lines, checks, spans, Repairs::Off, &mut budget, sink);
    strict.unwrap_or_else(|| Built { value: None, spans: None, root: None, diagnostics: Vec::new() })
}

/// How the indentation repair may go about it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repairs {
    /// A repair also moves the lines of later brackets and quoted scalars that look as far
    /// left, checked after the parse.
    Guessing,
    OneAtATime,
    Off,
}

/// Parses `original`, repairing as `repairs` allows; `None` when a repair turns out wrong.
fn build_repairing(
    original: &str,
    lines: &LineIndex<'_>,
    checks: Checks,
    spans: Record<'_>,
    repairs: Repairs,
    budget: &mut Budget,
    mut sink: Option<&mut dyn StepSink>,
) -> Option<Built> {
    let mut text = Repaired::new(original);
    let mut done: Vec<Repair> = Vec::new();
    let mut previous: Option<(String, Marker)> = None;
    loop {
        let checks = Checks { repaired: !done.is_empty(), ..checks };
        let (mut builder, failure) = parse_once(&text, original, lines, checks, spans, reborrow(&mut sink));
        let Some(Failure { error, target }) = failure else {
            if !builder.check_repairs(&done) {
                return None;
            }
            builder.warn_about_tabs();
            return Some(builder.finish());
        };
        let here = (error.info().to_owned(), text.map(*error.marker()));
        // A repair that leaves the same error in the same place made no progress.
        let stuck = !budget.spend(error.marker().index()) || previous.as_ref() == Some(&here);
        let repair = match (repairs, target) {
            (Repairs::Off, _) | (_, None) => None,
            _ if stuck => None,
            (_, Some(target)) => text.repair(&error, target, budget, repairs == Repairs::Guessing),
        };
        let Some(repair) = repair else {
            // The error may come of a wrong guess.
            if done.iter().any(|repair| repair.guessed) {
                return None;
            }
            builder.refuse(&error, here.1);
            return Some(builder.finish());
        };
        done.push(repair);
        previous = Some(here);
    }
}

/// What a parse builds and checks besides the value.
#[derive(Clone, Copy)]
struct Checks {
    /// False when only spans are wanted (locating diagnostics in a JSON file): values are
    /// then not built, which halves the cost, and nothing is checked for PyYAML.
    keep_values: bool,
    /// Whether the text holds a tab: quoted and block scalars are then recorded, to tell a
    /// tab inside them from one outside, where PyYAML refuses it.
    tabs: bool,
    /// Whether the text was repaired: the outermost flow collections and the quoted scalars
    /// are then recorded, to check that every line moved is inside one, and to give one
    /// warning for each.
    repaired: bool,
}

/// The scan error an attempt stopped at, in the coordinates of the text it parsed, and the
/// column saphyr needs the offending lines at: one past the end of the start event of the
/// innermost block collection still open (see [`Repaired::repair`]).
struct Failure {
    error: ScanError,
    target: Option<usize>,
}

/// One parse of the original or repaired text, the builder seeing positions in the original.
fn parse_once<'a>(
    text: &Repaired<'_>,
    original: &'a str,
    lines: &'a LineIndex<'a>,
    checks: Checks,
    spans: Record<'a>,
    mut sink: Option<&mut dyn StepSink>,
) -> (Builder<'a>, Option<Failure>) {
    let mut builder = Builder::new(original, lines, checks, spans);
    builder.taking = sink.is_some();
    if let Some(sink) = sink.as_deref_mut() {
        sink.restart();
    }
    // The open collections: the raw end column of each start event, and whether it is a
    // flow one.
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut failure = None;
    let mut parser = Parser::new_from_str(text.text());
    while let Some(event) = parser.next_event() {
        let flow = match event {
            Ok((event, span)) => {
                let starts = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
                let ends = matches!(event, Event::SequenceEnd | Event::MappingEnd);
                let start = text.map(span.start);
                let flow = builder.on_event(event, start, text.map(span.end));
                if starts {
                    open.push((span.end.col(), builder.stack.last().is_some_and(Frame::flow)));
                } else if ends {
                    open.pop();
                }
                if let Flow::Stop = flow {
                    builder.stopped_at = Some(start.line());
                }
                if let (Some((index, step)), Some(sink)) = (builder.taken.take(), sink.as_deref_mut()) {
                    sink.step(index, step);
                }
                flow
            }
            Err(error) => {
                // saphyr wants a line inside brackets or quotes at most one past the column of
                // the innermost block collection: where its start event ends.
                let target = open.iter().rev().find(|(_, flow)| !flow).map(|(end, _)| end + 1);
                failure = Some(Failure { target, error });
                Flow::Stop
            }
        };
        if let Flow::Stop = flow {
            break;
        }
    }
    (builder, failure)
}

enum Frame<'a> {
    Sequence {
        anchor: usize,
        start: Marker,
        /// Inside `[…]` or `{…}`, where PyYAML tokenizes differently.
        flow: bool,
        items: Vec<Value>,
        /// How many items: in a span-only parse no value is kept.
        count: usize,
        record: Record<'a>,
        spans: Vec<SpanNode>,
        nodes: usize,
    },
    Mapping {
        anchor: usize,
        start: Marker,
        flow: bool,
        map: Map<String, Value>,
        record: Record<'a>,
        spans: Vec<(String, Span, SpanNode)>,
        key: Option<(String, Span)>,
        nodes: usize,
    },
}

impl Frame<'_> {
    fn flow(&self) -> bool {
        match self {
            Frame::Sequence { flow, .. } | Frame::Mapping { flow, .. } => *flow,
        }
    }
}

struct Node {
    value: Value,
    span: SpanNode,
    /// The scalar text, for use as a mapping key.
    key_text: Option<String>,
    nodes: usize,
}

struct Builder<'a> {
    checks: Checks,
    /// Lines of the original text: the builder sees positions mapped back to it.
    lines: &'a LineIndex<'a>,
    /// The original text.
    source: &'a str,
    /// The spans the root records.
    record: Record<'a>,
    stack: Vec<Frame<'a>>,
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    root: Option<Node>,
    documents: usize,
    diagnostics: Vec<Diagnostic>,
    /// Anchor names seen, since saphyr lets a second `&name` replace the first.
    anchor_names: HashSet<String>,
    /// Lines of the opening and closing brackets of the outermost flow collections, when
    /// `checks.repaired`.
    flow_ranges: Vec<(usize, usize)>,
    /// Quoted and block scalars, when `checks.repaired` or `checks.tabs`.
    scalar_ranges: Vec<ScalarRange>,
    /// The line of the event the builder refused, if it stopped at one.
    stopped_at: Option<usize>,
    /// Whether the mappings of the top-level `mainSteps` go to a [`StepSink`]...
    taking: bool,
    /// ...through here, with their index, one at a time.
    taken: Option<(usize, Map<String, Value>)>,
}

/// Where a quoted or block scalar is in the original text, its anchor and tag left out.
struct ScalarRange {
    /// Byte offsets of its first character, and past its last (the closing quote).
    start: usize,
    end: usize,
    first_line: usize,
    last_line: usize,
    quoted: bool,
}

enum Flow {
    Continue,
    Stop,
}

impl<'a> Builder<'a> {
    fn new(source: &'a str, lines: &'a LineIndex<'a>, checks: Checks, record: Record<'a>) -> Builder<'a> {
        Builder {
            checks,
            lines,
            source,
            record,
            stack: Vec::new(),
            anchors: HashMap::new(),
            alias_nodes: 0,
            root: None,
            documents: 0,
            diagnostics: Vec::new(),
            anchor_names: HashSet::new(),
            flow_ranges: Vec::new(),
            scalar_ranges: Vec::new(),
            stopped_at: None,
            taking: false,
            taken: None,
        }
    }

    fn finish(mut self) -> Built {
        let failed = self.diagnostics.iter().any(Diagnostic::is_error);
        match self.root.take() {
            Some(root) if !failed => Built {
                value: Some(root.value),
                root: Some(root.span.span()),
                spans: self.record.any().then_some(root.span),
                diagnostics: self.diagnostics,
            },
            Some(_) => Built { value: None, spans: None, root: None, diagnostics: self.diagnostics },
            None => {
                if !failed {
                    let location = self.lines.location_of_offset(0, 0);
                    self.diagnostics
                        .push(Diagnostic::new(Code::EmptyDocument, "the file holds no document").located(location));
                }
                Built { value: None, spans: None, root: None, diagnostics: self.diagnostics }
            }
        }
    }

    fn location(&self, mark: Marker) -> Location {
        let offset = self.lines.byte_offset(mark.line(), mark.col());
        self.lines.location_of_offset(offset, 1)
    }

    /// An error at `mark`, with `help` saying what PyYAML does with the same text.
    fn error_at(&mut self, code: Code, message: impl Into<String>, help: &str, mark: Marker) {
        let location = self.location(mark);
        self.diagnostics.push(Diagnostic::new(code, message).with_help(help).located(location));
    }

    fn warn_at(&mut self, code: Code, message: impl Into<String>, help: &str, location: Location) {
        self.diagnostics.push(Diagnostic::new(code, message).with_help(help).located(location));
    }

    /// The error saphyr stopped at, located at `mark` in the original text.
    fn refuse(&mut self, error: &ScanError, mark: Marker) {
        let message = format!("invalid YAML: {}", error.info());
        self.error_at(Code::ParseError, message, refusal_help(error.info()), mark);
    }

    fn on_event(&mut self, event: Event<'_>, start: Marker, end: Marker) -> Flow {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Flow::Continue,
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    let message = "a runbook file holds one YAML document, found a second";
                    self.error_at(Code::ParseError, message, SECOND_DOCUMENT_HELP, start);
                    return Flow::Stop;
                }
                Flow::Continue
            }
            Event::Scalar(text, style, anchor, _) if !self.checks.keep_values => {
                self.record_scalar(style, start, end);
                // An alias used as a key is found by the text of its anchor.
                if anchor != 0 {
                    self.anchors.insert(anchor, (Value::String(text.to_string()), 1));
                }
                let span = SpanNode::Scalar(span_of(start, end));
                self.complete(Node { value: Value::Null, span, key_text: Some(text.into_owned()), nodes: 1 })
            }
            Event::Alias(anchor) if !self.checks.keep_values => {
                let span = SpanNode::Scalar(span_of(start, end));
                let key_text =
                    self.anchors.get(&anchor).and_then(|(text, _)| text.as_str()).unwrap_or_default().to_owned();
                self.complete(Node { value: Value::Null, span, key_text: Some(key_text), nodes: 1 })
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = match resolve_scalar(&text, style, tag.as_deref()) {
                    Ok(value) => value,
                    Err((message, help)) => {
                        self.error_at(Code::ParseError, message, help, start);
                        return Flow::Stop;
                    }
                };
                self.check_scalar(&text, style, anchor, start, end);
                if anchor != 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                let span = span_of(start, end);
                self.complete(Node { value, span: SpanNode::Scalar(span), key_text: Some(text.into_owned()), nodes: 1 })
            }
            Event::Alias(anchor) => {
                self.check_alias(start);
                let Some((value, nodes)) = self.anchors.get(&anchor).cloned() else {
                    self.error_at(Code::ParseError, "alias to an unknown anchor", UNKNOWN_ANCHOR_HELP, start);
                    return Flow::Stop;
                };
                self.alias_nodes += nodes;
                if self.alias_nodes > ALIAS_BUDGET {
                    let message = format!(
                        "YAML aliases expand to more than {ALIAS_BUDGET} nodes; refusing to expand (alias bomb?)"
                    );
                    self.error_at(Code::AliasBudget, message, ALIAS_BUDGET_HELP, start);
                    return Flow::Stop;
                }
                let key_text = value.as_str().map(str::to_owned);
                self.complete(Node { value, span: SpanNode::Scalar(span_of(start, end)), key_text, nodes })
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                let message = format!("values are nested more than {MAX_DEPTH} levels deep");
                self.error_at(Code::TooDeep, message, TOO_DEEP_HELP, start);
                Flow::Stop
            }
            Event::SequenceStart(anchor, tag) => {
                if let Err((message, help)) = check_collection_tag(tag.as_deref(), "seq") {
                    self.error_at(Code::ParseError, message, help, start);
                    return Flow::Stop;
                }
                // An alias of the list would have to expand to its steps: it is kept whole.
                if anchor != 0 && self.taking && self.in_root_key("mainSteps") {
                    self.taking = false;
                }
                let flow = self.starts_flow(anchor, start, end);
                let record = self.child_record();
                self.stack.push(Frame::Sequence {
                    anchor,
                    start,
                    flow,
                    items: Vec::new(),
                    count: 0,
                    record,
                    spans: Vec::new(),
                    nodes: 1,
                });
                Flow::Continue
            }
            Event::MappingStart(anchor, tag) => {
                if let Err((message, help)) = check_collection_tag(tag.as_deref(), "map") {
                    self.error_at(Code::ParseError, message, help, start);
                    return Flow::Stop;
                }
                let flow = self.starts_flow(anchor, start, end);
                let record = self.child_record();
                self.stack.push(Frame::Mapping {
                    anchor,
                    start,
                    flow,
                    map: Map::new(),
                    record,
                    spans: Vec::new(),
                    key: None,
                    nodes: 1,
                });
                Flow::Continue
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Flow::Continue;
                };
                if self.checks.repaired && frame.flow() && !self.stack.last().is_some_and(Frame::flow) {
                    let (Frame::Sequence { start: opened, .. } | Frame::Mapping { start: opened, .. }) = &frame;
                    self.record_flow(*opened, start);
                }
                let (anchor, value, span, nodes) = match frame {
                    // A collection that records nothing keeps its own span only.
                    Frame::Sequence { anchor, start, items, record: Record::Nothing, nodes, .. } => {
                        (anchor, Value::Array(items), SpanNode::Scalar(span_of(start, end)), nodes)
                    }
                    Frame::Mapping { anchor, start, map, record: Record::Nothing, nodes, .. } => {
                        (anchor, Value::Object(map), SpanNode::Scalar(span_of(start, end)), nodes)
                    }
                    Frame::Sequence { anchor, start, items, spans, nodes, .. } => {
                        (anchor, Value::Array(items), SpanNode::Sequence(span_of(start, end), spans), nodes)
                    }
                    Frame::Mapping { anchor, start, map, spans, nodes, .. } => {
                        (anchor, Value::Object(map), SpanNode::Mapping(span_of(start, end), spans), nodes)
                    }
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, (value.clone(), nodes));
                }
                self.complete(Node { value, span, key_text: None, nodes })
            }
        }
    }

    /// Whether the top frame is the list of the top-level `mainSteps`.
    fn in_main_steps(&self) -> bool {
        matches!(
            self.stack.as_slice(),
            [Frame::Mapping { key: Some((key, _)), .. }, Frame::Sequence { .. }] if key == "mainSteps"
        )
    }

    /// Whether the value being read is that of the top-level key `name`.
    fn in_root_key(&self, name: &str) -> bool {
        matches!(self.stack.as_slice(), [Frame::Mapping { key: Some((key, _)), .. }] if key == name)
    }

    /// What a collection starting now records: it is the next item or value of the top frame.
    fn child_record(&self) -> Record<'a> {
        match self.stack.last() {
            None => self.record,
            Some(Frame::Sequence { record, count, .. }) => record.child(|| count.to_string()),
            Some(Frame::Mapping { record, key, .. }) => {
                record.child(|| key.as_ref().map_or_else(String::new, |(text, _)| text.clone()))
            }
        }
    }

    /// Hands a finished node to its parent: an item, a key, or a value.
    fn complete(&mut self, node: Node) -> Flow {
        let in_main_steps = self.taking && self.in_main_steps();
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Flow::Continue;
        };
        match frame {
            Frame::Sequence { items, count, record, spans, nodes, .. } => {
                *nodes += node.nodes;
                match node.value {
                    Value::Object(step) if in_main_steps => {
                        self.taken = Some((*count, step));
                        items.push(Value::Null);
                    }
                    value if self.checks.keep_values => items.push(value),
                    _ => {}
                }
                *count += 1;
                if record.any() {
                    spans.push(node.span);
                }
                Flow::Continue
            }
            Frame::Mapping { key: key @ None, .. } => {
                let Some(text) = node.key_text else {
                    let start = node.span.span();
                    let mark = Marker::new(start.start_char, start.line, start.col);
                    self.error_at(Code::ParseError, "mapping keys must be scalars", KEY_NOT_SCALAR_HELP, mark);
                    return Flow::Stop;
                };
                *key = Some((text, node.span.span()));
                Flow::Continue
            }
            Frame::Mapping { map, record, spans, key, nodes, .. } => {
                let (text, key_span) = key.take().expect("matched Some above");
                *nodes += node.nodes;
                if !self.checks.keep_values {
                    if record.any() {
                        spans.push((text, key_span, node.span));
                    }
                    return Flow::Continue;
                }
                if record.any() {
                    spans.push((text.clone(), key_span, node.span));
                }
                let duplicate = map.insert(text.clone(), node.value).is_some();
                if duplicate {
                    let mark = Marker::new(key_span.start_char, key_span.line, key_span.col);
                    self.error_at(Code::DuplicateKey, format!("duplicate key `{text}`"), DUPLICATE_KEY_HELP, mark);
                }
                Flow::Continue
            }
        }
    }
}

fn span_of(start: Marker, end: Marker) -> Span {
    Span { start_char: start.index(), end_char: end.index(), line: start.line(), col: start.col() }
}

/// Refusals carry the help to show with them.
type Refusal = (String, &'static str);

fn check_collection_tag(tag: Option<&Tag>, expected: &str) -> Result<(), Refusal> {
    match tag {
        None => Ok(()),
        Some(tag) if tag.is_yaml_core_schema() && tag.suffix == expected => Ok(()),
        Some(tag) => Err((format!("unsupported YAML tag `{tag}`"), TAG_HELP)),
    }
}

/// Resolves a scalar by the YAML 1.2 core schema; quoted scalars are always strings.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, Refusal> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return Err((format!("unsupported YAML tag `{tag}`"), TAG_HELP));
        }
        let resolved = match tag.suffix.as_str() {
            "str" => Some(Value::String(text.to_owned())),
            "null" => is_null(text).then_some(Value::Null),
            "bool" => parse_bool(text).map(Value::Bool),
            "int" => parse_int(text),
            "float" => parse_int(text).or_else(|| parse_float(text).transpose().ok().flatten()),
            _ => return Err((format!("unsupported YAML tag `{tag}` on a scalar"), TAG_HELP)),
        };
        return resolved.ok_or_else(|| (format!("`{text}` is not a valid `{tag}`"), TAGGED_VALUE_HELP));
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    if is_null(text) {
        return Ok(Value::Null);
    }
    if let Some(value) = parse_bool(text) {
        return Ok(Value::Bool(value));
    }
    if let Some(value) = parse_int(text) {
        return Ok(value);
    }
    match parse_float(text) {
        Some(Ok(value)) => Ok(value),
        Some(Err(message)) => Err((message, FLOAT_HELP)),
        None => Ok(Value::String(text.to_owned())),
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn parse_int(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(rest) = digits.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = digits.strip_prefix("0o") {
        (8, rest)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix != 10 && negative {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok();
    let number = match magnitude {
        Some(m) if !negative && m <= u64::MAX as u128 => Number::from(m as u64),
        Some(m) if negative && m <= i64::MAX as u128 + 1 => Number::from((-(m as i128)) as i64),
        // Integers beyond 64 bits become floats, as in serde_json; range checks come later.
        _ => Number::from_f64(text.parse::<f64>().ok()?)?,
    };
    Some(Value::Number(number))
}

/// `None` when the text is no float; `Some(Err)` for floats JSON cannot hold.
fn parse_float(text: &str) -> Option<Result<Value, String>> {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(Err(format!("`{text}` has no JSON equivalent")));
    }
    let looks_numeric = !body.is_empty()
        && body.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.')
        && body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if !looks_numeric {
        return None;
    }
    let parsed: f64 = text.parse().ok()?;
    match Number::from_f64(parsed) {
        Some(number) => Some(Ok(Value::Number(number))),
        None => Some(Err(format!("`{text}` is out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Target;
    use serde_json::json;

    fn value(text: &str) -> Value {
        let built = build(text);
        assert!(built.diagnostics.is_empty(), "{:?}", built.diagnostics);
        built.value.unwrap()
    }

    fn first_code(text: &str) -> (Code, usize, usize) {
        let built = build(text);
        let d = &built.diagnostics[0];
        let location = d.location.unwrap();
        (d.code, location.line, location.column)
    }

    #[test]
    fn core_schema_scalars() {
        let v = value("a: 0.3\nb: '0.3'\nc: true\nd: ~\ne: 12\nf: -7\ng: 0x1f\nh: text\ni: 1e3\n");
        assert_eq!(v["a"], serde_json::json!(0.3));
        assert_eq!(v["b"], "0.3");
        assert_eq!(v["c"], true);
        assert_eq!(v["d"], Value::Null);
        assert_eq!(v["e"], 12);
        assert_eq!(v["f"], -7);
        assert_eq!(v["g"], 31);
        assert_eq!(v["h"], "text");
        assert_eq!(v["i"], serde_json::json!(1000.0));
    }

    #[test]
    fn huge_integers_become_floats() {
        let v = value("n: 123456789012345678901234567890\n");
        assert!(v["n"].is_f64());
    }

    #[test]
    fn duplicate_keys_are_all_reported() {
        let built = build("a: 1\nb: 2\na: 3\nb: 4\n");
        let codes: Vec<_> = built.diagnostics.iter().map(|d| (d.code, d.location.unwrap().line)).collect();
        assert_eq!(codes, vec![(Code::DuplicateKey, 3), (Code::DuplicateKey, 4)]);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert_eq!(first_code(&text).0, Code::AliasBudget);
    }

    #[test]
    fn small_aliases_expand() {
        let v = value("base: &b {x: 1}\ncopy: *b\n");
        assert_eq!(v["copy"]["x"], 1);
    }

    #[test]
    fn deep_nesting_is_refused() {
        assert_eq!(first_code(&"[".repeat(200)).0, Code::TooDeep);
        assert_eq!(first_code(&format!("a:\n  {}x\n", "- ".repeat(300))).0, Code::TooDeep);
        // Past 255 flow levels saphyr stops first, with its own error.
        assert_eq!(first_code(&"[".repeat(100_000)).0, Code::ParseError);
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(first_code("").0, Code::EmptyDocument);
        assert_eq!(first_code("# nothing\n").0, Code::EmptyDocument);
    }

    #[test]
    fn unknown_tags_and_second_documents() {
        assert_eq!(first_code("a: !Ref x\n"), (Code::ParseError, 1, 4));
        assert_eq!(first_code("a: 1\n---\nb: 2\n").0, Code::ParseError);
        assert_eq!(first_code("a: .inf\n").0, Code::ParseError);
    }

    #[test]
    fn syntax_error_location() {
        assert_eq!(first_code("a: [1, 2\nb: 3\n").0, Code::ParseError);
    }

    #[test]
    fn spans_follow_pointers() {
        let built = build("mainSteps:\n  - name: first\n    action: aws:sleep\n");
        let spans = built.spans.unwrap();
        let span = spans.find("/mainSteps/0/action", crate::diagnostic::Target::Value);
        assert_eq!((span.line, span.col), (3, 12));
        let key = spans.find("/mainSteps/0/action", crate::diagnostic::Target::Key);
        assert_eq!((key.line, key.col), (3, 4));
    }

    // Where PyYAML is more lenient than YAML 1.2, and where it is not.

    /// The findings of `text` as (code, line, column), in order.
    fn findings(text: &str) -> Vec<(Code, usize, usize)> {
        build(text)
            .diagnostics
            .iter()
            .map(|d| (d.code, d.location.map_or(0, |l| l.line), d.location.map_or(0, |l| l.column)))
            .collect()
    }

    /// The value of `text`, which must load with exactly the findings `expected`.
    fn lenient(text: &str, expected: &[(Code, usize, usize)]) -> Value {
        assert_eq!(findings(text), expected, "for:\n{}", text.chars().take(400).collect::<String>());
        build(text).value.unwrap_or_else(|| panic!("refused:\n{text}"))
    }

    /// The (line, 0-based column) a pointer's key or value starts at.
    fn at(text: &str, pointer: &str, target: Target) -> (usize, usize) {
        let span = build(text).spans.unwrap().find(pointer, target);
        (span.line, span.col)
    }

    #[test]
    fn a_closing_bracket_at_its_key_column_is_read_as_pyyaml_reads_it() {
        let text = "mainSteps:\n  - name: x\n    inputs: {\n      \"Foo\": \"bar\"\n    }\n    action: aws:sleep\n";
        let v = lenient(text, &[(Code::YamlLeniency, 5, 5)]);
        assert_eq!(v, json!({"mainSteps": [{"name": "x", "inputs": {"Foo": "bar"}, "action": "aws:sleep"}]}));
        assert_eq!(at(text, "/mainSteps/0/action", Target::Key), (6, 4));
        assert_eq!(at(text, "/mainSteps/0/inputs/Foo", Target::Key), (4, 6));
        // A sequence, a bracket left of the key, and brackets inside brackets.
        let v = lenient("a:\n  outputs: [\n    \"a\",\n    \"b\"\n  ]\n", &[(Code::YamlLeniency, 5, 3)]);
        assert_eq!(v, json!({"a": {"outputs": ["a", "b"]}}));
        let v = lenient("a:\n  b: {\n    c: [\n      \"d\"\n]\n}\n", &[(Code::YamlLeniency, 5, 1)]);
        assert_eq!(v, json!({"a": {"b": {"c": ["d"]}}}));
        let v = lenient("a:\n  b: {\n    \"c\": 1,\n}\n", &[(Code::YamlLeniency, 4, 1)]);
        assert_eq!(v, json!({"a": {"b": {"c": 1}}}));
    }

    #[test]
    fn lines_inside_brackets_at_column_zero_keep_their_columns() {
        let text = "mainSteps:\n  - name: x\n    inputs: {\nFoo: bar,\n\"Baz\": qux\n    }\n    action: aws:sleep\n";
        let v = lenient(text, &[(Code::YamlLeniency, 4, 1)]);
        assert_eq!(v["mainSteps"][0]["inputs"], json!({"Foo": "bar", "Baz": "qux"}));
        // Spans on the moved lines point at the original columns, and so do later findings.
        assert_eq!(at(text, "/mainSteps/0/inputs/Foo", Target::Key), (4, 0));
        assert_eq!(at(text, "/mainSteps/0/inputs/Baz", Target::Value), (5, 7));
        assert_eq!(at(text, "/mainSteps/0/action", Target::Value), (7, 12));
        assert_eq!(findings("a: {\nb: 1,\nb: 2\n}\n"), [(Code::DuplicateKey, 3, 1), (Code::YamlLeniency, 2, 1)]);
        // The span tree alone (how JSON files are located) is the same.
        let alone = spans(text).unwrap().find("/mainSteps/0/inputs/Baz", Target::Value);
        assert_eq!((alone.line, alone.col), (5, 7));
        let v = lenient("Targets: [\n\"i-1\",\n\"i-2\"\n]\n", &[(Code::YamlLeniency, 2, 1)]);
        assert_eq!(v, json!({"Targets": ["i-1", "i-2"]}));
    }

    #[test]
    fn quoted_strings_may_continue_at_column_zero_as_in_pyyaml() {
        let text = "description: \"first line\nsecond line\"\nmainSteps: []\n";
        let v = lenient(text, &[(Code::YamlLeniency, 2, 1)]);
        assert_eq!(v, json!({"description": "first line second line", "mainSteps": []}));
        assert_eq!(at(text, "/mainSteps", Target::Key), (3, 0));
        let v = lenient("a:\n  b: 'one\n\ntwo\n'\n", &[(Code::YamlLeniency, 4, 1)]);
        assert_eq!(v, json!({"a": {"b": "one\ntwo "}}));
        // An escaped line break, a tab before the continuation, a closing quote at column 0.
        assert_eq!(lenient("a:\n  b: \"one\\\ntwo\"\n", &[(Code::YamlLeniency, 3, 1)]), json!({"a": {"b": "onetwo"}}));
        assert_eq!(lenient("a:\n  b: \"one\n\ttwo\"\n", &[(Code::YamlLeniency, 3, 1)]), json!({"a": {"b": "one two"}}));
        assert_eq!(
            lenient("outputs:\n  a: \"text\n\"\n", &[(Code::YamlLeniency, 3, 1)]),
            json!({"outputs": {"a": "text "}})
        );
        // `---` with more after it is no document marker.
        assert_eq!(lenient("a: \"one\n---two\"\n", &[(Code::YamlLeniency, 2, 1)]), json!({"a": "one ---two"}));
        let inside_brackets = "a:\n  b: {m: \"one\ntwo\", n: 1}\n";
        assert_eq!(
            lenient(inside_brackets, &[(Code::YamlLeniency, 3, 1)]),
            json!({"a": {"b": {"m": "one two", "n": 1}}})
        );
    }

    #[test]
    fn many_repairs_take_a_few_parses_and_each_construct_one_warning() {
        let mut text = String::from("parameters:\n");
        let mut expected = Vec::new();
        for i in 0..40 {
            text.push_str(&format!("  P{i}:\n    type: String\n    description: \"line one\nline two\"\n"));
            expected.push((Code::YamlLeniency, 5 + 4 * i, 1));
        }
        text.push_str("mainSteps:\n");
        for i in 0..40 {
            text.push_str(&format!(
                "  - name: s{i}\n    action: aws:sleep\n    inputs: {{\n      \"Duration\": \"PT1S\"\n    }}\n"
            ));
            expected.push((Code::YamlLeniency, 167 + 5 * i, 5));
        }
        let v = lenient(&text, &expected);
        assert_eq!(v["parameters"]["P39"]["description"], "line one line two");
        assert_eq!(v["mainSteps"][39]["inputs"]["Duration"], "PT1S");
        // A budget that one parse uses up still reads it (guesses repair the rest at once).
        assert!(build_within(&text, true, Record::All, text.len() * 4, None).value.is_some());
    }

    /// Lines moved by a repair may hold characters of two, three and four bytes: positions on
    /// them still point at the original text, counted in characters.
    #[test]
    fn repaired_lines_with_multibyte_text_keep_their_columns() {
        let duplicate = first_code("a:\n  b: {\n\"é\": \"ü€\", \"k\": 1,\n\"😀\": 2, \"k\": 3\n}\n");
        assert_eq!(duplicate, (Code::DuplicateKey, 4, 9));
        let text = "a:\n  b: {\n\"é\": \"ü€\",\n\"😀\": 2, \"z\": \"一二\"\n}\n";
        let v = lenient(text, &[(Code::YamlLeniency, 3, 1)]);
        assert_eq!(v["a"]["b"]["z"], "一二");
        let lines = LineIndex::new(text);
        let location = lines.location(spans(text).unwrap().find("/a/b/z", Target::Value));
        assert_eq!((location.line, location.column, location.length), (4, 14, "\"一二\"".len()));
        assert_eq!(&text[location.offset..location.offset + location.length], "\"一二\"");
    }

    #[test]
    fn a_wrong_guess_is_undone() {
        // Repairing the first string, a guess takes line 4 for a quoted string opening and
        // moves line 5 into the block scalar, which would change both `s` and `z`.
        let text = "a: \"one\ntwo\"\ns: !!str |\n  x: \"y\nz: \"w\"\n";
        let v = lenient(text, &[(Code::YamlLeniency, 2, 1)]);
        assert_eq!(v, json!({"a": "one two", "s": "x: \"y\n", "z": "w"}));
    }

    #[test]
    fn other_errors_stay_errors_and_say_what_pyyaml_does() {
        let cases = [
            ("a: \"one\n---\ntwo\"\n", 1, 4, "PyYAML refuses this too"),
            ("inputs: {\n  a: 1,\n---\n}\n", 3, 1, "PyYAML refuses this too"),
            ("a:\n  b: 1\n c: 2\n", 3, 2, "PyYAML refuses this too"),
            ("a:\n\tb: 1\n", 2, 2, "PyYAML refuses this too"),
            ("a: {b: c}}\n", 1, 10, "PyYAML refuses this too"),
            ("a: [1, 2\n", 2, 1, "PyYAML refuses this too"),
            ("a: 'text\n", 1, 4, "PyYAML refuses this too: the quoted string is never closed"),
            ("a: \"text\nb: 2\n", 1, 4, "PyYAML refuses this too: the quoted string is never closed"),
            ("a: b: c\n", 1, 5, "PyYAML refuses this too"),
            ("a: *nope\n", 1, 4, "PyYAML refuses this too"),
            ("a: \"x\"y\n", 1, 7, "PyYAML refuses this too"),
            ("Message: {{ Greeting }}\n", 1, 11, "PyYAML refuses this too"),
            ("a: 1\n---\nb: 2\n", 2, 1, "PyYAML's single-document loader refuses this too"),
            ("a: \"b\"#c\n", 1, 7, "PyYAML would accept this"),
            ("a: 1\na: 2\n", 2, 1, "PyYAML would keep the last value"),
        ];
        for (text, line, column, help) in cases {
            let built = build(text);
            assert!(built.value.is_none(), "accepted:\n{text}");
            let first = &built.diagnostics[0];
            let location = first.location.unwrap();
            assert_eq!((location.line, location.column), (line, column), "for:\n{text}\n{first:?}");
            let said = first.help.as_deref().unwrap_or_default();
            assert!(said.starts_with(help), "for:\n{text}\n{said}");
        }
    }

    #[test]
    fn a_repair_past_its_budget_says_pyyaml_would_accept_it() {
        let built = build_within("a:\n  b: {\n\"c\": 1\n}\n", true, Record::All, 1, None);
        let first = &built.diagnostics[0];
        assert_eq!((first.code, first.location.unwrap().line), (Code::ParseError, 3));
        assert!(first.help.as_deref().unwrap().starts_with("PyYAML would accept this"), "{first:?}");
    }

    #[test]
    fn what_pyyaml_refuses_or_reads_otherwise_gets_a_warning() {
        let refused = Code::YamlSsmRefuses;
        let v = lenient("inputs: {Message: Go ahead?}\n", &[(refused, 1, 27)]);
        assert_eq!(v, json!({"inputs": {"Message": "Go ahead?"}}));
        lenient("a: [Go ahead?, b]\n", &[(refused, 1, 13)]);
        lenient("a: {u: http://x/y?z=1}\n", &[(refused, 1, 18)]);
        lenient("a: {b: ?x}\n", &[(refused, 1, 8)]);
        lenient("a: {?x: 1}\n", &[(refused, 1, 5)]);
        lenient("a: [|x]\n", &[(refused, 1, 5)]);
        lenient("a: {b\n  c: d}\n", &[(refused, 1, 5)]);
        lenient("a: {\"b\"\n : c}\n", &[(refused, 1, 5)]);
        lenient("a: &x 1\nb: &x 2\nc: *x\n", &[(refused, 2, 4)]);
        lenient("a: &x' 1\nb: *x'\n", &[(refused, 1, 4), (refused, 2, 4)]);
        lenient("a: b\t\nc: 1\n\t\n", &[(refused, 1, 5), (refused, 3, 1)]);
        lenient("a: 1\n: 2\n", &[(refused, 2, 1)]);
        // What PyYAML reads the same way stays silent.
        for text in [
            "Message: Go ahead?}\n",
            "a: {Message: 'Go ahead?'}\n",
            "a: {? b\n  c : d}\n",
            "a: {b\n c}\n",
            "? \n: x\n",
            "a: |\n  x\ty\nb: 1 # c\td\n",
            "a: \"x\ty\"\n",
            "a: &x-y_1 1\nb: *x-y_1\n",
            "a: {b: c#d}\n",
        ] {
            assert_eq!(findings(text), [], "for:\n{text}");
        }
    }
}
