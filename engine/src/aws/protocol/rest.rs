//! The rest-json and rest-xml protocols: members bound to the URI, query string and headers,
//! the rest in a JSON or XML body or a raw payload (botocore's `BaseRestSerializer`), and
//! responses read from headers, status code and body (`BaseRestParser`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::shapes::{self, Ref};
use super::{Request, Response, ServiceError, json, xml};
use crate::aws::model::{Kind, Location, Model, Operation, Protocol};

pub fn serialize(model: &Model, operation: &Operation, params: &Map<String, Value>) -> Result<Request, String> {
    let is_xml = model.metadata.protocol == Protocol::RestXml;
    let mut request = Request {
        method: operation.http.method.clone(),
        path_and_query: operation.http.request_uri.clone(),
        headers: Vec::new(),
        body: Vec::new(),
        host_prefix: shapes::host_prefix(model, operation, params)?,
    };
    let Some(input) = shapes::input(model, operation) else {
        return Ok(request);
    };
    shapes::check_members(input.shape, params)?;

    let mut labels: HashMap<&str, String> = HashMap::new();
    let mut query: Vec<(String, String)> = Vec::new();
    let mut body_params = Map::new();
    for (name, member, value) in shapes::present(model, input.shape, params) {
        let key = member.name().unwrap_or(name);
        match member.member.location {
            Some(Location::Uri) => {
                labels.insert(key, uri_value(member, value)?);
            }
            Some(Location::Querystring) => match (member.kind(), value) {
                // A map of strings (or lists of strings) becomes parameters of its own.
                (Kind::Map, Value::Object(entries)) => {
                    for (entry, entry_value) in entries {
                        match entry_value {
                            Value::Array(items) => {
                                query.extend(items.iter().map(|item| (entry.clone(), shapes::scalar_text(item))))
                            }
                            other => query.push((entry.clone(), shapes::scalar_text(other))),
                        }
                    }
                }
                (Kind::List, Value::Array(items)) => {
                    let element = member.element(model)?;
                    for item in items {
                        query.push((key.to_string(), uri_value(element, item)?));
                    }
                }
                _ => query.push((key.to_string(), uri_value(member, value)?)),
            },
            Some(Location::Header) => {
                if value.as_array().is_some_and(Vec::is_empty) {
                    // botocore sends no header for an empty list.
                    continue;
                }
                request.headers.push((key.to_string(), header_value(model, member, value)?));
            }
            Some(Location::Headers) => {
                for (suffix, header) in shapes::object(value, name)? {
                    request.headers.push((format!("{key}{suffix}"), shapes::scalar_text(header)));
                }
            }
            Some(Location::StatusCode) => {}
            None => {
                body_params.insert(name.to_string(), value.clone());
            }
        }
    }

    request.path_and_query = render_uri(&operation.http.request_uri, &labels)?;
    if !query.is_empty() {
        let encoded: Vec<String> = query
            .iter()
            .map(|(key, value)| format!("{}={}", shapes::percent_encode(key, ""), shapes::percent_encode(value, "")))
            .collect();
        // A literal query in the URI (`/{Bucket}?list-type=2`) is kept and extended.
        request.path_and_query.push(if request.path_and_query.contains('?') { '&' } else { '?' });
        request.path_and_query.push_str(&encoded.join("&"));
    }

    let empty = || if is_xml { Vec::new() } else { b"{}".to_vec() };
    let mut streaming = false;
    if let Some(payload) = &input.shape.payload {
        let member =
            input.shape.members.get(payload).ok_or_else(|| format!("model has no payload member {payload}"))?;
        let member = Ref::new(model, member);
        let value = params.get(payload).filter(|value| !value.is_null());
        if matches!(member.kind(), Kind::Blob | Kind::String) {
            // A blob or string payload is the body itself, as raw bytes.
            streaming = true;
            request.body = match value {
                Some(value) => shapes::blob_bytes(value, payload)?.to_vec(),
                None => Vec::new(),
            };
        } else {
            request.body = match value {
                Some(value) if is_xml => {
                    xml::document(model, member, value, member.name().unwrap_or(&member.member.shape))?
                }
                Some(value) => json::encode(&json::to_wire(model, member, value)?),
                None => empty(),
            };
        }
    } else if !body_params.is_empty() {
        request.body = if is_xml {
            xml::document(model, input, &Value::Object(body_params), input.name().unwrap_or(&input.member.shape))?
        } else {
            json::encode(&Value::Object(json::structure_body(model, input, &body_params)?))
        };
    } else if !is_xml && input.shape.members.values().any(|member| member.location.is_none()) {
        // rest-json sends `{}` when the input has body members but none were given.
        request.body = empty();
    }

    let has_content_type = request.headers.iter().any(|(key, _)| key.eq_ignore_ascii_case("content-type"));
    if !is_xml && !streaming && !request.body.is_empty() && !has_content_type {
        request.headers.push(("Content-Type".into(), "application/json".into()));
    }
    Ok(request)
}

