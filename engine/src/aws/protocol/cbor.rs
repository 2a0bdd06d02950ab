//! Smithy RPC v2 CBOR (`smithy-rpc-v2-cbor`): `POST /service/{targetPrefix}/operation/{name}`
//! with the input structure as one CBOR map, as botocore's `RpcV2CBORSerializer` writes it and
//! `RpcV2CBORParser` reads the answer. Integers take their shortest form, `float` members four
//! bytes and `double` members eight, timestamps tag 1 over epoch seconds (an integer, or a
//! double when there is a fraction), blobs byte strings.

use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};
use serde_json::{Map, Value};

use super::shapes::{self, Ref};
use super::{Request, Response, ServiceError};
use crate::aws::model::{Kind, Model, Operation};

const CONTENT_TYPE: &str = "application/cbor";
/// CBOR's tag for a date and time as epoch seconds.
const EPOCH: u64 = 1;
/// Deeper nesting than any model has: a hostile body is refused before the stack runs out.
const MAX_DEPTH: usize = 128;

pub fn serialize(model: &Model, operation: &Operation, params: &Map<String, Value>) -> Result<Request, String> {
    let metadata = &model.metadata;
    let prefix = metadata.target_prefix.as_deref().ok_or("the service model has no targetPrefix")?;
    let mut body = Encoder::new(Vec::new());
    if let Some(input) = shapes::input(model, operation) {
        structure(&mut body, model, input, params)?;
    }
    let body = body.into_writer();
    let mut headers = vec![
        ("smithy-protocol".to_string(), "rpc-v2-cbor".to_string()),
        ("Accept".to_string(), CONTENT_TYPE.to_string()),
    ];
    if metadata.aws_query_compatible {
        headers.push(("x-amzn-query-mode".into(), "true".into()));
    }
    if !body.is_empty() {
        headers.push(("Content-Type".into(), CONTENT_TYPE.into()));
    }
    Ok(Request {
        method: "POST".into(),
        path_and_query: format!("/service/{prefix}/operation/{}", operation.name),
        headers,
        body,
        host_prefix: shapes::host_prefix(model, operation, params)?,
    })
}

type Writer = Encoder<Vec<u8>>;

/// Writing to a `Vec` cannot fail; the `Result`s of `Encoder` are only its signature.
fn written<T, E>(result: Result<T, E>) {
    let _ = result;
}

fn structure(out: &mut Writer, model: &Model, shape: Ref, params: &Map<String, Value>) -> Result<(), String> {
    shapes::check_members(shape.shape, params)?;
    let present: Vec<_> =
        shapes::present(model, shape.shape, params).filter(|(_, _, value)| !value.is_null()).collect();
    written(out.map(present.len() as u64));
    for (name, member, value) in present {
        written(out.str(member.name().unwrap_or(name)));
        to_wire(out, model, member, value)?;
    }
    Ok(())
}

/// A parameter as its CBOR data item, typed by its shape.
fn to_wire(out: &mut Writer, model: &Model, shape: Ref, value: &Value) -> Result<(), String> {
    let what = &shape.member.shape;
    match shape.kind() {
        _ if value.is_null() => written(out.null()),
        Kind::Structure if shape.shape.document => document(out, value),
        Kind::Structure => structure(out, model, shape, shapes::object(value, what)?)?,
        Kind::List => {
            let element = shape.element(model)?;
            let items = shapes::array(value, what)?;
            written(out.array(items.len() as u64));
            for item in items {
                to_wire(out, model, element, item)?;
            }
        }
        Kind::Map => {
            let (_, value_shape) = shape.entry(model)?;
            let entries = shapes::object(value, what)?;
            written(out.map(entries.len() as u64));
            for (key, item) in entries {
                written(out.str(key));
                to_wire(out, model, value_shape, item)?;
            }
        }
        Kind::Timestamp => {
            written(out.tag(Tag::new(EPOCH)));
            match shapes::format_timestamp(value, "unixtimestamp")? {
                Value::Number(seconds) => number(out, &seconds),
                other => return Err(format!("timestamp {other} for {what}")),
            }
        }
        Kind::Blob => written(out.bytes(shapes::blob_bytes(value, what)?)),
        Kind::Float => {
            let number = number_of(value, what)?;
            let single = number as f32;
            if single.is_infinite() {
                return Err(format!("{number} is too large for {what}, a 32-bit float"));
            }
            written(out.f32(single));
        }
        Kind::Double => written(out.f64(number_of(value, what)?)),
        Kind::Boolean => written(out.bool(value.as_bool().ok_or_else(|| format!("expected a boolean for {what}"))?)),
        Kind::Integer | Kind::Long => match value {
            Value::Number(count) if !count.is_f64() => number(out, count),
            _ => return Err(format!("expected an integer for {what}")),
        },
        _ => written(out.str(value.as_str().ok_or_else(|| format!("expected text for {what}"))?)),
    }
    Ok(())
}

