//! YAML to a JSON value plus a span tree, with the limits that keep hostile input harmless:
//! a nesting depth cap, an alias expansion budget, and duplicate keys reported.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

use super::spans::{LineIndex, Span, SpanNode};
use crate::diagnostic::{Code, Diagnostic};

/// Deepest nesting accepted; serde_json uses the same limit for JSON.
pub const MAX_DEPTH: usize = 128;
/// Most nodes that alias expansion may add. A billion-laughs document hits it within a few
/// levels; real runbooks use no aliases at all.
pub const ALIAS_BUDGET: usize = 100_000;

pub struct Built {
    pub value: Option<Value>,
    pub spans: Option<SpanNode>,
    pub diagnostics: Vec<Diagnostic>,
}

enum Frame {
    Sequence {
        anchor: usize,
        start: Marker,
        items: Vec<Value>,
        spans: Vec<SpanNode>,
        nodes: usize,
    },
    Mapping {
        anchor: usize,
        start: Marker,
        map: Map<String, Value>,
        spans: Vec<(String, Span, SpanNode)>,
        key: Option<(String, Span)>,
        nodes: usize,
    },
}

struct Node {
    value: Value,
    span: SpanNode,
    /// The scalar text, for use as a mapping key.
    key_text: Option<String>,
    nodes: usize,
}

struct Builder<'a> {
    /// False when only spans are wanted (locating diagnostics in a JSON file): values are
    /// then not built, which halves the cost.
    keep_values: bool,
    lines: LineIndex<'a>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    root: Option<Node>,
    documents: usize,
    diagnostics: Vec<Diagnostic>,
}

/// Parses `text` as one YAML document. Diagnostics carry resolved locations.
pub fn build(text: &str) -> Built {
    build_with(text, true)
}

/// Only the span tree of `text` (which is known to parse).
pub fn spans(text: &str) -> Option<SpanNode> {
    build_with(text, false).spans
}

fn build_with(text: &str, keep_values: bool) -> Built {
    let mut builder = Builder {
        keep_values,
        lines: LineIndex::new(text),
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        root: None,
        documents: 0,
        diagnostics: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let flow = match event {
            Ok((event, span)) => builder.on_event(event, span.start, span.end),
            Err(error) => {
                let message = format!("invalid YAML: {}", error.info());
                builder.error_at(Code::ParseError, message, *error.marker());
                Flow::Stop
            }
        };
        if let Flow::Stop = flow {
            break;
        }
    }
    let failed = builder.diagnostics.iter().any(Diagnostic::is_error);
    match builder.root.take() {
        Some(root) if !failed => {
            Built { value: Some(root.value), spans: Some(root.span), diagnostics: builder.diagnostics }
        }
        Some(_) => Built { value: None, spans: None, diagnostics: builder.diagnostics },
        None => {
            if !failed {
                let location = builder.lines.location_of_offset(0, 0);
                builder
                    .diagnostics
                    .push(Diagnostic::new(Code::EmptyDocument, "the file holds no document").located(location));
            }
            Built { value: None, spans: None, diagnostics: builder.diagnostics }
        }
    }
}

enum Flow {
    Continue,
    Stop,
}

