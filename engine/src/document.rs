//! Stage 1, loading: a runbook file (YAML or JSON) to a JSON value whose every node can be
//! traced back to `file:line:column`, and then to the typed model.

mod json_read;
mod json_spans;
pub mod model;
pub mod outputs;
pub mod selector;
mod spans;
mod yaml;

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, Location, Target};
pub use spans::{LineIndex, line_start};
use spans::{Lines, Span, SpanNode};

/// Largest document AWS accepts (section 8.5). Bigger ones load, with a warning.
pub const AWS_MAX_DOCUMENT_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// A runbook's text and the name it is reported under.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
    pub format: Format,
}

/// A loaded document: the value when it parsed, the load diagnostics, and what it takes to
/// find where a JSON pointer is in the text.
pub struct Loaded {
    pub source: Source,
    pub value: Option<Value>,
    pub diagnostics: Vec<Diagnostic>,
    spans: Spans,
    /// Known to hold no key with `{{` (the JSON reader looks as it reads).
    literal_keys: bool,
}

/// How the pointers of a document are located. A YAML span tree costs some ten times the text,
/// so only a small YAML document keeps the one its parse made; a larger one is parsed again for
/// the spans along the pointers asked about. JSON is read again in one pass that records where
/// each value is.
enum Spans {
    /// A YAML document of at most [`yaml::SPANS_KEPT_BYTES`]: the tree from parsing it.
    Tree(SpanNode),
    /// A larger YAML document: where its root value is.
    Root(Span),
    /// JSON: where every value is. A document of at most [`json_spans::TREE_KEPT_BYTES`] keeps
    /// the tree (recorded as it was read, or read when a pointer is first asked about) and its
    /// lines, since findings come in more than one round (the rules', then the plan's); a
    /// larger one reads them each round.
    Json { tree: OnceLock<Option<json_spans::Tree>>, lines: OnceLock<Lines> },
    /// The document did not parse: nothing can be located by pointer.
    Unparsed,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("source", &self.source.name)
            .field("diagnostics", &self.diagnostics)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed to read {path}")]
pub struct Error {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Reads and loads a runbook file. Only I/O failures are errors; everything wrong with the
/// content is a diagnostic.
pub fn load_path(path: &Path) -> Result<Loaded, Error> {
    Ok(load(path.display().to_string(), read(path)?, format_of(path)))
}

/// A file's bytes, or the error that says which file could not be read.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error { path: path.display().to_string(), source })
}

/// Takes each mapping of a document's top-level `mainSteps` list as soon as it is parsed
/// (the validator checks it and takes it apart), so a runbook of any length is never one
/// value in memory; `null` is left in its place. A document may be parsed more than once (a
/// YAML one, see `yaml`; a JSON one the quick reader gave up on, by serde_json): each parse
/// starts with [`StepSink::restart`].
pub trait StepSink {
    fn step(&mut self, index: usize, step: Map<String, Value>);
    fn restart(&mut self);
}

/// The sink again, for one more parse (or one more level of one).
fn reborrow<'b>(sink: &'b mut Option<&mut dyn StepSink>) -> Option<&'b mut dyn StepSink> {
    match sink {
        Some(sink) => Some(&mut **sink),
        None => None,
    }
}

/// The format a file's extension names, if any.
pub fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("json") => Some(Format::Json),
        Some(ext) if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") => Some(Format::Yaml),
        _ => None,
    }
}

/// Loads runbook bytes. Without a format, content decides: a leading `{` means JSON.
pub fn load(name: String, bytes: Vec<u8>, format: Option<Format>) -> Loaded {
    load_with(name, bytes, format, None)
}

/// [`load`], handing the steps to `sink` as they are parsed.
pub fn load_with(name: String, bytes: Vec<u8>, format: Option<Format>, sink: Option<&mut dyn StepSink>) -> Loaded {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let offset = error.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
            let location = LineIndex::new(&text).location_of_offset(offset, 1);
            let diagnostic = Diagnostic::new(
                Code::ParseError,
                format!("the file is not UTF-8 text (invalid byte at offset {offset})"),
            )
            .located(location);
            let source = Source { name, text, format: format.unwrap_or(Format::Yaml) };
            return Loaded {
                source,
                value: None,
                diagnostics: vec![diagnostic],
                spans: Spans::Unparsed,
                literal_keys: false,
            };
        }
    };
    // A byte-order mark is legal in both formats but not part of the content.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    };
    let format = format.unwrap_or_else(|| match text.trim_start().starts_with('{') {
        true => Format::Json,
        false => Format::Yaml,
    });
    let mut loaded = match format {
        Format::Json => load_json(name, text, sink),
        Format::Yaml => {
            let built = yaml::build_taking(&text, sink);
            let spans = match (built.spans, built.root) {
                (Some(tree), _) => Spans::Tree(tree),
                (None, Some(root)) => Spans::Root(root),
                (None, None) => Spans::Unparsed,
            };
            Loaded {
                source: Source { name, text, format },
                value: built.value,
                diagnostics: built.diagnostics,
                spans,
                literal_keys: false,
            }
        }
    };
    if loaded.source.text.len() > AWS_MAX_DOCUMENT_BYTES && loaded.value.is_some() {
        loaded.diagnostics.push(
            Diagnostic::new(
                Code::DocumentTooLarge,
                format!(
                    "the document is {} bytes; AWS accepts at most {AWS_MAX_DOCUMENT_BYTES}",
                    loaded.source.text.len()
                ),
            )
            .at(""),
        );
    }
    loaded
}

