//! Step and document outputs at run time: selectors applied to an action's output object and
//! the selected values coerced to the declared type (reference sections 5.6, 7.3 and 7.4).

use serde_json::{Map, Value};

use super::model::{DocumentOutput, Shape, StepOutput, lenient_bool};
use super::selector;

/// What a document output reports when its step output has no value (reference section 1).
pub const NO_OUTPUT_TEXT: &str = "No output available yet because the step is not successfully executed";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("selector `{selector}` is not supported: {reason}")]
    Unsupported { selector: String, reason: String },
    #[error("output `{name}` (`{selector}`) is {found}, not a valid {}", .shape.name())]
    Coerce { name: String, selector: String, found: String, shape: Shape },
}

/// Applies a selector to an action's output object. `Ok(None)` when it matches nothing.
///
/// A deep scan or a filter yields a list of every match (Jayway does the same); any other
/// selector names one place in the object and yields the value found there.
pub fn select(selector: &str, root: &Value) -> Result<Option<Value>, Error> {
    let (path, singular) = compiled(selector)?;
    let nodes = path.query(root).all();
    if nodes.is_empty() {
        return Ok(None);
    }
    if singular {
        return Ok(nodes.into_iter().next().cloned());
    }
    Ok(Some(Value::Array(nodes.into_iter().cloned().collect())))
}

/// A selector parsed once per thread: the same few selectors are applied on every visit of
/// their steps, and `runbook test` visits them thousands of times.
fn compiled(selector: &str) -> Result<(std::rc::Rc<serde_json_path::JsonPath>, bool), Error> {
    type Compiled = (std::rc::Rc<serde_json_path::JsonPath>, bool);
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Compiled>> = Default::default();
    }
    if let Some(found) = CACHE.with_borrow(|cache| cache.get(selector).cloned()) {
        return Ok(found);
    }
    let unsupported = |reason: String| Error::Unsupported { selector: selector.to_owned(), reason };
    let parsed = selector::parse(selector).map_err(unsupported)?;
    let path =
        serde_json_path::JsonPath::parse(&parsed.query).map_err(|error| unsupported(error.message().to_owned()))?;
    let compiled = (std::rc::Rc::new(path), parsed.singular);
    CACHE.with_borrow_mut(|cache| {
        // Bounded: a process that sees ever new selectors starts over rather than grow.
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(selector.to_owned(), compiled.clone());
    });
    Ok(compiled)
}

/// Coerces a selected value to the declared type (7.4); a missing type follows the String rules,
/// as the reference advises. The error says what was found, for a message about the output.
///
/// A list of exactly one element stands for that element when a single value is declared: a
/// filter always yields a list, even for the one match its author meant (three AWS String
/// outputs rely on this), and the same holds for the other single-value types. The reverse
/// also holds: a single value where a list is declared becomes a one-element list, because a
/// key or index selector yields one node; failing the step over it would gain nothing.
pub fn coerce(value: Value, shape: Option<Shape>) -> Result<Value, String> {
    let shape = shape.unwrap_or(Shape::String);
    let value = match value {
        Value::Array(mut items) if items.len() == 1 && !matches!(shape, Shape::StringList | Shape::MapList) => {
            items.pop().unwrap_or(Value::Null)
        }
        other => other,
    };
    match (shape, value) {
        (Shape::String, Value::String(text)) => Ok(Value::String(text)),
        (Shape::String, other) => Ok(Value::String(text_form(&other))),
        (Shape::Integer, Value::Number(number)) if number.is_i64() || number.is_u64() => Ok(Value::Number(number)),
        (Shape::Integer, Value::Number(number)) => match number.as_f64() {
            // The bounds keep the cast exact; a float this large has no fractional part anyway.
            Some(float) if float.fract() == 0.0 && float.abs() < 9.0e15 => Ok(Value::from(float as i64)),
            _ => Err(describe(&Value::Number(number))),
        },
        (Shape::Integer, Value::String(text)) => {
            // `parse` alone would also take a leading `+`, which is not "a string of digits".
            match text.parse::<i64>() {
                Ok(integer) if !text.starts_with('+') => Ok(Value::from(integer)),
                _ => Err(describe(&Value::String(text))),
            }
        }
        (Shape::Boolean, value) if lenient_bool(&value).is_some() => {
            Ok(Value::Bool(lenient_bool(&value) == Some(true)))
        }
        (Shape::StringList, Value::Array(items)) => match items.iter().find(|item| !is_scalar(item)) {
            Some(item) => Err(format!("{}, one of them {}", describe_list(&items), describe(item))),
            None => Ok(Value::Array(items.iter().map(|item| Value::String(text_form(item))).collect())),
        },
        (Shape::StringList, scalar) if is_scalar(&scalar) => Ok(Value::Array(vec![Value::String(text_form(&scalar))])),
        (Shape::StringMap, Value::Object(object)) => Ok(Value::Object(object)),
        (Shape::MapList, Value::Array(items)) => match items.iter().find(|item| !item.is_object()) {
            Some(item) => Err(format!("{}, one of them {}", describe_list(&items), describe(item))),
            None => Ok(Value::Array(items)),
        },
        (Shape::MapList, Value::Object(object)) => Ok(Value::Array(vec![Value::Object(object)])),
        (_, other) => Err(describe(&other)),
    }
}

