//! `allowedPattern` is a Java regular expression (reference section 2.4). AWS-owned runbooks
//! use look-around, back-references and Java-only character-class forms, so patterns are
//! translated to fancy-regex syntax and matched with Java `matches()` (whole-value) semantics.

use std::sync::{LazyLock, Mutex, PoisonError};

use fancy_regex::{Regex, RegexBuilder};
use foldhash::HashMap;

/// Compiles a Java pattern for whole-value matching.
pub fn compile(pattern: &str) -> Result<Regex, fancy_regex::Error> {
    let translated = translate(pattern);
    RegexBuilder::new(&format!(r"\A(?:{translated})\z"))
        // `{1,1024}` repetitions of classes are common in AWS patterns; Java has no such limit.
        .delegate_size_limit(64 << 20)
        .build()
}

/// Checks that a pattern parses, without building its automaton: validation looks at every
/// pattern of every runbook, so it must be cheap; values are matched with [`compile`].
pub fn check_syntax(pattern: &str) -> Result<(), fancy_regex::Error> {
    // Runbooks share their patterns (half of the corpus's 1,402 are repeats, the role ARN's
    // above all): each is parsed once a process.
    static CHECKED: LazyLock<Mutex<HashMap<String, Result<(), fancy_regex::Error>>>> = LazyLock::new(Mutex::default);
    let checked = || CHECKED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(result) = checked().get(pattern) {
        return result.clone();
    }
    let result = fancy_regex::Expr::parse_tree(&translate(pattern)).map(|_| ());
    checked().insert(pattern.to_owned(), result.clone());
    result
}

/// Whole-value match, as Java's `String.matches`. A backtracking limit counts as no match.
pub fn matches(regex: &Regex, value: &str) -> bool {
    regex.is_match(value).unwrap_or(false)
}

/// A short value the pattern matches, for a placeholder (`runbook test --scaffold`): the
/// fewest repetitions (at least one), the first alternative, letters and digits first.
/// `None` for what the generator cannot follow (look-around, back-references).
pub fn example(pattern: &str) -> Option<String> {
    use regex_syntax::hir::{Class, Hir, HirKind};
    fn generate(hir: &Hir, out: &mut String) {
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => {}
            HirKind::Literal(literal) => out.push_str(&String::from_utf8_lossy(&literal.0)),
            HirKind::Class(Class::Unicode(class)) => {
                let chars = class.ranges().iter().flat_map(|range| (range.start()..=range.end()).take(128));
                let mut chars = chars.peekable();
                let first = chars.peek().copied();
                if let Some(c) = chars.find(char::is_ascii_alphanumeric).or(first) {
                    out.push(c);
                }
            }
            HirKind::Class(Class::Bytes(class)) => {
                if let Some(range) = class.ranges().first() {
                    out.push(char::from(range.start()));
                }
            }
            HirKind::Repetition(repetition) => {
                let times = repetition.min.max(1).min(repetition.max.unwrap_or(u32::MAX));
                for _ in 0..times {
                    generate(&repetition.sub, out);
                }
            }
            HirKind::Capture(capture) => generate(&capture.sub, out),
            HirKind::Concat(items) => items.iter().for_each(|item| generate(item, out)),
            HirKind::Alternation(items) => {
                if let Some(first) = items.first() {
                    generate(first, out);
                }
            }
        }
    }
    let hir = regex_syntax::parse(&translate(pattern)).ok()?;
    let mut value = String::new();
    generate(&hir, &mut value);
    let regex = compile(pattern).ok()?;
    matches(&regex, &value).then_some(value)
}