fn number_of(value: &Value, what: &str) -> Result<f64, String> {
    value.as_f64().ok_or_else(|| format!("expected a number for {what}"))
}

/// An integer in its shortest form, any other number as a double.
fn number(out: &mut Writer, number: &serde_json::Number) {
    if let Some(whole) = number.as_i64() {
        written(out.i64(whole));
    } else if let Some(whole) = number.as_u64() {
        written(out.u64(whole));
    } else {
        written(out.f64(number.as_f64().unwrap_or_default()));
    }
}

/// A document member: its JSON as CBOR, numbers as integers or doubles.
fn document(out: &mut Writer, value: &Value) {
    match value {
        Value::Null => written(out.null()),
        Value::Bool(flag) => written(out.bool(*flag)),
        Value::Number(count) => number(out, count),
        Value::String(text) => written(out.str(text)),
        Value::Array(items) => {
            written(out.array(items.len() as u64));
            items.iter().for_each(|item| document(out, item));
        }
        Value::Object(entries) => {
            written(out.map(entries.len() as u64));
            for (key, item) in entries {
                written(out.str(key));
                document(out, item);
            }
        }
    }
}

pub fn parse(model: &Model, operation: &Operation, response: &Response) -> Result<Value, ServiceError> {
    if response.status >= 300 {
        return Err(error(response));
    }
    // Without an output shape botocore gives an empty result, without the request id.
    let Some(output) = shapes::output(model, operation) else {
        return Ok(Value::Object(Map::new()));
    };
    let parsed = {
        let body = if response.body.is_empty() {
            Value::Object(Map::new())
        } else {
            decode(&response.body).map_err(|problem| shapes::invalid_response(response, problem))?
        };
        match from_wire(model, output, body) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            Ok(other) => return Err(shapes::invalid_response(response, format!("expected a map, got {other}"))),
            Err(problem) => return Err(shapes::invalid_response(response, problem)),
        }
    };
    Ok(shapes::with_request_id(parsed, response.header("x-amzn-requestid").map(str::to_string)))
}

