//! JSON read in one pass into values and, for a small document, where each value and key is.
//! It accepts only what serde_json accepts and gives the same values: on anything it is not
//! sure of (an error, a duplicate key, a lone surrogate, nesting past [`MAX_DEPTH`]) it gives
//! up, and serde_json reads the document instead and words the error. Numbers other than small
//! integers are handed to serde_json one by one. With serde_json alone, a document with a
//! finding was read twice, the second time for its spans (`json_spans`); SIMD parsers behind
//! serde's visitors were no faster than serde_json at building the values.

use serde_json::{Map, Value};

use super::json_spans::{NONE, Node, TREE_KEPT_BYTES, Tree};
use super::{StepSink, reborrow};

/// Nesting deeper than this is left to serde_json, whose limit (128) it stays under.
const MAX_DEPTH: usize = 100;

/// What the reader gives for a document serde_json accepts.
pub struct Read {
    pub value: Value,
    /// Where each value and key is, for a document of at most [`TREE_KEPT_BYTES`].
    pub tree: Option<Tree>,
    /// Whether no key holds `{{`, seen as the keys went by (the rule against templated keys
    /// then has nothing to look for).
    pub literal_keys: bool,
}

/// The value of a document serde_json would accept, with the document's tree if it is at most
/// [`TREE_KEPT_BYTES`] long; `None` if serde_json must judge it. The objects of a top-level
/// `mainSteps` go to the sink as they are read, `null` left in their place, as the serde path
/// does.
pub fn read(text: &str, sink: Option<&mut dyn StepSink>) -> Option<Read> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
        // A value takes 30 bytes of text or more in the corpus's documents (75 for half):
        // reserved so, the tree is seldom copied as it grows.
        nodes: (text.len() <= TREE_KEPT_BYTES).then(|| Vec::with_capacity(text.len() / 30 + 16)),
        scratch: String::new(),
        controls_skipped: 0,
        braced_keys: false,
    };
    reader.blank();
    // The root has no parent and no sibling before it.
    let mut first = NONE;
    let value = match sink {
        Some(sink) => {
            sink.restart();
            match reader.bytes.get(reader.at) {
                Some(b'{') => {
                    let node = reader.start_node(None, NONE, &mut first);
                    let value = reader.object(node, Some(sink))?;
                    reader.end_node(node);
                    value
                }
                _ => reader.child(None, NONE, &mut first)?,
            }
        }
        None => reader.child(None, NONE, &mut first)?,
    };
    reader.blank();
    (reader.at == reader.bytes.len()).then_some(())?;
    // JSON allows control characters only as whitespace: unescaped in a string, or anywhere
    // else, they are not all skipped as such. Counting them once over the whole text costs
    // less than looking for them in every string.
    (control_characters(reader.bytes) == reader.controls_skipped).then_some(())?;
    Some(Read { value, tree: reader.nodes.map(Tree::from_nodes), literal_keys: !reader.braced_keys })
}

/// How many bytes of `bytes` are control characters, counted in blocks small enough for a
/// byte-wide count, which the compiler vectorises.
fn control_characters(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|block| usize::from(block.iter().fold(0u8, |count, &byte| count + u8::from(byte < 0x20))))
        .sum()
}

struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
    depth: usize,
    /// The tree so far, in document order, when spans are kept.
    nodes: Option<Vec<Node>>,
    /// A string with escapes is decoded here, then copied at its length.
    scratch: String,
    /// The control characters skipped as whitespace (line feeds, returns, tabs).
    controls_skipped: usize,
    /// Whether a key holds `{{`.
    braced_keys: bool,
}

/// Where the first `"` or `\\` of `bytes` is. Most strings of a runbook are short, and a
/// script's lines between escapes too: the vector search is chosen and its needles set up
/// once, where `memchr2` did both on every call (301,000 calls over the corpus, some 58
/// instructions each, of which 24 were choosing).
pub(super) fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use memchr::arch::x86_64::avx2::memchr::Two;
        static QUOTES: std::sync::LazyLock<Option<Two>> = std::sync::LazyLock::new(|| Two::new(b'"', b'\\'));
        if let Some(quotes) = &*QUOTES {
            return quotes.find(bytes);
        }
    }
    memchr::memchr2(b'"', b'\\', bytes)
}

