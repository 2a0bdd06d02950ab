//! What the protocol files share: a member's wire traits merged over its shape's (as botocore
//! resolves a shape reference), timestamps in and out, percent-encoding, host prefixes and the
//! pieces of a [`ServiceError`] every protocol builds the same way.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;
use serde_json::{Map, Number, Value};

use super::{Response, ServiceError};
use crate::aws::model::{Kind, Member, Model, Operation, Shape, XmlNamespace};

/// A shape as a member refers to it: botocore copies the reference's traits (`locationName`,
/// `flattened`, `xmlNamespace`, `timestampFormat`) over the shape's own, so a shape-level
/// `locationName` names every reference that does not give its own.
#[derive(Clone, Copy)]
pub(super) struct Ref<'a> {
    pub member: &'a Member,
    pub shape: &'a Shape,
}

impl<'a> Ref<'a> {
    pub fn new(model: &'a Model, member: &'a Member) -> Self {
        Ref { member, shape: model.shape(member) }
    }

    pub fn kind(&self) -> Kind {
        self.shape.kind
    }

    /// The wire name (`locationName`), if the reference or the shape gives one.
    pub fn name(&self) -> Option<&'a str> {
        self.member.location_name.as_deref().or(self.shape.location_name.as_deref())
    }

    pub fn flattened(&self) -> bool {
        self.member.flattened || self.shape.flattened
    }

    pub fn xml_namespace(&self) -> Option<&'a XmlNamespace> {
        self.member.xml_namespace.as_ref().or(self.shape.xml_namespace.as_ref())
    }

    pub fn timestamp_format(&self) -> Option<&'a str> {
        self.member.timestamp_format.as_deref().or(self.shape.timestamp_format.as_deref())
    }

    /// A list's element.
    pub fn element(&self, model: &'a Model) -> Result<Ref<'a>, String> {
        self.shape.member.as_deref().map(|member| Ref::new(model, member)).ok_or_else(|| self.broken("member"))
    }

    /// A map's key and value.
    pub fn entry(&self, model: &'a Model) -> Result<(Ref<'a>, Ref<'a>), String> {
        let key = self.shape.key.as_deref().ok_or_else(|| self.broken("key"))?;
        let value = self.shape.value.as_deref().ok_or_else(|| self.broken("value"))?;
        Ok((Ref::new(model, key), Ref::new(model, value)))
    }

    fn broken(&self, part: &str) -> String {
        format!("model shape {} has no {part}", self.member.shape)
    }
}

/// The operation's input as a reference, when it has one.
pub(super) fn input<'a>(model: &'a Model, operation: &'a Operation) -> Option<Ref<'a>> {
    operation.input.as_ref().map(|member| Ref::new(model, member))
}

pub(super) fn output<'a>(model: &'a Model, operation: &'a Operation) -> Option<Ref<'a>> {
    operation.output.as_ref().map(|member| Ref::new(model, member))
}

/// Rejects parameters the shape does not have: the callers walk members in model order, so an
/// unknown name would otherwise be dropped without a word.
pub(super) fn check_members(shape: &Shape, params: &Map<String, Value>) -> Result<(), String> {
    match params.keys().find(|key| !shape.members.contains_key(key.as_str())) {
        Some(key) => Err(format!("unknown parameter {key}")),
        None => Ok(()),
    }
}

/// A parameter's members in model order, skipping absent and null ones.
pub(super) fn present<'a>(
    model: &'a Model,
    shape: &'a Shape,
    params: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a str, Ref<'a>, &'a Value)> {
    shape.members.iter().filter_map(move |(name, member)| match params.get(name) {
        None | Some(Value::Null) => None,
        Some(value) => Some((name.as_str(), Ref::new(model, member), value)),
    })
}

/// A parameter expected to be an object.
pub(super) fn object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, String> {
    value.as_object().ok_or_else(|| format!("{what} must be an object"))
}

pub(super) fn array<'v>(value: &'v Value, what: &str) -> Result<&'v Vec<Value>, String> {
    value.as_array().ok_or_else(|| format!("{what} must be a list"))
}

