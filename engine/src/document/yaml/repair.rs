//! The indentation repair. saphyr refuses four things that PyYAML, SnakeYAML and libyaml
//! accept, each a line indented less than saphyr wants where those parsers ignore
//! indentation: inside `[…]`/`{…}`, and on the continuation lines of a quoted scalar. saphyr
//! has no switch for it, so the text is parsed again with spaces added at the start of the
//! lines it names, and positions in the repaired text are mapped back to the original.
//!
//! Adding spaces there changes no value (leading blanks inside brackets and quotes are folded
//! away) and nothing else about how saphyr or PyYAML read the text, so the repaired text reads
//! as PyYAML reads the original. A line that starts with `---` or `...` is never moved: PyYAML
//! reads it as a document marker, and so refuses the document too.
//!
//! Each repair costs a parse of the whole text, so a repair also moves, by a guess, the lines
//! of the later brackets and quoted scalars that look as far left. After the parse every moved
//! line must be inside brackets or a quoted scalar (`Builder::check_repairs`), or the document
//! is parsed again without guesses.

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, Parser, ScanError};

use super::MAX_DEPTH;
use crate::document::spans::LineIndex;

/// Characters left to parse for repairs.
pub(super) struct Budget(pub(super) usize);

impl Budget {
    /// Takes `chars` from what is left; false once nothing is.
    pub(super) fn spend(&mut self, chars: usize) -> bool {
        self.0 = self.0.saturating_sub(chars);
        self.0 > 0
    }
}

/// Which of PyYAML's leniencies a moved line relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Leniency {
    /// A line inside `[…]` or `{…}`.
    Flow,
    /// A continuation line of a quoted scalar.
    Quoted,
}

/// A line to move: its number (1-based), the spaces to add, and why that is allowed.
#[derive(Clone, Copy)]
pub(super) struct Move {
    pub(super) line: usize,
    spaces: usize,
    pub(super) leniency: Leniency,
}

/// A repair done: the lines it moved, and whether some of them were guessed.
pub(super) struct Repair {
    pub(super) moves: Vec<Move>,
    pub(super) guessed: bool,
}

/// The text saphyr parses: the original, or a copy with spaces added at the start of some
/// lines, and what maps positions in it back. Line numbers never change.
pub(super) struct Repaired<'o> {
    text: Cow<'o, str>,
    /// Byte offsets of the starts of the original's lines, as saphyr counts lines; found at the
    /// first repair.
    starts: Vec<usize>,
    /// Whether a lone `\r` ends a line: saphyr counts it as a line break, `LineIndex` does not.
    lone_carriage_return: bool,
    /// Spaces added at the start of each line (1-based; index 0 unused).
    lead: Vec<usize>,
    /// Spaces added on the lines before each line.
    before: Vec<usize>,
    total: usize,
}

