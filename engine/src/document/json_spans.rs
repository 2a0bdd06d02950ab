//! Locating JSON pointers in JSON text that serde_json already accepted: one pass over the
//! text records where each value (and key) starts and ends, without building values.

use crate::diagnostic::{Target, pointer_segments};

/// The byte range of the node (or key) a pointer refers to, or of its deepest existing
/// ancestor. `None` only if the text is not the valid JSON it was said to be.
#[cfg(test)]
pub fn locate(text: &str, pointer: &str, target: Target) -> Option<(usize, usize)> {
    Tree::read(text).map(|tree| tree.locate(text, pointer, target))
}

/// Every value of a document as a byte range, each linked to its first child and its next
/// sibling, in document order. It borrows nothing, so a document can keep it beside its text.
/// [`Tree::read`] reads it from text; `json_read` records it while it reads the values.
#[cfg_attr(test, derive(Debug, PartialEq))]
pub struct Tree {
    nodes: Vec<Node>,
}

/// The largest JSON document that keeps its tree (and its lines) once read. A node is 48
/// bytes, and a value of the corpus's runbooks takes 30 bytes of text or more, so a tree costs
/// some 1.6 times the text, where a YAML one costs ten ([`super::yaml::SPANS_KEPT_BYTES`]); at
/// worst (`[0,0,...]`, a value per two bytes) 24 times, tens of MB at this size. Past it the tree
/// is read again for each round of findings; below it, a JSON runbook of the corpus over 64
/// KiB was read three times.
pub const TREE_KEPT_BYTES: usize = 1 << 20;

/// No node: the end of a list of children.
pub(super) const NONE: u32 = u32::MAX;

#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Node {
    pub start: usize,
    pub end: usize,
    /// The key's range, quotes included, for a member of an object.
    pub key: Option<(usize, usize)>,
    pub first_child: u32,
    pub next_sibling: u32,
}

/// A container still open while reading: its node, its last child so far, whether an object.
struct Open {
    node: usize,
    last: u32,
    object: bool,
}

impl Tree {
    /// The tree of nodes recorded in document order, each linked as [`Tree::read`] links them.
    pub(super) fn from_nodes(nodes: Vec<Node>) -> Tree {
        Tree { nodes }
    }

    /// Reads the text once. Nesting is kept on a vector, not the stack, so depth cannot
    /// exhaust it. `None` if the text is not valid JSON after all.
    pub fn read(text: &str) -> Option<Tree> {
        let bytes = text.as_bytes();
        let mut nodes: Vec<Node> = Vec::new();
        let mut open: Vec<Open> = Vec::new();
        let mut at = skip_blank(bytes, 0);
        let mut key = None;
        loop {
            // A value starts at `at`.
            let index = nodes.len();
            let link = u32::try_from(index).ok()?;
            nodes.push(Node { start: at, end: at, key: key.take(), first_child: NONE, next_sibling: NONE });
            if let Some(parent) = open.last_mut() {
                match parent.last {
                    NONE => nodes[parent.node].first_child = link,
                    last => nodes[last as usize].next_sibling = link,
                }
                parent.last = link;
            }
            match bytes.get(at)? {
                byte @ (b'{' | b'[') => {
                    let object = *byte == b'{';
                    open.push(Open { node: index, last: NONE, object });
                    at = skip_blank(bytes, at + 1);
                    if bytes.get(at)? != if object { &b'}' } else { &b']' } {
                        if object {
                            (key, at) = read_key(bytes, at)?;
                        }
                        continue;
                    }
                }
                _ => {
                    at = skip_value(bytes, at)?;
                    nodes[index].end = at;
                    at = skip_blank(bytes, at);
                }
            }
            // After a value: close what ends here, then go on to the next member or item.
            loop {
                let Some(parent) = open.last() else { return Some(Tree { nodes }) };
                match bytes.get(at)? {
                    b',' => {
                        at = skip_blank(bytes, at + 1);
                        if parent.object {
                            (key, at) = read_key(bytes, at)?;
                        }
                        break;
                    }
                    b'}' | b']' => {
                        nodes[parent.node].end = at + 1;
                        open.pop();
                        at = skip_blank(bytes, at + 1);
                    }
                    _ => return None,
                }
            }
        }
    }

    /// The byte range of the node (or key) a pointer refers to, or of its deepest existing
    /// ancestor, in `text`, the text the tree was read from.
    pub fn locate(&self, text: &str, pointer: &str, target: Target) -> (usize, usize) {
        let mut node = &self.nodes[0];
        let mut key_range = None;
        for segment in pointer_segments(pointer) {
            let index = segment.parse::<usize>().ok();
            let found = self.children(node).enumerate().find(|(i, child)| match child.key {
                // Text that serde_json accepted has no duplicate keys (the loader refuses them).
                Some(range) => key_is(text.as_bytes(), range, &segment),
                None => Some(*i) == index,
            });
            match found {
                Some((_, child)) => {
                    node = child;
                    key_range = child.key;
                }
                None => return (node.start, node.end),
            }
        }
        match (target, key_range) {
            (Target::Key, Some(range)) => range,
            _ => (node.start, node.end),
        }
    }

    fn children<'a>(&'a self, node: &Node) -> impl Iterator<Item = &'a Node> + 'a {
        let mut next = node.first_child;
        std::iter::from_fn(move || {
            let child = self.nodes.get(next as usize)?;
            next = child.next_sibling;
            Some(child)
        })
    }
}

/// Whether the key at `range` (quotes included) is `name`, escapes decoded.
fn key_is(bytes: &[u8], (start, end): (usize, usize), name: &str) -> bool {
    let raw = &bytes[start + 1..end - 1];
    match memchr::memchr(b'\\', raw) {
        None => raw == name.as_bytes(),
        Some(_) => serde_json::from_slice::<String>(&bytes[start..end]).is_ok_and(|key| key == name),
    }
}

/// The key starting at `at` (its range, quotes included) and where its value starts.
fn read_key(bytes: &[u8], at: usize) -> Option<(Option<(usize, usize)>, usize)> {
    let end = skip_string(bytes, at)?;
    let colon = skip_blank(bytes, end);
    (bytes.get(colon)? == &b':').then_some(())?;
    Some((Some((at, end)), skip_blank(bytes, colon + 1)))
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
        position += super::json_read::quote_or_backslash(bytes.get(position..)?)?;
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

    /// What [`TREE_KEPT_BYTES`] says a tree costs.
    #[test]
    fn a_node_is_forty_eight_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 48);
    }

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
