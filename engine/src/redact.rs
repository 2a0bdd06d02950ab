//! Secrets sealed: the values that must never be shown or stored (an `x-secret` parameter, a
//! decrypted SecureString, a webhook integration's URL) are replaced by [`REDACTED`] wherever
//! they appear, in their raw form and in the escaped forms they take once they pass through
//! JSON text (`OutputPayload`, quoted error messages, logs of `json.dumps`, ASCII-escaped or
//! not), a Python repr (a traceback, a printed dict) or a Rust debug string, and those forms
//! inside JSON once more. A quote cut short before an ellipsis (`"abc...`) that ends in the
//! start of a secret is redacted too. Plan output, dry-run output, validation messages and the
//! timeline all redact through this one type.

use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "********";

/// Replaces known secrets in text and values. Cheap to clone; empty when a run has none.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first, so a secret that contains another is
    /// replaced whole.
    needles: Vec<String>,
    /// The raw secrets, to tell whether a value is one (numbers are matched whole).
    raw: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = Value>) -> Redactor {
        let mut redactor = Redactor::default();
        redactor.extend(secrets);
        redactor
    }

    /// Adds secrets learnt on the way (a decrypted value in an API response).
    pub fn extend(&mut self, secrets: impl IntoIterator<Item = Value>) {
        let mut texts = Vec::new();
        for secret in secrets {
            collect_texts(&secret, &mut texts);
        }
        texts.retain(|text| !text.is_empty() && text != REDACTED && !self.raw.contains(text));
        if texts.is_empty() {
            return;
        }
        for text in &texts {
            self.needles.extend(forms(text));
        }
        self.raw.extend(texts);
        self.raw.sort();
        self.raw.dedup();
        self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.needles.dedup();
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        self.text_in_place(&mut out);
        out
    }

    /// Redacts `text` where it stands; returns whether anything was replaced.
    pub fn text_in_place(&self, text: &mut String) -> bool {
        let mut changed = false;
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                *text = text.replace(needle.as_str(), REDACTED);
                changed = true;
            }
        }
        if text.contains("...") || text.contains('…') {
            changed |= self.cut_short(text);
        }
        changed
    }

    /// Messages cut long values short (`the string "abcdef..."`): a cut that ends inside a
    /// secret leaves its start, which no whole form matches. Replaces the start of any form
    /// (of at least [`SHORTEST_CUT`] characters) that stands right before an ellipsis.
    fn cut_short(&self, text: &mut String) -> bool {
        let mut changed = false;
        for ellipsis in ["...", "…"] {
            let mut from = 0;
            while let Some(found) = text[from..].find(ellipsis) {
                let end = from + found;
                let cut = self.needles.iter().find_map(|needle| {
                    let starts: Vec<usize> = needle.char_indices().map(|(i, _)| i).skip(SHORTEST_CUT).collect();
                    starts.into_iter().rev().find(|&length| text[..end].ends_with(&needle[..length]))
                });
                match cut {
                    Some(length) => {
                        text.replace_range(end - length..end, REDACTED);
                        changed = true;
                        from = end - length + REDACTED.len() + ellipsis.len();
                    }
                    None => from = end + ellipsis.len(),
                }
            }
        }
        changed
    }

    pub fn value(&self, value: &Value) -> Value {
        let mut out = value.clone();
        self.value_in_place(&mut out);
        out
    }

    /// Redacts every string (and every number that is a secret) inside `value` where it
    /// stands; returns whether anything was replaced.
    pub fn value_in_place(&self, value: &mut Value) -> bool {
        if self.is_empty() {
            return false;
        }
        match value {
            Value::String(text) => self.text_in_place(text),
            Value::Array(items) => items.iter_mut().fold(false, |changed, item| self.value_in_place(item) | changed),
            Value::Object(object) => {
                object.values_mut().fold(false, |changed, item| self.value_in_place(item) | changed)
            }
            Value::Number(number) if self.raw.iter().any(|secret| *secret == number.to_string()) => {
                *value = Value::String(REDACTED.to_owned());
                true
            }
            _ => false,
        }
    }
}

