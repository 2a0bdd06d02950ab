//! Template references (`{{ ... }}`), reference section 5: the grammar, and finding the
//! references in a string. Brace sequences that do not match the grammar are not references
//! and pass through untouched (scripts are full of them). Substitution is in [`render`].

pub mod expression;
pub mod render;

use std::fmt;
use std::ops::Range;

use serde_json::Value;

use crate::diagnostic::{PathSegment, pointer_of};

pub use render::{Config, Error, Lookup, Rendered, Scope, render};

/// One parsed reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `{{ Name }}`: a parameter (or, inside a loop, nothing else: loops use `Loop.X`).
    Parameter(&'a str),
    /// `{{ step.Output }}`, including `{{ Loop.CurrentIteration }}`-style built-ins.
    StepOutput { step: &'a str, output: &'a str },
    /// `{{ global:NAME }}`.
    Global(&'a str),
    /// `{{ automation:NAME }}`.
    Automation(&'a str),
    /// `{{ variable:NAME }}`.
    Variable(&'a str),
    /// `{{ ssm:/path }}`: Parameter Store, allowed only in parameter defaults.
    Ssm(&'a str),
}

impl fmt::Display for Reference<'_> {
    /// The reference as written between the braces, without blanks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Parameter(name) => f.write_str(name),
            Reference::StepOutput { step, output } => write!(f, "{step}.{output}"),
            Reference::Global(name) => write!(f, "global:{name}"),
            Reference::Automation(name) => write!(f, "automation:{name}"),
            Reference::Variable(name) => write!(f, "variable:{name}"),
            Reference::Ssm(path) => write!(f, "ssm:{path}"),
        }
    }
}

/// The system variables of section 5.2.
pub const GLOBAL_VARIABLES: &[&str] = &["ACCOUNT_ID", "REGION", "AWS_PARTITION", "DATE", "DATE_TIME"];
pub const AUTOMATION_VARIABLES: &[&str] = &["EXECUTION_ID", "FENCING_TOKEN"];

fn is_ident(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses the text between `{{` and `}}`; `None` when it is not a reference.
pub fn parse_reference(inner: &str) -> Option<Reference<'_>> {
    // Spaces and tabs are single bytes: trimmed as bytes, the rest is whole characters.
    let blank = |byte: u8| byte == b' ' || byte == b'\t';
    let start = inner.bytes().position(|byte| !blank(byte)).unwrap_or(inner.len());
    let end = inner.bytes().rposition(|byte| !blank(byte)).map_or(start, |last| last + 1);
    let inner = &inner[start..end];
    if let Some(colon) = memchr::memchr(b':', inner.as_bytes()) {
        let (prefix, rest) = (&inner[..colon], &inner[colon + 1..]);
        return match prefix {
            "global" if is_ident(rest) => Some(Reference::Global(rest)),
            "automation" if is_ident(rest) => Some(Reference::Automation(rest)),
            "variable" if is_ident(rest) => Some(Reference::Variable(rest)),
            "ssm" if !rest.is_empty() && !rest.contains(char::is_whitespace) => Some(Reference::Ssm(rest)),
            _ => None,
        };
    }
    if is_ident(inner) {
        return Some(Reference::Parameter(inner));
    }
    let (step, output) = inner.split_once('.')?;
    // Output names may contain spaces in one AWS runbook; anything but braces is accepted.
    let output_ok = !output.is_empty() && !output.starts_with(' ') && !output.bytes().any(|b| b == b'{' || b == b'}');
    (is_ident(step) && output_ok).then_some(Reference::StepOutput { step, output })
}

/// Whether `text` holds `{{` at all: the quick test before looking for references.
pub fn has_braces(text: &str) -> bool {
    // Keys and most values are short: a plain look at each pair of bytes beats calling into
    // the vectorised search.
    match text.len() < 32 {
        true => text.as_bytes().windows(2).any(|pair| pair == b"{{"),
        false => find_pair(text.as_bytes(), b'{').is_some(),
    }
}

/// Where `bracket` first appears twice in a row in `bytes`. A script can be most of a
/// runbook's text: memchr's vectorised search for one byte beats a substring searcher, which
/// is also set up anew for each text.
fn find_pair(bytes: &[u8], bracket: u8) -> Option<usize> {
    memchr::memchr_iter(bracket, bytes).find(|&at| bytes.get(at + 1) == Some(&bracket))
}

/// Calls `visit` with every string inside `value` that contains `{{`, and its path from
/// `value` (appended to `path`, which holds the segments above `value`). Pointers are left to
/// the caller, so walks that rarely report build none.
pub fn visit_templates<'v>(
    value: &'v Value,
    path: &mut Vec<PathSegment<'v>>,
    visit: &mut impl FnMut(&'v str, &[PathSegment<'v>]),
) {
    match value {
        Value::String(text) if has_braces(text) => visit(text, path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathSegment::Index(i));
                visit_templates(item, path, visit);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                path.push(PathSegment::Key(key));
                visit_templates(item, path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Every string inside `value` that contains `{{`, with its pointer below `base`.
pub fn collect_templates<'v>(value: &'v Value, base: &str, out: &mut Vec<(&'v str, String)>) {
    visit_templates(value, &mut Vec::new(), &mut |text, path| out.push((text, format!("{base}{}", pointer_of(path)))));
}

/// Every `{{ ... }}` in `text` whose content holds no brace, with its byte range and the
/// content between the braces: the candidates for references (and, opt-in, expressions).
pub fn braces(text: &str) -> impl Iterator<Item = (Range<usize>, &str)> {
    let mut position = 0;
    std::iter::from_fn(move || {
        loop {
            let start = position + find_pair(text.as_bytes().get(position..)?, b'{')?;
            let after_open = start + 2;
            let Some(close) = find_pair(&text.as_bytes()[after_open..], b'}') else {
                position = text.len();
                return None;
            };
            let inner = &text[after_open..after_open + close];
            // `{{{` or an inner `{` means this is not a reference that starts here.
            if let Some(last) = memchr::memrchr(b'{', inner.as_bytes()) {
                // A reference can only open at the last `{{` before this close.
                position = (after_open + last).saturating_sub(1).max(start + 1);
                continue;
            }
            position = after_open + close + 2;
            return Some((start..position, inner));
        }
    })
}

/// The plain references of `text` as a runbook with this configuration reads them: with the
/// `x-expressions` extension on, `{{ }}` that is an expression is not a reference.
pub fn references_in(text: &str, config: Config) -> impl Iterator<Item = (Range<usize>, Reference<'_>)> {
    render::parts(text, config).filter_map(|(range, part)| match part {
        render::Part::Reference(reference) => Some((range, reference)),
        render::Part::Expression(_) => None,
    })
}

/// How a runbook's templates render: the `x-expressions` extension is opt-in.
pub fn config_for(runbook: &crate::document::model::Runbook) -> Config {
    Config {
        strict: false,
        expressions: runbook.extensions.get("x-expressions").and_then(serde_json::Value::as_bool) == Some(true),
    }
}

/// Every reference in `text`, with the byte range of its `{{ ... }}`.
pub fn references(text: &str) -> impl Iterator<Item = (Range<usize>, Reference<'_>)> {
    braces(text).filter_map(|(range, inner)| parse_reference(inner).map(|reference| (range, reference)))
}

/// The reference when the whole string (surrounding blanks aside) is exactly one reference.
pub fn whole_reference(text: &str) -> Option<Reference<'_>> {
    let trimmed = text.trim();
    let (range, reference) = references(trimmed).next()?;
    (range == (0..trimmed.len())).then_some(reference)
}

/// Whether `text` is exactly one `{{ ... }}` (a reference or not): such a value stands for
/// a typed value that is only known at run time.
pub fn is_whole_template(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
        && trimmed.len() >= 4
        && !trimmed[2..trimmed.len() - 2].contains(['{', '}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<Reference<'_>> {
        references(text).map(|(_, r)| r).collect()
    }

    #[test]
    fn grammar() {
        assert_eq!(parse_reference(" InstanceId "), Some(Reference::Parameter("InstanceId")));
        assert_eq!(parse_reference("step.Out"), Some(Reference::StepOutput { step: "step", output: "Out" }));
        assert_eq!(parse_reference("global:ACCOUNT_ID"), Some(Reference::Global("ACCOUNT_ID")));
        assert_eq!(parse_reference("automation:EXECUTION_ID"), Some(Reference::Automation("EXECUTION_ID")));
        assert_eq!(parse_reference("variable:Token"), Some(Reference::Variable("Token")));
        assert_eq!(parse_reference("ssm:/aws/service/ami"), Some(Reference::Ssm("/aws/service/ami")));
        assert_eq!(
            parse_reference("step.Output with spaces"),
            Some(Reference::StepOutput { step: "step", output: "Output with spaces" })
        );
        assert_eq!(parse_reference("print $2"), None);
        assert_eq!(parse_reference(""), None);
        assert_eq!(parse_reference("a b"), None);
    }

    #[test]
    fn non_references_pass_through() {
        assert!(refs("awk '{{print $2}}'").is_empty());
        assert!(refs("}} catch {{").is_empty());
        assert!(refs("\"{{{}}}\"").is_empty());
        assert_eq!(refs("{{{ Name }}}"), vec![Reference::Parameter("Name")]);
        assert_eq!(
            refs("a{{x}}b{{ y.z }}c"),
            vec![Reference::Parameter("x"), Reference::StepOutput { step: "y", output: "z" }]
        );
        // A `{` inside braces right after a character of several bytes: the search went on from
        // the middle of that character, which (as text) ended it and lost every later reference.
        assert_eq!(refs("f\"{{é{x}} {{ a }}\""), vec![Reference::Parameter("a")]);
        assert_eq!(refs("{{é{{ a }}"), vec![Reference::Parameter("a")]);
    }

    /// Short texts are looked at pair by pair, long ones with memchr: both find `{{` anywhere,
    /// and a lone `{` nowhere.
    #[test]
    fn braces_are_found_in_short_and_long_texts() {
        for length in [0, 1, 2, 3, 30, 31, 32, 33, 100] {
            let plain = "a{".repeat(length).chars().take(length).collect::<String>();
            assert!(!has_braces(&plain), "{plain:?}");
            for at in 0..length.saturating_sub(1) {
                let mut text = plain.clone().into_bytes();
                text[at..at + 2].copy_from_slice(b"{{");
                let text = String::from_utf8(text).unwrap();
                assert!(has_braces(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn whole_references() {
        assert_eq!(whole_reference(" {{ Ids }} "), Some(Reference::Parameter("Ids")));
        assert_eq!(whole_reference("x{{ Ids }}"), None);
        assert_eq!(whole_reference("{{ a }}{{ b }}"), None);
        assert!(is_whole_template("{{ step.Out }}"));
        assert!(!is_whole_template("PT{{ x }}S"));
    }
}
