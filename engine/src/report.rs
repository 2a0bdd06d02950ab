//! Stage 6, reporting: diagnostics as text with source snippets (miette), as JSON for
//! machines, or as GitHub Actions annotations.

pub mod html;
mod plain;
pub mod plan;

use std::fmt::Write as _;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, MietteError, MietteSpanContents, SourceCode,
    SourceSpan, SpanContents,
};
use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Severity};
use crate::document::{Source, line_start};

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
    let mut out = String::with_capacity(1024 * diagnostics.len().min(MAX_TEXT_FINDINGS));
    for diagnostic in diagnostics.iter().take(MAX_TEXT_FINDINGS) {
        text(&mut out, source, diagnostic, colour);
        out.push('\n');
    }
    out.push_str(&more_findings(&source.name, diagnostics.len()).unwrap_or_default());
    out
}

/// Renders one diagnostic with its snippet into `out`, the way a person reads it in a
/// terminal.
fn text(out: &mut String, source: &Source, diagnostic: &Diagnostic, colour: bool) {
    out.push_str(&source.name);
    if let Some(location) = diagnostic.location {
        let _ = write!(out, ":{}:{}", location.line, location.column);
    }
    let _ = writeln!(out, ": {} [{}]", diagnostic.severity, diagnostic.code);
    let (window, label) = Window::around(source, diagnostic.location);
    let plain = match colour {
        true => None,
        false => {
            plain::render(icon(diagnostic), &diagnostic.message, diagnostic.help.as_deref(), &window, label.as_ref())
        }
    };
    match plain {
        Some(body) => out.push_str(&body),
        None => out.push_str(&with_miette(diagnostic, window, label, colour)),
    }
}

fn icon(diagnostic: &Diagnostic) -> &'static str {
    match diagnostic.severity {
        Severity::Error => "×",
        Severity::Warning => "⚠",
    }
}

/// The message, snippet and help drawn by miette, for what [`plain`] does not draw.
fn with_miette(diagnostic: &Diagnostic, window: Window, label: Option<std::ops::Range<usize>>, colour: bool) -> String {
    let mut report = MietteDiagnostic::new(diagnostic.message.clone()).with_severity(match diagnostic.severity {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    });
    if let Some(help) = &diagnostic.help {
        report = report.with_help(help.clone());
    }
    if let Some(label) = label {
        report = report.with_label(LabeledSpan::at(label, "here"));
    }
    let theme = match colour {
        true => GraphicalTheme::unicode(),
        false => GraphicalTheme::unicode_nocolor(),
    };
    let mut out = String::new();
    if handler(theme).render_report(&mut out, &Snippet { diagnostic: report, source: window }).is_err() {
        let _ = writeln!(out, "  {}", diagnostic.message);
    }
    out
}

/// The width text is drawn to, in columns; messages wrap two columns short of it.
const WIDTH: usize = 100;
const WRAP_WIDTH: usize = WIDTH - 2;

/// miette's handler as this engine draws diagnostics: two lines of context, 100 columns.
fn handler(theme: GraphicalTheme) -> GraphicalReportHandler {
    // Messages wrap at spaces: Unicode line breaking cost as much as the rest of rendering,
    // and the messages are ASCII prose.
    GraphicalReportHandler::new_themed(theme)
        .with_context_lines(2)
        .with_width(WIDTH)
        .with_word_separator(textwrap::WordSeparator::AsciiSpace)
}

/// A diagnostic with the source its label points into, as miette's handler reads it. Not a
/// `miette::Report`: making one looks up the terminal's colour and hyperlink support in the
/// environment each time (a seventh of rendering the corpus's warnings), for a handler never used.
#[derive(Debug)]
struct Snippet {
    diagnostic: MietteDiagnostic,
    source: Window,
}

impl std::fmt::Display for Snippet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.diagnostic.fmt(f)
    }
}

impl std::error::Error for Snippet {}

impl miette::Diagnostic for Snippet {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::code(&self.diagnostic)
    }
    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(&self.diagnostic)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::help(&self.diagnostic)
    }
    fn url<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::url(&self.diagnostic)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        miette::Diagnostic::labels(&self.diagnostic)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }
}

