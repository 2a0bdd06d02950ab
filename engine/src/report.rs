//! Stage 6, reporting: diagnostics as text with source snippets (miette), as JSON for
//! machines, or as GitHub Actions annotations.

pub mod html;
pub mod plan;

use std::fmt::Write as _;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, MietteError, MietteSpanContents, SourceCode,
    SourceSpan, SpanContents,
};
use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Severity};
use crate::document::Source;

/// The most findings of one file the text format renders with snippets; the rest are counted
/// (`--format json` lists them all).
pub const MAX_TEXT_FINDINGS: usize = 200;

/// The line that counts the findings of a file past [`MAX_TEXT_FINDINGS`].
fn more_findings(file: &str, total: usize) -> Option<String> {
    (total > MAX_TEXT_FINDINGS).then(|| {
        format!(
            "{file}: {} more findings not shown (the first {MAX_TEXT_FINDINGS} are above; --format json lists all)\n",
            total - MAX_TEXT_FINDINGS
        )
    })
}

/// The findings of one file as text, each followed by a blank line: the first
/// [`MAX_TEXT_FINDINGS`] with snippets, then a line counting the rest.
pub fn texts(source: &Source, diagnostics: &[Diagnostic], colour: bool) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics.iter().take(MAX_TEXT_FINDINGS) {
        out.push_str(&text(source, diagnostic, colour));
        out.push('\n');
    }
    out.push_str(&more_findings(&source.name, diagnostics.len()).unwrap_or_default());
    out
}

/// Renders one diagnostic with its snippet, the way a person reads it in a terminal.
pub fn text(source: &Source, diagnostic: &Diagnostic, colour: bool) -> String {
    let mut report = MietteDiagnostic::new(diagnostic.message.clone()).with_severity(match diagnostic.severity {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    });
    if let Some(help) = &diagnostic.help {
        report = report.with_help(help.clone());
    }
    let (window, label) = Window::around(source, diagnostic.location);
    if let Some(label) = label {
        report = report.with_label(LabeledSpan::at(label, "here"));
    }
    let theme = match colour {
        true => GraphicalTheme::unicode(),
        false => GraphicalTheme::unicode_nocolor(),
    };
    // Messages wrap at spaces: Unicode line breaking cost as much as the rest of rendering,
    // and the messages are ASCII prose.
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_context_lines(2)
        .with_width(100)
        .with_word_separator(textwrap::WordSeparator::AsciiSpace);
    let heading = match diagnostic.location {
        Some(location) => format!("{}:{}:{}", source.name, location.line, location.column),
        None => source.name.clone(),
    };
    let mut out = format!("{heading}: {} [{}]\n", diagnostic.severity, diagnostic.code);
    let report = miette::Report::new(report).with_source_code(window);
    if handler.render_report(&mut out, report.as_ref()).is_err() {
        let _ = writeln!(out, "  {}", diagnostic.message);
    }
    out
}

/// Source text that hands miette only the lines around a span. miette's own `str` source
/// walks the text from the start for every snippet, which dominated validating the corpus;
/// and the window copies only a few lines of the document, not all of it, per diagnostic.
struct Window {
    name: String,
    /// Some lines of the document, starting at byte `base` of it, on line `base_line` (0-based).
    text: String,
    base: usize,
    base_line: usize,
}

/// The longest line a snippet shows; a longer one is clipped around the finding, so that the
/// snippet fits a screen (and its columns stay within what miette can count).
const SNIPPET_LINE_BYTES: usize = 160;

impl Window {
    /// Enough lines around a location for the snippet's context, long lines clipped, with the
    /// label's range in the window's coordinates.
    fn around(
        source: &Source,
        location: Option<crate::diagnostic::Location>,
    ) -> (Window, Option<std::ops::Range<usize>>) {
        const CONTEXT_LINES: usize = 3;
        let bytes = source.text.as_bytes();
        let Some(location) = location.filter(|l| l.offset + l.length <= bytes.len()) else {
            return (Window { name: source.name.clone(), text: String::new(), base: 0, base_line: 0 }, None);
        };
        let line_start = |at: usize| memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
        let mut start = line_start(location.offset);
        for _ in 0..CONTEXT_LINES {
            if start == 0 {
                break;
            }
            start = line_start(start - 1);
        }
        let base_line = location.line - 1 - memchr::memchr_iter(b'\n', &bytes[start..location.offset]).count();
        let mut stop = location.offset + location.length;
        for _ in 0..=CONTEXT_LINES {
            match memchr::memchr(b'\n', &bytes[stop..]) {
                Some(i) => stop += i + 1,
                None => {
                    stop = bytes.len();
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes[start..stop]).into_owned();
        let label = location.offset..location.offset + location.length;
        if text.lines().all(|line| line.len() <= SNIPPET_LINE_BYTES) {
            return (Window { name: source.name.clone(), text, base: start, base_line }, Some(label));
        }
        let (text, label) = clip_lines(&text, label.start - start, label.len());
        (
            Window { name: source.name.clone(), text, base: start, base_line },
            Some(start + label.start..start + label.end),
        )
    }
}

/// The window's lines clipped to [`SNIPPET_LINE_BYTES`]: the label's line around the label
/// (which keeps to that line), the others at their start; `…` marks what was cut. Returns the
/// text and the label's range in it.
fn clip_lines(text: &str, label_start: usize, label_len: usize) -> (String, std::ops::Range<usize>) {
    let floor = |line: &str, at: usize| (0..=at.min(line.len())).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
    let mut out = String::with_capacity(text.len().min(16 * SNIPPET_LINE_BYTES));
    let mut label = 0..0;
    let mut line_start = 0;
    // A tab becomes one space: the same bytes, so offsets hold, and no wide expansion.
    let text = text.replace('\t', " ");
    for line in text.split_inclusive('\n') {
        let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |body| (body, "\n"));
        let holds_label = (line_start..line_start + line.len().max(1)).contains(&label_start);
        if holds_label {
            let at = label_start - line_start;
            let from = floor(body, at.saturating_sub(SNIPPET_LINE_BYTES / 3));
            let to = floor(body, from + SNIPPET_LINE_BYTES);
            if from > 0 {
                out.push('…');
            }
            let begin = out.len() + at.min(body.len()) - from;
            out.push_str(&body[from..to]);
            let end = (begin + label_len).min(out.len()).max(begin);
            label = begin..end;
            if to < body.len() {
                out.push('…');
            }
        } else {
            let to = floor(body, SNIPPET_LINE_BYTES);
            out.push_str(&body[..to]);
            if to < body.len() {
                out.push('…');
            }
        }
        out.push_str(newline);
        line_start += line.len();
    }
    (out, label)
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let bytes = self.text.as_bytes();
        let offset = span.offset().checked_sub(self.base).ok_or(MietteError::OutOfBounds)?;
        let end = offset + span.len();
        if end > bytes.len() {
            return Err(MietteError::OutOfBounds);
        }
        let mut start = bytes[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for _ in 0..context_lines_before {
            if start == 0 {
                break;
            }
            start = bytes[..start - 1].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        }
        let mut stop = bytes[end..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| end + i);
        for _ in 0..context_lines_after {
            if stop >= bytes.len() {
                break;
            }
            stop = bytes[stop + 1..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| stop + 1 + i);
        }
        let line = self.base_line + memchr::memchr_iter(b'\n', &bytes[..start]).count();
        let line_count = memchr::memchr_iter(b'\n', &bytes[start..stop]).count() + 1;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &bytes[start..stop],
            SourceSpan::new((self.base + start).into(), stop - start),
            line,
            0,
            line_count,
        )))
    }
}