fn load_json(name: String, text: String, mut sink: Option<&mut dyn StepSink>) -> Loaded {
    if let Some(read) = json_read::read(&text, reborrow(&mut sink)) {
        let tree = read.tree.map_or_else(OnceLock::new, |tree| OnceLock::from(Some(tree)));
        return Loaded {
            source: Source { name, text, format: Format::Json },
            value: Some(read.value),
            diagnostics: Vec::new(),
            spans: Spans::Json { tree, lines: OnceLock::new() },
            literal_keys: read.literal_keys,
        };
    }
    // serde_json judges what the quick reader gave up on, with its own messages.
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let parsed = match sink {
        Some(sink) => {
            sink.restart();
            Root { sink }.deserialize(&mut deserializer)
        }
        None => StrictValue.deserialize(&mut deserializer),
    };
    let parsed = parsed.and_then(|value| {
        deserializer.end()?;
        Ok(value)
    });
    match parsed {
        Ok(value) => Loaded {
            source: Source { name, text, format: Format::Json },
            value: Some(value),
            diagnostics: Vec::new(),
            spans: Spans::Json { tree: OnceLock::new(), lines: OnceLock::new() },
            literal_keys: false,
        },
        Err(error) => {
            let message = error.to_string();
            if message.starts_with(DUPLICATE_KEY) {
                // The YAML builder reports every duplicate, not only the first.
                let built = yaml::build(&text);
                if built.diagnostics.iter().any(|d| d.code == Code::DuplicateKey) {
                    return Loaded {
                        source: Source { name, text, format: Format::Json },
                        value: None,
                        diagnostics: built.diagnostics.into_iter().filter(Diagnostic::is_error).collect(),
                        spans: Spans::Unparsed,
                        literal_keys: false,
                    };
                }
            }
            let lines = LineIndex::new(&text);
            let code = match () {
                _ if message.starts_with(DUPLICATE_KEY) => Code::DuplicateKey,
                _ if message.starts_with("recursion limit exceeded") => Code::TooDeep,
                _ if message.starts_with("EOF while parsing a value") && text.trim().is_empty() => Code::EmptyDocument,
                _ => Code::ParseError,
            };
            let offset = lines.byte_offset(error.line(), error.column().saturating_sub(1));
            let location = lines.location_of_offset(offset, 1);
            let message = match message.rfind(" at line ") {
                Some(cut) => message[..cut].to_owned(),
                None => message,
            };
            let message = match code {
                Code::ParseError => format!("invalid JSON: {message}"),
                _ => message,
            };
            Loaded {
                source: Source { name, text, format: Format::Json },
                value: None,
                diagnostics: vec![Diagnostic::new(code, message).located(location)],
                spans: Spans::Unparsed,
                literal_keys: false,
            }
        }
    }
}

impl Loaded {
    pub fn into_source(self) -> Source {
        self.source
    }

    /// Resolves the location of a pointer in this document.
    pub fn locate(&self, pointer: &str, target: Target) -> Option<Location> {
        self.locate_each(&[(pointer, target)]).pop().flatten()
    }

    /// Whether the document is known to have no key holding `{{`.
    pub fn literal_keys(&self) -> bool {
        self.literal_keys
    }

    /// Lets the text and its spans go, for a caller that reports nothing more from the
    /// document: nothing is located afterwards.
    pub fn release_text(&mut self) {
        self.source.text = String::new();
        self.spans = Spans::Unparsed;
    }