impl Builder<'_> {
    fn error_at(&mut self, code: Code, message: impl Into<String>, mark: Marker) {
        let offset = self.lines.byte_offset(mark.line(), mark.col());
        let location = self.lines.location_of_offset(offset, 1);
        self.diagnostics.push(Diagnostic::new(code, message).located(location));
    }

    fn on_event(&mut self, event: Event<'_>, start: Marker, end: Marker) -> Flow {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Flow::Continue,
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.error_at(Code::ParseError, "a runbook file holds one YAML document, found a second", start);
                    return Flow::Stop;
                }
                Flow::Continue
            }
            Event::Scalar(text, _, _, _) if !self.keep_values => {
                let span = SpanNode::Scalar(span_of(start, end));
                self.complete(Node { value: Value::Null, span, key_text: Some(text.into_owned()), nodes: 1 })
            }
            Event::Alias(_) if !self.keep_values => {
                let span = SpanNode::Scalar(span_of(start, end));
                self.complete(Node { value: Value::Null, span, key_text: Some(String::new()), nodes: 1 })
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = match resolve_scalar(&text, style, tag.as_deref()) {
                    Ok(value) => value,
                    Err(message) => {
                        self.error_at(Code::ParseError, message, start);
                        return Flow::Stop;
                    }
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                let span = span_of(start, end);
                self.complete(Node { value, span: SpanNode::Scalar(span), key_text: Some(text.into_owned()), nodes: 1 })
            }
            Event::Alias(anchor) => {
                let Some((value, nodes)) = self.anchors.get(&anchor).cloned() else {
                    self.error_at(Code::ParseError, "alias to an unknown anchor", start);
                    return Flow::Stop;
                };
                self.alias_nodes += nodes;
                if self.alias_nodes > ALIAS_BUDGET {
                    let message = format!(
                        "YAML aliases expand to more than {ALIAS_BUDGET} nodes; refusing to expand (alias bomb?)"
                    );
                    self.error_at(Code::AliasBudget, message, start);
                    return Flow::Stop;
                }
                let key_text = value.as_str().map(str::to_owned);
                self.complete(Node { value, span: SpanNode::Scalar(span_of(start, end)), key_text, nodes })
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.error_at(Code::TooDeep, format!("values are nested more than {MAX_DEPTH} levels deep"), start);
                Flow::Stop
            }
            Event::SequenceStart(anchor, tag) => {
                if let Err(message) = check_collection_tag(tag.as_deref(), "seq") {
                    self.error_at(Code::ParseError, message, start);
                    return Flow::Stop;
                }
                self.stack.push(Frame::Sequence { anchor, start, items: Vec::new(), spans: Vec::new(), nodes: 1 });
                Flow::Continue
            }
            Event::MappingStart(anchor, tag) => {
                if let Err(message) = check_collection_tag(tag.as_deref(), "map") {
                    self.error_at(Code::ParseError, message, start);
                    return Flow::Stop;
                }
                self.stack.push(Frame::Mapping {
                    anchor,
                    start,
                    map: Map::new(),
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
                let (anchor, value, span, nodes) = match frame {
                    Frame::Sequence { anchor, start, items, spans, nodes } => {
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

    /// Hands a finished node to its parent: an item, a key, or a value.
    fn complete(&mut self, node: Node) -> Flow {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Flow::Continue;
        };
        match frame {
            Frame::Sequence { items, spans, nodes, .. } => {
                *nodes += node.nodes;
                items.push(node.value);
                spans.push(node.span);
                Flow::Continue
            }
            Frame::Mapping { key: key @ None, .. } => {
                let Some(text) = node.key_text else {
                    let start = node.span.span();
                    let mark = Marker::new(start.start_char, start.line, start.col);
                    self.error_at(Code::ParseError, "mapping keys must be scalars", mark);
                    return Flow::Stop;
                };
                *key = Some((text, node.span.span()));
                Flow::Continue
            }
            Frame::Mapping { map, spans, key, nodes, .. } => {
                let (text, key_span) = key.take().expect("matched Some above");
                *nodes += node.nodes;
                if !self.keep_values {
                    spans.push((text, key_span, node.span));
                    return Flow::Continue;
                }
                let duplicate = map.insert(text.clone(), node.value).is_some();
                spans.push((text.clone(), key_span, node.span));
                if duplicate {
                    let mark = Marker::new(key_span.start_char, key_span.line, key_span.col);
                    self.error_at(Code::DuplicateKey, format!("duplicate key `{text}`"), mark);
                }
                Flow::Continue
            }
        }
    }
}

fn span_of(start: Marker, end: Marker) -> Span {
    Span { start_char: start.index(), end_char: end.index(), line: start.line(), col: start.col() }
}

fn check_collection_tag(tag: Option<&Tag>, expected: &str) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(tag) if tag.is_yaml_core_schema() && tag.suffix == expected => Ok(()),
        Some(tag) => Err(format!("unsupported YAML tag `{tag}`")),
    }
}

/// Resolves a scalar by the YAML 1.2 core schema; quoted scalars are always strings.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return Err(format!("unsupported YAML tag `{tag}`"));
        }
        let resolved = match tag.suffix.as_str() {
            "str" => Some(Value::String(text.to_owned())),
            "null" => is_null(text).then_some(Value::Null),
            "bool" => parse_bool(text).map(Value::Bool),
            "int" => parse_int(text),
            "float" => parse_int(text).or_else(|| parse_float(text).transpose().ok().flatten()),
            _ => return Err(format!("unsupported YAML tag `{tag}` on a scalar")),
        };
        return resolved.ok_or_else(|| format!("`{text}` is not a valid `{tag}`"));
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
        Some(Err(message)) => Err(message),
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
}
