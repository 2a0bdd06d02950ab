//! Syntax check of output selectors against the JSONPath subset of reference section 7.3:
//! `$`, `.key`, `..key`, `[n]`, `['key']`, `[?(@.k == 'v')]`, and paths without `$.`.

/// `Ok` when the selector stays inside the subset; otherwise what is outside it.
pub fn check(selector: &str) -> Result<(), String> {
    let selector = selector.trim();
    if selector.is_empty() {
        return Err("the selector is empty".into());
    }
    let mut rest = match selector.strip_prefix('$') {
        Some(rest) => rest,
        // A selector without `$.` is relative to the root: it starts with a name.
        None => {
            let end = name_end(selector);
            if end == 0 {
                return Err(format!("unexpected `{}`", first_char(selector)));
            }
            check_name(&selector[..end])?;
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
            check_name(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            rest = bracket(after)?;
        } else {
            return Err(format!("unexpected `{}`", first_char(rest)));
        }
    }
    Ok(())
}

fn first_char(text: &str) -> char {
    text.chars().next().unwrap_or(' ')
}

fn name_end(text: &str) -> usize {
    text.find(['.', '[']).unwrap_or(text.len())
}

fn check_name(name: &str) -> Result<(), String> {
    if name == "*" {
        return Err("wildcards are not supported".into());
    }
    if name.ends_with("()") {
        return Err(format!("functions such as `{name}` are not supported"));
    }
    if name.contains(']') {
        return Err("unbalanced `]`".into());
    }
    Ok(())
}

/// Parses one bracket segment (after `[`) and returns what follows its `]`.
fn bracket(text: &str) -> Result<&str, String> {
    if let Some(after) = text.strip_prefix("?(") {
        let close = after.find(")]").ok_or("a filter `[?(` must end with `)]`")?;
        let filter = &after[..close];
        if !filter.contains('@') {
            return Err("a filter must test the current item `@`".into());
        }
        return Ok(&after[close + 2..]);
    }
    for quote in ['\'', '"'] {
        if let Some(after) = text.strip_prefix(quote) {
            let close = after.find(quote).ok_or("unterminated quoted key")?;
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
    Ok(&text[close + 1..])
}

#[cfg(test)]
mod tests {
    use super::check;

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
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn outside_the_subset() {
        for bad in ["$.a[*]", "$.a.*", "$.a[1:2]", "$.a[-1]", "$.a.length()", "", "$.a[", "$x", "$.a[?(x)]"] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
