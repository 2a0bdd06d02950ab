//! Stage 1, loading: a runbook file (YAML or JSON) to a JSON value whose every node can be
//! traced back to `file:line:column`, and then to the typed model.

mod json_spans;
pub mod model;
pub mod outputs;
pub mod selector;
mod spans;
mod yaml;

use std::cell::OnceCell;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, Location, Target};
pub use spans::LineIndex;
use spans::SpanNode;

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

/// A loaded document: the value when it parsed, the load diagnostics, and spans computed on
/// demand. JSON is parsed by serde_json (fast and strict); its spans come from the YAML
/// builder only when a diagnostic needs a position, since JSON is YAML.
pub struct Loaded {
    pub source: Source,
    pub value: Option<Value>,
    pub diagnostics: Vec<Diagnostic>,
    spans: OnceCell<Option<SpanNode>>,
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
    let bytes = std::fs::read(path).map_err(|source| Error { path: path.display().to_string(), source })?;
    Ok(load(path.display().to_string(), bytes, format_of(path)))
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
            return Loaded { source, value: None, diagnostics: vec![diagnostic], spans: OnceCell::from(None) };
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
        Format::Json => load_json(name, text),
        Format::Yaml => {
            let built = yaml::build(&text);
            Loaded {
                source: Source { name, text, format },
                value: built.value,
                diagnostics: built.diagnostics,
                spans: OnceCell::from(built.spans),
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

fn load_json(name: String, text: String) -> Loaded {
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let parsed = StrictValue.deserialize(&mut deserializer).and_then(|value| {
        deserializer.end()?;
        Ok(value)
    });
    match parsed {
        Ok(value) => Loaded {
            source: Source { name, text, format: Format::Json },
            value: Some(value),
            diagnostics: Vec::new(),
            spans: OnceCell::new(),
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
                        spans: OnceCell::from(None),
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
                spans: OnceCell::from(None),
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
        let mut json = json_spans::Locator::new(&self.source.text);
        self.location(&LineIndex::new(&self.source.text), &mut json, pointer, target)
    }

    /// Fills in the location of every diagnostic that has a pointer but no location yet.
    pub fn locate_all(&self, diagnostics: &mut [Diagnostic]) {
        if diagnostics.iter().all(|d| d.location.is_some() || d.pointer.is_none()) {
            return;
        }
        let lines = LineIndex::new(&self.source.text);
        let mut json = json_spans::Locator::new(&self.source.text);
        // Skipping to each pointer costs the text's length: past a few findings, one span tree
        // of the whole document keeps locating them linear.
        let unlocated = diagnostics.iter().filter(|d| d.location.is_none() && d.pointer.is_some()).count();
        if unlocated > 32 {
            self.spans.get_or_init(|| yaml::spans(&self.source.text));
        }
        for diagnostic in diagnostics.iter_mut().filter(|d| d.location.is_none()) {
            if let Some(pointer) = &diagnostic.pointer {
                diagnostic.location = self.location(&lines, &mut json, pointer, diagnostic.target);
            }
        }
    }

    fn location(
        &self,
        lines: &LineIndex<'_>,
        json: &mut json_spans::Locator<'_>,
        pointer: &str,
        target: Target,
    ) -> Option<Location> {
        match self.source.format {
            // JSON was parsed by serde_json without spans; skipping to the pointer is far
            // cheaper than a span tree of the whole file.
            Format::Json if self.spans.get().is_none() => {
                json.locate(pointer, target).map(|(start, end)| lines.range_location(start, end))
            }
            _ => self
                .spans
                .get_or_init(|| yaml::spans(&self.source.text))
                .as_ref()
                .map(|spans| lines.location(spans.find(pointer, target))),
        }
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
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY} `{key}`")));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, format: Format) -> Loaded {
        load("test".into(), text.as_bytes().to_vec(), Some(format))
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
    fn json_spans_are_found_lazily() {
        let loaded = load_str("{\n  \"mainSteps\": [\n    {\"name\": \"x\"}\n  ]\n}", Format::Json);
        let location = loaded.locate("/mainSteps/0/name", Target::Value).unwrap();
        assert_eq!((location.line, location.column), (3, 14));
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
