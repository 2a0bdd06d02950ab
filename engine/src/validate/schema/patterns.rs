//! The `pattern`s of the runbook schema, matched by hand. Compiling a schema pattern into a
//! regular expression, lazily on the first value it checks, was a third of validating one small
//! runbook (ten patterns, each an NFA, a reverse NFA and a lazy DFA's cache, one with a 400 KB
//! working table to zero). The schema the validator is built from
//! (`runbook.native.schema.json`, derived from `schemas/runbook.schema.json`, which editors and
//! users read) names each pattern under `x-runbook-pattern`, and this module matches it; tests
//! hold every matcher to the regex engine's verdict (ECMA-262 as `jsonschema` translates it).

use jsonschema::paths::Location;
use jsonschema::{Keyword, ValidationError};
use serde_json::{Map, Value};

/// The keyword that stands for `pattern` in the derived schema.
pub const KEYWORD: &str = "x-runbook-pattern";

/// A pattern and the function that matches it.
pub struct Native {
    pub pattern: &'static str,
    pub matches: fn(&str) -> bool,
}

/// Every pattern the schema holds. A pattern missing here fails the build of the validator
/// on first use, and a test.
pub const PATTERNS: &[Native] = &[
    Native { pattern: "^[0-9a-fA-F]{64}$", matches: |s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) },
    Native { pattern: "^[a-zA-Z0-9_]+$", matches: |s| is_word(s) },
    Native { pattern: "^[A-Za-z0-9_]+$", matches: |s| is_word(s) },
    Native { pattern: "^[A-Za-z0-9_]{1,50}$", matches: |s| is_word(s) && s.len() <= 50 },
    Native { pattern: "^[0-9]+$", matches: |s| is_digits(s) },
    Native { pattern: "^aws:[a-zA-Z]{3,50}$", matches: |s| s.strip_prefix("aws:").is_some_and(is_action_name) },
    Native {
        pattern: "^(Abort|Continue|step:[a-zA-Z0-9_]+)$",
        matches: |s| s == "Abort" || s == "Continue" || is_step_jump(s),
    },
    Native { pattern: "^(Abort|step:[a-zA-Z0-9_]+)$", matches: |s| s == "Abort" || is_step_jump(s) },
    Native { pattern: "^step:[a-zA-Z0-9_]+$", matches: is_step_jump },
    Native { pattern: "^variable:[A-Za-z0-9_]+$", matches: |s| s.strip_prefix("variable:").is_some_and(is_word) },
    Native {
        pattern: "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$",
        matches: |s| s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"),
    },
    Native { pattern: "^python", matches: |s| s.starts_with("python") },
    Native {
        pattern: r"^(python3\.[0-9]+|PowerShell [0-9]+(\.[0-9]+)*|PowerShell Core [0-9]+(\.[0-9]+)*)$",
        matches: |s| {
            s.strip_prefix("python3.").is_some_and(is_digits)
                || s.strip_prefix("PowerShell Core ").is_some_and(is_version)
                || s.strip_prefix("PowerShell ").is_some_and(is_version)
        },
    },
    Native { pattern: r"^[^.]+\..+$", matches: is_dotted },
    Native { pattern: r"\{\{[^{}]+\}\}", matches: |s| has_template(s, false) },
    Native { pattern: r"^\s*\{\{\s*[^{}]+?\s*\}\}\s*$", matches: is_whole_template },
    Native {
        pattern: r"^(P([0-9]+[YMWD])*(T([0-9]+([.,][0-9]+)?[HMS])+)?|.*\{\{[^{}]+\}\}.*)$",
        matches: |s| is_duration(s) || has_template(s, true),
    },
    Native {
        pattern: r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?|.*\{\{[^{}]+\}\}.*)$",
        matches: |s| is_timestamp(s) || has_template(s, true),
    },
];

/// The matcher of a schema pattern.
pub fn native(pattern: &str) -> Option<&'static Native> {
    PATTERNS.iter().find(|native| native.pattern == pattern)
}

/// The keyword's factory, for the generated validator.
pub fn keyword<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _location: Location,
) -> Result<Box<dyn for<'i> Keyword<'i>>, ValidationError<'a>> {
    let pattern = value.as_str().unwrap_or_default();
    match native(pattern) {
        Some(native) => Ok(Box::new(Matcher(native))),
        None => Err(ValidationError::custom(format!("no native matcher for the schema pattern `{pattern}`"))),
    }
}

