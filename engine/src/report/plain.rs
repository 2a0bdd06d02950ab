//! The text of a diagnostic without colour, drawn directly when its message and help are
//! printable ASCII and its snippet holds only characters one column wide: the layout miette's
//! graphical handler draws (unicode theme, no colour, two lines of context), with messages
//! wrapped as textwrap wraps them, at a quarter of the cost. That was most of validating the
//! corpus. Anything else (colour, tabs, wide or zero-width characters, a label over several
//! lines) is left to miette: `None` here.

use std::fmt::Write as _;
use std::ops::Range;

use super::{WRAP_WIDTH, Window};
use crate::diagnostic::digits;

/// The message, snippet and help as miette renders them, or `None` when its layout is not
/// this simple one.
pub(super) fn render(
    icon: &str,
    message: &str,
    help: Option<&str>,
    window: &Window,
    label: Option<&Range<usize>>,
) -> Option<String> {
    let mut out = wrap(message, &format!("  {icon} "), "  │ ")?;
    out.push('\n');
    if let Some(label) = label {
        snippet(&mut out, window, label)?;
    }
    if let Some(help) = help {
        out.push_str(&wrap(help, "  help: ", "        ")?);
        out.push('\n');
    }
    Some(out)
}

/// The lines of the window around the label, numbered, the label underlined and named `here`.
fn snippet(out: &mut String, window: &Window, label: &Range<usize>) -> Option<()> {
    const CONTEXT: usize = 2;
    let ascii = window.text.bytes().all(|b| b == b'\n' || printable(b));
    if label.is_empty() || !(ascii || window.text.chars().all(|c| c == '\n' || narrow(c))) {
        return None;
    }
    let around = window.lines_around(label.start, label.len(), CONTEXT, CONTEXT)?;
    let lines = lines(window.text.get(around.start..around.stop)?, window.base + around.start, around.first_line);
    let width = digits(lines.last()?.number);
    // The line the label starts on, numbered from 1.
    let primary = lines.iter().find(|line| (line.offset..line.offset + line.length).contains(&label.start))?.number;
    // Drawn by hand: formatting with padding was a fifth of rendering.
    pad(out, width + 2);
    out.push_str("╭─[");
    out.push_str(&window.name);
    let _ = writeln!(out, ":{primary}:1]");
    let mut underlined = false;
    for line in &lines {
        out.push(' ');
        pad(out, width - digits(line.number));
        let _ = write!(out, "{}", line.number);
        out.push_str(" │ ");
        out.push_str(line.text);
        out.push('\n');
        let end = line.offset + line.length;
        let starts = (line.offset..end).contains(&label.start);
        let ends = label.end > line.offset && label.end <= end;
        let passes = label.start < line.offset && label.end > end;
        if !(starts || ends || passes) {
            continue;
        }
        // Only a label within one line is drawn here.
        if underlined || !(starts && ends) {
            return None;
        }
        underlined = true;
        // Columns, as miette counts them: every character here is one column wide, and a
        // label past the end of its line ends one column after it.
        let text = line.text;
        let (start, end) = (label.start - line.offset, label.end - line.offset);
        let start = text.get(..start).map(|before| before.chars().count())?;
        let end = match end > text.len() {
            true => text.chars().count() + 1,
            false => text.get(..(end..).find(|&at| text.is_char_boundary(at))?)?.chars().count(),
        };
        let stop = end.max(start + 1);
        let middle = (start + stop) / 2;
        margin(out, width);
        pad(out, start);
        rule(out, middle - start);
        out.push('┬');
        rule(out, stop - middle - 1);
        out.push('\n');
        margin(out, width);
        pad(out, middle);
        out.push_str("╰── here\n");
    }
    pad(out, width + 2);
    out.push_str("╰────\n");
    Some(())
}

/// The margin of a line under a snippet's line, its number column `width` wide.
fn margin(out: &mut String, width: usize) {
    out.push(' ');
    pad(out, width);
    out.push_str(" · ");
}

fn pad(out: &mut String, spaces: usize) {
    repeat(out, "                                ", spaces);
}

/// A line `length` characters long under a label.
fn rule(out: &mut String, length: usize) {
    repeat(out, "────────────────────────────────", length);
}

/// `count` characters of `run`, a run of 32 copies of one character, copied a run at a time
/// (pushed a character at a time, they were a fiftieth of rendering).
fn repeat(out: &mut String, run: &str, count: usize) {
    const RUN: usize = 32;
    for _ in 0..count / RUN {
        out.push_str(run);
    }
    out.push_str(&run[..count % RUN * (run.len() / RUN)]);
}

