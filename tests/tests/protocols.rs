//! The AWS wire protocols against botocore: for every operation of every bundled service, the
//! engine's request for sample parameters and its result for a sample response must be the
//! ones botocore gives (`tests/moto/oracle.py` builds the samples and asks botocore, in the
//! virtual environment with the pinned botocore). Without that Python the test skips, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;

use runbook::aws::model::{self, Protocol};
use runbook::aws::protocol::{self, Response};
use runbook_tests::moto::venv_python;
use runbook_tests::project_root;
use serde_json::Value;

/// Responses botocore gives no result for, beyond event streams (botocore reads those from a
/// live connection and the engine leaves them out, which the test checks against the model):
/// (service, operation, why).
const UNPARSED: &[(&str, &str, &str)] = &[(
    "s3",
    "GetBucketNotification",
    // The deprecated `Event` member and the flattened `Events` list both read `<Event>`
    // elements; with more than one, botocore puts an XML element object into the result.
    "Event and Events share the element name Event",
)];

#[test]
fn requests_and_responses_match_botocore() {
    let Some(python) = venv_python("requests_and_responses_match_botocore") else {
        return;
    };
    let services: Vec<(&str, Protocol)> = model::service_names()
        .into_iter()
        .map(|name| (name, model::service(name).expect("bundled service").metadata.protocol))
        .collect();
    // Every wire protocol is among them, smithy-rpc-v2-cbor (three services) too.
    assert!(services.iter().any(|(_, protocol)| *protocol == Protocol::RpcV2Cbor), "no CBOR service is bundled");
    let output = Command::new(&python)
        .arg(project_root().join("tests/moto/oracle.py"))
        .args(services.iter().map(|(name, protocol)| format!("{name}={}", protocol.name())))
        .output()
        .unwrap();
    assert!(output.status.success(), "oracle.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let cases: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cases["botocore"], model::botocore_version(), "the bundle and the virtual environment differ");

    let mut failures = Vec::new();
    let requests = cases["requests"].as_array().unwrap();
    for case in requests {
        if let Err(problem) = check_request(case) {
            failures.push(format!("request {}.{}: {problem}", text(case, "service"), text(case, "operation")));
        }
    }
    let responses = cases["responses"].as_array().unwrap();
    for case in responses {
        if let Err(problem) = check_response(case) {
            failures.push(format!("response {}.{}: {problem}", text(case, "service"), text(case, "operation")));
        }
    }
    let unparsed = cases["unparsed"].as_array().unwrap();
    failures.extend(check_coverage(requests, responses, unparsed));
    let shown: Vec<&str> = failures.iter().take(40).map(String::as_str).collect();
    assert!(failures.is_empty(), "{} differences from botocore:\n{}", failures.len(), shown.join("\n"));

    // Straight to the terminal: the test harness captures `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "protocols: {} requests and {} responses match botocore {} across {} services",
        requests.len(),
        responses.len(),
        model::botocore_version(),
        services.len()
    );
}

fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let pairs = text.as_bytes().chunks(2);
    pairs
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("the body is not hexadecimal: {text}"))
}

fn text<'v>(case: &'v Value, key: &str) -> &'v str {
    case[key].as_str().unwrap_or_else(|| panic!("case has no text {key}: {case}"))
}