    /// Fills in the location of every diagnostic that has a pointer but no location yet.
    pub fn locate_all(&self, diagnostics: &mut [Diagnostic]) {
        let mut unlocated: Vec<&mut Diagnostic> =
            diagnostics.iter_mut().filter(|d| d.location.is_none() && d.pointer.is_some()).collect();
        if unlocated.is_empty() {
            return;
        }
        let wanted: Vec<(&str, Target)> =
            unlocated.iter().map(|d| (d.pointer.as_deref().unwrap_or(""), d.target)).collect();
        let locations = self.locate_each(&wanted);
        for (diagnostic, location) in unlocated.iter_mut().zip(locations) {
            diagnostic.location = location;
        }
    }

    /// The locations of pointers, with one parse of the text at most however many there are.
    pub fn locate_each(&self, wanted: &[(&str, Target)]) -> Vec<Option<Location>> {
        let text = &self.source.text;
        match &self.spans {
            Spans::Unparsed => return vec![None; wanted.len()],
            Spans::Tree(tree) => {
                let lines = LineIndex::new(text);
                return wanted
                    .iter()
                    .map(|(pointer, target)| Some(lines.location(tree.find(pointer, *target))))
                    .collect();
            }
            // JSON read without spans: one pass over the text finds them all.
            Spans::Json { tree, lines } => {
                let (fresh_tree, fresh_lines);
                let (tree, lines) = match text.len() <= json_spans::TREE_KEPT_BYTES {
                    true => (tree.get_or_init(|| json_spans::Tree::read(text)), lines.get_or_init(|| Lines::of(text))),
                    false => {
                        fresh_tree = json_spans::Tree::read(text);
                        fresh_lines = Lines::of(text);
                        (&fresh_tree, &fresh_lines)
                    }
                };
                if let Some(json) = tree {
                    let lines = LineIndex::with_lines(text, lines);
                    return wanted
                        .iter()
                        .map(|(pointer, target)| {
                            let (start, end) = json.locate(text, pointer, *target);
                            Some(lines.range_location(start, end))
                        })
                        .collect();
                }
            }
            Spans::Root(_) => {}
        }
        let lines = LineIndex::new(text);
        let root = match self.spans {
            Spans::Root(root) => Some(root),
            _ => None,
        };
        let mut tree: Option<Option<SpanNode>> = None;
        wanted
            .iter()
            .map(|(pointer, target)| match root {
                Some(root) if pointer.is_empty() => Some(lines.location(root)),
                _ => tree
                    .get_or_insert_with(|| yaml::spans_for(text, &yaml::Wanted::new(wanted.iter().map(|(p, _)| *p))))
                    .as_ref()
                    .map(|tree| lines.location(tree.find(pointer, *target))),
            })
            .collect()
    }
}

const DUPLICATE_KEY: &str = "duplicate key";

/// Deserializes a JSON value like `serde_json::Value`, but refuses duplicate keys.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(StrictValue)?;
            match map.entry(key) {
                serde_json::map::Entry::Vacant(entry) => {
                    entry.insert(value);
                }
                serde_json::map::Entry::Occupied(entry) => {
                    return Err(de::Error::custom(format_args!("{DUPLICATE_KEY} `{}`", entry.key())));
                }
            }
        }
        Ok(Value::Object(map))
    }
}