struct Matcher(&'static Native);

impl<'i> Keyword<'i> for Matcher {
    /// A value that does not match fails with the pattern as its message, which the report
    /// reads as it reads a `pattern` failure.
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match self.is_valid(instance) {
            true => Ok(()),
            false => Err(ValidationError::custom(self.0.pattern)),
        }
    }

    /// Like `pattern`, only strings are checked.
    fn is_valid(&self, instance: &'i Value) -> bool {
        instance.as_str().is_none_or(self.0.matches)
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_action_name(s: &str) -> bool {
    (3..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_step_jump(s: &str) -> bool {
    s.strip_prefix("step:").is_some_and(is_word)
}

/// Digits, then any number of `.` and digits.
fn is_version(s: &str) -> bool {
    s.split('.').all(is_digits)
}

/// Something without a dot, a dot, then one or more characters none of them a line feed.
fn is_dotted(s: &str) -> bool {
    s.find('.').is_some_and(|dot| dot > 0 && s.len() > dot + 1 && !s[dot + 1..].contains('\n'))
}

/// ECMA-262 `\s`: TAB to CR, space, NBSP, the Unicode space separators, LS, PS and the BOM.
fn is_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}')
        || matches!(c, '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}')
}

/// `{{`, one or more characters that are not braces, `}}`: somewhere in `s`, or (`line`) with
/// no line feed before or after it.
fn has_template(s: &str, line: bool) -> bool {
    let bytes = s.as_bytes();
    (0..bytes.len().saturating_sub(1)).filter(|&at| bytes[at] == b'{' && bytes[at + 1] == b'{').any(|at| {
        let inner = at + 2;
        let Some(close) = bytes[inner..].iter().position(|&b| b == b'{' || b == b'}').map(|end| inner + end) else {
            return false;
        };
        close > inner
            && bytes[close..].starts_with(b"}}")
            && !(line && (bytes[..at].contains(&b'\n') || bytes[close + 2..].contains(&b'\n')))
    })
}

/// One `{{ ... }}` and nothing around it but spaces.
fn is_whole_template(s: &str) -> bool {
    let Some(inner) = s.trim_start_matches(is_space).strip_prefix("{{") else { return false };
    let Some(close) = inner.find(['{', '}']) else { return false };
    close > 0 && inner[close..].strip_prefix("}}").is_some_and(|rest| rest.chars().all(is_space))
}

/// An ISO 8601 duration as the schema spells it: `P`, then number-and-unit pairs of years,
/// months, weeks and days, then optionally `T` and one or more of hours, minutes and seconds
/// (which may have a fraction).
fn is_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else { return false };
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let units = |text: &str, units: &[u8], fraction: bool| -> Option<usize> {
        let bytes = text.as_bytes();
        let (mut at, mut count) = (0, 0);
        while at < bytes.len() {
            let digits = bytes[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            at += digits;
            if fraction && matches!(bytes.get(at), Some(b'.' | b',')) {
                let decimals = bytes[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                if decimals == 0 {
                    return None;
                }
                at += 1 + decimals;
            }
            if !bytes.get(at).is_some_and(|unit| units.contains(unit)) {
                return None;
            }
            (at, count) = (at + 1, count + 1);
        }
        Some(count)
    };
    units(date, b"YMWD", false).is_some()
        && time.is_none_or(|time| units(time, b"HMS", true).is_some_and(|count| count > 0))
}

/// `YYYY-MM-DDT`, then digits, colons and dots, then optionally `Z` or an offset.
fn is_timestamp(s: &str) -> bool {
    let bytes = s.as_bytes();
    let digits =
        |range: std::ops::Range<usize>| bytes.get(range).is_some_and(|part| part.iter().all(u8::is_ascii_digit));
    let dash = |at: usize| bytes.get(at) == Some(&b'-');
    if !(digits(0..4) && dash(4) && digits(5..7) && dash(7) && digits(8..10) && bytes.get(10) == Some(&b'T')) {
        return false;
    }
    let clock = bytes[11..].iter().take_while(|b| b.is_ascii_digit() || matches!(b, b':' | b'.')).count();
    let zone = &bytes[11 + clock..];
    clock > 0
        && match zone {
            [] | [b'Z'] => true,
            [b'+' | b'-', a, b, c, d] => [a, b, c, d].iter().all(|x| x.is_ascii_digit()),
            [b'+' | b'-', a, b, b':', c, d] => [a, b, c, d].iter().all(|x| x.is_ascii_digit()),
            _ => false,
        }
}