/// A line of a snippet: its number (1-based), where it starts in the document, its length
/// with its line break, and its text.
struct Line<'t> {
    number: usize,
    offset: usize,
    length: usize,
    text: &'t str,
}

/// The lines of `text` (which starts at `offset`, on 0-based line `line`), numbered as miette
/// numbers them: a line break that ends the text ends the last line.
fn lines(text: &str, offset: usize, line: usize) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = line;
    for at in memchr::memchr_iter(b'\n', text.as_bytes()) {
        number += 1;
        lines.push(Line { number, offset: offset + start, length: at + 1 - start, text: &text[start..at] });
        start = at + 1;
    }
    if start < text.len() {
        lines.push(Line {
            number: number + 1,
            offset: offset + start,
            length: text.len() - start,
            text: &text[start..],
        });
    }
    lines
}

/// `text` filled as textwrap fills it for miette (first fit, words split at ASCII spaces and
/// after hyphens between letters or digits, words too long for a line broken), for one line
/// of printable ASCII.
pub(super) fn wrap(text: &str, initial: &str, subsequent: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if !bytes.iter().all(|&b| printable(b)) {
        return None;
    }
    let widths = [initial, subsequent].map(|indent| WRAP_WIDTH.saturating_sub(textwrap::core::display_width(indent)));
    let mut fill = Fill {
        text,
        subsequent,
        widths,
        out: String::with_capacity(text.len() + 64),
        from: 0,
        to: 0,
        width: 0,
        lines: 0,
    };
    fill.out.push_str(initial);
    // One pass: a word and the spaces after it (spaces that open the text are a word of their
    // own); a word splits after each hyphen between letters or digits.
    let mut at = 0;
    while at < bytes.len() {
        let (start, mut from) = (at, at);
        while at < bytes.len() && bytes[at] != b' ' {
            let hyphen = bytes[at] == b'-'
                && at > start
                && bytes[at - 1].is_ascii_alphanumeric()
                && bytes.get(at + 1).is_some_and(u8::is_ascii_alphanumeric);
            at += 1;
            if hyphen {
                fill.piece(from, at, at);
                from = at;
            }
        }
        let end = at;
        while at < bytes.len() && bytes[at] == b' ' {
            at += 1;
        }
        fill.piece(from, end, at);
    }
    let Fill { mut out, from, to, .. } = fill;
    out.push_str(&text[from..to.max(from)]);
    Some(out)
}

/// Lines being filled: the text of the one open runs from `from` to `to` and is `width` wide
/// with the spaces after it. It starts with an empty piece (textwrap's), so even the first
/// word can go to the second line.
struct Fill<'t> {
    text: &'t str,
    subsequent: &'t str,
    widths: [usize; 2],
    out: String,
    from: usize,
    to: usize,
    width: usize,
    lines: usize,
}

impl Fill<'_> {
    /// Places the piece `from..to` (its spaces to `trailing`), cut where a line ends if it is
    /// longer than a whole line.
    fn piece(&mut self, mut from: usize, to: usize, trailing: usize) {
        while to - from > self.widths[1] {
            self.place(from, from + self.widths[1], from + self.widths[1]);
            from += self.widths[1];
        }
        self.place(from, to, trailing);
    }

    /// Places a piece (`start..end`, its spaces to `trailing`) on the open line, or on a new
    /// one when it does not fit.
    fn place(&mut self, start: usize, end: usize, trailing: usize) {
        if self.width + (end - start) > self.widths[self.lines.min(1)] {
            self.out.push_str(&self.text[self.from..self.to.max(self.from)]);
            self.out.push('\n');
            self.out.push_str(self.subsequent);
            (self.from, self.width, self.lines) = (start, 0, self.lines + 1);
        }
        self.to = end;
        self.width += trailing - start;
    }
}

/// A printable ASCII byte: what this module draws; anything else is left to miette.
fn printable(byte: u8) -> bool {
    (b' '..=b'~').contains(&byte)
}

/// A character of a snippet this module draws: printable ASCII, or a character outside ASCII
/// that is not a control and that miette measures as one column (with its own version of
/// unicode-width). Tabs, wide and zero-width characters are left to miette.
fn narrow(character: char) -> bool {
    match u8::try_from(character) {
        Ok(byte) if byte.is_ascii() => printable(byte),
        _ => !character.is_control() && unicode_width::UnicodeWidthChar::width(character) == Some(1),
    }
}