/// The error of a response: `__type` and `message` from its CBOR map, as json gives them.
fn error(response: &Response) -> ServiceError {
    if let Some(generic) = shapes::generic_error(response) {
        return generic;
    }
    let body = match decode(&response.body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    super::json::error_from(response, &body, super::json::Errors::Cbor)
}

/// A decoded body read by its shape as botocore reads it: a structure keeps its modelled
/// members (by member name), a list reads each item by its element shape, and everything
/// else stays as decoded (a map's values too).
fn from_wire(model: &Model, shape: Ref, value: Value) -> Result<Value, String> {
    match (shape.kind(), value) {
        (Kind::Structure, Value::Object(mut object)) if !shape.shape.document => {
            let mut parsed = Map::new();
            for (name, member) in &shape.shape.members {
                if let Some(raw) = object.remove(name.as_str()).filter(|raw| !raw.is_null()) {
                    parsed.insert(name.clone(), from_wire(model, Ref::new(model, member), raw)?);
                }
            }
            Ok(Value::Object(parsed))
        }
        (Kind::Structure, value) if !shape.shape.document && !value.is_null() => {
            Err(format!("expected a map for {} in the response, got {value}", shape.member.shape))
        }
        (Kind::List, Value::Array(items)) => {
            let element = shape.element(model)?;
            items
                .into_iter()
                .map(|item| if item.is_null() { Ok(item) } else { from_wire(model, element, item) })
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        (_, value) => Ok(value),
    }
}

/// The first CBOR data item of a body (botocore reads no further) as JSON in the result form:
/// byte strings as base64 text, tag 1 as ISO-8601 text, `undefined` as null, NaN and the
/// infinities as the text JSON services send; map entries whose value is null are left out,
/// as botocore leaves them.
pub(super) fn decode(bytes: &[u8]) -> Result<Value, String> {
    item(&mut Decoder::new(bytes), 0).map_err(|problem| format!("invalid CBOR: {problem}"))
}

fn item(decoder: &mut Decoder, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH}"));
    }
    let failed = |error: minicbor::decode::Error| error.to_string();
    Ok(match decoder.datatype().map_err(failed)? {
        Type::Bool => Value::Bool(decoder.bool().map_err(failed)?),
        Type::Null => decoder.null().map(|()| Value::Null).map_err(failed)?,
        Type::Undefined => decoder.undefined().map(|()| Value::Null).map_err(failed)?,
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Value::from(decoder.u64().map_err(failed)?),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => Value::from(decoder.i64().map_err(failed)?),
        Type::Int => return Err("an integer beyond 64 bits".into()),
        Type::F16 => float(f64::from(decoder.f16().map_err(failed)?))?,
        Type::F32 => float(f64::from(decoder.f32().map_err(failed)?))?,
        Type::F64 => float(decoder.f64().map_err(failed)?)?,
        Type::Bytes | Type::BytesIndef => {
            let mut bytes = Vec::new();
            for chunk in decoder.bytes_iter().map_err(failed)? {
                bytes.extend_from_slice(chunk.map_err(failed)?);
            }
            Value::String(shapes::base64(&bytes))
        }
        Type::String | Type::StringIndef => {
            let mut text = String::new();
            for chunk in decoder.str_iter().map_err(failed)? {
                text.push_str(chunk.map_err(failed)?);
            }
            Value::String(text)
        }
        Type::Array | Type::ArrayIndef => {
            let length = decoder.array().map_err(failed)?;
            let mut items = Vec::new();
            while more(decoder, length, items.len())? {
                items.push(item(decoder, depth + 1)?);
            }
            Value::Array(items)
        }
        Type::Map | Type::MapIndef => {
            let length = decoder.map().map_err(failed)?;
            let mut entries = Map::new();
            let mut read = 0;
            while more(decoder, length, read)? {
                let key = match item(decoder, depth + 1)? {
                    Value::String(key) => key,
                    other => other.to_string(),
                };
                let value = item(decoder, depth + 1)?;
                if !value.is_null() {
                    entries.insert(key, value);
                }
                read += 1;
            }
            Value::Object(entries)
        }
        Type::Tag => {
            let tag = decoder.tag().map_err(failed)?;
            if tag.as_u64() != EPOCH {
                return Err(format!("tag {} (only tag 1, epoch seconds, is read)", tag.as_u64()));
            }
            let seconds = item(decoder, depth + 1)?;
            let timestamp = seconds.as_f64().and_then(shapes::epoch);
            let timestamp = timestamp.ok_or_else(|| format!("tag 1 over {seconds}, not epoch seconds"))?;
            Value::String(shapes::timestamp_text(timestamp))
        }
        other => return Err(format!("unexpected {other}")),
    })
}

fn float(value: f64) -> Result<Value, String> {
    Ok(match serde_json::Number::from_f64(value) {
        Some(number) => Value::Number(number),
        None if value.is_nan() => Value::String("NaN".into()),
        None if value > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    })
}