/// Source text that hands miette only the lines around a span. miette's own `str` source
/// walks the text from the start for every snippet, which dominated validating the corpus;
/// and the window copies only a few lines of the document, not all of it, per diagnostic.
#[derive(Debug)]
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
        let mut start = line_start(bytes, location.offset);
        for _ in 0..CONTEXT_LINES {
            if start == 0 {
                break;
            }
            start = line_start(bytes, start - 1);
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
        // Both ends follow a line feed or end the text, so the slice is whole characters (the
        // lossy copy is only a guard).
        let text = source
            .text
            .get(start..stop)
            .map_or_else(|| String::from_utf8_lossy(&bytes[start..stop]).into_owned(), str::to_owned);
        let label = location.offset..location.offset + location.length;
        if lines_fit(&bytes[start..stop]) {
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

/// Whether every line of `text` (without its line break, `\r\n` as `str::lines` reads it) is
/// at most [`SNIPPET_LINE_BYTES`] long.
fn lines_fit(text: &[u8]) -> bool {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len())) {
        let line = &text[start..end];
        let line = match line.strip_suffix(b"\r") {
            Some(body) if end < text.len() => body,
            _ => line,
        };
        if line.len() > SNIPPET_LINE_BYTES {
            return false;
        }
        start = end + 1;
    }
    true
}

/// Whole lines of a window: their byte range in it, and the 0-based line the first one is.
struct Around {
    start: usize,
    stop: usize,
    first_line: usize,
}

impl Window {
    /// The lines of the window around a span (`offset` and `length` in the document's bytes),
    /// with some lines of context before and after, as miette asks for them.
    fn lines_around(&self, offset: usize, length: usize, before: usize, after: usize) -> Option<Around> {
        let bytes = self.text.as_bytes();
        let offset = offset.checked_sub(self.base)?;
        let end = offset + length;
        if end > bytes.len() {
            return None;
        }
        let line_end = |at: usize| memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        let mut start = line_start(bytes, offset);
        for _ in 0..before {
            if start == 0 {
                break;
            }
            start = line_start(bytes, start - 1);
        }
        let mut stop = line_end(end);
        for _ in 0..after {
            if stop >= bytes.len() {
                break;
            }
            stop = line_end(stop + 1);
        }
        Some(Around { start, stop, first_line: self.base_line + memchr::memchr_iter(b'\n', &bytes[..start]).count() })
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let Around { start, stop, first_line } = self
            .lines_around(span.offset(), span.len(), context_lines_before, context_lines_after)
            .ok_or(MietteError::OutOfBounds)?;
        let bytes = self.text.as_bytes();
        let line_count = memchr::memchr_iter(b'\n', &bytes[start..stop]).count() + 1;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &bytes[start..stop],
            SourceSpan::new((self.base + start).into(), stop - start),
            first_line,
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

    /// A small deterministic generator, for the comparisons with miette and textwrap.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(self.0 >> 33).unwrap() % n.max(1)
        }