/// A scalar as Python's `str()` writes it (booleans as `true`/`false`, which is what every
/// protocol sends).
pub(super) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A blob parameter's bytes: text is sent as its UTF-8 bytes.
pub(super) fn blob_bytes<'v>(value: &'v Value, what: &str) -> Result<&'v [u8], String> {
    value.as_str().map(str::as_bytes).ok_or_else(|| format!("{what} must be text"))
}

pub(super) fn base64(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
}

// ---- timestamps ----------------------------------------------------------------------------

/// A timestamp parameter: epoch seconds (a number or numeric text) or ISO-8601 text, with UTC
/// assumed when no offset is given (botocore's `parse_to_aware_datetime`). Precision is cut to
/// microseconds, as a Python `datetime` holds.
pub(super) fn input_timestamp(value: &Value) -> Result<Timestamp, String> {
    match value {
        Value::Number(number) => {
            number.as_f64().and_then(epoch).ok_or_else(|| format!("timestamp {number} is out of range"))
        }
        Value::String(text) => parse_timestamp(text).ok_or_else(|| format!("invalid timestamp {text:?}")),
        other => Err(format!("a timestamp must be text or a number, not {other}")),
    }
}

/// Epoch seconds to a timestamp rounded to the microsecond (Python's `fromtimestamp`).
pub(super) fn epoch(seconds: f64) -> Option<Timestamp> {
    if !seconds.is_finite() {
        return None;
    }
    let micros = (seconds * 1e6).round();
    if micros.abs() > 9.0e18 {
        return None;
    }
    Timestamp::from_microsecond(micros as i64).ok()
}

/// Timestamp text as services send it and dateutil reads it: epoch seconds, ISO-8601 with or
/// without an offset (none means UTC), a bare date, or an RFC 822 date (`Tue, 02 Jan 2024
/// 03:04:05 GMT`).
pub(super) fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return epoch(seconds);
    }
    let parsed = text
        .parse::<Timestamp>()
        .ok()
        .or_else(|| with_compact_offset(text))
        .or_else(|| text.parse::<DateTime>().ok().and_then(|civil| Offset::UTC.to_timestamp(civil).ok()))
        .or_else(|| {
            let civil = text.parse::<Date>().ok()?.to_datetime(jiff::civil::Time::midnight());
            Offset::UTC.to_timestamp(civil).ok()
        })
        .or_else(|| jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(text).ok())?;
    truncate_micros(parsed)
}

/// `2024-01-02T03:04:05.000+0000`, an offset without a colon, which some services send.
fn with_compact_offset(text: &str) -> Option<Timestamp> {
    let split = text.len().checked_sub(5)?;
    let (head, offset) = (text.get(..split)?, text.get(split..)?);
    let sign = offset.chars().next().filter(|c| *c == '+' || *c == '-')?;
    let digits = &offset[1..];
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    format!("{head}{sign}{}:{}", &digits[..2], &digits[2..]).parse().ok()
}

fn truncate_micros(timestamp: Timestamp) -> Option<Timestamp> {
    Timestamp::from_microsecond(timestamp.as_microsecond()).ok()
}

/// A timestamp as results carry it: ISO-8601 in UTC, with the fraction only when there is one
/// (`2024-01-02T03:04:05Z`, `2024-01-02T03:04:05.123Z`).
pub(super) fn timestamp_text(timestamp: Timestamp) -> String {
    let civil = Offset::UTC.to_datetime(timestamp);
    let micros = civil.subsec_nanosecond() / 1000;
    let fraction = if micros == 0 { String::new() } else { format!(".{micros:06}").trim_end_matches('0').to_string() };
    format!("{}{fraction}Z", seconds_text(civil))
}

fn seconds_text(civil: DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        civil.year(),
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second()
    )
}

