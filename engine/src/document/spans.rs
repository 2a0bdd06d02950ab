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

/// Where the lines of a text are, for a caller that keeps them to index the text again: how
/// many line breaks come before each block of [`BLOCK`] bytes. A line is then found by
/// counting breaks within one block (keeping where every line starts cost more than locating
/// a document's findings: a sixtieth of validating the corpus, and 8 bytes a line).
#[derive(Clone)]
pub struct Lines {
    breaks_before: Vec<usize>,
    /// The line breaks of the whole text.
    breaks: usize,
    /// Whether the whole text is ASCII: a column is then a byte count.
    ascii: bool,
}

const BLOCK: usize = 1024;

impl Lines {
    pub fn of(text: &str) -> Lines {
        let bytes = text.as_bytes();
        let mut breaks_before = Vec::with_capacity(bytes.len().div_ceil(BLOCK));
        let mut breaks = 0;
        for block in bytes.chunks(BLOCK) {
            breaks_before.push(breaks);
            breaks += memchr::memchr_iter(b'\n', block).count();
        }
        Lines { breaks_before, breaks, ascii: text.is_ascii() }
    }

    /// The 0-based line `offset` is on: the line breaks before it.
    fn line_of(&self, bytes: &[u8], offset: usize) -> usize {
        let block = offset / BLOCK;
        match self.breaks_before.get(block) {
            Some(before) => before + memchr::memchr_iter(b'\n', &bytes[block * BLOCK..offset]).count(),
            None => self.breaks,
        }
    }

    /// Where the 0-based line `line` starts, if the text has that many lines.
    fn line_start(&self, bytes: &[u8], line: usize) -> Option<usize> {
        if line == 0 {
            return Some(0);
        }
        // The block holding the line break that ends the line before.
        let block = self.breaks_before.partition_point(|&before| before < line).checked_sub(1)?;
        let from = block * BLOCK;
        memchr::memchr_iter(b'\n', &bytes[from..]).nth(line - self.breaks_before[block] - 1).map(|at| from + at + 1)
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
        let Some(start) = self.lines.line_start(self.text.as_bytes(), line.saturating_sub(1)) else {
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
        let bytes = self.text.as_bytes();
        let line_index = self.lines.line_of(bytes, offset);
        let line_start = line_start(bytes, offset);
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

/// Where the line holding byte `at` of `bytes` starts.
pub fn line_start(bytes: &[u8], at: usize) -> usize {
    memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines and columns as a list of every line's start gives them.
    struct Every {
        starts: Vec<usize>,
    }

    impl Every {
        fn of(text: &str) -> Every {
            let breaks = text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(at, _)| at + 1);
            Every { starts: std::iter::once(0).chain(breaks).collect() }
        }

        fn location(&self, text: &str, offset: usize) -> (usize, usize) {
            let line = self.starts.partition_point(|&start| start <= offset) - 1;
            (line + 1, text[self.starts[line]..offset].chars().count() + 1)
        }

        fn byte_offset(&self, text: &str, line: usize, col: usize) -> usize {
            let Some(&start) = self.starts.get(line.saturating_sub(1)) else { return text.len() };
            text[start..].char_indices().nth(col).map_or(text.len(), |(at, _)| start + at).min(text.len())
        }
    }

    /// Texts of short and long lines (across blocks), line breaks of both kinds, characters of
    /// several bytes, with and without a last line break: every offset and every line's start
    /// is where the list of line starts puts it.
    #[test]
    fn blocks_of_counted_breaks_find_what_every_line_start_finds() {
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        let pieces = ["a", "key: value", "\n", "\r\n", "é", "ü€", "\n\n", &"x".repeat(300), &"y".repeat(BLOCK)];
        let mut texts = vec![String::new(), "\n".into(), "abc".into(), "\n".repeat(BLOCK), "z".repeat(BLOCK)];
        for _ in 0..60 {
            let mut text = String::new();
            for _ in 0..seed % 80 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed >> 32) as usize % pieces.len()]);
            }
            texts.push(text);
        }
        for text in &texts {
            let every = Every::of(text);
            let index = LineIndex::new(text);
            for offset in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
                let location = index.location_of_offset(offset, 1);
                assert_eq!((location.line, location.column), every.location(text, offset), "{text:?} at {offset}");
            }
            for line in 0..every.starts.len() + 2 {
                for col in [0, 1, 3] {
                    let index = LineIndex::new(text);
                    assert_eq!(
                        index.byte_offset(line, col),
                        every.byte_offset(text, line, col),
                        "{text:?} {line}:{col}"
                    );
                }
            }
        }
    }
}