/// Null counts as a value here so that a list holding it still reads as a list of text.
fn is_scalar(value: &Value) -> bool {
    !value.is_array() && !value.is_object()
}

/// Strings as they are; anything else as compact JSON (`3`, `true`, `{"a":1}`).
fn text_form(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What a value is, for messages: `the text "abc"`, `a list of 3 items`.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) if text.chars().count() > 60 => {
            format!("the text {:?}...", text.chars().take(60).collect::<String>())
        }
        Value::String(text) => format!("the text {text:?}"),
        Value::Array(items) => describe_list(items),
        Value::Object(object) => format!("an object with {}", counted(object.len(), "key")),
    }
}

fn describe_list(items: &[Value]) -> String {
    format!("a list of {}", counted(items.len(), "item"))
}

fn counted(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// Every declared output of a step from the action's output object. An output whose selector
/// matches nothing, or selects null, is absent from the map and the step does not fail (7.4);
/// a value that cannot be coerced is an error, and the step fails.
pub fn step_outputs(declared: &[StepOutput], root: &Value) -> Result<Map<String, Value>, Error> {
    let mut values = Map::new();
    for output in declared {
        // A null carries no value: boto3 responses omit absent members, so null only comes from
        // scripts, and reporting it as missing beats inventing the text `null`.
        let Some(selected) = select(&output.selector, root)?.filter(|value| !value.is_null()) else {
            continue;
        };
        let value = coerce(selected, output.kind).map_err(|found| Error::Coerce {
            name: output.name.clone(),
            selector: output.selector.clone(),
            found,
            shape: output.kind.unwrap_or(Shape::String),
        })?;
        values.insert(output.name.clone(), value);
    }
    Ok(values)
}

/// Document outputs (5.6), each `step.Output` entry reported as a list of strings: a list value
/// item by item, any other value as one item; strings as they are, anything else as compact
/// JSON. An output without a value reports [`NO_OUTPUT_TEXT`]. `lookup(step, output)` returns
/// the value of a step output if it has one.
pub fn document_outputs(
    outputs: &[DocumentOutput],
    lookup: impl Fn(&str, &str) -> Option<Value>,
) -> Map<String, Value> {
    let mut report = Map::new();
    for output in outputs {
        let value = output.text.split_once('.').and_then(|(step_name, output_name)| lookup(step_name, output_name));
        let texts = match value {
            None => vec![NO_OUTPUT_TEXT.to_owned()],
            Some(Value::Array(items)) => items.iter().map(text_form).collect(),
            Some(other) => vec![text_form(&other)],
        };
        report.insert(output.text.clone(), Value::Array(texts.into_iter().map(Value::String).collect()));
    }
    report
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stack() -> Value {
        json!({"Stacks": [{"Outputs": [
            {"OutputKey": "ProbingEC2InstanceId", "OutputValue": "i-1"},
            {"OutputKey": "Other", "OutputValue": "x"},
        ]}]})
    }

    fn declared(name: &str, selector: &str, kind: Option<Shape>) -> StepOutput {
        StepOutput { name: name.into(), selector: selector.into(), kind, pointer: String::new() }
    }

    #[test]
    fn singular_selectors() {
        let root = json!({"Payload": {"x": 3, "my key": "k", "content-type": "json"}, "InstanceIds": ["i-1", "i-2"],
            "NatGateways": [{"VpcId": "vpc-1"}]});
        assert_eq!(select("$.Payload.x", &root), Ok(Some(json!(3))));
        assert_eq!(select("$.Payload.my key", &root), Ok(Some(json!("k"))));
        assert_eq!(select("$.Payload.content-type", &root), Ok(Some(json!("json"))));
        assert_eq!(select("$", &root), Ok(Some(root.clone())));
        assert_eq!(select("InstanceIds[0]", &root), Ok(Some(json!("i-1"))));
        assert_eq!(select("$.InstanceIds", &root), Ok(Some(json!(["i-1", "i-2"]))));
        assert_eq!(select("$.NatGateways[0]['VpcId']", &root), Ok(Some(json!("vpc-1"))));
        assert_eq!(select("$.NatGateways[0][\"VpcId\"]", &root), Ok(Some(json!("vpc-1"))));
        assert_eq!(select("$.Payload.missing", &root), Ok(None));
        assert_eq!(select("$.InstanceIds[5]", &root), Ok(None));
    }

    #[test]
    fn filters_yield_lists() {
        let root = stack();
        for selector in [
            "$.Stacks[0].Outputs[?(@.OutputKey == 'ProbingEC2InstanceId')].OutputValue",
            "$.Stacks[0].Outputs[?(@.OutputKey=='ProbingEC2InstanceId')].OutputValue",
            "$.Stacks[0].Outputs[?(@['OutputKey'] == \"ProbingEC2InstanceId\")].OutputValue",
        ] {
            assert_eq!(select(selector, &root), Ok(Some(json!(["i-1"]))), "{selector}");
        }
        assert_eq!(
            select("$.Stacks[0].Outputs[?(@.OutputKey != 'None')].OutputValue", &root),
            Ok(Some(json!(["i-1", "x"])))
        );
        assert_eq!(select("$.Stacks[0].Outputs[?(@.OutputKey == 'None')]", &root), Ok(None));
    }

    #[test]
    fn deep_scans_yield_lists() {
        let root = json!({"DBInstances": [{"DBInstanceStatus": "available"}, {"DBInstanceStatus": "stopped"}]});
        assert_eq!(select("$.DBInstances..DBInstanceStatus", &root), Ok(Some(json!(["available", "stopped"]))));
        assert_eq!(select("$..DBInstanceStatus", &json!({"a": {"DBInstanceStatus": "up"}})), Ok(Some(json!(["up"]))));
        assert_eq!(select("$..Missing", &root), Ok(None));
    }

    #[test]
    fn unsupported_selectors() {
        for (selector, reason) in [
            ("$.a[*]", "wildcards are not supported"),
            ("$.a.*", "wildcards are not supported"),
            ("$.a[1:2]", "slices are not supported"),
            ("$.a[-1]", "negative indexes are not supported"),
            ("", "the selector is empty"),
            ("$x", "unexpected `x`"),
        ] {
            let expected = Error::Unsupported { selector: selector.into(), reason: reason.into() };
            assert_eq!(select(selector, &json!({})), Err(expected));
        }
        assert!(matches!(select("$.a[?(x)]", &json!({})), Err(Error::Unsupported { .. })));
    }

    #[test]
    fn coerce_to_string() {
        let string = Some(Shape::String);
        assert_eq!(coerce(json!("a"), string), Ok(json!("a")));
        assert_eq!(coerce(json!(["a"]), string), Ok(json!("a")));
        assert_eq!(coerce(json!([3]), string), Ok(json!("3")));
        assert_eq!(coerce(json!(3), string), Ok(json!("3")));
        assert_eq!(coerce(json!(true), None), Ok(json!("true")));
        assert_eq!(coerce(json!({"a": 1}), string), Ok(json!("{\"a\":1}")));
        assert_eq!(coerce(json!(["a", "b"]), string), Ok(json!("[\"a\",\"b\"]")));
    }

    #[test]
    fn coerce_to_integer_and_boolean() {
        let integer = Some(Shape::Integer);
        assert_eq!(coerce(json!(3), integer), Ok(json!(3)));
        assert_eq!(coerce(json!("-42"), integer), Ok(json!(-42)));
        assert_eq!(coerce(json!(4.0), integer), Ok(json!(4)));
        assert_eq!(coerce(json!(["7"]), integer), Ok(json!(7)));
        assert_eq!(coerce(json!(4.5), integer), Err("the number 4.5".into()));
        assert_eq!(coerce(json!("abc"), integer), Err("the text \"abc\"".into()));
        assert_eq!(coerce(json!("-"), integer), Err("the text \"-\"".into()));
        assert_eq!(coerce(json!(" 3"), integer), Err("the text \" 3\"".into()));
        assert_eq!(coerce(json!([1, 2, 3]), integer), Err("a list of 3 items".into()));
        let boolean = Some(Shape::Boolean);
        assert_eq!(coerce(json!(false), boolean), Ok(json!(false)));
        assert_eq!(coerce(json!("True"), boolean), Ok(json!(true)));
        assert_eq!(coerce(json!("FALSE"), boolean), Ok(json!(false)));
        assert_eq!(coerce(json!("yes"), boolean), Err("the text \"yes\"".into()));
        assert_eq!(coerce(json!(1), boolean), Err("the number 1".into()));
    }

    #[test]
    fn coerce_to_lists_and_maps() {
        let string_list = Some(Shape::StringList);
        assert_eq!(coerce(json!(["a", 1, true]), string_list), Ok(json!(["a", "1", "true"])));
        assert_eq!(coerce(json!("a"), string_list), Ok(json!(["a"])));
        assert_eq!(
            coerce(json!(["a", {"b": 1}]), string_list),
            Err("a list of 2 items, one of them an object with 1 key".into())
        );
        assert_eq!(coerce(json!({}), string_list), Err("an object with 0 keys".into()));
        assert_eq!(coerce(json!({"a": 1}), Some(Shape::StringMap)), Ok(json!({"a": 1})));
        assert_eq!(coerce(json!([{"a": 1}]), Some(Shape::StringMap)), Ok(json!({"a": 1})));
        assert_eq!(coerce(json!("a"), Some(Shape::StringMap)), Err("the text \"a\"".into()));
        let map_list = Some(Shape::MapList);
        assert_eq!(coerce(json!([{"a": 1}, {}]), map_list), Ok(json!([{"a": 1}, {}])));
        assert_eq!(coerce(json!({"a": 1}), map_list), Ok(json!([{"a": 1}])));
        assert_eq!(coerce(json!([{}, "x"]), map_list), Err("a list of 2 items, one of them the text \"x\"".into()));
        assert_eq!(coerce(json!(null), map_list), Err("null".into()));
    }

    #[test]
    fn step_outputs_leave_unmatched_absent_and_fail_on_bad_values() {
        let root = json!({"Payload": {"count": "12", "gone": null}, "Stacks": stack()["Stacks"]});
        let outputs = [
            declared("Count", "$.Payload.count", Some(Shape::Integer)),
            declared("Missing", "$.Payload.nothing", Some(Shape::String)),
            declared("Gone", "$.Payload.gone", None),
            declared("Probe", "$.Stacks[0].Outputs[?(@.OutputKey == 'ProbingEC2InstanceId')].OutputValue", None),
        ];
        let expected = json!({"Count": 12, "Probe": "i-1"});
        assert_eq!(step_outputs(&outputs, &root).map(Value::Object), Ok(expected));
        let bad = [declared("Flag", "Payload.count", Some(Shape::Boolean))];
        let error = step_outputs(&bad, &root).unwrap_err();
        assert_eq!(error.to_string(), "output `Flag` (`Payload.count`) is the text \"12\", not a valid Boolean");
    }

    #[test]
    fn document_outputs_are_lists_of_strings() {
        let names = ["a.Text", "a.Ids", "a.Map", "a.Count", "b.Missing"]
            .map(|text| DocumentOutput { text: text.into(), pointer: String::new() });
        let lookup = |step: &str, output: &str| match (step, output) {
            ("a", "Text") => Some(json!("hello")),
            ("a", "Ids") => Some(json!(["i-1", "i-2"])),
            ("a", "Map") => Some(json!({"k": [1, true]})),
            ("a", "Count") => Some(json!(3)),
            _ => None,
        };
        let expected = json!({
            "a.Text": ["hello"], "a.Ids": ["i-1", "i-2"], "a.Map": ["{\"k\":[1,true]}"], "a.Count": ["3"],
            "b.Missing": ["No output available yet because the step is not successfully executed"],
        });
        assert_eq!(Value::Object(document_outputs(&names, lookup)), expected);
    }
}
