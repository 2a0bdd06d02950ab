//! Locating a JSON pointer in JSON text that serde_json already accepted: skip through the
//! text to the target instead of building a span tree of the whole document.

use std::collections::HashMap;

use crate::diagnostic::{Target, pointer_segments};

/// The byte range of the node (or key) a pointer refers to, or of its deepest existing
/// ancestor. `None` only if the text is not the valid JSON it was said to be.
#[cfg(test)]
pub fn locate(text: &str, pointer: &str, target: Target) -> Option<(usize, usize)> {
    Locator::new(text).locate(pointer, target)
}

/// Locates many pointers in one text: each container is scanned once, the first time a
/// pointer passes through it, so a document with a hundred findings is read about once.
pub struct Locator<'t> {
    bytes: &'t [u8],
    /// The children of each container scanned so far, by the container's offset.
    children: HashMap<usize, Option<Vec<Child>>>,
}

/// A member of an object (with its key) or an item of an array.
struct Child {
    key: Option<(String, (usize, usize))>,
    value: usize,
}

impl<'t> Locator<'t> {
    pub fn new(text: &'t str) -> Locator<'t> {
        Locator { bytes: text.as_bytes(), children: HashMap::new() }
    }

    /// The byte range of the node (or key) a pointer refers to, or of its deepest existing
    /// ancestor. `None` only if the text is not the valid JSON it was said to be.
    pub fn locate(&mut self, pointer: &str, target: Target) -> Option<(usize, usize)> {
        let bytes = self.bytes;
        let mut at = skip_blank(bytes, 0);
        let mut key_range = None;
        for segment in pointer_segments(pointer) {
            let children = self.children.entry(at).or_insert_with(|| scan(bytes, at)).as_ref()?;
            let found = match bytes.get(at)? {
                // Text that serde_json accepted has no duplicate keys (the loader refuses them).
                b'{' => children
                    .iter()
                    .find(|child| child.key.as_ref().is_some_and(|(key, _)| *key == segment))
                    .map(|child| (child.value, child.key.as_ref().map(|(_, range)| *range))),
                _ => {
                    segment.parse::<usize>().ok().and_then(|index| children.get(index)).map(|child| (child.value, None))
                }
            };
            match found {
                Some((value_at, key)) => {
                    at = value_at;
                    key_range = key;
                }
                None => return Some((at, skip_value(bytes, at)?)),
            }
        }
        match (target, key_range) {
            (Target::Key, Some(range)) => Some(range),
            _ => Some((at, skip_value(bytes, at)?)),
        }
    }
}

/// The children of the container at `at`; empty for a scalar, `None` for invalid text.
fn scan(bytes: &[u8], at: usize) -> Option<Vec<Child>> {
    let (object, close) = match bytes.get(at)? {
        b'{' => (true, b'}'),
        b'[' => (false, b']'),
        _ => return Some(Vec::new()),
    };
    let mut children = Vec::new();
    let mut position = skip_blank(bytes, at + 1);
    if bytes.get(position) == Some(&close) {
        return Some(children);
    }
    loop {
        let key = if object {
            let key_start = position;
            let key_end = skip_string(bytes, key_start)?;
            let raw = std::str::from_utf8(&bytes[key_start + 1..key_end - 1]).ok()?;
            let key = match raw.contains('\\') {
                true => serde_json::from_slice::<String>(&bytes[key_start..key_end]).ok()?,
                false => raw.to_owned(),
            };
            position = skip_blank(bytes, key_end);
            (bytes.get(position)? == &b':').then_some(())?;
            position = skip_blank(bytes, position + 1);
            Some((key, (key_start, key_end)))
        } else {
            None
        };
        children.push(Child { key, value: position });
        position = skip_blank(bytes, skip_value(bytes, position)?);
        match bytes.get(position)? {
            b',' => position = skip_blank(bytes, position + 1),
            byte if *byte == close => return Some(children),
            _ => return None,
        }
    }
}

fn skip_blank(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The end (exclusive) of the string starting at `at`.
fn skip_string(bytes: &[u8], at: usize) -> Option<usize> {
    (bytes.get(at)? == &b'"').then_some(())?;
    let mut position = at + 1;
    loop {
        position += memchr::memchr2(b'"', b'\\', bytes.get(position..)?)?;
        match bytes[position] {
            b'"' => return Some(position + 1),
            _ => position += 2,
        }
    }
}

/// The end (exclusive) of the value starting at `at`. Nesting is counted, not recursed, so
/// depth cannot exhaust the stack. The text is valid JSON, so only brackets of the opening
/// kind need counting: the other kind nests evenly inside them.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    let (open, close) = match bytes.get(at)? {
        b'"' => return skip_string(bytes, at),
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        _ => {
            let mut position = at;
            while bytes.get(position).is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace()) {
                position += 1;
            }
            return Some(position);
        }
    };
    let mut depth = 0usize;
    let mut position = at;
    loop {
        position += memchr::memchr3(b'"', open, close, bytes.get(position..)?)?;
        match bytes[position] {
            b'"' => {
                position = skip_string(bytes, position)?;
                continue;
            }
            byte if byte == open => depth += 1,
            _ => {
                depth -= 1;
                if depth == 0 {
                    return Some(position + 1);
                }
            }
        }
        position += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"a": {"b\"c": [1, {"d": "x,}]"}], "e": true}, "f": [ ], "a2": null}"#;

    fn at(pointer: &str, target: Target) -> &'static str {
        let (start, end) = locate(TEXT, pointer, target).unwrap();
        &TEXT[start..end]
    }

    #[test]
    fn walks_pointers() {
        assert_eq!(at("/a/b\"c/1/d", Target::Value), "\"x,}]\"");
        assert_eq!(at("/a/b\"c/1/d", Target::Key), "\"d\"");
        assert_eq!(at("/a/e", Target::Value), "true");
        assert_eq!(at("/a2", Target::Value), "null");
        assert_eq!(at("/f/0", Target::Value), "[ ]", "missing items fall back to the parent");
        assert_eq!(at("/a/zz", Target::Value).len(), 39);
    }
}