/// A timestamp parameter in one of the model's `timestampFormat`s, as botocore writes it:
/// `iso8601` with microseconds only when there are some, `unixtimestamp` as an integer unless
/// there is a fraction, `rfc822` as an HTTP date.
pub(super) fn format_timestamp(value: &Value, format: &str) -> Result<Value, String> {
    let timestamp = input_timestamp(value)?;
    let civil = Offset::UTC.to_datetime(timestamp);
    let micros = civil.subsec_nanosecond() / 1000;
    match format.to_ascii_lowercase().as_str() {
        "iso8601" => {
            let fraction = if micros == 0 { String::new() } else { format!(".{micros:06}") };
            Ok(Value::String(format!("{}{fraction}Z", seconds_text(civil))))
        }
        "unixtimestamp" => {
            if micros == 0 {
                Ok(Value::Number(timestamp.as_second().into()))
            } else {
                // Microseconds since the epoch, exact in an f64 for ±285 years, divided once
                // (and so rounded once, as botocore's integer division is); before 1970 the
                // fraction counts back from the whole second after.
                let exact = timestamp.as_microsecond() as f64 / 1e6;
                Number::from_f64(exact).map(Value::Number).ok_or_else(|| "timestamp out of range".to_string())
            }
        }
        "rfc822" => {
            const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            const MONTHS: [&str; 12] =
                ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            let day = DAYS[usize::from(civil.weekday().to_monday_zero_offset() as u8)];
            let month = MONTHS[usize::from(civil.month().clamp(1, 12) as u8) - 1];
            Ok(Value::String(format!(
                "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
                civil.day(),
                civil.year(),
                civil.hour(),
                civil.minute(),
                civil.second()
            )))
        }
        other => Err(format!("unknown timestamp format {other}")),
    }
}

/// The text of a timestamp parameter in `format`, for query strings, URIs, headers and XML.
pub(super) fn timestamp_param(value: &Value, format: &str) -> Result<String, String> {
    format_timestamp(value, format).map(|formatted| scalar_text(&formatted))
}

// ---- scalars read from text (XML elements and headers) --------------------------------------

/// A scalar response value from its text: numbers for integer and float shapes, booleans,
/// timestamps as ISO-8601 text, blobs as base64 text (re-encoded, which drops line breaks).
pub(super) fn scalar_from_text(kind: Kind, text: &str) -> Result<Value, String> {
    match kind {
        Kind::Integer | Kind::Long => {
            let trimmed = text.trim();
            trimmed
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| trimmed.parse::<u64>().map(Value::from))
                .map_err(|_| format!("invalid integer {text:?}"))
        }
        Kind::Float | Kind::Double => {
            let number: f64 = text.trim().parse().map_err(|_| format!("invalid number {text:?}"))?;
            // JSON has no NaN or infinity: keep the service's word for them.
            Ok(Number::from_f64(number).map(Value::Number).unwrap_or_else(|| Value::String(text.trim().into())))
        }
        Kind::Boolean => Ok(Value::Bool(text.trim().eq_ignore_ascii_case("true"))),
        Kind::Timestamp => parse_timestamp(text)
            .map(|timestamp| Value::String(timestamp_text(timestamp)))
            .ok_or_else(|| format!("invalid timestamp {text:?}")),
        Kind::Blob => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            aws_smithy_types::base64::decode(&compact)
                .map(|bytes| Value::String(base64(&bytes)))
                .map_err(|_| format!("invalid base64 {text:?}"))
        }
        _ => Ok(Value::String(text.to_string())),
    }
}

// ---- percent-encoding -------------------------------------------------------------------------

/// Python's `urllib.parse.quote(text, safe)`: letters, digits and `_.-~` stay, as do the
/// `safe` characters; every other UTF-8 byte becomes `%XX`.
pub(super) fn percent_encode(text: &str, safe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_encoded(&mut out, text, safe.as_bytes(), false);
    out
}

/// Appends `text` percent-encoded; with `plus`, a space becomes `+`.
fn push_encoded(out: &mut String, text: &str, safe: &[u8], plus: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) || safe.contains(&byte) {
            out.push(char::from(byte));
        } else if plus && byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// Python's `urlencode` of form pairs (`quote_plus`: spaces become `+`, `/` is encoded).
pub(super) fn form_encode(pairs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_encoded(&mut out, key, b"", true);
        out.push('=');
        push_encoded(&mut out, value, b"", true);
    }
    out
}

// ---- host prefix ------------------------------------------------------------------------------