/// Whether another item of an array or map follows: `length` more for a definite one, up to
/// the break (which this consumes) for an indefinite one.
fn more(decoder: &mut Decoder, length: Option<u64>, read: usize) -> Result<bool, String> {
    match length {
        Some(length) => Ok((read as u64) < length),
        None if decoder.datatype().map_err(|error| error.to_string())? == Type::Break => {
            decoder.set_position(decoder.position() + 1);
            Ok(false)
        }
        None => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Response;
    use super::super::shapes::testing::{error, expect, headers, parse, request};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex")).collect()
    }

    fn response(status: u16, body: &str) -> Response {
        Response { status, headers: vec![("x-amzn-requestid".into(), "cbor-req".into())], body: bytes(body) }
    }

    // Expectations below are botocore 1.44.5's `serialize_to_request` and `parse`.

    #[test]
    fn eventbridgev2_create_event_bus() {
        let sent = request(
            "eventbridgev2",
            "CreateEventBus",
            json!({"Name": "orders", "Description": "é", "Tags": {"team": "sre"}}),
        );
        assert_eq!(
            (sent.method.as_str(), sent.path_and_query.as_str()),
            ("POST", "/service/AWSEventsV2/operation/CreateEventBus")
        );
        assert_eq!(
            headers(&sent),
            [("Accept", "application/cbor"), ("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        );
        assert_eq!(
            hex(&sent.body),
            "a3644e616d65666f72646572736b4465736372697074696f6e62c3a96454616773a1647465616d63737265"
        );
    }

    #[test]
    fn integers_booleans_and_timestamps() {
        let params = json!({
            "startTime": "2024-01-02T03:04:05.25Z", "endTime": "2024-01-02T03:04:05Z", "depth": 300,
            "maxResults": -5, "includeMetadata": false
        });
        let sent = request("cloudwatchomni", "GetContextGraph", params);
        assert_eq!(sent.path_and_query, "/service/CloudWatchOmniFrontend/operation/GetContextGraph");
        let expected = "a569737461727454696d65c1fb41d964df4950000067656e6454696d65c11a65937d25656465707468\
                        19012c6a6d6178526573756c7473246f696e636c7564654d65746164617461f4";
        assert_eq!(hex(&sent.body), expected);
        // No parameters is an empty map, still with its content type.
        let sent = request("cloudwatchomni", "ListAlerts", json!({}));
        assert_eq!((hex(&sent.body).as_str(), headers(&sent).len()), ("a0", 3));
    }

    #[test]
    fn describe_event_bus_response() {
        // {"EventBusArn": "arn:x", "Name": "orders", "CreationTime": tag 1 (1704164645.25),
        //  "State": "ACTIVE", "Unknown": 1, "Description": null}
        let body = "a66b4576656e7442757341726e6561726e3a78644e616d65666f72646572736c4372656174696f6e54696d65\
                    c1fb41d964df495000006553746174656641435449564567556e6b6e6f776e016b4465736372697074696f6ef6";
        let parsed = parse("eventbridgev2", "DescribeEventBus", &response(200, body));
        let expected = r#"{"EventBusArn": "arn:x", "Name": "orders", "CreationTime": "2024-01-02T03:04:05.25Z", "State": "ACTIVE", "ResponseMetadata": {"RequestId": "cbor-req"}}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn indefinite_lengths_and_half_floats_are_read() {
        // An indefinite map holding an indefinite list of one chunked text.
        let decoded = super::decode(&bytes("bf616c9f7f61616162ffff6166f93e00ff")).expect("decodes");
        assert_eq!(decoded, json!({"l": ["ab"], "f": 1.5}));
        // NaN and the infinities as JSON services write them; what follows the item is not read.
        let decoded = super::decode(&bytes("83f97e00f97c00f9fc00ff")).expect("decodes");
        assert_eq!(decoded, json!(["NaN", "Infinity", "-Infinity"]));
    }

    #[test]
    fn cbor_errors() {
        // {"__type": "com.amazon#ResourceNotFoundException", "message": "no bus"}
        let body = "a2665f5f74797065782363";
        let parsed = parse("eventbridgev2", "DescribeEventBus", &response(400, body));
        assert_eq!(parsed.map_err(|e| e.code), Err("400".to_string()), "a cut body gives the status");
        let body = "a2665f5f747970657824636f6d2e616d617a6f6e235265736f757263654e6f74466f756e64457863657074696f6e\
                    676d657373616765666e6f20627573";
        let parsed = parse("eventbridgev2", "DescribeEventBus", &response(400, body));
        assert_eq!(parsed, Err(error(400, "ResourceNotFoundException", "no bus", Some("cbor-req"))));
    }

    #[test]
    fn bad_bodies_are_invalid_responses() {
        for body in ["", "ff", "a1", "c2", "a16141", "9f", "81"] {
            let parsed = parse("eventbridgev2", "DescribeEventBus", &response(200, body));
            match body {
                "" => assert!(parsed.is_ok()),
                _ => assert_eq!(parsed.map_err(|e| e.code), Err("InvalidResponse".to_string()), "{body}"),
            }
        }
        let deep = "81".repeat(1000);
        assert!(super::decode(&bytes(&deep)).is_err());
    }
}
