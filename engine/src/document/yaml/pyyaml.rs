//! Where PyYAML, which AWS tools read YAML with, and saphyr part ways, and what runbook says
//! about it: a `yaml-leniency` warning where runbook read the file as PyYAML does though YAML
//! 1.2 refuses it (see `repair`), a `yaml-ssm-refuses` warning where saphyr reads what PyYAML
//! refuses or reads otherwise, and, on every refusal, what PyYAML would have done.

use std::collections::{BTreeMap, HashMap};

use saphyr_parser::{Marker, ScalarStyle};

use super::repair::{self, Leniency, Move, Repair};
use super::{Builder, Frame, ScalarRange};
use crate::diagnostic::Code;

impl Builder<'_> {
    /// Whether the collection whose start event runs from `start` to `end` is inside `[…]` or
    /// `{…}`; also checks its anchor.
    pub(super) fn starts_flow(&mut self, anchor: usize, start: Marker, end: Marker) -> bool {
        if anchor != 0 && self.checks.keep_values {
            self.check_anchor(start);
        }
        if self.stack.last().is_some_and(Frame::flow) {
            return true;
        }
        repair::opens_with_bracket(self.source, self.lines, start, end)
    }

    /// Records an outermost flow collection starting at `start` (its anchor or tag, or its
    /// bracket) whose end event starts at `end`.
    pub(super) fn record_flow(&mut self, start: Marker, end: Marker) {
        let opening = repair::skip_properties(self.source, self.lines.byte_offset(start.line(), start.col()));
        let closing = repair::closing_bracket(self.source, self.lines.byte_offset(end.line(), end.col()));
        let first_line = self.lines.location_of_offset(opening, 1).line;
        self.flow_ranges.push((first_line, self.lines.location_of_offset(closing, 1).line));
    }

    /// Records a quoted or block scalar spanning `start` to `end`.
    pub(super) fn record_scalar(&mut self, style: ScalarStyle, start: Marker, end: Marker) {
        if style == ScalarStyle::Plain || !(self.checks.repaired || self.checks.tabs) {
            return;
        }
        let bytes = self.source.as_bytes();
        let span_start = self.lines.byte_offset(start.line(), start.col());
        let first = repair::skip_properties(self.source, span_start);
        // A quoted scalar's span runs on over the blanks and comment after its closing quote.
        let quoted = matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted);
        let last = match bytes.get(first) {
            Some(&quote) if quoted => repair::closing_quote(bytes, first, quote) + 1,
            _ => self.lines.byte_offset(end.line(), end.col()),
        };
        let first_line = if first == span_start { start.line() } else { self.lines.location_of_offset(first, 1).line };
        self.scalar_ranges.push(ScalarRange { start: first, end: last, first_line, last_line: end.line(), quoted });
    }

    pub(super) fn check_scalar(&mut self, text: &str, style: ScalarStyle, anchor: usize, start: Marker, end: Marker) {
        self.record_scalar(style, start, end);
        if anchor != 0 {
            self.check_anchor(start);
        }
        let Some(frame) = self.stack.last() else { return };
        let is_key = matches!(frame, Frame::Mapping { key: None, .. });
        let in_flow = frame.flow();
        if is_key && style == ScalarStyle::Plain && start == end && !self.after_explicit_key_indicator(start) {
            let message = "a `:` with no key before it: PyYAML refuses this document, so SSM may too";
            let location = self.location(start);
            self.warn_at(Code::YamlSsmRefuses, message, "write the key, or `\"\"` for an empty one", location);
        }
        if !in_flow {
            return;
        }
        // A key that starts with `?` gets its own warning below: PyYAML reads it as explicit.
        // Whether a `?` came before is asked last, and only of such a key: it looks back along
        // the line, which for every scalar of a long line would cost time growing with its
        // square.
        let explicit =
            || (style == ScalarStyle::Plain && text.starts_with('?')) || self.after_explicit_key_indicator(start);
        if is_key && self.key_and_colon_apart(start, end) && !explicit() {
            let message = "a key inside `{…}` and its `:` are not on one line: PyYAML refuses this document, so SSM \
                           may too";
            let location = self.location(start);
            self.warn_at(Code::YamlSsmRefuses, message, "write the key and its `:` on one line", location);
        }
        if style != ScalarStyle::Plain {
            return;
        }
        if let Some(first @ ('?' | ':' | '|' | '>')) = text.chars().next() {
            let message = format!(
                "an unquoted value inside brackets starts with `{first}`: PyYAML reads `{first}` there as an \
                 indicator, so it refuses this document or reads another value, and so may SSM"
            );
            let location = self.location(start);
            self.warn_at(Code::YamlSsmRefuses, message, "quote the value", location);
        } else if let Some(offset) = text.chars().position(|c| c == '?') {
            let message = "`?` inside an unquoted value in brackets: PyYAML ends the value there and refuses this \
                           document, so SSM may too";
            let location = self.location(plain_position(text, offset, start, end));
            self.warn_at(Code::YamlSsmRefuses, message, "quote the value", location);
        }
    }

    /// Whether the key from `start` to `end` runs over lines, or is followed by its `:` on a
    /// later line. PyYAML wants a key and its `:` on one line, unless the key is explicit; a
    /// key without `:` it reads as a key without a value, wherever it ends.
    fn key_and_colon_apart(&self, start: Marker, end: Marker) -> bool {
        let offset = self.lines.byte_offset(end.line(), end.col());
        let Some(after) = self.source.get(offset..) else { return false };
        let rest = after.trim_start_matches([' ', '\t', '\r', '\n']);
        let skipped = &after[..after.len() - rest.len()];
        rest.starts_with(':') && (start.line() != end.line() || skipped.contains(['\n', '\r']))
    }

    /// Whether the key starting at `start` follows a `?`: an explicit key, which PyYAML lets
    /// span lines.
    fn after_explicit_key_indicator(&self, start: Marker) -> bool {
        let offset = self.lines.byte_offset(start.line(), start.col());
        let mut before = self.source.get(..offset).unwrap_or_default();
        // On the key's own line the character before decides (no comment can end there);
        // only a key that starts its line needs the look back over lines and comments.
        let blank_end = before.trim_end_matches([' ', '\t']);
        if !blank_end.is_empty() && !blank_end.ends_with(['\n', '\r']) {
            return blank_end
                .strip_suffix('?')
                .is_some_and(|rest| rest.is_empty() || rest.ends_with([' ', '\t', '\n', '\r', '{', '[', ',']));
        }
        // Back over blanks, line breaks and comments to the token before.
        loop {
            before = before.trim_end();
            let line_start = before.rfind(['\n', '\r']).map_or(0, |at| at + 1);
            let line = &before[line_start..];
            let comment =
                line.match_indices('#').map(|(at, _)| at).find(|&at| at == 0 || line[..at].ends_with([' ', '\t']));
            match comment {
                Some(at) => before = &before[..line_start + at],
                None => break,
            }
        }
        before
            .strip_suffix('?')
            .is_some_and(|rest| rest.is_empty() || rest.ends_with([' ', '\t', '\n', '\r', '{', '[', ',']))
    }

    /// Warns when the anchor of the node starting at `start` (after its tag, if any) was
    /// defined before, which PyYAML refuses and saphyr lets replace the first, or has a name
    /// PyYAML refuses.
    fn check_anchor(&mut self, start: Marker) {
        let offset = self.lines.byte_offset(start.line(), start.col());
        let Some(mut rest) = self.source.get(offset..) else { return };
        if rest.starts_with('!') {
            let tag_end = rest.find([' ', '\t', '\r', '\n']).unwrap_or(rest.len());
            rest = rest[tag_end..].trim_start_matches([' ', '\t']);
        }
        let at = self.source.len() - rest.len();
        let Some(name) = rest.strip_prefix('&').map(anchor_name) else { return };
        if !self.check_anchor_name('&', name, at) && !self.anchor_names.insert(name.to_owned()) {
            let location = self.lines.location_of_offset(at, name.len() + 1);
            let message =
                format!("the anchor `&{name}` is defined a second time: PyYAML refuses this document, so SSM may too");
            self.warn_at(Code::YamlSsmRefuses, message, "give each anchor its own name", location);
        }
    }

    /// Warns when the alias at `start` has a name PyYAML refuses.
    pub(super) fn check_alias(&mut self, start: Marker) {
        let at = self.lines.byte_offset(start.line(), start.col());
        if let Some(name) = self.source.get(at..).and_then(|rest| rest.strip_prefix('*')).map(anchor_name) {
            self.check_anchor_name('*', name, at);
        }
    }

    /// Warns, and says so, when an anchor or alias name (after `sigil` at byte `at`) holds
    /// more than the letters, digits, `-` and `_` PyYAML allows.
    fn check_anchor_name(&mut self, sigil: char, name: &str, at: usize) -> bool {
        if name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_')) {
            return false;
        }
        let location = self.lines.location_of_offset(at, name.len() + 1);
        let message = format!(
            "`{sigil}{name}`: PyYAML allows only letters, digits, `-` and `_` in anchor names and refuses this \
             document, so SSM may too"
        );
        self.warn_at(Code::YamlSsmRefuses, message, "rename the anchor and its aliases", location);
        true
    }

    /// Warns once per line about tabs outside quoted and block scalars and comments: PyYAML
    /// separates tokens with spaces only and refuses a tab anywhere else.
    pub(super) fn warn_about_tabs(&mut self) {
        if !self.checks.tabs {
            return;
        }
        let bytes = self.source.as_bytes();
        let inside: Vec<(usize, usize)> = self.scalar_ranges.iter().map(|range| (range.start, range.end)).collect();
        let mut found = Vec::new();
        let mut next_range = 0;
        let mut in_comment = false;
        let mut warned_line = false;
        let mut previous = b'\n';
        for (at, &byte) in bytes.iter().enumerate() {
            while next_range < inside.len() && inside[next_range].1 <= at {
                next_range += 1;
            }
            let in_scalar = next_range < inside.len() && inside[next_range].0 <= at;
            match byte {
                b'\n' | b'\r' => {
                    in_comment = false;
                    warned_line = false;
                }
                _ if in_scalar || in_comment => {}
                b'#' if matches!(previous, b' ' | b'\t' | b'\n' | b'\r') => in_comment = true,
                b'\t' if !warned_line => {
                    warned_line = true;
                    found.push(at);
                }
                _ => {}
            }
            previous = byte;
        }
        for at in found {
            let location = self.lines.location_of_offset(at, 1);
            let message = "a tab outside quoted text: PyYAML separates with spaces only and refuses this document, \
                           so SSM may too";
            self.warn_at(Code::YamlSsmRefuses, message, "replace the tab with spaces", location);
        }
    }

    /// Checks that every line a repair moved is inside a quoted scalar or brackets, as the
    /// repair meant: only there does PyYAML read the moved line as it reads the original. On
    /// success, gives one `yaml-leniency` warning per quoted scalar or outermost flow
    /// collection with moved lines, at the first of them.
    pub(super) fn check_repairs(&mut self, repairs: &[Repair]) -> bool {
        // Where the builder refused an event, lines past it did not count, and the brackets
        // around it are still open.
        if let Some(stopped_at) = self.stopped_at {
            let outermost = self.stack.iter().position(Frame::flow);
            if let Some(Frame::Sequence { start, .. } | Frame::Mapping { start, .. }) =
                outermost.map(|at| &self.stack[at])
            {
                let opening = repair::skip_properties(self.source, self.lines.byte_offset(start.line(), start.col()));
                self.flow_ranges.push((self.lines.location_of_offset(opening, 1).line, stopped_at));
            }
        }
        let quoted: Vec<(usize, usize)> = self
            .scalar_ranges
            .iter()
            .filter(|range| range.quoted)
            .map(|range| (range.first_line, range.last_line))
            .collect();
        // Lines moved in each construct, by whether it is a flow collection and its index, in
        // the order of the first moved line.
        let mut groups: BTreeMap<(usize, bool, usize), Vec<usize>> = BTreeMap::new();
        let mut first_line: HashMap<(bool, usize), usize> = HashMap::new();
        let moves = repairs.iter().flat_map(|repair| &repair.moves);
        for &Move { line, leniency, .. } in moves.filter(|moved| self.stopped_at.is_none_or(|stop| moved.line <= stop))
        {
            let in_flow = containing(&self.flow_ranges, line);
            let in_quoted = containing(&quoted, line);
            let construct = match leniency {
                Leniency::Flow => in_flow.map(|index| (true, index)).or(in_quoted.map(|index| (false, index))),
                Leniency::Quoted => in_quoted.map(|index| (false, index)).or(in_flow.map(|index| (true, index))),
            };
            let Some((flow, index)) = construct else { return false };
            let first = *first_line.entry((flow, index)).or_insert(line);
            groups.entry((first, flow, index)).or_default().push(line);
        }
        if !self.checks.keep_values {
            return true;
        }
        for ((_, flow, _), mut lines) in groups {
            lines.sort_unstable();
            lines.dedup();
            let count = lines.len();
            let (message, help) = match (flow, count) {
                (true, 1) => {
                    ("a line inside brackets is not indented past its key, as YAML 1.2 requires".to_owned(), FLOW_HELP)
                }
                (true, _) => (
                    format!("{count} lines inside brackets are not indented past their key, as YAML 1.2 requires"),
                    FLOW_HELP,
                ),
                (false, 1) => (
                    "a quoted string continues on a line not indented past its key, as YAML 1.2 requires".to_owned(),
                    QUOTED_HELP,
                ),
                (false, _) => (
                    format!(
                        "a quoted string continues on {count} lines not indented past its key, as YAML 1.2 requires"
                    ),
                    QUOTED_HELP,
                ),
            };
            // At the first character of the first moved line: what moved.
            let start = self.lines.byte_offset(lines[0], 0);
            let rest = self.source.get(start..).unwrap_or_default();
            let location = self.lines.location_of_offset(start + rest.len() - rest.trim_start_matches(' ').len(), 1);
            self.warn_at(Code::YamlLeniency, message, help, location);
        }
        true
    }
}

