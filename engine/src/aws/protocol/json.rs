//! The json protocol (awsJson 1.0 and 1.1: `X-Amz-Target` and a JSON body), and the JSON
//! bodies and errors rest-json shares with it, as botocore's `JSONSerializer` and
//! `BaseJSONParser` write and read them.

use serde_json::{Map, Value};

use super::shapes::{self, Ref};
use super::{Request, Response, ServiceError};
use crate::aws::model::{Kind, Model, Operation};

pub fn serialize(model: &Model, operation: &Operation, params: &Map<String, Value>) -> Result<Request, String> {
    let metadata = &model.metadata;
    let prefix = metadata.target_prefix.as_deref().ok_or("the service model has no targetPrefix")?;
    let version = metadata.json_version.as_deref().unwrap_or("1.0");
    let mut headers = vec![
        ("X-Amz-Target".to_string(), format!("{prefix}.{}", operation.name)),
        ("Content-Type".to_string(), format!("application/x-amz-json-{version}")),
    ];
    if metadata.aws_query_compatible {
        // Asks a service that moved from query to JSON for its query-era error codes.
        headers.push(("x-amzn-query-mode".into(), "true".into()));
    }
    let body = match shapes::input(model, operation) {
        Some(input) => structure_body(model, input, params)?,
        None => Map::new(),
    };
    Ok(Request {
        method: operation.http.method.clone(),
        path_and_query: "/".into(),
        headers,
        body: encode(&Value::Object(body)),
        host_prefix: shapes::host_prefix(model, operation, params)?,
    })
}

pub(super) fn encode(value: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail: its keys are strings and its numbers finite.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A structure's members as a JSON object keyed by wire name.
pub(super) fn structure_body(
    model: &Model,
    shape: Ref,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    shapes::check_members(shape.shape, params)?;
    let mut body = Map::new();
    for (name, member, value) in shapes::present(model, shape.shape, params) {
        body.insert(member.name().unwrap_or(name).to_string(), to_wire(model, member, value)?);
    }
    Ok(body)
}

/// A parameter as its JSON wire value: timestamps as epoch seconds unless the model says
/// otherwise, blobs as base64, documents as given.
pub(super) fn to_wire(model: &Model, shape: Ref, value: &Value) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let what = &shape.member.shape;
    Ok(match shape.kind() {
        Kind::Structure if shape.shape.document => value.clone(),
        Kind::Structure => Value::Object(structure_body(model, shape, shapes::object(value, what)?)?),
        Kind::List => {
            let element = shape.element(model)?;
            let items = shapes::array(value, what)?;
            Value::Array(items.iter().map(|item| to_wire(model, element, item)).collect::<Result<_, _>>()?)
        }
        Kind::Map => {
            let (_, value_shape) = shape.entry(model)?;
            let mut map = Map::new();
            for (key, value) in shapes::object(value, what)? {
                map.insert(key.clone(), to_wire(model, value_shape, value)?);
            }
            Value::Object(map)
        }
        Kind::Timestamp => shapes::format_timestamp(value, shape.timestamp_format().unwrap_or("unixtimestamp"))?,
        Kind::Blob => Value::String(shapes::base64(shapes::blob_bytes(value, what)?)),
        _ => value.clone(),
    })
}

pub fn parse(model: &Model, operation: &Operation, response: &Response) -> Result<Value, ServiceError> {
    if response.status >= 300 {
        return Err(error(response, false));
    }
    let mut parsed = Map::new();
    if let Some(output) = shapes::output(model, operation) {
        let body = body_json(response)?;
        parsed = match from_wire(model, output, &body, false) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            Ok(other) => return Err(shapes::invalid_response(response, format!("expected an object, got {other}"))),
            Err(error) => return Err(shapes::invalid_response(response, error)),
        };
    }
    Ok(shapes::with_request_id(parsed, response.header("x-amzn-requestid").map(str::to_string)))
}

/// A success body as JSON; an empty body is an empty object.
fn body_json(response: &Response) -> Result<Value, ServiceError> {
    if response.body.trim_ascii().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&response.body)
        .map_err(|error| shapes::invalid_response(response, format!("invalid JSON: {error}")))
}