/// Rewrites the Java-only constructs that fancy-regex reads differently or rejects:
/// `\Q...\E` quoting, `\Z`, a `-` next to a class escape inside `[...]` (literal in Java),
/// and `[` inside a class (literal in Java without nesting).
fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Whether the previous class item was a class escape such as \w (not a range endpoint).
    let mut after_class_escape = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let next = chars[i + 1];
            if next == 'Q' {
                let start = i + 2;
                let end = find_sequence(&chars, start, ['\\', 'E']).unwrap_or(chars.len());
                for &quoted in &chars[start..end] {
                    push_escaped(&mut out, quoted);
                }
                i = (end + 2).min(chars.len().max(end + 2));
                after_class_escape = false;
                continue;
            }
            if next == 'Z' && !in_class {
                out.push_str(r"(?=\n?\z)");
                i += 2;
                continue;
            }
            // Java's \w, \d and \s are ASCII-only (without UNICODE_CHARACTER_CLASS); the
            // regex crate's are Unicode, and far larger to compile under a `{1,1024}`.
            if let Some(ascii) = ascii_class(next) {
                if in_class {
                    out.push_str(ascii);
                } else {
                    out.push('[');
                    out.push_str(ascii);
                    out.push(']');
                }
                i += 2;
                after_class_escape = in_class;
                continue;
            }
            // Java writes characters outside the BMP as UTF-16 surrogate pairs.
            if next == 'u'
                && let Some(unit) = hex4(&chars, i + 2)
            {
                let low = if (0xD800..0xDC00).contains(&unit)
                    && chars.get(i + 6) == Some(&'\\')
                    && chars.get(i + 7) == Some(&'u')
                {
                    hex4(&chars, i + 8).filter(|low| (0xDC00..0xE000).contains(low))
                } else {
                    None
                };
                let (code_point, consumed) = match low {
                    Some(low) => (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12),
                    // A lone surrogate never occurs in UTF-8 text: stand in U+FFFD.
                    None if (0xD800..0xE000).contains(&unit) => (0xFFFD, 6),
                    None => (unit, 6),
                };
                out.push_str(&format!("\\x{{{code_point:X}}}"));
                i += consumed;
                after_class_escape = false;
                continue;
            }
            out.push(c);
            out.push(next);
            i += 2;
            // \p{..} and \P{..} carry their braces along.
            if matches!(next, 'p' | 'P') && chars.get(i) == Some(&'{') {
                while i < chars.len() {
                    out.push(chars[i]);
                    i += 1;
                    if chars[i - 1] == '}' {
                        break;
                    }
                }
            }
            after_class_escape = in_class && matches!(next, 'w' | 'W' | 'd' | 'D' | 's' | 'S' | 'p' | 'P');
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(c);
                }
                '-' => {
                    let next_is_escape_class = chars.get(i + 1) == Some(&'\\')
                        && chars.get(i + 2).is_some_and(|n| matches!(n, 'w' | 'W' | 'd' | 'D' | 's' | 'S' | 'p' | 'P'));
                    if after_class_escape || next_is_escape_class {
                        out.push_str(r"\-");
                    } else {
                        out.push('-');
                    }
                }
                '[' => out.push_str(r"\["),
                '&' if chars.get(i + 1) == Some(&'&') => {
                    // Java class intersection has no fancy-regex spelling; `&&` stays literal
                    // only if escaped.
                    out.push_str(r"\&\&");
                    i += 1;
                }
                _ => out.push(c),
            }
            after_class_escape = false;
            i += 1;
            continue;
        }
        if c == '[' {
            in_class = true;
            out.push(c);
            i += 1;
            // `[]...]` and `[^]...]`: a leading `]` is literal in Java.
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            if chars.get(i) == Some(&']') {
                out.push_str(r"\]");
                i += 1;
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn ascii_class(escape: char) -> Option<&'static str> {
    match escape {
        'w' => Some("0-9A-Za-z_"),
        'd' => Some("0-9"),
        's' => Some(" \\t\\n\\x0B\\x0C\\r"),
        _ => None,
    }
}

fn hex4(chars: &[char], from: usize) -> Option<u32> {
    let digits: String = chars.get(from..from + 4)?.iter().collect();
    u32::from_str_radix(&digits, 16).ok()
}

fn find_sequence(chars: &[char], from: usize, sequence: [char; 2]) -> Option<usize> {
    (from..chars.len().saturating_sub(1)).find(|&i| chars[i] == sequence[0] && chars[i + 1] == sequence[1])
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_ascii_punctuation() || c == ' ' {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(pattern: &str, value: &str) -> bool {
        matches(&compile(pattern).unwrap(), value)
    }

    #[test]
    fn whole_value_semantics() {
        assert!(full("^$|arn:aws:iam::\\d{12}:role/.*", "arn:aws:iam::123456789012:role/x"));
        assert!(full("^$|arn:aws:iam::\\d{12}:role/.*", ""));
        assert!(!full("[a-z]+", "abc1"));
        assert!(full("[a-z]+", "abc"));
    }

    #[test]
    fn syntax_check_agrees_with_compile() {
        assert!(check_syntax(r"^(?!x)[\w-]{1,1024}$").is_ok());
        assert!(check_syntax(r"(unclosed").is_err());
        assert!(compile(r"(unclosed").is_err());
    }

    #[test]
    fn java_only_forms() {
        assert!(full(r"[\w-\/]+", "a-b/c"));
        assert!(full(r"^(?!.*--)[a-z-]+$", "a-b"));
        assert!(!full(r"^(?!.*--)[a-z-]+$", "a--b"));
        assert!(full(r"\Qa.b\E", "a.b"));
        assert!(!full(r"\Qa.b\E", "axb"));
        assert!(full(r"^\p{L}+$", "héllo"));
        assert!(full(r"(?i)^abc$", "ABC"));
        assert!(full(r"^(a)\1$", "aa"));
        assert!(full(r"[^]a]", "b"));
        assert!(!full(r"^\w+$", "héllo"), "Java's \\w is ASCII");
        assert!(full(r"^[\w\d\s_\.\/-:]{0,1024}$", "a/b:c 1"));
        assert!(full(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*", "ok 😀"));
    }
}