/// The index of the range whose lines after its first hold `line`, among (first, last) line
/// ranges in text order that do not overlap: the last one starting before it, if any.
fn containing(ranges: &[(usize, usize)], line: usize) -> Option<usize> {
    let index = ranges.partition_point(|&(first, _)| first < line).checked_sub(1)?;
    (line <= ranges[index].1).then_some(index)
}

/// The name of an anchor or alias: up to a blank, a line break or a flow indicator.
fn anchor_name(after_sigil: &str) -> &str {
    let end = after_sigil.find([' ', '\t', '\r', '\n', ',', '[', ']', '{', '}']).unwrap_or(after_sigil.len());
    &after_sigil[..end]
}

/// Where the character `offset` characters into a plain scalar's value is: on one line the
/// value is the source text, and it ends at `end`; across lines, the scalar's start is told.
fn plain_position(value: &str, offset: usize, start: Marker, end: Marker) -> Marker {
    if start.line() != end.line() {
        return start;
    }
    let first = end.col().saturating_sub(value.chars().count());
    Marker::new(0, start.line(), first + offset)
}

const FLOW_HELP: &str = "runbook reads it as PyYAML, SnakeYAML and libyaml do, which ignore indentation inside \
                         `[…]` and `{…}`, but strict YAML 1.2 parsers refuse this file: indent those lines, the \
                         closing bracket too, past the key";