/// The shortest start of a secret that [`Redactor::cut_short`] takes for the secret.
const SHORTEST_CUT: usize = 6;

/// The forms a secret takes in text: raw; inside JSON text (serde's and Python's
/// ASCII-escaped `json.dumps`); inside a Python repr; inside a Rust debug string (messages
/// that quote a value with `{:?}`); and each of those inside JSON text once more (a payload
/// holding one, as `OutputPayload` does).
fn forms(secret: &str) -> Vec<String> {
    let debug = format!("{secret:?}");
    let first = [
        secret.to_owned(),
        json_escaped(secret),
        ascii_escaped(&json_escaped(secret)),
        python_escaped(secret),
        debug[1..debug.len() - 1].to_owned(),
    ];
    let mut forms: Vec<String> = first.iter().flat_map(|form| [form.clone(), json_escaped(form)]).collect();
    forms.sort();
    forms.dedup();
    forms
}

/// The text between the quotes of the JSON string of `text`.
fn json_escaped(text: &str) -> String {
    let quoted = Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// JSON text with every non-ASCII character as `\uXXXX` (surrogate pairs above the BMP), as
/// Python's `json.dumps` writes it by default.
fn ascii_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_ascii() {
            out.push(character);
        } else {
            let mut units = [0u16; 2];
            for unit in character.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The text between the quotes of Python's `repr` of `text`: single quotes unless the text
/// holds one and no double quote.
fn python_escaped(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect_texts(item, out)),
        Value::Object(object) => object.values().for_each(|item| collect_texts(item, out)),
        Value::Null => {}
        other => out.push(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_replaced_everywhere() {
        let redactor = Redactor::new([json!("hunter2"), json!(["tok-1", ""])]);
        let value = json!({"cmd": "login -p hunter2", "list": ["tok-1", "ok"], "n": 3});
        assert_eq!(redactor.value(&value), json!({"cmd": "login -p ********", "list": ["********", "ok"], "n": 3}));
    }

    #[test]
    fn escaped_forms_are_replaced_too() {
        let secret = r#"pa"ss\wo'rd"#;
        let redactor = Redactor::new([json!(secret)]);
        let payload = json!({ "Payload": secret }).to_string();
        assert_eq!(redactor.text(&payload), r#"{"Payload":"********"}"#);
        let nested = json!({ "OutputPayload": payload }).to_string();
        assert!(!redactor.text(&nested).contains("ss"), "{}", redactor.text(&nested));
        // Python: repr('pa"ss\\wo\'rd') is 'pa"ss\\wo\'rd'.
        assert_eq!(redactor.text(r#"KeyError: 'pa"ss\\wo\'rd'"#), "KeyError: '********'");
        // The repr inside JSON text (a payload returning `repr(events)`).
        let repr_in_json = json!(format!("{{'t': '{}'}}", secret.replace('\\', "\\\\").replace('\'', "\\'")));
        assert!(!redactor.text(&repr_in_json.to_string()).contains("ss"));
    }

    #[test]
    fn non_ascii_and_cut_quotes() {
        let redactor = Redactor::new([json!("Pässwörd-123456")]);
        // Python's json.dumps escapes non-ASCII characters by default.
        assert_eq!(redactor.text(r#"{"p": "P\u00e4ssw\u00f6rd-123456"}"#), r#"{"p": "********"}"#);
        // A message cut a quoted value short inside the secret.
        assert_eq!(redactor.text("found the text \"x-Pässwö..."), "found the text \"x-********...");
        assert_eq!(redactor.text("outputs {\"a\":\"Pässwö…"), "outputs {\"a\":\"********…");
        // Too short a start to tell from ordinary text.
        assert_eq!(redactor.text("see Päss..."), "see Päss...");
    }

    #[test]
    fn numbers_that_are_secrets_and_later_secrets() {
        let mut redactor = Redactor::new([json!(4242)]);
        assert_eq!(redactor.value(&json!({"pin": 4242, "n": 42})), json!({"pin": "********", "n": 42}));
        redactor.extend([json!("later")]);
        assert_eq!(redactor.text("4242 and later"), "******** and ********");
    }
}