impl Reader<'_> {
    /// Skips whitespace, counting the control characters in it.
    fn blank(&mut self) {
        loop {
            // Indentation is runs of spaces: eight bytes are looked at together, the spaces
            // they start with counted from the zero bytes left by taking spaces away.
            while let Some(&eight) = self.bytes.get(self.at..).and_then(|rest| rest.first_chunk::<8>()) {
                let spaces = (u64::from_le_bytes(eight) ^ u64::from_le_bytes([b' '; 8])).trailing_zeros() / 8;
                self.at += spaces as usize;
                if spaces < 8 {
                    break;
                }
            }
            match self.bytes.get(self.at) {
                Some(b' ') => {}
                Some(b'\n' | b'\r' | b'\t') => self.controls_skipped += 1,
                _ => return,
            }
            self.at += 1;
        }
    }

    /// Records a value starting here, linked after `last` (or as the first child of
    /// `parent`); returns its node.
    fn start_node(&mut self, key: Option<(usize, usize)>, parent: u32, last: &mut u32) -> u32 {
        let Some(nodes) = &mut self.nodes else { return NONE };
        let Ok(index) = u32::try_from(nodes.len()) else {
            // More nodes than a tree can link (not in a document small enough to keep one).
            self.nodes = None;
            return NONE;
        };
        nodes.push(Node { start: self.at, end: self.at, key, first_child: NONE, next_sibling: NONE });
        if parent != NONE {
            match *last {
                NONE => nodes[parent as usize].first_child = index,
                previous => nodes[previous as usize].next_sibling = index,
            }
        }
        *last = index;
        index
    }

    fn end_node(&mut self, node: u32) {
        if let Some(nodes) = &mut self.nodes
            && let Some(node) = nodes.get_mut(node as usize)
        {
            node.end = self.at;
        }
    }

    /// The value starting here, as a child of `parent` after `last`.
    fn child(&mut self, key: Option<(usize, usize)>, parent: u32, last: &mut u32) -> Option<Value> {
        let node = self.start_node(key, parent, last);
        let value = match *self.bytes.get(self.at)? {
            b'{' => self.object(node, None)?,
            b'[' => self.array(node, None)?,
            b'"' => Value::String(self.string()?),
            b't' => self.literal(b"true", Value::Bool(true))?,
            b'f' => self.literal(b"false", Value::Bool(false))?,
            b'n' => self.literal(b"null", Value::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        };
        self.end_node(node);
        Some(value)
    }

    /// Opens the container whose bracket is here: `true` if `close` ends it at once.
    fn enter(&mut self, close: u8) -> Option<bool> {
        self.depth += 1;
        self.at += 1;
        self.blank();
        (self.depth <= MAX_DEPTH).then_some(())?;
        let empty = self.bytes.get(self.at)? == &close;
        if empty {
            self.at += 1;
            self.depth -= 1;
        }
        Some(empty)
    }

    /// The key starting here (its range, quotes included), and the value after its colon. With
    /// a sink (the top level of a runbook), the objects of `mainSteps` go there.
    fn member(&mut self, parent: u32, last: &mut u32, sink: Option<&mut dyn StepSink>) -> Option<(String, Value)> {
        (self.bytes.get(self.at)? == &b'"').then_some(())?;
        let start = self.at;
        let key = self.string()?;
        self.braced_keys |= crate::template::has_braces(&key);
        let range = (start, self.at);
        self.blank();
        (self.bytes.get(self.at)? == &b':').then_some(())?;
        self.at += 1;
        self.blank();
        let value = match sink {
            Some(sink) if key == "mainSteps" && self.bytes.get(self.at) == Some(&b'[') => {
                let node = self.start_node(Some(range), parent, last);
                let steps = self.array(node, Some(sink))?;
                self.end_node(node);
                steps
            }
            _ => self.child(Some(range), parent, last)?,
        };
        Some((key, value))
    }

    /// After a member or item: `true` if another follows, `false` if `close` ends the container.
    fn next(&mut self, close: u8) -> Option<bool> {
        self.blank();
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        match byte {
            b',' => {
                self.blank();
                Some(true)
            }
            _ if byte == close => {
                self.depth -= 1;
                Some(false)
            }
            _ => None,
        }
    }

    fn object(&mut self, node: u32, mut sink: Option<&mut dyn StepSink>) -> Option<Value> {
        let mut map = Map::new();
        if self.enter(b'}')? {
            return Some(Value::Object(map));
        }
        let mut last = NONE;
        loop {
            let (key, value) = self.member(node, &mut last, reborrow(&mut sink))?;
            match map.entry(key) {
                serde_json::map::Entry::Vacant(entry) => {
                    entry.insert(value);
                }
                // serde_json's path reports duplicates.
                serde_json::map::Entry::Occupied(_) => return None,
            }
            if !self.next(b'}')? {
                return Some(Value::Object(map));
            }
        }
    }

    /// An array; with a sink, each object in it goes there and `null` stays in its place.
    fn array(&mut self, node: u32, mut sink: Option<&mut dyn StepSink>) -> Option<Value> {
        let mut items = Vec::new();
        if self.enter(b']')? {
            return Some(Value::Array(items));
        }
        let mut last = NONE;
        loop {
            match (self.child(None, node, &mut last)?, reborrow(&mut sink)) {
                (Value::Object(step), Some(sink)) => {
                    sink.step(items.len(), step);
                    items.push(Value::Null);
                }
                (item, _) => items.push(item),
            }
            if !self.next(b']')? {
                return Some(Value::Array(items));
            }
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        self.bytes.get(self.at..)?.starts_with(word).then_some(())?;
        self.at += word.len();
        Some(value)
    }

    /// A number: a small integer read here, anything else read by serde_json itself, so its
    /// value (floats, negative zero, integers past 64 bits) is exactly serde_json's.
    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        let length = self.bytes[start..]
            .iter()
            .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
            .unwrap_or(self.bytes.len() - start);
        self.at += length;
        let token = &self.text[start..self.at];
        let plain = token.bytes().all(|b| b.is_ascii_digit()) && (length == 1 || !token.starts_with('0'));
        match plain && length <= 18 {
            true => token.parse::<u64>().ok().map(Value::from),
            false => serde_json::from_str::<Value>(token).ok(),
        }
    }

    /// The string whose opening quote is here, escapes decoded.
    fn string(&mut self) -> Option<String> {
        let mut from = self.at + 1;
        let mut decoded = false;
        loop {
            let rest = self.bytes.get(from..)?;
            let stop = quote_or_backslash(rest)?;
            let run = &self.text[from..from + stop];
            if rest[stop] == b'"' {
                self.at = from + stop + 1;
                if !decoded {
                    return Some(run.to_owned());
                }
                self.scratch.push_str(run);
                return Some(self.scratch.as_str().to_owned());
            }
            if !decoded {
                self.scratch.clear();
                decoded = true;
            }
            self.scratch.push_str(run);
            from += stop + 1;
            let escape = *self.bytes.get(from)?;
            from += 1;
            let character = match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let (character, length) = self.unicode_escape(from)?;
                    from += length;
                    character
                }
                _ => return None,
            };
            self.scratch.push(character);
        }
    }

    /// The character of a `\u` escape whose hex digits start at `from`, and how many bytes
    /// it took past the `u`: a surrogate pair is two escapes; a lone surrogate is left to
    /// serde_json.
    fn unicode_escape(&self, from: usize) -> Option<(char, usize)> {
        let first = self.hex4(from)?;
        if !(0xD800..0xE000).contains(&first) {
            return Some((char::from_u32(first)?, 4));
        }
        (first < 0xDC00).then_some(())?;
        (self.bytes.get(from + 4..from + 6)? == b"\\u").then_some(())?;
        let second = self.hex4(from + 6)?;
        (0xDC00..0xE000).contains(&second).then_some(())?;
        Some((char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))?, 10))
    }

    fn hex4(&self, from: usize) -> Option<u32> {
        let digits = self.bytes.get(from..from + 4)?;
        digits.iter().try_fold(0, |value, &digit| Some(value * 16 + char::from(digit).to_digit(16)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value serde_json gives, or `None` where it refuses the text.
    fn serde_value(text: &str) -> Option<Value> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = serde::de::DeserializeSeed::deserialize(super::super::StrictValue, &mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(value)
    }

    /// What this reader gives must be serde_json's value, and where it gives one serde_json
    /// must accept the text; its tree must be the one the spans pass reads.
    fn agrees(text: &str) -> bool {
        let read = read(text, None);
        if let Some(Read { value, tree, literal_keys }) = &read {
            assert_eq!(Some(value), serde_value(text).as_ref(), "{text:?}");
            assert_eq!(tree.as_ref(), Tree::read(text).as_ref(), "{text:?}");
            assert_eq!(*literal_keys, !braced_key(value), "{text:?}");
        }
        read.is_some()
    }

    #[test]
    fn reads_what_serde_json_reads_and_gives_up_on_the_rest() {
        let accepted = [
            r#"{"a": {"b\"c": [1, {"d": "x,}]"}], "e": true}, "f": [ ], "a2": null, "g": {}}"#,
            "[\"\\u00e9\\ud83d\\ude00 \\n\\t\\/\\b\\f\\r\\\\ é 😀\", -0, 0, 12, -12, 1.5, 1e3, -2.5E-3]",
            "[18446744073709551615, 18446744073709551616, 99999999999999999999999, 123456789012345678]",
            "  \r\n\t\"top\"  ",
            "[[[[[]]]]]",
            "{\"\\u0000\": \"\\u0041\", \"A\": 1}",
            "[false, true, null]",
            "{\"a\": [{\"{{ b }}\": 1}]}",
            "[\"a run of plain text longer than sixteen bytes, then \\\"quoted\\\" and \\n more\"]",
            "{\n                 \"a\":         [\t \n        1 ,\r\n  2       ]  }        ",
        ];
        for text in accepted {
            assert!(agrees(text), "{text:?} was refused");
        }
        let refused = [
            "",
            "   ",
            "{\"a\": 1, \"a\": 2}",
            "{\"a\": 1,}",
            "[1,]",
            "[01]",
            "[1.]",
            "[-]",
            "[tru]",
            "[truex]",
            "[\"\\ud800\"]",
            "[\"\\udc00\\ud800\"]",
            "[\"\\x\"]",
            "[\"a\u{1}b\"]",
            "[\"a run of plain text longer than sixteen bytes\u{1f}\"]",
            "[\"a run of plain text longer than sixteen bytes\ttab\"]",
            "[\"a run of plain text longer than sixteen bytes",
            "[\"open",
            "{\"a\" 1}",
            "{1: 2}",
            "[1] 2",
            "\u{c}[1]",
            "[1\u{c}]",
            "[NaN]",
        ];
        for text in refused {
            assert!(!agrees(text), "{text:?} was accepted");
            assert!(serde_value(text).is_none(), "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(agrees(&deep));
        let deeper = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!agrees(&deeper), "left to serde_json");
    }

    /// What a sink is handed, and how often it is restarted.
    #[derive(Default, Debug, PartialEq)]
    struct Recorded {
        steps: Vec<(usize, Map<String, Value>)>,
        restarts: usize,
    }

    impl StepSink for Recorded {
        fn step(&mut self, index: usize, step: Map<String, Value>) {
            self.steps.push((index, step));
        }
        fn restart(&mut self) {
            self.steps.clear();
            self.restarts += 1;
        }
    }

    /// With a sink, the reader hands over the steps the serde path hands over, leaves the
    /// same value, and still records the whole tree; where it gives up, so does serde_json.
    #[test]
    fn hands_steps_to_a_sink_as_the_serde_path_does() {
        let documents = [
            r#"{"schemaVersion": "0.3", "mainSteps": [{"name": "a"}, 1, {"name": "b", "x": [{"c": 1}]}], "z": []}"#,
            r#"{"mainSteps": {"name": "a"}}"#,
            r#"{"mainSteps": "x", "other": [{"name": "a"}]}"#,
            r#"{"mainSteps": [{"mainSteps": [{"a": 1}]}]}"#,
            r#"[{"mainSteps": [{"a": 1}]}]"#,
            r#"{}"#,
        ];
        for text in documents {
            let mut by_reader = Recorded::default();
            let read = read(text, Some(&mut by_reader)).unwrap_or_else(|| panic!("{text:?} was refused"));
            // The serde path as `load_json` takes it: the sink restarted, then `Root`.
            let mut by_serde = Recorded::default();
            by_serde.restart();
            let mut deserializer = serde_json::Deserializer::from_str(text);
            let value =
                serde::de::DeserializeSeed::deserialize(super::super::Root { sink: &mut by_serde }, &mut deserializer)
                    .unwrap();
            assert_eq!(read.value, value, "{text:?}");
            assert_eq!(by_reader, by_serde, "{text:?}");
            assert_eq!(read.tree, Tree::read(text), "{text:?}");
        }
        let mut sink = Recorded::default();
        assert!(read(r#"{"mainSteps": [{"a": 1}], "mainSteps": []}"#, Some(&mut sink)).is_none());
        assert_eq!(sink.restarts, 1, "restarted once by the reader (the serde path restarts it again)");
    }

    /// The search set up once finds what memchr2 finds: bytes next to `"` and `\\` in value,
    /// with their high bit set, at every position and length (the vector search's shorter
    /// paths below 16 and 32 bytes among them).
    #[test]
    fn quotes_and_backslashes_are_found_as_memchr_finds_them() {
        let bytes = [b'"', b'\\', b'a', 0x01, 0x21, 0x23, 0x5b, 0x5d, 0xa2, 0xdc, 0x00, 0xff, b' '];
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let length = (seed % 48) as usize;
            let text: Vec<u8> = (0..length)
                .map(|at| match (seed >> (at % 60)) % 9 {
                    0 => bytes[((seed >> 20) as usize + at * 7) % bytes.len()],
                    _ => bytes[2 + ((seed >> 8) as usize + at) % (bytes.len() - 2)],
                })
                .collect();
            assert_eq!(quote_or_backslash(&text), memchr::memchr2(b'"', b'\\', &text), "{text:?}");
        }
    }

    /// Every document of a corpus, and a thousand of them with a byte changed: whatever the
    /// reader accepts, serde_json accepts with the same value.
    #[test]
    fn agrees_with_serde_json_on_changed_documents() {
        let base = include_str!("../../../examples/local-maintenance.yaml");
        let value = serde_value(&serde_json::to_string_pretty(&yaml_value(base)).unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&value).unwrap();
        assert!(agrees(&text));
        let bytes = text.as_bytes();
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut accepted = 0;
        for _ in 0..1000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % bytes.len() as u64) as usize;
            let replacement = b"\"\\{}[],:0-.eu \n\x01a"[(seed >> 32) as usize % 17];
            let mut changed = bytes.to_vec();
            match (seed >> 40) % 3 {
                0 => changed[at] = replacement,
                1 => changed.insert(at, replacement),
                _ => {
                    changed.remove(at);
                }
            }
            let Ok(changed) = String::from_utf8(changed) else { continue };
            accepted += usize::from(agrees(&changed));
        }
        assert!(accepted > 100, "only {accepted} changed documents were read");
    }

    fn braced_key(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.iter().any(|(key, item)| key.contains("{{") || braced_key(item)),
            Value::Array(items) => items.iter().any(braced_key),
            _ => false,
        }
    }

    fn yaml_value(text: &str) -> Value {
        super::super::yaml::build(text).value.unwrap()
    }
}