/// A JSON response value read by its shape into the result form: members by name (not wire
/// name), timestamps as ISO-8601 text. `rest` converts as rest-json does (numbers and booleans
/// may come as text there, from headers; floats are made floats).
pub(super) fn from_wire(model: &Model, shape: Ref, value: &Value, rest: bool) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let what = || format!("{} in the response", shape.member.shape);
    Ok(match shape.kind() {
        Kind::Structure if shape.shape.document => value.clone(),
        Kind::Structure => {
            let object = value.as_object().ok_or_else(|| format!("expected an object for {}", what()))?;
            let mut parsed = Map::new();
            for (name, member) in &shape.shape.members {
                let member = Ref::new(model, member);
                match object.get(member.name().unwrap_or(name)) {
                    None | Some(Value::Null) => {}
                    Some(raw) => {
                        parsed.insert(name.clone(), from_wire(model, member, raw, rest)?);
                    }
                }
            }
            Value::Object(parsed)
        }
        Kind::List => {
            let element = shape.element(model)?;
            let items = value.as_array().ok_or_else(|| format!("expected a list for {}", what()))?;
            Value::Array(items.iter().map(|item| from_wire(model, element, item, rest)).collect::<Result<_, _>>()?)
        }
        Kind::Map => {
            let (_, value_shape) = shape.entry(model)?;
            let object = value.as_object().ok_or_else(|| format!("expected an object for {}", what()))?;
            let mut map = Map::new();
            for (key, raw) in object {
                map.insert(key.clone(), from_wire(model, value_shape, raw, rest)?);
            }
            Value::Object(map)
        }
        Kind::Timestamp => {
            let parsed = match value {
                Value::Number(number) => number.as_f64().and_then(shapes::epoch),
                Value::String(text) => shapes::parse_timestamp(text),
                _ => None,
            };
            let timestamp = parsed.ok_or_else(|| format!("invalid timestamp {value} for {}", what()))?;
            Value::String(shapes::timestamp_text(timestamp))
        }
        kind @ (Kind::Integer | Kind::Long | Kind::Float | Kind::Double | Kind::Boolean) if rest => match (kind, value)
        {
            (_, Value::String(text)) => shapes::scalar_from_text(kind, text)?,
            (Kind::Float | Kind::Double, Value::Number(number)) => {
                number.as_f64().map_or_else(|| value.clone(), Value::from)
            }
            // botocore's `ensure_boolean`: anything but true or "true" is false.
            (Kind::Boolean, _) => Value::Bool(value.as_bool().unwrap_or(false)),
            _ => value.clone(),
        },
        _ => value.clone(),
    })
}

/// The error of a json or rest-json response (botocore `BaseJSONParser._do_error_parse`, and
/// `RestJSONParser._inject_error_code` when `rest`): the code from `__type` (or, for rest-json,
/// the `x-amzn-errortype` header or a `code` field) without its namespace or suffix, or the
/// query-era code a query-compatible service gives in `x-amzn-query-error`.
pub(super) fn error(response: &Response, rest: bool) -> ServiceError {
    let family = if rest { Errors::RestJson } else { Errors::Json };
    if let Some(generic) = shapes::generic_error(response) {
        return generic;
    }
    let body = if response.body.trim_ascii().is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&response.body) {
            Ok(Value::Object(map)) => map,
            // botocore keeps an unreadable body as the message.
            _ => Map::from_iter([("message".into(), Value::String(String::from_utf8_lossy(&response.body).into()))]),
        }
    };
    error_from(response, &body, family)
}

/// The protocols whose errors carry `__type` and `message`; they differ in where else a code
/// may come from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Errors {
    Json,
    RestJson,
    /// rpc-v2-cbor: `__type`, else the status code, as botocore reads it.
    Cbor,
}

