//! Locating a JSON pointer in JSON text that serde_json already accepted: skip through the
//! text to the target instead of building a span tree of the whole document.

use crate::diagnostic::{Target, pointer_segments};

/// The byte range of the node (or key) a pointer refers to, or of its deepest existing
/// ancestor. `None` only if the text is not the valid JSON it was said to be.
pub fn locate(text: &str, pointer: &str, target: Target) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut at = skip_blank(bytes, 0);
    let mut key_range = None;
    for segment in pointer_segments(pointer) {
        let found = match bytes.get(at)? {
            b'{' => find_member(bytes, at, &segment)?,
            b'[' => {
                segment.parse::<usize>().ok().and_then(|index| find_item(bytes, at, index)).map(|item| (item, None))
            }
            _ => None,
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

type Member = (usize, Option<(usize, usize)>);

/// Finds `key` in the object starting at `at`; the last duplicate wins, as in the value.
fn find_member(bytes: &[u8], at: usize, key: &str) -> Option<Option<Member>> {
    let mut position = skip_blank(bytes, at + 1);
    let mut found = None;
    if bytes.get(position) == Some(&b'}') {
        return Some(None);
    }
    loop {
        let key_start = position;
        let key_end = skip_string(bytes, key_start)?;
        let raw = std::str::from_utf8(&bytes[key_start + 1..key_end - 1]).ok()?;
        let matches = if raw.contains('\\') {
            serde_json::from_slice::<String>(&bytes[key_start..key_end]).ok().as_deref() == Some(key)
        } else {
            raw == key
        };
        position = skip_blank(bytes, key_end);
        (bytes.get(position)? == &b':').then_some(())?;
        let value_start = skip_blank(bytes, position + 1);
        if matches {
            found = Some((value_start, Some((key_start, key_end))));
        }
        position = skip_blank(bytes, skip_value(bytes, value_start)?);
        match bytes.get(position)? {
            b',' => position = skip_blank(bytes, position + 1),
            b'}' => return Some(found),
            _ => return None,
        }
    }
}

fn find_item(bytes: &[u8], at: usize, index: usize) -> Option<usize> {
    let mut position = skip_blank(bytes, at + 1);
    if bytes.get(position) == Some(&b']') {
        return None;
    }
    for _ in 0..index {
        position = skip_blank(bytes, skip_value(bytes, position)?);
        match bytes.get(position)? {
            b',' => position = skip_blank(bytes, position + 1),
            _ => return None,
        }
    }
    Some(position)
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