impl<'o> Repaired<'o> {
    pub(super) fn new(original: &'o str) -> Repaired<'o> {
        Repaired {
            text: Cow::Borrowed(original),
            starts: Vec::new(),
            lone_carriage_return: false,
            lead: Vec::new(),
            before: Vec::new(),
            total: 0,
        }
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// A position in the repaired text as a position in the original: a position inside added
    /// spaces maps to the start of its line.
    pub(super) fn map(&self, mark: Marker) -> Marker {
        let line = mark.line();
        let added = self.lead.get(line).copied().unwrap_or(0);
        let earlier = self.before.get(line).copied().unwrap_or(self.total);
        let inside = mark.col().min(added);
        Marker::new(mark.index().saturating_sub(earlier + inside), line, mark.col() - inside)
    }

    /// Plans the repair of `error` and applies it; what was done, or `None` when `error` is
    /// not one of the four or no repair can be made. `target` is the column to move the lines
    /// to, one past the column B of the innermost block collection (its keys, or its `-`):
    /// inside brackets and quotes saphyr wants at most B+1 (B after a plain scalar), and so
    /// does YAML 1.2. With `guess`, later lines that look alike move too.
    pub(super) fn repair(
        &mut self,
        error: &ScanError,
        target: usize,
        budget: &mut Budget,
        guess: bool,
    ) -> Option<Repair> {
        // Each repair also walks the whole text (to move lines, and to find line starts again):
        // it is charged as a parse of it, so the budget bounds all the work, not only the
        // parses.
        if !budget.spend(self.text.len()) {
            return None;
        }
        if self.starts.is_empty() {
            self.find_line_starts();
        }
        let mark = *error.marker();
        let (mut moves, last_line) = match error.info() {
            "invalid indentation" | "invalid indentation in flow construct" => self.plan_flow(mark, target, budget)?,
            "tab cannot be used as indentation" => (vec![self.plan_line(mark, target, Leniency::Quoted)?], mark.line()),
            "invalid indentation in quoted scalar" => self.plan_quoted(mark, target)?,
            _ => return None,
        };
        let guessed = if guess { self.guess(last_line + 1) } else { Vec::new() };
        let repair_guessed = !guessed.is_empty();
        moves.extend(guessed);
        self.text = Cow::Owned(self.with_spaces(&moves));
        for moved in &moves {
            if let Some(lead) = self.lead.get_mut(moved.line) {
                *lead += moved.spaces;
            }
        }
        self.before.clear();
        self.total = 0;
        for lead in &self.lead {
            self.before.push(self.total);
            self.total += lead;
        }
        Some(Repair { moves, guessed: repair_guessed })
    }

    fn find_line_starts(&mut self) {
        let bytes = self.text.as_bytes();
        self.starts.push(0);
        for at in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if bytes[at] == b'\n' || bytes.get(at + 1) != Some(&b'\n') {
                self.starts.push(at + 1);
            }
        }
        self.lone_carriage_return = self.starts.len() != memchr::memchr_iter(b'\n', bytes).count() + 1;
        self.lead = vec![0; self.starts.len() + 1];
    }

    /// Where line `line` (1-based) starts in the repaired text.
    fn start(&self, line: usize) -> Option<usize> {
        let original = *self.starts.get(line.checked_sub(1)?)?;
        Some(original + self.before.get(line).copied().unwrap_or(self.total))
    }

    /// Line `line` of the repaired text, with its line break.
    fn line(&self, line: usize) -> Option<&str> {
        let start = self.start(line)?;
        let end = self.start(line + 1).unwrap_or(self.text.len());
        self.text.get(start..end)
    }

    /// The marked token (or tab) moves to the target column, and its line with it.
    fn plan_line(&self, mark: Marker, target: usize, leniency: Leniency) -> Option<Move> {
        let line = mark.line();
        if target <= mark.col() || is_document_marker(self.line(line)?) {
            return None;
        }
        Some(Move { line, spaces: target - mark.col(), leniency })
    }

    /// A line inside brackets, and usually the lines after it up to the closing bracket, which
    /// are as far left: they all move at once rather than one parse each, once a parse of a
    /// copy with every later line moved too (a probe) tells where that bracket is. Also the
    /// last line moved.
    fn plan_flow(&self, mark: Marker, target: usize, budget: &mut Budget) -> Option<(Vec<Move>, usize)> {
        let mut moves = vec![self.plan_line(mark, target, Leniency::Flow)?];
        // The probe finds brackets with `LineIndex`, which must count lines as saphyr does.
        if self.lone_carriage_return {
            return Some((moves, mark.line()));
        }
        for line in mark.line() + 1..=self.starts.len() {
            let content = self.line(line)?;
            let spaces = leading_spaces(content);
            if !is_blank(content) && spaces < target && !is_document_marker(content) {
                moves.push(Move { line, spaces: target - spaces, leniency: Leniency::Flow });
            }
        }
        let last = closing_line(&self.with_spaces(&moves), (mark.line(), target), budget).unwrap_or(mark.line());
        moves.retain(|moved| moved.line <= last);
        Some((moves, last))
    }

    /// A quoted scalar, whose error marks the opening quote rather than the offending line:
    /// every continuation line up to the closing quote moves to the target column. Also the
    /// line of the closing quote.
    fn plan_quoted(&self, quote: Marker, target: usize) -> Option<(Vec<Move>, usize)> {
        let (offset, quote_char) = self.line(quote.line())?.char_indices().nth(quote.col())?;
        let open = self.start(quote.line())? + offset;
        let close = match quote_char {
            '"' | '\'' => closing_quote(self.text.as_bytes(), open, quote_char as u8),
            _ => return None,
        };
        let (moves, last_line) = self.move_lines(quote.line(), close, target, Leniency::Quoted)?;
        (!moves.is_empty()).then_some((moves, last_line))
    }

    /// The lines after `line` up to the one holding byte `close` that are left of `target`,
    /// each moved to it, and the last of those lines; lines of spaces only stay, as saphyr
    /// never checks them. `None` when a line starts with a document marker.
    fn move_lines(&self, line: usize, close: usize, target: usize, leniency: Leniency) -> Option<(Vec<Move>, usize)> {
        let mut moves = Vec::new();
        let mut last_line = line;
        for next in line + 1..=self.starts.len() {
            if self.start(next)? > close {
                break;
            }
            last_line = next;
            let content = self.line(next)?;
            if is_document_marker(content) {
                return None;
            }
            let spaces = leading_spaces(content);
            if !is_blank(content) && spaces < target {
                moves.push(Move { line: next, spaces: target - spaces, leniency });
            }
        }
        Some((moves, last_line))
    }

    /// The lines of the quoted scalars and brackets from line `from` on that are not past
    /// their key, each moved one past it. One parse then repairs what would take one each, in
    /// a runbook that writes them all that way. A guess, by a scan that knows only keys, `- `
    /// items, quotes, brackets and block scalars: a wrong one is found after the parse.
    fn guess(&self, from: usize) -> Vec<Move> {
        let mut guessed = Vec::new();
        let mut line = from;
        while let Some(content) = self.line(line) {
            let (close, target, leniency) = match value_start(content) {
                ValueStart::Other => {
                    line += 1;
                    continue;
                }
                ValueStart::BlockScalar { parent } => {
                    line += 1;
                    while self.line(line).is_some_and(|content| is_blank(content) || leading_spaces(content) > parent) {
                        line += 1;
                    }
                    continue;
                }
                ValueStart::Quote { offset, target } => {
                    let bytes = self.text.as_bytes();
                    let Some(open) = self.start(line).map(|start| start + offset) else { break };
                    (closing_quote(bytes, open, bytes[open]), target, Leniency::Quoted)
                }
                ValueStart::Bracket { offset, target } => {
                    let Some(open) = self.start(line).map(|start| start + offset) else { break };
                    (matching_bracket(self.text.as_bytes(), open), target, Leniency::Flow)
                }
            };
            // Unclosed, or a document marker inside: nothing to guess from here on.
            if close >= self.text.len() {
                break;
            }
            let Some((moves, last_line)) = self.move_lines(line, close, target, leniency) else { break };
            guessed.extend(moves);
            line = last_line + 1;
        }
        guessed
    }

    /// The repaired text with `moves`, in line order, made.
    fn with_spaces(&self, moves: &[Move]) -> String {
        let added: usize = moves.iter().map(|moved| moved.spaces).sum();
        let mut out = String::with_capacity(self.text.len() + added);
        let mut copied = 0;
        for moved in moves {
            let Some(start) = self.start(moved.line) else { continue };
            out.push_str(&self.text[copied..start]);
            out.extend(std::iter::repeat_n(' ', moved.spaces));
            copied = start;
        }
        out.push_str(&self.text[copied..]);
        out
    }
}

/// The line of the bracket that closes the outermost flow collection around `at` (line,
/// column) in `probe`, a copy of the text with `at`'s line and every later one moved right as
/// a repair would move them. Up to that bracket the copy reads as the text does, every line
/// being inside brackets, so a clean parse up to there tells which lines to move. `None` when
/// the parse fails first.
fn closing_line(probe: &str, at: (usize, usize), budget: &mut Budget) -> Option<usize> {
    // Charged whole up front, whatever part of it is parsed: a probe that parses to its end
    // without the bracket closing costs as much as one that stops early.
    if !budget.spend(probe.len()) {
        return None;
    }
    let lines = LineIndex::new(probe);
    // Whether each open collection is a flow one.
    let mut open: Vec<bool> = Vec::new();
    let mut parser = Parser::new_from_str(probe);
    while let Some(event) = parser.next_event() {
        let (event, span) = match event {
            Ok(event) => event,
            Err(_) => return None,
        };
        match event {
            // Deeper than the builder goes: it refuses the document anyway.
            Event::SequenceStart(..) | Event::MappingStart(..) if open.len() >= MAX_DEPTH => return None,
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let flow =
                    open.last().copied().unwrap_or(false) || opens_with_bracket(probe, &lines, span.start, span.end);
                open.push(flow);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let flow = open.pop().unwrap_or(false);
                let outermost = !open.last().copied().unwrap_or(false);
                if flow && outermost && (span.start.line(), span.start.col()) >= at {
                    let offset = lines.byte_offset(span.start.line(), span.start.col());
                    return Some(lines.location_of_offset(closing_bracket(probe, offset), 1).line);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether a collection whose start event runs from `start` to `end` opened with `[` or `{`.
/// A block collection's start event is empty, at its first key or `-`, unless it has an anchor
/// or a tag; a flow collection's covers its bracket. (A block mapping with both an anchor or
/// tag and a bracket opening its first key looks like a flow one; the builder refuses such a
/// key anyway.)
pub(super) fn opens_with_bracket(text: &str, lines: &LineIndex<'_>, start: Marker, end: Marker) -> bool {
    start.index() != end.index()
        && matches!(
            text.as_bytes().get(skip_properties(text, lines.byte_offset(start.line(), start.col()))),
            Some(b'[' | b'{')
        )
}

/// The offset of a node's content at or after `offset`, past its anchor and tag and the
/// blanks, line breaks and comments around them.
pub(super) fn skip_properties(text: &str, mut offset: usize) -> usize {
    let bytes = text.as_bytes();
    while matches!(bytes.get(offset), Some(b'!' | b'&')) {
        while !matches!(bytes.get(offset), None | Some(b' ' | b'\t' | b'\r' | b'\n')) {
            offset += 1;
        }
        loop {
            match bytes.get(offset) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => offset += 1,
                Some(b'#') => {
                    while !matches!(bytes.get(offset), None | Some(b'\r' | b'\n')) {
                        offset += 1;
                    }
                }
                _ => break,
            }
        }
    }
    offset
}
/// The offset of the bracket that ends a flow collection whose end event is at `offset`.
/// After a trailing comma (`{a: 1,}`) saphyr puts that event at the comma: the bracket is then
/// the next character that is not a blank, a line break or in a comment.
pub(super) fn closing_bracket(text: &str, offset: usize) -> usize {
    let Some(rest) = text.get(offset..).and_then(|rest| rest.strip_prefix(',')) else {
        return offset;
    };
    let mut in_comment = false;
    for (at, byte) in rest.bytes().enumerate() {
        match byte {
            b'\n' | b'\r' => in_comment = false,
            _ if in_comment => {}
            b'#' => in_comment = true,
            b' ' | b'\t' => {}
            _ => return offset + 1 + at,
        }
    }
    offset
}

/// The byte offset of the quote closing the quoted scalar opened at `open`, or the text's end.
pub(super) fn closing_quote(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut at = open + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' if quote == b'"' => at += 2,
            b'\'' if quote == b'\'' && bytes.get(at + 1) == Some(&b'\'') => at += 2,
            _ if byte == quote => return at,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// For a guess: the byte offset of the bracket matching the one at `open`, skipping quoted
/// scalars and comments, or the text's end. A quote opens a quoted scalar only where a value
/// starts, so that the apostrophe in `{a: don't}` does not.
fn matching_bracket(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut at = open;
    let mut previous = b' ';
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return at;
                }
            }
            b'"' | b'\'' if matches!(previous, b'[' | b'{' | b',' | b':' | b'?' | b' ' | b'\t' | b'\n' | b'\r') => {
                at = closing_quote(bytes, at, byte);
            }
            b'#' if matches!(previous, b' ' | b'\t' | b'\n' | b'\r') => {
                while !matches!(bytes.get(at + 1), None | Some(b'\n' | b'\r')) {
                    at += 1;
                }
            }
            _ => {}
        }
        previous = bytes.get(at).copied().unwrap_or(b' ');
        at += 1;
    }
    bytes.len()
}

fn leading_spaces(line: &str) -> usize {
    line.bytes().take_while(|&byte| byte == b' ').count()
}

/// Whether a line holds spaces only.
fn is_blank(line: &str) -> bool {
    line.trim_start_matches(' ').trim_end_matches(['\n', '\r']).is_empty()
}

/// Whether a line starts with `---` or `...` on its own: a document marker to YAML parsers,
/// even inside quotes or brackets.
fn is_document_marker(line: &str) -> bool {
    (line.starts_with("---") || line.starts_with("..."))
        && matches!(line.as_bytes().get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

/// How the value on a line starts, as far as a scan that does not tokenize can tell.
enum ValueStart {
    /// With a quote or a bracket at byte `offset`, whose lines saphyr wants at `target` or
    /// right of it: one past the column of its key, or past its `-` for a bracket (a quoted
    /// item may continue at its `-`), or where it is when it starts its line.
    Quote {
        offset: usize,
        target: usize,
    },
    Bracket {
        offset: usize,
        target: usize,
    },
    /// With `|` or `>`: the lines after it indented past `parent`, the column of its key or
    /// `-`, are its content.
    BlockScalar {
        parent: usize,
    },
    Other,
}

fn value_start(line: &str) -> ValueStart {
    let column = |rest: &str| line[..line.len() - rest.len()].chars().count();
    let mut rest = line.trim_start_matches(' ');
    // The column of the key or `-` the value belongs to, and whether it is a `-`.
    let mut parent = None;
    while let Some(item) = rest.strip_prefix("- ") {
        parent = Some((column(rest), true));
        rest = item.trim_start_matches(' ');
    }
    let value = match rest.as_bytes().first() {
        None | Some(b'#') => return ValueStart::Other,
        // A quoted key followed by `:` on its line, or a quoted value.
        Some(&quote @ (b'"' | b'\'')) => {
            let after = rest.get(closing_quote(rest.as_bytes(), 0, quote) + 1..).unwrap_or_default();
            match after.trim_start_matches(' ').strip_prefix(':') {
                Some(value) => {
                    parent = Some((column(rest), false));
                    value
                }
                None => rest,
            }
        }
        Some(b'[' | b'{') => rest,
        _ => match rest.find(": ") {
            Some(colon) => {
                parent = Some((column(rest), false));
                &rest[colon + 1..]
            }
            None => return ValueStart::Other,
        },
    };
    let value = value.trim_start_matches(' ');
    let offset = line.len() - value.len();
    let target = |bracket: bool| match parent {
        Some((col, true)) if !bracket => col,
        Some((col, _)) => col + 1,
        None => column(value),
    };
    match value.as_bytes().first() {
        Some(b'"' | b'\'') => ValueStart::Quote { offset, target: target(false) },
        Some(b'[' | b'{') => ValueStart::Bracket { offset, target: target(true) },
        Some(b'|' | b'>') => ValueStart::BlockScalar { parent: parent.map_or(0, |(col, _)| col) },
        _ => ValueStart::Other,
    }
}