/// The error a response gives with its body already read into an object.
pub(super) fn error_from(response: &Response, body: &Map<String, Value>, family: Errors) -> ServiceError {
    let text =
        |name: &str| body.get(name).map(|value| value.as_str().map_or_else(|| value.to_string(), str::to_string));
    let strip = |code: &str| {
        let code = code.split(':').next().unwrap_or_default();
        code.rsplit('#').next().unwrap_or_default().to_string()
    };
    // Without `__type`, the `x-amzn-errortype` header many JSON services also send names the
    // error before the bare status code does (botocore stops at the status code).
    let header = (family != Errors::Cbor).then(|| response.header("x-amzn-errortype")).flatten();
    let typed = text("__type").or_else(|| header.map(str::to_string));
    let mut code = strip(&typed.unwrap_or_else(|| response.status.to_string()));
    if let Some(query_error) = response.header("x-amzn-query-error") {
        let parts: Vec<&str> = query_error.split(';').collect();
        if parts.len() == 2 && !parts[0].is_empty() {
            code = parts[0].to_string();
        }
    }
    if family == Errors::RestJson {
        let header = response.header("x-amzn-errortype").map(str::to_string);
        if let Some(found) = header.or_else(|| text("code")).or_else(|| text("Code")) {
            code = strip(&found);
        }
    }
    ServiceError {
        status: response.status,
        code,
        message: text("message").or_else(|| text("Message")).unwrap_or_default(),
        request_id: response.header("x-amzn-requestid").map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::shapes::testing::{body, error, expect, headers, parse, request, response};

    // Expectations below are botocore 1.44.5's `serialize_to_request` and `parse`, with
    // datetimes as ISO-8601 text in UTC; bodies compare as JSON since key order is free.

    fn json_body(sent: &super::Request) -> Value {
        serde_json::from_str(body(sent)).expect("JSON body")
    }

    #[test]
    fn dynamodb_put_item() {
        let sent = request(
            "dynamodb",
            "PutItem",
            json!({
                "TableName": "orders",
                "Item": {
                    "id": {"S": "o-1"}, "total": {"N": "12.50"}, "raw": {"B": "hello"}, "paid": {"BOOL": true},
                    "tags": {"SS": ["a", "b"]}, "lines": {"L": [{"M": {"sku": {"S": "x"}}}, {"NULL": true}]}
                },
                "ConditionExpression": "attribute_not_exists(#i)", "ExpressionAttributeNames": {"#i": "id"},
                "ReturnValues": "NONE"
            }),
        );
        assert_eq!((sent.method.as_str(), sent.path_and_query.as_str()), ("POST", "/"));
        assert_eq!(
            headers(&sent),
            [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.PutItem")]
        );
        let expected = expect(
            r##"{"TableName": "orders", "Item": {"id": {"S": "o-1"}, "total": {"N": "12.50"}, "raw": {"B": "aGVsbG8="}, "paid": {"BOOL": true}, "tags": {"SS": ["a", "b"]}, "lines": {"L": [{"M": {"sku": {"S": "x"}}}, {"NULL": true}]}}, "ReturnValues": "NONE", "ConditionExpression": "attribute_not_exists(#i)", "ExpressionAttributeNames": {"#i": "id"}}"##,
        );
        assert_eq!(json_body(&sent), expected);
    }

    #[test]
    fn dynamodb_describe_table_response() {
        let body = r#"{"Table":{"AttributeDefinitions":[{"AttributeName":"id","AttributeType":"S"}],"CreationDateTime":1.704164645123E9,"ItemCount":42,"KeySchema":[{"AttributeName":"id","KeyType":"HASH"}],"ProvisionedThroughput":{"LastIncreaseDateTime":0,"NumberOfDecreasesToday":0,"ReadCapacityUnits":5,"WriteCapacityUnits":5},"TableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/orders","TableName":"orders","TableSizeBytes":1024,"TableStatus":"ACTIVE","DeletionProtectionEnabled":false,"BillingModeSummary":{"BillingMode":"PAY_PER_REQUEST","LastUpdateToPayPerRequestDateTime":1704164645}}}"#;
        let parsed = parse("dynamodb", "DescribeTable", &response(200, &[("x-amzn-RequestId", "ddb-req")], body));
        let expected = r#"{"Table": {"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}], "TableName": "orders", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "TableStatus": "ACTIVE", "CreationDateTime": "2024-01-02T03:04:05.123Z", "ProvisionedThroughput": {"LastIncreaseDateTime": "1970-01-01T00:00:00Z", "NumberOfDecreasesToday": 0, "ReadCapacityUnits": 5, "WriteCapacityUnits": 5}, "TableSizeBytes": 1024, "ItemCount": 42, "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders", "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": "2024-01-02T03:04:05Z"}, "DeletionProtectionEnabled": false}, "ResponseMetadata": {"RequestId": "ddb-req"}}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn ssm_get_parameter() {
        let sent = request("ssm", "GetParameter", json!({"Name": "/app/db/password", "WithDecryption": true}));
        assert_eq!(
            headers(&sent),
            [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "AmazonSSM.GetParameter")]
        );
        assert_eq!(json_body(&sent), json!({"Name": "/app/db/password", "WithDecryption": true}));

        let body = r#"{"Parameter":{"ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password","DataType":"text","LastModifiedDate":1.7041646455E9,"Name":"/app/db/password","Type":"SecureString","Value":"s3cr\u00e9t","Version":3}}"#;
        let parsed = parse("ssm", "GetParameter", &response(200, &[("x-amzn-RequestId", "ssm-req")], body));
        let expected = r#"{"Parameter": {"Name": "/app/db/password", "Type": "SecureString", "Value": "s3crét", "Version": 3, "LastModifiedDate": "2024-01-02T03:04:05.5Z", "ARN": "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password", "DataType": "text"}, "ResponseMetadata": {"RequestId": "ssm-req"}}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn empty_input_and_query_compatible_header() {
        let sent = request("sqs", "GetQueueUrl", json!({"QueueName": "jobs"}));
        assert_eq!(
            headers(&sent),
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", "AmazonSQS.GetQueueUrl"),
                ("x-amzn-query-mode", "true")
            ]
        );
        assert_eq!(json_body(&sent), json!({"QueueName": "jobs"}));
        assert_eq!(body(&request("dynamodb", "ListTables", json!({}))), "{}");
    }

    #[test]
    fn json_errors() {
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found: Table: orders not found"}"#;
        let parsed = parse("dynamodb", "DescribeTable", &response(400, &[("x-amzn-RequestId", "ddb-err")], body));
        let message = "Requested resource not found: Table: orders not found";
        assert_eq!(parsed, Err(error(400, "ResourceNotFoundException", message, Some("ddb-err"))));

        let body = r#"{"__type":"ParameterNotFound","message":""}"#;
        let parsed = parse("ssm", "GetParameter", &response(400, &[("x-amzn-RequestId", "ssm-err")], body));
        assert_eq!(parsed, Err(error(400, "ParameterNotFound", "", Some("ssm-err"))));

        // A query-compatible service gives its query-era code in a header.
        let body =
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#;
        let headers =
            [("x-amzn-RequestId", "sqs-err"), ("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender")];
        let parsed = parse("sqs", "GetQueueUrl", &response(400, &headers, body));
        let code = "AWS.SimpleQueueService.NonExistentQueue";
        assert_eq!(parsed, Err(error(400, code, "The specified queue does not exist.", Some("sqs-err"))));

        // A bare 5xx from a proxy; an unreadable body becomes the message.
        let parsed = parse("ssm", "GetParameter", &response(503, &[], ""));
        assert_eq!(parsed, Err(error(503, "503", "Service Unavailable", None)));
        let parsed = parse("ssm", "GetParameter", &response(400, &[], "oops"));
        assert_eq!(parsed, Err(error(400, "400", "oops", None)));
        let parsed = parse("ssm", "GetParameter", &response(400, &[("x-amzn-ErrorType", "ThrottlingException:")], ""));
        assert_eq!(parsed, Err(error(400, "ThrottlingException", "", None)));
    }

    #[test]
    fn bad_success_bodies_are_invalid_responses() {
        for body in ["{not json", "[1, 2]", r#"{"Parameter": {"LastModifiedDate": "someday"}}"#, r#"{"Parameter": 5}"#]
        {
            let parsed = parse("ssm", "GetParameter", &response(200, &[], body));
            assert_eq!(parsed.map_err(|e| e.code), Err("InvalidResponse".to_string()), "{body}");
        }
        assert_eq!(parse("ssm", "GetParameter", &response(200, &[], "")), Ok(json!({})));
    }
}
