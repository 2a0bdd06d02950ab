//! Source spans for every node of a loaded document, looked up by JSON pointer.

use std::borrow::Cow;

use crate::diagnostic::{Location, Target, pointer_segments};

/// Start and end of a node, as character indexes into the source (saphyr counts characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start_char: usize,
    pub end_char: usize,
    /// 1-based line of the start.
    pub line: usize,
    /// 0-based character column of the start.
    pub col: usize,
}

/// A tree mirroring the document's value, so a JSON pointer walks both the same way.
#[derive(Debug)]
pub enum SpanNode {
    Scalar(Span),
    Sequence(Span, Vec<SpanNode>),
    Mapping(Span, Vec<(String, Span, SpanNode)>),
}

impl SpanNode {
    pub fn span(&self) -> Span {
        match self {
            SpanNode::Scalar(span) | SpanNode::Sequence(span, _) | SpanNode::Mapping(span, _) => *span,
        }
    }

    /// The span a pointer refers to, or the span of its deepest existing ancestor.
    pub fn find(&self, pointer: &str, target: Target) -> Span {
        let mut node = self;
        let mut key_span = None;
        for segment in pointer_segments(pointer) {
            key_span = None;
            let next = match node {
                SpanNode::Sequence(_, items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                // Later duplicates win in the value, so look keys up from the back.
                SpanNode::Mapping(_, entries) => {
                    entries.iter().rev().find(|(key, _, _)| *key == segment).map(|(_, span, child)| {
                        key_span = Some(*span);
                        child
                    })
                }
                SpanNode::Scalar(_) => None,
            };
            match next {
                Some(child) => node = child,
                None => return node.span(),
            }
        }
        match (target, key_span) {
            (Target::Key, Some(span)) => span,
            _ => node.span(),
        }
    }
}

/// Converts character-indexed spans to lines, columns and byte ranges of one source text.
pub struct LineIndex<'a> {
    text: &'a str,
    lines: Cow<'a, Lines>,
    /// The last column converted (line, column, byte offset): spans come in order, so the
    /// next one on the same line walks on from here rather than from the line's start (a
    /// one-line document of 10,000 keys made every conversion walk the line).
    cursor: std::cell::Cell<(usize, usize, usize)>,
}

/// Where each line of a text starts, for a caller that keeps them to index the text again.
#[derive(Clone)]
pub struct Lines {
    line_starts: Vec<usize>,
    /// Whether the whole text is ASCII: a column is then a byte count.
    ascii: bool,
}

impl Lines {
    pub fn of(text: &str) -> Lines {
        let mut line_starts = vec![0];
        line_starts.extend(memchr_newlines(text));
        Lines { line_starts, ascii: text.is_ascii() }
    }
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        LineIndex { text, lines: Cow::Owned(Lines::of(text)), cursor: std::cell::Cell::new((0, 0, 0)) }
    }

    /// The index of `text` from its lines, made by [`Lines::of`] on the same text.
    pub fn with_lines(text: &'a str, lines: &'a Lines) -> LineIndex<'a> {
        LineIndex { text, lines: Cow::Borrowed(lines), cursor: std::cell::Cell::new((0, 0, 0)) }
    }

    /// The byte offset of a 1-based line and 0-based character column.
    pub fn byte_offset(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.lines.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        if self.lines.ascii {
            return (start + col).min(self.text.len());
        }
        let (cursor_line, cursor_col, cursor_byte) = self.cursor.get();
        let (from_col, from_byte) =
            if cursor_line == line && cursor_col <= col { (cursor_col, cursor_byte) } else { (0, start) };
        let rest = &self.text[from_byte..];
        let offset = from_byte + rest.char_indices().nth(col - from_col).map_or(rest.len(), |(i, _)| i);
        self.cursor.set((line, col, offset));
        offset
    }

    /// The location of a byte offset.
    pub fn location_of_offset(&self, offset: usize, length: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line_index = self.lines.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.lines.line_starts[line_index];
        let column = self.text[line_start..offset].chars().count() + 1;
        Location { line: line_index + 1, column, offset, length }
    }

    /// The location of the byte range `start..end`, its length kept to the first line so a
    /// multi-line script does not flood the terminal.
    pub fn range_location(&self, start: usize, end: usize) -> Location {
        let start = start.min(self.text.len());
        let end = end.clamp(start, self.text.len());
        let length = memchr::memchr(b'\n', &self.text.as_bytes()[start..end]).unwrap_or(end - start).max(1);
        self.location_of_offset(start, length)
    }

    pub fn location(&self, span: Span) -> Location {
        let offset = self.byte_offset(span.line, span.col);
        // A span's end is a character index: measure its byte length from the start.
        // Only its first line is shown: the rest is not measured (the root spans the text).
        let char_len = span.end_char.saturating_sub(span.start_char).max(1);
        let rest = &self.text[offset..];
        let rest = &rest[..memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |end| end + 1)];
        let length = rest.char_indices().nth(char_len).map_or(rest.len(), |(i, _)| i);
        self.range_location(offset, offset + length)
    }
}

fn memchr_newlines(text: &str) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)
}