        /// Prose of the kind diagnostics hold: hyphenated names, punctuation, spaces doubled,
        /// opening or closing the text, and words longer than a line.
        fn prose(&mut self) -> String {
            const WORDS: [&str; 14] = [
                "step",
                "`GetRole`",
                "output-may-be-unset",
                "--flag-name",
                "a-",
                "-b",
                "x--y",
                "{{ Step.Output }}",
                "2-3",
                "runs",
                "on",
                "every",
                "path;",
                "",
            ];
            let mut text = String::new();
            for _ in 0..self.below(40) {
                match self.below(20) {
                    0 => text.push_str(&"long-word".repeat(1 + self.below(30))),
                    1 => text.push_str(&"z".repeat(90 + self.below(120))),
                    2 => text.push(' '),
                    _ => text.push_str(WORDS[self.below(WORDS.len())]),
                }
                text.push(' ');
            }
            match self.below(3) {
                0 => text.trim().to_owned(),
                1 => text.trim_end().to_owned(),
                _ => text,
            }
        }
    }

    #[test]
    fn plain_wrapping_is_textwraps() {
        let mut random = Lcg(7);
        for _ in 0..4_000 {
            let text = random.prose();
            for (initial, subsequent) in [("  ⚠ ", "  │ "), ("  × ", "  │ "), ("  help: ", "        ")] {
                let options = textwrap::Options::new(WRAP_WIDTH)
                    .initial_indent(initial)
                    .subsequent_indent(subsequent)
                    .word_separator(textwrap::WordSeparator::AsciiSpace);
                assert_eq!(
                    plain::wrap(&text, initial, subsequent).as_deref(),
                    Some(textwrap::fill(&text, options).as_str()),
                    "{text:?}"
                );
            }
        }
        assert_eq!(plain::wrap("tab\there", "  ⚠ ", "  │ "), None, "only printable ASCII");
    }

    #[test]
    fn plain_text_is_miettes() {
        let mut random = Lcg(11);
        let mut drawn = 0;
        const CASES: usize = 3_000;
        for case in 0..CASES {
            // Documents of 1 to 140 lines (line numbers of one to three digits), some lines
            // empty or long, a few with a tab or characters outside ASCII (one column wide, two,
            // or none).
            let mut text = String::new();
            for _ in 0..1 + random.below(if case % 4 == 0 { 140 } else { 12 }) {
                let line = match random.below(12) {
                    0 => String::new(),
                    1 => [
                        "  \"Value\": \"é\",",
                        "  \"Text\": \"it’s … “done” — ü€\",",
                        "  \"Wide\": \"漢字\",",
                        "  \"Mark\": \"e\u{301}\",",
                    ][random.below(4)]
                    .to_owned(),
                    2 => "\tkey: value".to_owned(),
                    3 => "x".repeat(100 + random.below(100)),
                    _ => format!(
                        "{}\"Key{}\": \"{}\",",
                        " ".repeat(random.below(12)),
                        random.below(1000),
                        "v".repeat(random.below(30))
                    ),
                };
                text.push_str(&line);
                text.push('\n');
            }
            if random.below(2) == 0 {
                text.pop();
            }
            let source = Source { name: "doc.json".to_owned(), text, format: crate::document::Format::Json };
            // A location as the loader makes one: kept to its line, at least one byte long.
            let bytes = source.text.as_bytes();
            let offset =
                (0..=random.below(bytes.len())).rev().find(|&at| source.text.is_char_boundary(at)).unwrap_or(0);
            let line_start = bytes[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
            let line_end = bytes[offset..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |at| offset + at);
            let location = Location {
                line: 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count(),
                column: 1 + source.text[line_start..offset].chars().count(),
                offset,
                length: random.below(60).min(line_end - offset).max(1).min(bytes.len() - offset),
            };
            let mut diagnostic = Diagnostic::new(Code::UnknownStep, random.prose());
            if random.below(3) > 0 {
                diagnostic = diagnostic.located(location);
            }
            if random.below(2) == 0 {
                diagnostic = diagnostic.with_help(random.prose());
            }
            if random.below(5) == 0 {
                diagnostic.severity = Severity::Error;
            }
            let (window, label) = Window::around(&source, diagnostic.location);
            let Some(plain) = plain::render(
                icon(&diagnostic),
                &diagnostic.message,
                diagnostic.help.as_deref(),
                &window,
                label.as_ref(),
            ) else {
                continue;
            };
            drawn += 1;
            let (window, label) = Window::around(&source, diagnostic.location);
            assert_eq!(
                plain,
                with_miette(&diagnostic, window, label, false),
                "{:?} in\n{}",
                diagnostic.location,
                source.text
            );
        }
        // Most documents here are plain ASCII: most cases must have been drawn, and compared.
        assert!(drawn > CASES / 2, "{drawn} of {CASES} drawn");
    }

    #[test]
    fn summary_line() {
        assert_eq!(summary(497, 0, 12), "497 runbooks: 497 valid, 0 invalid, 12 warnings");
        assert_eq!(summary(1, 1, 1), "1 runbook: 0 valid, 1 invalid, 1 warning");
    }
}