/// The operation's host prefix with its `{Label}`s filled from the members marked `hostLabel`
/// (botocore `_expand_host_prefix`), which may hold only letters, digits, hyphens and periods.
pub(super) fn host_prefix(
    model: &Model,
    operation: &Operation,
    params: &Map<String, Value>,
) -> Result<Option<String>, String> {
    let Some(template) = operation.endpoint.as_ref().map(|endpoint| endpoint.host_prefix.as_str()) else {
        return Ok(None);
    };
    let Some(input) = input(model, operation) else {
        return Ok(Some(template.to_string()));
    };
    let mut prefix = template.to_string();
    for (name, member) in &input.shape.members {
        if !member.host_label {
            continue;
        }
        let value = params.get(name).map(scalar_text).unwrap_or_default();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
            return Err(format!(
                "invalid value for parameter {name}: must contain only alphanumeric characters, hyphen, or period"
            ));
        }
        prefix = prefix.replace(&format!("{{{name}}}"), &value);
    }
    Ok(Some(prefix))
}

// ---- errors -----------------------------------------------------------------------------------

/// A response that could not be read as the protocol says.
pub(super) fn invalid_response(response: &Response, message: impl std::fmt::Display) -> ServiceError {
    ServiceError {
        status: response.status,
        code: "InvalidResponse".into(),
        message: format!("unable to parse the response: {message}"),
        request_id: header_request_id(response),
    }
}

/// The request id headers carry (`x-amzn-requestid`, or S3's `x-amz-request-id`).
pub(super) fn header_request_id(response: &Response) -> Option<String> {
    response.header("x-amzn-requestid").or_else(|| response.header("x-amz-request-id")).map(str::to_string)
}

/// The error botocore reports when there is nothing protocol-shaped to read: the status code as
/// the code and its reason phrase as the message.
pub(super) fn status_error(response: &Response) -> ServiceError {
    ServiceError {
        status: response.status,
        code: response.status.to_string(),
        message: reason_phrase(response.status).to_string(),
        request_id: header_request_id(response),
    }
}

/// A 5xx with an empty or HTML body (a proxy or load balancer answering): botocore reads no
/// protocol error out of it.
pub(super) fn generic_error(response: &Response) -> Option<ServiceError> {
    let body = response.body.trim_ascii();
    (response.status >= 500 && (body.is_empty() || body.starts_with(b"<html>"))).then(|| status_error(response))
}