const QUOTED_HELP: &str = "runbook reads it as PyYAML, SnakeYAML and libyaml do, which ignore the indentation of a \
                           quoted string's continuation lines, but strict YAML 1.2 parsers refuse this file: indent \
                           those lines past the key, or write the text as a block scalar (`|` or `>`)";

/// The help for a document saphyr refuses, by saphyr's message.
pub(super) fn refusal_help(info: &str) -> &'static str {
    match info {
        "invalid indentation" | "invalid indentation in flow construct" => {
            "PyYAML would accept this: it ignores indentation inside `[…]` and `{…}`; runbook re-indents such lines \
             as PyYAML reads them, but gave up here: indent the line past its key"
        }
        "invalid indentation in quoted scalar" | "tab cannot be used as indentation" => {
            "PyYAML would accept this: it ignores the indentation of a quoted string's continuation lines; runbook \
             re-indents such lines as PyYAML reads them, but gave up here: indent them past the key, or write \
             the text as a block scalar (`|` or `>`)"
        }
        "while scanning a quoted scalar, found unexpected document indicator" => {
            "PyYAML refuses this too: a line starting with `---` or `...` ends the document, even inside quotes; \
             indent it"
        }
        "while scanning a quoted scalar, found unexpected end of stream" => {
            "PyYAML refuses this too: the quoted string is never closed"
        }
        "misplaced bracket" => "PyYAML refuses this too: a closing bracket without an opening one",
        "while parsing a flow mapping, did not find expected ',' or '}'"
        | "while parsing a flow sequence, expected ',' or ']'" => {
            "PyYAML refuses this too: inside brackets an entry ends with `,` or the closing bracket (PyYAML also \
             ends an unquoted value at `?` there)"
        }
        "simple key expect ':'" => "PyYAML refuses this too: a line holds a key without `:`",
        "mapping values are not allowed in this context" => "PyYAML refuses this too: quote a value that holds `: `",
        "block sequence entries are not allowed in this context" => {
            "PyYAML refuses this too: a `- ` item where no list can start"
        }
        "while parsing a block mapping, did not find expected key"
        | "while parsing a block collection, did not find expected '-' indicator" => {
            "PyYAML refuses this too: the line is not indented like the entries around it"
        }
        "invalid trailing content after double-quoted scalar" => {
            "PyYAML refuses this too: text follows the closing quote"
        }
        "comment intercepting the multiline text" => {
            "PyYAML refuses this too: a comment inside a value that runs over several lines"
        }
        "comments must be separated from other tokens by whitespace" => {
            "PyYAML would accept this: it starts a comment at `#` here even without a space before it; runbook \
             does not: put a space before `#`"
        }
        "plain scalar cannot start with '-' followed by ,[]{}" => {
            "PyYAML would accept this: it reads a `-` before `,` or a bracket as the text `-`; runbook does not: \
             quote it"
        }
        "':' may not precede any of `[{` in flow mapping" => {
            "PyYAML would accept this: it reads the `:` as the key's; runbook does not: put a space after `:`"
        }
        "tabs disallowed within this context (block indentation)" | "tabs disallowed in this context" => {
            "PyYAML refuses this too: indent with spaces, not tabs"
        }
        "':' must be followed by a valid YAML whitespace" => {
            "PyYAML refuses this too: put a space, not a tab, after `:`"
        }
        "while parsing node, found unknown anchor" => UNKNOWN_ANCHOR_HELP,
        "unexpected character: `@'" | "unexpected character: ``'" | "unexpected character: `%'" => {
            "PyYAML refuses this too: quote a value that starts with `@`, `%` or a backtick"
        }
        "while parsing a node, did not find expected node content"
        | "illegal placement of ':' indicator"
        | "while parsing a quoted scalar, found unknown escape character"
        | "while scanning a block scalar, found an indentation indicator equal to 0" => "PyYAML refuses this too",
        _ if info.ends_with(" is only valid inside a block") => "PyYAML refuses this too",
        _ => {
            "runbook accepts more than YAML 1.2 only where PyYAML does (indentation inside brackets and quoted \
             strings), and this is not one of those places"
        }
    }
}