/// A URI label or query string value (botocore `_get_uri_and_query_string_value`): timestamps
/// in ISO-8601 unless the model says otherwise.
fn uri_value(shape: Ref, value: &Value) -> Result<String, String> {
    match shape.kind() {
        Kind::Boolean => Ok(value.as_bool().unwrap_or(false).to_string()),
        Kind::Timestamp => shapes::timestamp_param(value, shape.timestamp_format().unwrap_or("iso8601")),
        _ => Ok(shapes::scalar_text(value)),
    }
}

/// Fills `{Label}` (percent-encoded, `/` too) and `{Label+}` (greedy: `/` kept) in a request
/// URI template.
fn render_uri(template: &str, labels: &HashMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(length) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let label = &rest[start + 1..start + length];
        let (name, greedy) = match label.strip_suffix('+') {
            Some(name) => (name, true),
            None => (label, false),
        };
        let value = labels.get(name).ok_or_else(|| format!("missing required parameter for URI label {name}"))?;
        out.push_str(&shapes::percent_encode(value, if greedy { "/~" } else { "" }));
        rest = &rest[start + length + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A header value (botocore `_convert_header_value`): timestamps as HTTP dates to the second,
/// lists comma-joined (quoting items that hold a comma or quote), `jsonvalue` members as
/// base64 of compact JSON.
fn header_value(model: &Model, shape: Ref, value: &Value) -> Result<String, String> {
    match shape.kind() {
        Kind::Timestamp => {
            let seconds = Value::from(shapes::input_timestamp(value)?.as_second());
            shapes::timestamp_param(&seconds, shape.timestamp_format().unwrap_or("rfc822"))
        }
        Kind::List => {
            let element = shape.element(model)?;
            let mut items = Vec::new();
            for item in shapes::array(value, &shape.member.shape)?.iter().filter(|item| !item.is_null()) {
                items.push(match (element.kind(), item) {
                    (Kind::String, Value::String(text)) if text.contains(['"', ',']) => {
                        format!("\"{}\"", text.replace('"', "\\\""))
                    }
                    _ => header_value(model, element, item)?,
                });
            }
            Ok(items.join(","))
        }
        Kind::String if shape.member.jsonvalue => Ok(shapes::base64(json::encode(value).as_slice())),
        Kind::Boolean => Ok(value.as_bool().unwrap_or(false).to_string()),
        _ => Ok(shapes::scalar_text(value)),
    }
}

pub fn parse(model: &Model, operation: &Operation, response: &Response) -> Result<Value, ServiceError> {
    let is_xml = model.metadata.protocol == Protocol::RestXml;
    if response.status >= 300 {
        return Err(if is_xml { xml::error(response) } else { json::error(response, true) });
    }
    let mut parsed = Map::new();
    if let Some(output) = shapes::output(model, operation) {
        read_response(model, output, response, is_xml, &mut parsed)
            .map_err(|error| shapes::invalid_response(response, error))?;
    }
    // botocore's `_populate_response_metadata`: S3 also gives a host id.
    if let Some(id) = response.header("x-amzn-requestid") {
        parsed.insert("ResponseMetadata".into(), serde_json::json!({ "RequestId": id }));
    } else if let Some(id) = response.header("x-amz-request-id") {
        let host = response.header("x-amz-id-2").unwrap_or_default();
        parsed.insert("ResponseMetadata".into(), serde_json::json!({ "RequestId": id, "HostId": host }));
    }
    Ok(Value::Object(parsed))
}

fn read_response(
    model: &Model,
    output: Ref,
    response: &Response,
    is_xml: bool,
    parsed: &mut Map<String, Value>,
) -> Result<(), String> {
    for (name, member) in &output.shape.members {
        let member = Ref::new(model, member);
        match member.member.location {
            Some(Location::StatusCode) => {
                parsed.insert(name.clone(), Value::from(response.status));
            }
            Some(Location::Headers) => {
                let prefix = member.name().unwrap_or_default().to_ascii_lowercase();
                let mut map = Map::new();
                for (header, value) in &response.headers {
                    if header.to_ascii_lowercase().starts_with(&prefix) {
                        map.insert(
                            header.get(prefix.len()..).unwrap_or_default().to_string(),
                            Value::String(value.clone()),
                        );
                    }
                }
                parsed.insert(name.clone(), Value::Object(map));
            }
            Some(Location::Header) => {
                if let Some(text) = response.header(member.name().unwrap_or(name)) {
                    parsed.insert(name.clone(), header_scalar(model, member, text)?);
                }
            }
            _ => {}
        }
    }

    let body_text = String::from_utf8_lossy(&response.body);
    if let Some(payload) = &output.shape.payload {
        let member =
            output.shape.members.get(payload).ok_or_else(|| format!("model has no payload member {payload}"))?;
        let member = Ref::new(model, member);
        if member.shape.event_stream {
            // Event streams are not read; the member stays absent.
            return Ok(());
        }
        let value = if matches!(member.kind(), Kind::Blob | Kind::String) {
            // A streamed payload is the body itself, as text.
            Value::String(body_text.into_owned())
        } else {
            body_value(model, member, &body_text, is_xml)?
        };
        parsed.insert(payload.clone(), value);
    } else if let Value::Object(body) = body_value(model, output, &body_text, is_xml)? {
        parsed.extend(body);
    }
    Ok(())
}

/// The body read as `shape`: an XML root element's children or a JSON object; an empty body
/// is an empty structure.
fn body_value(model: &Model, shape: Ref, body: &str, is_xml: bool) -> Result<Value, String> {
    if body.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    if is_xml {
        let document = xml::parse_document(body)?;
        xml::structure(model, shape.shape, document.root_element()).map(Value::Object)
    } else {
        let value: Value = serde_json::from_str(body).map_err(|error| format!("invalid JSON: {error}"))?;
        json::from_wire(model, shape, &value, true)
    }
}

/// A member read from a header: lists split at commas, `jsonvalue` strings decoded from
/// base64 JSON, other scalars as in a body.
fn header_scalar(model: &Model, shape: Ref, text: &str) -> Result<Value, String> {
    match shape.kind() {
        Kind::List => {
            let element = shape.element(model)?;
            text.split(',')
                .map(|item| header_scalar(model, element, item.trim()))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        Kind::String if shape.member.jsonvalue => {
            let bytes =
                aws_smithy_types::base64::decode(text).map_err(|_| format!("invalid base64 header {text:?}"))?;
            serde_json::from_slice(&bytes).map_err(|error| format!("invalid JSON in a header: {error}"))
        }
        Kind::String => Ok(Value::String(text.to_string())),
        kind => shapes::scalar_from_text(kind, text),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::shapes::testing::{body, error, expect, headers, parse, request, response};

    // Expectations below are botocore 1.44.5's `serialize_to_request` (URL as
    // `prepare_request_dict` builds it) and `parse`, with datetimes as ISO-8601 text in UTC.

    #[test]
    fn lambda_list_functions_query_string() {
        let sent = request(
            "lambda",
            "ListFunctions",
            json!({"MasterRegion": "us-east-1", "FunctionVersion": "ALL", "Marker": "a b/c+d", "MaxItems": 10}),
        );
        assert_eq!(sent.method, "GET");
        assert_eq!(
            sent.path_and_query,
            "/2015-03-31/functions?MasterRegion=us-east-1&FunctionVersion=ALL&Marker=a%20b%2Fc%2Bd&MaxItems=10"
        );
        assert!(sent.headers.is_empty() && sent.body.is_empty());
    }

    #[test]
    fn query_string_timestamps() {
        let sent = request(
            "backup",
            "ListBackupJobs",
            json!({"ByCreatedBefore": "2024-01-02T03:04:05.25Z", "ByCreatedAfter": 1704164645, "MaxResults": 3}),
        );
        assert_eq!(
            sent.path_and_query,
            "/backup-jobs/?maxResults=3&createdBefore=2024-01-02T03%3A04%3A05.250000Z&createdAfter=2024-01-02T03%3A04%3A05Z"
        );
        let sent =
            request("s3", "GetObject", json!({"Bucket": "b", "Key": "/lead/ing", "ResponseExpires": "2024-01-02"}));
        assert_eq!(sent.path_and_query, "/b//lead/ing?response-expires=Tue%2C%2002%20Jan%202024%2000%3A00%3A00%20GMT");
    }

    #[test]
    fn lambda_invoke_request() {
        let sent = request(
            "lambda",
            "Invoke",
            json!({
                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
                "InvocationType": "RequestResponse", "LogType": "Tail", "Payload": "{\"key\": \"välue\"}",
                "Qualifier": "prod"
            }),
        );
        assert_eq!(sent.method, "POST");
        assert_eq!(
            sent.path_and_query,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations?Qualifier=prod"
        );
        // The payload is the raw body, with no content type of its own.
        assert_eq!(headers(&sent), [("X-Amz-Invocation-Type", "RequestResponse"), ("X-Amz-Log-Type", "Tail")]);
        assert_eq!(body(&sent), "{\"key\": \"välue\"}");

        let sent = request("lambda", "Invoke", json!({"FunctionName": "my-fn"}));
        assert_eq!(sent.path_and_query, "/2015-03-31/functions/my-fn/invocations");
        assert!(sent.headers.is_empty() && sent.body.is_empty());
    }

    #[test]
    fn rest_json_bodies() {
        let sent = request(
            "lambda",
            "TagResource",
            json!({"Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "Tags": {"team": "ops"}}),
        );
        assert_eq!(
            sent.path_and_query,
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af"
        );
        assert_eq!(headers(&sent), [("Content-Type", "application/json")]);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap(), json!({"Tags": {"team": "ops"}}));
        let sent = request("lambda", "GetPolicy", json!({"FunctionName": "f"}));
        assert_eq!(sent.path_and_query, "/2015-03-31/functions/f/policy");
        assert!(sent.headers.is_empty() && sent.body.is_empty());
    }

    #[test]
    fn lambda_invoke_response() {
        let headers = [
            ("X-Amz-Function-Error", "Unhandled"),
            ("X-Amz-Log-Result", "U1RBUlQgUmVxdWVzdElk"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", "lam-req"),
            ("Content-Type", "application/json"),
        ];
        let body = r#"{"errorMessage": "bööm", "errorType": "Exception"}"#;
        let parsed = parse("lambda", "Invoke", &response(200, &headers, body));
        let expected = r#"{"ResponseMetadata": {"RequestId": "lam-req"}, "StatusCode": 200, "FunctionError": "Unhandled", "LogResult": "U1RBUlQgUmVxdWVzdElk", "ExecutedVersion": "$LATEST", "Payload": "{\"errorMessage\": \"bööm\", \"errorType\": \"Exception\"}"}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn lambda_get_function_response() {
        let body = r#"{"Configuration":{"FunctionName":"my-fn","FunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:my-fn","Runtime":"python3.12","MemorySize":128,"Timeout":3,"LastModified":"2024-01-02T03:04:05.123+0000","Environment":{"Variables":{"A":"1"}},"State":"Active"},"Code":{"RepositoryType":"S3","Location":"https://example.com/code"},"Tags":{"team":"ops"}}"#;
        let parsed = parse("lambda", "GetFunction", &response(200, &[("x-amzn-RequestId", "lam-get")], body));
        let expected = r#"{"ResponseMetadata": {"RequestId": "lam-get"}, "Configuration": {"FunctionName": "my-fn", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:my-fn", "Runtime": "python3.12", "Timeout": 3, "MemorySize": 128, "LastModified": "2024-01-02T03:04:05.123+0000", "Environment": {"Variables": {"A": "1"}}, "State": "Active"}, "Code": {"RepositoryType": "S3", "Location": "https://example.com/code"}, "Tags": {"team": "ops"}}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn rest_json_errors() {
        let headers = [
            ("x-amzn-RequestId", "lam-err"),
            ("x-amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.awslambda/"),
        ];
        let body =
            r#"{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing"}"#;
        let parsed = parse("lambda", "Invoke", &response(404, &headers, body));
        let message = "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing";
        assert_eq!(parsed, Err(error(404, "ResourceNotFoundException", message, Some("lam-err"))));
        let parsed = parse("lambda", "Invoke", &response(429, &[], r#"{"code":"TooManyRequestsException"}"#));
        assert_eq!(parsed, Err(error(429, "TooManyRequestsException", "", None)));
    }

    #[test]
    fn s3_put_bucket_logging() {
        let sent = request(
            "s3",
            "PutBucketLogging",
            json!({
                "Bucket": "my-bucket",
                "BucketLoggingStatus": {"LoggingEnabled": {
                    "TargetBucket": "logs-bucket",
                    "TargetGrants": [
                        {"Grantee": {"ID": "abc123", "Type": "CanonicalUser"}, "Permission": "READ"},
                        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "WRITE"}
                    ],
                    "TargetPrefix": "logs/<my-bucket>&\"x\"/"
                }},
                "ExpectedBucketOwner": "123456789012"
            }),
        );
        assert_eq!((sent.method.as_str(), sent.path_and_query.as_str()), ("PUT", "/my-bucket?logging"));
        assert_eq!(headers(&sent), [("x-amz-expected-bucket-owner", "123456789012")]);
        assert_eq!(
            body(&sent),
            "<BucketLoggingStatus xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LoggingEnabled><TargetBucket>logs-bucket</TargetBucket>\
             <TargetGrants><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>abc123</ID>\
             </Grantee><Permission>READ</Permission></Grant><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>WRITE</Permission></Grant>\
             </TargetGrants><TargetPrefix>logs/&lt;my-bucket&gt;&amp;\"x\"/</TargetPrefix></LoggingEnabled></BucketLoggingStatus>"
        );
        // Turning logging off sends the empty element.
        let sent = request("s3", "PutBucketLogging", json!({"Bucket": "my-bucket", "BucketLoggingStatus": {}}));
        assert_eq!(body(&sent), "<BucketLoggingStatus xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\" />");
    }

    #[test]
    fn s3_get_bucket_logging_response() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<BucketLoggingStatus xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LoggingEnabled><TargetBucket>logs-bucket</TargetBucket><TargetPrefix>logs/</TargetPrefix><TargetGrants><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>abc123</ID><DisplayName>owner</DisplayName></Grantee><Permission>READ</Permission></Grant></TargetGrants><TargetObjectKeyFormat><SimplePrefix/></TargetObjectKeyFormat></LoggingEnabled></BucketLoggingStatus>"#;
        let headers = [("x-amz-request-id", "s3-req"), ("x-amz-id-2", "s3-host")];
        let parsed = parse("s3", "GetBucketLogging", &response(200, &headers, body));
        let expected = r#"{"ResponseMetadata": {"RequestId": "s3-req", "HostId": "s3-host"}, "LoggingEnabled": {"TargetBucket": "logs-bucket", "TargetGrants": [{"Grantee": {"DisplayName": "owner", "ID": "abc123", "Type": "CanonicalUser"}, "Permission": "READ"}], "TargetPrefix": "logs/", "TargetObjectKeyFormat": {"SimplePrefix": {}}}}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn s3_put_bucket_acl_headers() {
        let grant = "uri=\"http://acs.amazonaws.com/groups/s3/LogDelivery\"";
        let sent =
            request("s3", "PutBucketAcl", json!({"Bucket": "my-bucket", "GrantWrite": grant, "GrantReadACP": grant}));
        assert_eq!((sent.method.as_str(), sent.path_and_query.as_str()), ("PUT", "/my-bucket?acl"));
        assert_eq!(headers(&sent), [("x-amz-grant-read-acp", grant), ("x-amz-grant-write", grant)]);
        assert!(sent.body.is_empty());
    }

    #[test]
    fn s3_list_objects_v2() {
        let sent = request(
            "s3",
            "ListObjectsV2",
            json!({
                "Bucket": "my-bucket", "Delimiter": "/", "MaxKeys": 5, "Prefix": "logs/2024 01/",
                "ContinuationToken": "tok/en=", "FetchOwner": true, "StartAfter": "a+b",
                "OptionalObjectAttributes": ["RestoreStatus"]
            }),
        );
        // The literal `list-type=2` of the request URI stays first.
        assert_eq!(
            sent.path_and_query,
            "/my-bucket?list-type=2&delimiter=%2F&max-keys=5&prefix=logs%2F2024%2001%2F&continuation-token=tok%2Fen%3D\
             &fetch-owner=true&start-after=a%2Bb"
        );
        assert_eq!(headers(&sent), [("x-amz-optional-object-attributes", "RestoreStatus")]);

        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>my-bucket</Name><Prefix>logs/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated><Contents><Key>logs/a.txt</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>logs/b.txt</Key><LastModified>2024-01-03T00:00:00.500Z</LastModified><ETag>&quot;x&quot;</ETag><Size>1073741824000</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>logs/2024/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let headers = [("x-amz-request-id", "s3-list"), ("x-amz-id-2", "h2")];
        let parsed = parse("s3", "ListObjectsV2", &response(200, &headers, body));
        let expected = r#"{"ResponseMetadata": {"RequestId": "s3-list", "HostId": "h2"}, "IsTruncated": false, "Contents": [{"Key": "logs/a.txt", "LastModified": "2024-01-02T03:04:05Z", "ETag": "\"9b2cf535f27731c974343645a3985328\"", "ChecksumAlgorithm": ["CRC64NVME"], "Size": 5, "StorageClass": "STANDARD"}, {"Key": "logs/b.txt", "LastModified": "2024-01-03T00:00:00.5Z", "ETag": "\"x\"", "Size": 1073741824000, "StorageClass": "STANDARD"}], "Name": "my-bucket", "Prefix": "logs/", "Delimiter": "/", "MaxKeys": 1000, "CommonPrefixes": [{"Prefix": "logs/2024/"}], "KeyCount": 2}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn s3_objects_greedy_keys_header_maps_and_streamed_bodies() {
        let sent = request(
            "s3",
            "PutObject",
            json!({
                "Bucket": "my-bucket", "Key": "a/b c/d~e+f.txt", "Body": "hello wörld", "ContentType": "text/plain",
                "Metadata": {"owner": "me"}, "Tagging": "a=b&c=d", "ObjectLockRetainUntilDate": "2024-01-02T03:04:05.9Z"
            }),
        );
        assert_eq!((sent.method.as_str(), sent.path_and_query.as_str()), ("PUT", "/my-bucket/a/b%20c/d~e%2Bf.txt"));
        assert_eq!(
            headers(&sent),
            [
                ("Content-Type", "text/plain"),
                ("x-amz-meta-owner", "me"),
                ("x-amz-object-lock-retain-until-date", "2024-01-02T03:04:05Z"),
                ("x-amz-tagging", "a=b&c=d")
            ]
        );
        assert_eq!(body(&sent), "hello wörld");
        // Header timestamps go out to the second, as HTTP dates unless the model says otherwise.
        let sent = request(
            "s3",
            "GetObject",
            json!({"Bucket": "b", "Key": "k", "IfModifiedSince": "2024-01-02T04:04:05.9+01:00", "PartNumber": 2}),
        );
        assert_eq!(sent.path_and_query, "/b/k?partNumber=2");
        assert_eq!(headers(&sent), [("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT")]);

        let headers = [
            ("x-amz-request-id", "s3-get"),
            ("x-amz-id-2", "h3"),
            ("Content-Length", "11"),
            ("Last-Modified", "Tue, 02 Jan 2024 03:04:05 GMT"),
            ("ETag", "\"abc\""),
            ("Content-Type", "text/plain"),
            ("x-amz-meta-owner", "me"),
            ("x-amz-meta-Team", "ops"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-missing-meta", "2"),
            ("x-amz-delete-marker", "false"),
            ("x-amz-checksum-type", "FULL_OBJECT"),
        ];
        let parsed = parse("s3", "GetObject", &response(200, &headers, "hello wörld"));
        let expected = r#"{"ResponseMetadata": {"RequestId": "s3-get", "HostId": "h3"}, "DeleteMarker": false, "LastModified": "2024-01-02T03:04:05Z", "ContentLength": 11, "ETag": "\"abc\"", "ChecksumType": "FULL_OBJECT", "MissingMeta": 2, "ContentType": "text/plain", "ServerSideEncryption": "AES256", "Metadata": {"owner": "me", "team": "ops"}, "Body": "hello wörld"}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn s3_errors() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>missing</BucketName><RequestId>4442587FB7D0A2F9</RequestId><HostId>host-id</HostId></Error>"#;
        let headers = [("x-amz-request-id", "4442587FB7D0A2F9"), ("x-amz-id-2", "host-id")];
        let parsed = parse("s3", "GetBucketLogging", &response(404, &headers, body));
        let message = "The specified bucket does not exist";
        assert_eq!(parsed, Err(error(404, "NoSuchBucket", message, Some("4442587FB7D0A2F9"))));
        // HEAD errors have no body: the status is the code.
        let headers = [("x-amz-request-id", "head-req"), ("x-amz-id-2", "h")];
        let parsed = parse("s3", "HeadObject", &response(404, &headers, ""));
        assert_eq!(parsed, Err(error(404, "404", "Not Found", Some("head-req"))));
    }

    #[test]
    fn route53_change_resource_record_sets() {
        let sent = request(
            "route53",
            "ChangeResourceRecordSets",
            json!({
                "HostedZoneId": "Z0123456789ABC",
                "ChangeBatch": {"Comment": "web & api", "Changes": [
                    {"Action": "UPSERT", "ResourceRecordSet": {"Name": "www.example.com.", "Type": "A", "TTL": 300,
                        "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}]}},
                    {"Action": "CREATE", "ResourceRecordSet": {"Name": "api.example.com.", "Type": "A",
                        "AliasTarget": {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": "d123.cloudfront.net.", "EvaluateTargetHealth": false}}}
                ]}
            }),
        );
        assert_eq!(
            (sent.method.as_str(), sent.path_and_query.as_str()),
            ("POST", "/2013-04-01/hostedzone/Z0123456789ABC/rrset/")
        );
        assert!(sent.headers.is_empty());
        assert_eq!(
            body(&sent),
            "<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeBatch>\
             <Comment>web &amp; api</Comment><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>www.example.com.</Name>\
             <Type>A</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord><ResourceRecord>\
             <Value>192.0.2.2</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change><Change><Action>CREATE</Action>\
             <ResourceRecordSet><Name>api.example.com.</Name><Type>A</Type><AliasTarget><HostedZoneId>Z2FDTNDATAQYW2</HostedZoneId>\
             <DNSName>d123.cloudfront.net.</DNSName><EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget></ResourceRecordSet>\
             </Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"
        );
    }

    #[test]
    fn route53_list_resource_record_sets() {
        let sent = request(
            "route53",
            "ListResourceRecordSets",
            json!({"HostedZoneId": "Z0123456789ABC", "StartRecordName": "www.example.com.", "StartRecordType": "A", "MaxItems": "2"}),
        );
        assert_eq!(
            sent.path_and_query,
            "/2013-04-01/hostedzone/Z0123456789ABC/rrset?name=www.example.com.&type=A&maxitems=2"
        );
        assert!(sent.body.is_empty());

        let body = r#"<?xml version="1.0"?>
<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets><ResourceRecordSet><Name>example.com.</Name><Type>NS</Type><TTL>172800</TTL><ResourceRecords><ResourceRecord><Value>ns-1.awsdns-01.org.</Value></ResourceRecord><ResourceRecord><Value>ns-2.awsdns-02.com.</Value></ResourceRecord></ResourceRecords></ResourceRecordSet><ResourceRecordSet><Name>api.example.com.</Name><Type>A</Type><AliasTarget><HostedZoneId>Z2FDTNDATAQYW2</HostedZoneId><DNSName>d123.cloudfront.net.</DNSName><EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget></ResourceRecordSet></ResourceRecordSets><IsTruncated>true</IsTruncated><NextRecordName>www.example.com.</NextRecordName><NextRecordType>A</NextRecordType><MaxItems>2</MaxItems></ListResourceRecordSetsResponse>"#;
        let parsed =
            parse("route53", "ListResourceRecordSets", &response(200, &[("x-amzn-RequestId", "r53-list")], body));
        let expected = r#"{"ResponseMetadata": {"RequestId": "r53-list"}, "ResourceRecordSets": [{"Name": "example.com.", "Type": "NS", "TTL": 172800, "ResourceRecords": [{"Value": "ns-1.awsdns-01.org."}, {"Value": "ns-2.awsdns-02.com."}]}, {"Name": "api.example.com.", "Type": "A", "AliasTarget": {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": "d123.cloudfront.net.", "EvaluateTargetHealth": false}}], "IsTruncated": true, "NextRecordName": "www.example.com.", "NextRecordType": "A", "MaxItems": "2"}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn route53_error() {
        let body = r#"<?xml version="1.0"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>NoSuchHostedZone</Code><Message>No hosted zone found with ID: Z1</Message></Error><RequestId>r53-req</RequestId></ErrorResponse>"#;
        let parsed =
            parse("route53", "ListResourceRecordSets", &response(404, &[("x-amzn-RequestId", "r53-req")], body));
        assert_eq!(parsed, Err(error(404, "NoSuchHostedZone", "No hosted zone found with ID: Z1", Some("r53-req"))));
    }

    #[test]
    fn host_prefix_and_structure_payload() {
        let sent = request("s3control", "GetPublicAccessBlock", json!({"AccountId": "123456789012"}));
        assert_eq!(sent.host_prefix.as_deref(), Some("123456789012."));
        assert_eq!(sent.path_and_query, "/v20180820/configuration/publicAccessBlock");
        assert_eq!(headers(&sent), [("x-amz-account-id", "123456789012")]);

        let model = crate::aws::model::service("s3control").unwrap();
        let operation = model.operation("GetPublicAccessBlock").unwrap();
        let params = json!({"AccountId": "123/456"}).as_object().cloned().unwrap();
        assert!(super::serialize(&model, operation, &params).unwrap_err().contains("AccountId"));

        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<PublicAccessBlockConfiguration xmlns="http://awss3control.amazonaws.com/doc/2018-08-20/"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>"#;
        let parsed = parse("s3control", "GetPublicAccessBlock", &response(200, &[("x-amz-request-id", "ctl")], body));
        let expected = r#"{"ResponseMetadata": {"RequestId": "ctl", "HostId": ""}, "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "IgnorePublicAcls": false, "BlockPublicPolicy": true, "RestrictPublicBuckets": true}}"#;
        assert_eq!(parsed, Ok(expect(expected)));
    }

    #[test]
    fn bad_input_and_bad_responses() {
        let model = crate::aws::model::service("s3").unwrap();
        let operation = model.operation("GetBucketLogging").unwrap();
        let params = json!({"Bucket": "b", "Nope": 1}).as_object().cloned().unwrap();
        assert_eq!(super::serialize(&model, operation, &params), Err("unknown parameter Nope".into()));
        let params = json!({}).as_object().cloned().unwrap();
        assert!(super::serialize(&model, operation, &params).unwrap_err().contains("Bucket"));

        let parsed = parse("s3", "GetBucketLogging", &response(200, &[], "<BucketLoggingStatus><oops"));
        assert_eq!(parsed.map_err(|e| e.code), Err("InvalidResponse".into()));
        let parsed = parse("s3", "GetObject", &response(200, &[("content-length", "many")], ""));
        assert_eq!(parsed.map_err(|e| e.code), Err("InvalidResponse".into()));
        let parsed = parse("lambda", "GetFunction", &response(200, &[], "{"));
        assert_eq!(parsed.map_err(|e| e.code), Err("InvalidResponse".into()));
    }
}
