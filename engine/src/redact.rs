//! Secrets sealed: the values that must never be shown or stored (an `x-secret` parameter, a
//! decrypted SecureString, a webhook integration's URL) are replaced by [`REDACTED`] wherever
//! they appear, in their raw form and in the escaped forms they take once they pass through
//! JSON text (`OutputPayload`, quoted error messages, logs of `json.dumps`) or a Python repr
//! (a traceback, a printed dict). Plan output, dry-run output, validation messages and the
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

    /// Adds every secret another redactor knows (a parent's, for its child execution).
    pub fn absorb(&mut self, other: &Redactor) {
        self.extend(other.raw.iter().cloned().map(Value::String));
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Whether `text` holds a secret in any of its forms.
    pub fn reveals(&self, text: &str) -> bool {
        self.needles.iter().any(|needle| text.contains(needle.as_str()))
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

/// The forms a secret takes in text: raw, inside JSON text (once and twice escaped), inside
/// a Python repr, and inside a Rust debug string (messages that quote a value with `{:?}`).
fn forms(secret: &str) -> Vec<String> {
    let once = json_escaped(secret);
    let twice = json_escaped(&once);
    let debug = format!("{secret:?}");
    let debug = debug[1..debug.len() - 1].to_owned();
    let mut forms = vec![secret.to_owned(), once, twice, python_escaped(secret), debug];
    forms.sort();
    forms.dedup();
    forms
}

/// The text between the quotes of the JSON string of `text`.
fn json_escaped(text: &str) -> String {
    let quoted = Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
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
        assert!(redactor.reveals(secret) && !redactor.reveals("pa"));
    }

    #[test]
    fn numbers_that_are_secrets_and_later_secrets() {
        let mut redactor = Redactor::new([json!(4242)]);
        assert_eq!(redactor.value(&json!({"pin": 4242, "n": 42})), json!({"pin": "********", "n": 42}));
        redactor.extend([json!("later")]);
        assert_eq!(redactor.text("4242 and later"), "******** and ********");
        let mut child = Redactor::default();
        child.absorb(&redactor);
        assert_eq!(child.text("later"), REDACTED);
    }
}