/// One diagnostic as a JSON object: file, line, column, code, severity, message, help.
pub fn json(file: &str, diagnostic: &Diagnostic) -> Value {
    json!({
        "file": file,
        "line": diagnostic.location.map(|l| l.line),
        "column": diagnostic.location.map(|l| l.column),
        "code": diagnostic.code.as_str(),
        "severity": diagnostic.severity.as_str(),
        "message": diagnostic.message,
        "help": diagnostic.help,
        "pointer": diagnostic.pointer,
    })
}

/// One diagnostic as a GitHub Actions workflow command (`::error file=...::message`).
pub fn github(file: &str, diagnostic: &Diagnostic) -> String {
    let mut message = diagnostic.message.clone();
    if let Some(help) = &diagnostic.help {
        let _ = write!(message, "\n{help}");
    }
    let at = diagnostic.location.map(|location| (location.line, Some(location.column)));
    annotation(diagnostic.severity.as_str(), file, at, diagnostic.code.as_str(), &message)
}

/// A GitHub Actions annotation (`::error file=...,line=...,title=...::message`), escaped.
pub fn annotation(level: &str, file: &str, at: Option<(usize, Option<usize>)>, title: &str, message: &str) -> String {
    let mut properties = format!("file={}", escape_property(file));
    if let Some((line, column)) = at {
        let _ = write!(properties, ",line={line}");
        if let Some(column) = column {
            let _ = write!(properties, ",col={column}");
        }
    }
    let _ = write!(properties, ",title={}", escape_property(title));
    format!("::{level} {properties}::{}", escape_data(message))
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The closing line: `497 runbooks: 497 valid, 0 invalid, 12 warnings`.
pub fn summary(runbooks: usize, invalid: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    format!(
        "{}: {} valid, {} invalid, {}",
        plural(runbooks, "runbook"),
        runbooks - invalid,
        invalid,
        plural(warnings, "warning")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Code, Location};

    #[test]
    fn long_lines_are_clipped_around_the_label_on_char_boundaries() {
        let line = format!("{}key{}", "é".repeat(5_000), "ü".repeat(5_000));
        let text = format!("short\n{line}\n{}\n", "x".repeat(1_000));
        let start = 6 + "é".len() * 5_000;
        let (clipped, label) = clip_lines(&text, start, 3);
        assert_eq!(&clipped[label.clone()], "key");
        assert!(clipped.lines().all(|line| line.len() <= SNIPPET_LINE_BYTES + 2 * "…".len()), "{clipped}");
        assert!(clipped.starts_with("short\n…é") && clipped.lines().nth(1).unwrap().ends_with('…'));
        // A label running past its line keeps to it.
        let (clipped, label) = clip_lines(&text, start, 100_000);
        assert!(label.end <= clipped.find("ü…").unwrap() + "ü".len(), "{label:?}");
    }

    #[test]
    fn github_annotations_escape() {
        let diagnostic = Diagnostic::new(Code::UnknownStep, "a, b: 100%\nnext").located(Location {
            line: 3,
            column: 7,
            offset: 0,
            length: 1,
        });
        assert_eq!(
            github("dir/a,b.yaml", &diagnostic),
            "::error file=dir/a%2Cb.yaml,line=3,col=7,title=unknown-step::a, b: 100%25%0Anext"
        );
    }

    #[test]
    fn summary_line() {
        assert_eq!(summary(497, 0, 12), "497 runbooks: 497 valid, 0 invalid, 12 warnings");
        assert_eq!(summary(1, 1, 1), "1 runbook: 0 valid, 1 invalid, 1 warning");
    }
}