/// The visits of scalars, as [`StrictValue`] makes them.
macro_rules! strict_scalars {
    () => {
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
            StrictValue.visit_bool(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
            StrictValue.visit_i64(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            StrictValue.visit_u64(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            StrictValue.visit_f64(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
            StrictValue.visit_str(v)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
            StrictValue.visit_string(v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            StrictValue.visit_unit()
        }
    };
}

/// The top level of a JSON runbook, read as [`StrictValue`] reads it, with each step of
/// `mainSteps` handed to a sink.
struct Root<'s> {
    sink: &'s mut dyn StepSink,
}

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = Value;

    strict_scalars!();
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        StrictValue.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = match key.as_str() {
                "mainSteps" => access.next_value_seed(Steps { sink: &mut *self.sink })?,
                _ => access.next_value_seed(StrictValue)?,
            };
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY} `{key}`")));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// A JSON runbook's `mainSteps`: each object goes to the sink, `null` stays.
struct Steps<'s> {
    sink: &'s mut dyn StepSink,
}

impl<'de> DeserializeSeed<'de> for Steps<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Steps<'_> {
    type Value = Value;

    strict_scalars!();
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        StrictValue.visit_map(access)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            match item {
                Value::Object(step) => {
                    self.sink.step(items.len(), step);
                    items.push(Value::Null);
                }
                other => items.push(other),
            }
        }
        Ok(Value::Array(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, format: Format) -> Loaded {
        load("test".into(), text.as_bytes().to_vec(), Some(format))
    }

    /// JSON is located by one pass over its text; before, past 32 findings, by the YAML
    /// parser's spans. The two agree on every value and key of a document with escapes, empty
    /// containers, text outside ASCII and values at the end of their lines, and on pointers
    /// that go past what exists.
    #[test]
    fn json_tree_locates_as_the_yaml_spans_did() {
        let text = "{\n  \"schemaVersion\": \"0.3\",\n  \"k\\\"ey\": {\"é\": [1, 2.5e3, true, null, {}, []],\n    \"s\": \"a\\nb \\u00e9 \\\"q\\\"\"},\n  \"mainSteps\": [\n    {\"name\": \"x\", \"inputs\": {\"Script\": \"print(1)\\n\", \"N\": -3}},\n    {\"name\": \"y\", \"outputs\": [ ]}\n  ],\n  \"end\": 7\n}";
        let value: Value = serde_json::from_str(text).unwrap();
        let mut pointers = vec![
            String::new(),
            "/nothing".to_owned(),
            "/mainSteps/9/name".to_owned(),
            "/mainSteps/0/inputs/zz".to_owned(),
        ];
        fn walk(value: &Value, at: &str, out: &mut Vec<String>) {
            let children: Vec<(String, &Value)> = match value {
                Value::Object(map) => map.iter().map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v)).collect(),
                Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
                _ => Vec::new(),
            };
            for (segment, child) in children {
                let pointer = format!("{at}/{segment}");
                out.push(pointer.clone());
                walk(child, &pointer, out);
            }
        }
        walk(&value, "", &mut pointers);
        assert!(pointers.len() > 20, "{pointers:?}");
        let lines = LineIndex::new(text);
        let json = json_spans::Tree::read(text).unwrap();
        let yaml = yaml::spans_for(text, &yaml::Wanted::new(pointers.iter().map(String::as_str))).unwrap();
        for pointer in &pointers {
            for target in [Target::Value, Target::Key] {
                let (start, end) = json.locate(text, pointer, target);
                assert_eq!(
                    lines.range_location(start, end),
                    lines.location(yaml.find(pointer, target)),
                    "{pointer} {target:?}"
                );
            }
        }
    }

    /// A JSON document of at most a mebibyte reads where its values are once, on its first
    /// round of findings, and locates the next rounds with the same tree (past the 64 KiB a
    /// YAML document keeps its tree to); a larger one reads it each round. All locate as the
    /// YAML spans do.
    #[test]
    fn json_tree_is_kept_for_later_rounds_of_a_small_document() {
        let small = "{\"mainSteps\": [{\"name\": \"a\",\n \"inputs\": {\"X\": \"{{ Y }}\"}}]}";
        let padded = |padding: usize| {
            let padding = "x".repeat(padding);
            format!("{{\"pad\": \"{padding}\",\n\"mainSteps\": [{{\"name\": \"a\",\n \"inputs\": {{\"X\": 1}}}}]}}")
        };
        let (medium, large) = (padded(yaml::SPANS_KEPT_BYTES), padded(json_spans::TREE_KEPT_BYTES));
        for (text, kept) in [(small, true), (medium.as_str(), true), (large.as_str(), false)] {
            let loaded = load_str(text, Format::Json);
            let wanted = [
                ("/mainSteps/0/inputs/X", Target::Value),
                ("/mainSteps/0/name", Target::Key),
                ("/nothing", Target::Value),
            ];
            let first = loaded.locate_each(&wanted);
            assert!(matches!(&loaded.spans, Spans::Json { tree, .. } if tree.get().is_some() == kept), "kept: {kept}");
            assert_eq!(loaded.locate_each(&wanted), first);
            let lines = LineIndex::new(text);
            let yaml = yaml::spans_for(text, &yaml::Wanted::new(wanted.iter().map(|(pointer, _)| *pointer))).unwrap();
            let expected: Vec<_> =
                wanted.iter().map(|(pointer, target)| Some(lines.location(yaml.find(pointer, *target)))).collect();
            assert_eq!(first, expected);
        }
    }

    #[test]
    fn json_duplicate_keys_report_every_one() {
        let loaded = load_str("{\"a\": 1,\n \"a\": 2,\n \"b\": 1, \"b\": 3}", Format::Json);
        let lines: Vec<_> = loaded.diagnostics.iter().map(|d| (d.code, d.location.unwrap().line)).collect();
        assert_eq!(lines, vec![(Code::DuplicateKey, 2), (Code::DuplicateKey, 3)]);
    }

    #[test]
    fn json_syntax_errors_have_positions() {
        let loaded = load_str("{\n  \"a\": 1,\n}", Format::Json);
        let d = &loaded.diagnostics[0];
        assert_eq!(d.code, Code::ParseError);
        assert_eq!(d.location.unwrap().line, 3);
    }

    #[test]
    fn json_deep_nesting_and_empty() {
        assert_eq!(load_str(&"[".repeat(10_000), Format::Json).diagnostics[0].code, Code::TooDeep);
        assert_eq!(load_str("  ", Format::Json).diagnostics[0].code, Code::EmptyDocument);
    }

    #[test]
    fn binary_garbage_is_a_diagnostic() {
        let loaded = load("bin".into(), vec![0xff, 0xfe, 0x00, 0x12, 0x80], None);
        assert_eq!(loaded.diagnostics[0].code, Code::ParseError);
        let loaded = load("nul".into(), b"\x00\x01\x02garbage".to_vec(), None);
        assert!(loaded.value.is_none() || !loaded.diagnostics.is_empty());
    }

    #[test]
    fn json_spans_are_found() {
        let loaded = load_str("{\n  \"mainSteps\": [\n    {\"name\": \"x\"}\n  ]\n}", Format::Json);
        let location = loaded.locate("/mainSteps/0/name", Target::Value).unwrap();
        assert_eq!((location.line, location.column), (3, 14));
    }

    /// Past `SPANS_KEPT_BYTES` a YAML document keeps no span tree: pointers are found by a
    /// parse that records only the spans along them, at the places the whole tree gives. So
    /// are more than a few pointers in JSON.
    #[test]
    fn large_documents_locate_pointers_without_a_whole_span_tree() {
        let mut text = String::from("# steps\nschemaVersion: '0.3'\nmainSteps:\n");
        for i in 0..3000 {
            text.push_str(&format!("  - name: s{i}\n    action: aws:sleep\n    inputs:\n      Duration: PT{i}S\n"));
        }
        // An alias as a key is found by its anchor's text.
        text.push_str("x-keys:\n  &k anchored: 1\n  other:\n    *k : 2\n");
        assert!(text.len() > yaml::SPANS_KEPT_BYTES);
        let loaded = load_str(&text, Format::Yaml);
        let alias = loaded.locate("/x-keys/other/anchored", Target::Key).unwrap();
        assert_eq!((alias.line, alias.column), (text.lines().count(), 5));
        assert!(matches!(loaded.spans, Spans::Root(_)));
        let mut wanted = vec![
            ("", Target::Value),
            ("/mainSteps", Target::Key),
            ("/mainSteps/2999/inputs/Duration", Target::Value),
            ("/mainSteps/1500/name", Target::Key),
            ("/mainSteps/7/inputs/Missing", Target::Value),
            ("/mainSteps/9000", Target::Value),
        ];
        let whole = yaml::spans(&text).unwrap();
        let lines = LineIndex::new(&text);
        let expected = |wanted: &[(&str, Target)]| -> Vec<_> {
            wanted.iter().map(|(pointer, target)| Some(lines.location(whole.find(pointer, *target)))).collect()
        };
        assert_eq!(loaded.locate_each(&wanted), expected(&wanted));
        assert_eq!(loaded.locate_each(&wanted[2..3]), expected(&wanted[2..3]));
        assert_eq!(loaded.locate_each(&wanted)[0].unwrap().line, 2);

        let json_text = serde_json::to_string_pretty(loaded.value.as_ref().unwrap()).unwrap();
        let loaded = load_str(&json_text, Format::Json);
        let pointers: Vec<String> = (0..40).map(|i| format!("/mainSteps/{}/inputs/Duration", i * 70)).collect();
        wanted = pointers.iter().map(|p| (p.as_str(), Target::Value)).collect();
        let one_by_one: Vec<_> = wanted.iter().map(|(p, t)| loaded.locate(p, *t)).collect();
        assert_eq!(loaded.locate_each(&wanted), one_by_one);
        assert_eq!(one_by_one[39].unwrap().line, json_text[..json_text.find("PT2730S").unwrap()].lines().count());
    }

    #[test]
    fn content_decides_without_extension() {
        assert_eq!(load("x".into(), b" {\"a\": 1}".to_vec(), None).source.format, Format::Json);
        assert_eq!(load("x".into(), b"a: 1".to_vec(), None).source.format, Format::Yaml);
    }

    #[test]
    fn large_documents_load_with_a_warning() {
        let text = format!("a: \"{}\"\n", "x".repeat(AWS_MAX_DOCUMENT_BYTES));
        let loaded = load_str(&text, Format::Yaml);
        assert!(loaded.value.is_some());
        assert_eq!(loaded.diagnostics[0].code, Code::DocumentTooLarge);
    }
}