pub(super) const SECOND_DOCUMENT_HELP: &str = "PyYAML's single-document loader refuses this too: remove the `---` line";
pub(super) const UNKNOWN_ANCHOR_HELP: &str =
    "PyYAML refuses this too: an alias `*name` needs an anchor `&name` before it";
pub(super) const ALIAS_BUDGET_HELP: &str = "PyYAML would load this, sharing one copy of each aliased value; runbook copies \
                                 aliased values out and refuses to build this many";
pub(super) const TOO_DEEP_HELP: &str = "PyYAML reads deeper nesting; runbook refuses it, as it does in JSON";
pub(super) const KEY_NOT_SCALAR_HELP: &str =
    "PyYAML refuses this too (\"found unhashable key\"); a `{{ … }}` reference must be quoted in YAML";
pub(super) const DUPLICATE_KEY_HELP: &str = "PyYAML would keep the last value without a word; runbook refuses, since the \
                                  first would be lost";
pub(super) const TAG_HELP: &str = "a runbook's values are JSON, so runbook reads only the tags `!!str`, `!!int`, `!!float`, \
                        `!!bool`, `!!null`, `!!seq` and `!!map`; PyYAML's safe loader refuses tags it does not \
                        know, such as `!Ref`, too";
pub(super) const TAGGED_VALUE_HELP: &str = "PyYAML refuses this too, unless it is a YAML 1.1 form (`yes` as a `!!bool`, \
                                 `0755` as an `!!int`) that YAML 1.2, which runbook follows, dropped";
pub(super) const FLOAT_HELP: &str = "PyYAML reads it as an infinite or not-a-number float, which JSON, and so a runbook's \
                          value, cannot hold; quote it to keep it as text";