/// Python's `http.client.responses`.
pub(super) fn reason_phrase(status: u16) -> &'static str {
    match status {
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Adds `ResponseMetadata.RequestId` to a parsed result.
pub(super) fn with_request_id(mut parsed: Map<String, Value>, request_id: Option<String>) -> Value {
    if let Some(id) = request_id {
        let mut metadata = Map::new();
        metadata.insert("RequestId".into(), Value::String(id));
        parsed.insert("ResponseMetadata".into(), Value::Object(metadata));
    }
    Value::Object(parsed)
}

/// Helpers the protocol tests share: requests and responses through the public entry points,
/// with models from the bundle.
#[cfg(test)]
pub(super) mod testing {
    use serde_json::Value;

    use super::super::{Request, Response, ServiceError};
    use crate::aws::model;

    pub fn request(service: &str, operation: &str, params: Value) -> Request {
        let model = model::service(service).expect("bundled service");
        let operation = model.operation(operation).expect("known operation");
        let params = params.as_object().cloned().expect("params object");
        super::super::serialize(&model, operation, &params).expect("serialises")
    }

    pub fn parse(service: &str, operation: &str, response: &Response) -> Result<Value, ServiceError> {
        let model = model::service(service).expect("bundled service");
        super::super::parse(&model, model.operation(operation).expect("known operation"), response)
    }

    /// A response; header names are lower-cased as the transport gives them.
    pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// Headers sorted, to compare with botocore's dict.
    pub fn headers(request: &Request) -> Vec<(&str, &str)> {
        let mut headers: Vec<(&str, &str)> = request.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        headers.sort_unstable();
        headers
    }

    pub fn body(request: &Request) -> &str {
        std::str::from_utf8(&request.body).expect("utf-8 body")
    }

    pub fn expect(json: &str) -> Value {
        serde_json::from_str(json).expect("expectation is JSON")
    }

    pub fn error(status: u16, code: &str, message: &str, request_id: Option<&str>) -> ServiceError {
        ServiceError { status, code: code.into(), message: message.into(), request_id: request_id.map(String::from) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: &str) -> String {
        parse_timestamp(value).map(timestamp_text).unwrap_or_else(|| format!("unparsed {value}"))
    }

    #[test]
    fn timestamps_read_every_form_services_send() {
        assert_eq!(text("2024-01-02T03:04:05Z"), "2024-01-02T03:04:05Z");
        assert_eq!(text("2024-01-02T03:04:05.000Z"), "2024-01-02T03:04:05Z");
        assert_eq!(text("2024-01-02T03:04:05.120Z"), "2024-01-02T03:04:05.12Z");
        assert_eq!(text("2024-01-02T04:04:05+01:00"), "2024-01-02T03:04:05Z");
        assert_eq!(text("2024-01-02T03:04:05.000+0000"), "2024-01-02T03:04:05Z");
        assert_eq!(text("2024-01-02T03:04:05"), "2024-01-02T03:04:05Z");
        assert_eq!(text("2024-01-02"), "2024-01-02T00:00:00Z");
        assert_eq!(text("Tue, 02 Jan 2024 03:04:05 GMT"), "2024-01-02T03:04:05Z");
        assert_eq!(text("1704164645"), "2024-01-02T03:04:05Z");
        assert_eq!(text("1704164645.123"), "2024-01-02T03:04:05.123Z");
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn timestamps_write_as_botocore_does() {
        let at = json!("2024-01-02T03:04:05Z");
        assert_eq!(format_timestamp(&at, "iso8601").unwrap(), json!("2024-01-02T03:04:05Z"));
        assert_eq!(format_timestamp(&at, "unixTimestamp").unwrap(), json!(1704164645));
        assert_eq!(format_timestamp(&at, "rfc822").unwrap(), json!("Tue, 02 Jan 2024 03:04:05 GMT"));
        let fraction = json!(1704164645.5);
        assert_eq!(format_timestamp(&fraction, "iso8601").unwrap(), json!("2024-01-02T03:04:05.500000Z"));
        assert_eq!(format_timestamp(&fraction, "unixtimestamp").unwrap(), json!(1704164645.5));
        // Before 1970 the fraction still counts forward from the earlier whole second.
        assert_eq!(format_timestamp(&json!("1969-12-31T23:59:59.5Z"), "unixtimestamp").unwrap(), json!(-0.5));
        let before = json!("1950-06-01T00:00:00.123456Z");
        assert_eq!(format_timestamp(&before, "unixtimestamp").unwrap(), json!(-618105599.876544));
        assert!(format_timestamp(&json!("soon"), "iso8601").is_err());
        assert!(format_timestamp(&json!(true), "iso8601").is_err());
    }

    #[test]
    fn encoding_matches_python_quote() {
        assert_eq!(percent_encode("a b/c~d:é", ""), "a%20b%2Fc~d%3A%C3%A9");
        assert_eq!(percent_encode("a b/c", "/~"), "a%20b/c");
        let pairs = [("A.1".to_string(), "x y&z=/+".to_string())];
        assert_eq!(form_encode(&pairs), "A.1=x+y%26z%3D%2F%2B");
    }

    #[test]
    fn scalars_from_text() {
        assert_eq!(scalar_from_text(Kind::Integer, " 42 ").unwrap(), json!(42));
        assert_eq!(scalar_from_text(Kind::Double, "1.5").unwrap(), json!(1.5));
        assert_eq!(scalar_from_text(Kind::Boolean, "true").unwrap(), json!(true));
        assert_eq!(scalar_from_text(Kind::Blob, "aGk=\n").unwrap(), json!("aGk="));
        assert!(scalar_from_text(Kind::Integer, "").is_err());
        assert!(scalar_from_text(Kind::Timestamp, "never").is_err());
    }
}