/// The engine's request against botocore's: method, path and query string, the headers the
/// protocol sets, host prefix, and the body (JSON bodies as JSON: botocore writes `", "`
/// separators and `\u` escapes; CBOR bodies byte for byte, in hexadecimal).
fn check_request(case: &Value) -> Result<(), String> {
    let model = model::service(text(case, "service")).ok_or("service not bundled")?;
    let operation = model.operation(text(case, "operation")).ok_or("operation not in the bundle")?;
    let params = case["params"].as_object().ok_or("params are not an object")?;
    let sent = protocol::serialize(&model, operation, params).map_err(|error| format!("not serialised: {error}"))?;
    let expected = &case["expected"];

    let mut problems = Vec::new();
    if sent.method != text(expected, "method") {
        problems.push(format!("method {} instead of {}", sent.method, expected["method"]));
    }
    if sent.path_and_query != text(expected, "path") {
        problems.push(format!("path {:?} instead of {}", sent.path_and_query, expected["path"]));
    }
    let headers: BTreeMap<&str, &str> =
        sent.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let wanted: BTreeMap<&str, &str> = expected["headers"]
        .as_object()
        .ok_or("expected headers are not an object")?
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str().unwrap_or_default()))
        .collect();
    if headers != wanted || headers.len() != sent.headers.len() {
        problems.push(format!("headers {:?} instead of {wanted:?}", sent.headers));
    }
    if sent.host_prefix.as_deref() != expected["host_prefix"].as_str() {
        problems.push(format!("host prefix {:?} instead of {}", sent.host_prefix, expected["host_prefix"]));
    }
    let body = match model.metadata.protocol {
        Protocol::RpcV2Cbor => sent.body.iter().map(|byte| format!("{byte:02x}")).collect::<String>().into(),
        _ => String::from_utf8_lossy(&sent.body),
    };
    let wanted = text(expected, "body");
    let is_json = matches!(model.metadata.protocol, Protocol::Json | Protocol::RestJson);
    let same = match (is_json, serde_json::from_str::<Value>(&body), serde_json::from_str::<Value>(wanted)) {
        (true, Ok(ours), Ok(theirs)) => ours == theirs,
        _ => body == wanted,
    };
    if !same {
        problems.push(format!("body\n  {body}\ninstead of\n  {wanted}"));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

/// The engine's result for a response against botocore's parsed result.
fn check_response(case: &Value) -> Result<(), String> {
    let model = model::service(text(case, "service")).ok_or("service not bundled")?;
    let operation = model.operation(text(case, "operation")).ok_or("operation not in the bundle")?;
    let headers = case["headers"].as_object().ok_or("headers are not an object")?;
    let response = Response {
        status: case["status"].as_u64().and_then(|status| u16::try_from(status).ok()).ok_or("no status")?,
        headers: headers
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().into()))
            .collect(),
        body: match model.metadata.protocol {
            Protocol::RpcV2Cbor => from_hex(text(case, "body"))?,
            _ => text(case, "body").as_bytes().to_vec(),
        },
    };
    let parsed = protocol::parse(&model, operation, &response).map_err(|error| format!("not parsed: {error:?}"))?;
    if parsed == case["expected"] {
        Ok(())
    } else {
        Err(format!("result\n  {parsed}\ninstead of\n  {}\nfor the body\n  {}", case["expected"], text(case, "body")))
    }
}

/// Every operation of every bundled service has a request case, and a response case unless
/// its output is an event stream or [`UNPARSED`] says why botocore gives no result; every
/// entry of [`UNPARSED`] is still needed.
fn check_coverage(requests: &[Value], responses: &[Value], unparsed: &[Value]) -> Vec<String> {
    let key = |case: &Value| (text(case, "service").to_string(), text(case, "operation").to_string());
    let all: BTreeSet<(String, String)> = model::service_names()
        .into_iter()
        .flat_map(|name| {
            let model = model::service(name).expect("bundled service");
            model.operations.keys().map(|operation| (name.to_string(), operation.to_string())).collect::<Vec<_>>()
        })
        .collect();
    let mut failures = Vec::new();
    let requested: BTreeSet<_> = requests.iter().map(key).collect();
    failures.extend(
        all.difference(&requested).map(|(service, operation)| format!("no request case for {service}.{operation}")),
    );

    let mut answered: BTreeSet<_> = responses.iter().map(key).collect();
    for case in unparsed {
        let (service, operation) = key(case);
        let reason = text(case, "reason");
        let allowed = if reason == "event stream" {
            event_stream_output(&service, &operation)
        } else {
            UNPARSED.iter().any(|(s, o, _)| (*s, *o) == (service.as_str(), operation.as_str()))
        };
        if !allowed {
            failures.push(format!("botocore gives no result for {service}.{operation}: {reason}"));
        }
        answered.insert((service, operation));
    }
    failures.extend(
        all.difference(&answered).map(|(service, operation)| format!("no response case for {service}.{operation}")),
    );
    for (service, operation, _) in UNPARSED {
        if !unparsed.iter().any(|case| key(case) == (service.to_string(), operation.to_string())) {
            failures.push(format!("UNPARSED lists {service}.{operation}, which botocore now parses"));
        }
    }
    failures
}

/// Whether the operation's output has an event stream member, in the engine's model.
fn event_stream_output(service: &str, operation: &str) -> bool {
    let Some(model) = model::service(service) else {
        return false;
    };
    let Some(output) = model.operation(operation).and_then(|operation| operation.output.as_ref()) else {
        return false;
    };
    model.shape(output).members.values().any(|member| model.shape(member).event_stream)
}
