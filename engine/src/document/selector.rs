//! Output selectors (reference section 7.3): the JSONPath subset AWS runbooks use — `$`,
//! `.key`, `..key`, `[n]`, `['key']`, `[?(@.k == 'v')]`, and paths without `$.` — parsed once
//! here for validation, step outputs and the property checks of the API actions. A selector
//! is translated to RFC 9535 JSONPath, which `serde_json_path` evaluates.

/// A selector inside the subset, as RFC 9535 JSONPath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub query: String,
    /// Whether it names at most one place: a deep scan or a filter yields a list of matches.
    pub singular: bool,
}

/// Parses a selector; the error says what lies outside the subset.
///
/// Every key becomes a quoted bracket (`['key']`) because the RFC's dotted names exclude
/// characters that AWS keys and script payloads use (`-`, spaces).
pub fn parse(selector: &str) -> Result<Selector, String> {
    let selector = selector.trim();
    if selector.is_empty() {
        return Err("the selector is empty".into());
    }
    // Each key gains four characters (`['` and `']`).
    let mut query = String::with_capacity(2 * selector.len() + 8);
    query.push('$');
    let mut singular = true;
    let mut rest = match selector.strip_prefix('$') {
        Some(rest) => rest,
        // A selector without `$.` is relative to the root: it starts with a name.
        None => {
            let end = name_end(selector);
            if end == 0 {
                return Err(format!("unexpected `{}`", first_char(selector)));
            }
            push_key(&mut query, &selector[..end])?;
            &selector[end..]
        }
    };
    while !rest.is_empty() {
        if let Some((dots, after)) =
            rest.strip_prefix("..").map(|a| ("..", a)).or_else(|| rest.strip_prefix('.').map(|a| (".", a)))
        {
            let end = name_end(after);
            if end == 0 {
                return Err(format!("`{dots}` must be followed by a key"));
            }
            if dots == ".." {
                query.push_str("..");
                singular = false;
            }
            push_key(&mut query, &after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("[?(") {
            // The RFC allows a parenthesised logical expression, so the Jayway filter is kept
            // as written and serde_json_path judges what is inside it.
            let close = after.find(")]").ok_or("a filter `[?(` must end with `)]`")?;
            let filter = &after[..close];
            if !filter.contains('@') {
                return Err("a filter must test the current item `@`".into());
            }
            query.push_str(&format!("[?({filter})]"));
            singular = false;
            rest = &after[close + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            rest = bracket(&mut query, after)?;
        } else {
            return Err(format!("unexpected `{}`", first_char(rest)));
        }
    }
    Ok(Selector { query, singular })
}

fn first_char(text: &str) -> char {
    text.chars().next().unwrap_or(' ')
}

fn name_end(text: &str) -> usize {
    text.find(['.', '[']).unwrap_or(text.len())
}

/// Appends a key as `['key']`.
fn push_key(query: &mut String, key: &str) -> Result<(), String> {
    if key == "*" {
        return Err("wildcards are not supported".into());
    }
    if key.ends_with("()") {
        return Err(format!("functions such as `{key}` are not supported"));
    }
    if key.contains(']') {
        return Err("unbalanced `]`".into());
    }
    query.push_str("['");
    // Most keys need no escape: they are copied whole.
    match key.bytes().any(|b| b == b'\'' || b == b'\\' || b < b' ') {
        false => query.push_str(key),
        true => {
            for character in key.chars() {
                match character {
                    '\'' | '\\' => query.extend(['\\', character]),
                    control if control < ' ' => query.push_str(&format!("\\u{:04x}", u32::from(control))),
                    other => query.push(other),
                }
            }
        }
    }
    query.push_str("']");
    Ok(())
}

/// One bracket segment (the text after `[`: a quoted key or an index); returns what follows.
fn bracket<'a>(query: &mut String, text: &'a str) -> Result<&'a str, String> {
    for quote in ['\'', '"'] {
        if let Some(after) = text.strip_prefix(quote) {
            let close = after.find(quote).ok_or("unterminated quoted key")?;
            push_key(query, &after[..close])?;
            return after[close + 1..].strip_prefix(']').ok_or_else(|| "expected `]` after a quoted key".into());
        }
    }
    let close = text.find(']').ok_or("unterminated `[`")?;
    let index = text[..close].trim();
    if index == "*" {
        return Err("wildcards are not supported".into());
    }
    if index.contains(':') {
        return Err("slices are not supported".into());
    }
    if index.starts_with('-') {
        return Err("negative indexes are not supported".into());
    }
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`[{index}]` is not an index"));
    }
    query.push_str(&format!("[{index}]"));
    Ok(&text[close + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subset() {
        for ok in [
            "$",
            "$.Payload",
            "$.Reservations[0].Instances[0].MetadataOptions.HttpTokens",
            "$..DBInstanceStatus",
            "$.NatGateways[0]['VpcId']",
            "$.Stacks[0].Outputs[?(@.OutputKey == 'ProbingEC2InstanceId')].OutputValue",
            "$.Stacks[0].Outputs[?(@.OutputKey=='X')]",
            "SnapshotId",
            "InstanceIds[0]",
            "$.Payload.my key",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(parse("$.a['b c'][0]"), Ok(Selector { query: "$['a']['b c'][0]".into(), singular: true }));
        assert_eq!(parse("x..y"), Ok(Selector { query: "$['x']..['y']".into(), singular: false }));
        // Quotes, backslashes and control characters in a key are escaped in the query.
        let escaped = parse("$[\"it's\"]['a\\b']['t\tab']").map(|selector| selector.query);
        assert_eq!(escaped.as_deref(), Ok("$['it\\'s']['a\\\\b']['t\\u0009ab']"));
    }

    #[test]
    fn outside_the_subset() {
        for (bad, reason) in [
            ("$.a[*]", "wildcards are not supported"),
            ("$.a.*", "wildcards are not supported"),
            ("$.a[1:2]", "slices are not supported"),
            ("$.a[-1]", "negative indexes are not supported"),
            ("$.a.length()", "functions such as `length()` are not supported"),
            ("", "the selector is empty"),
            ("$.a[", "unterminated `[`"),
            ("$x", "unexpected `x`"),
            ("$..", "`..` must be followed by a key"),
            ("$.a[?(x)]", "a filter must test the current item `@`"),
        ] {
            assert_eq!(parse(bad), Err(reason.to_owned()), "{bad}");
        }
    }
}
