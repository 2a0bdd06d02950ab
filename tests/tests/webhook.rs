//! `aws:invokeWebhook` against a local HTTP server the test starts: the integration comes
//! from a local mapping (`--integrations FILE`) or, as AWS stores it, from a SecureString in
//! Parameter Store (moto). The integration's URL and headers are secrets: never printed, never
//! journaled.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use runbook_tests::moto::moto;
use runbook_tests::{Output, Scratch, runbook};
use serde_json::{Value, json};

/// A request the server received.
#[derive(Debug)]
struct Received {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Serves one request on a free loopback port with `status` and `body`; returns the port and
/// what the request was.
fn serve_once(status: u16, body: &'static str) -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let Some((name, value)) = header.trim_end().split_once(':') else { break };
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length = headers.iter().find(|(name, _)| name == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        let mut bytes = vec![0; length];
        reader.read_exact(&mut bytes).unwrap();
        let reply =
            format!("HTTP/1.1 {status} Whatever\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        (&stream).write_all(reply.as_bytes()).unwrap();
        let _ = sender.send(Received {
            line: line.trim_end().to_owned(),
            headers,
            body: String::from_utf8(bytes).unwrap(),
        });
    });
    (port, receiver)
}

fn runbook_text(body: Option<&str>) -> String {
    let body = body.map(|body| format!(", Body: '{body}'")).unwrap_or_default();
    format!(
        "schemaVersion: '0.3'\nparameters:\n  Who: {{type: String, default: ops}}\nmainSteps:\n  - name: notify\n    \
         action: aws:invokeWebhook\n    inputs: {{IntegrationName: chat{body}}}\n    outputs:\n      \
         - {{Name: Text, Selector: $.Response, Type: String}}\noutputs: [notify.Text, notify.ResponseCode]\n"
    )
}

fn events(output: &Output) -> Vec<Value> {
    output.stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

fn finished(output: &Output) -> Value {
    events(output)
        .into_iter()
        .find(|e| e["event"] == "execution_finished")
        .unwrap_or_else(|| panic!("no execution_finished\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr))
}

fn journal_bytes(scratch: &Scratch) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(scratch.state()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    bytes
}

#[test]
fn a_webhook_from_the_local_mapping_is_called_and_its_secrets_stay_sealed() {
    let (port, received) = serve_once(200, "ok, posted");
    let scratch = Scratch::new("webhook-local");
    let token = "T0KEN-in-the-url";
    let integrations = scratch.runbook(
        "integrations.yaml",
        &format!(
            "chat:\n  url: http://127.0.0.1:{port}/hooks/{token}\n  headers: {{Authorization: Bearer hdr-s3cret}}\n  \
             payload: '{{\"text\": \"default\"}}'\n"
        ),
    );
    let path = scratch.runbook("runbook.yaml", &runbook_text(Some("{\"text\": \"hello {{ Who }}\"}")));
    let state = scratch.state();
    let output = runbook(&["run", &path, "--state-dir", &state, "--format", "json", "--integrations", &integrations]);
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    let request = received.recv().unwrap();
    assert_eq!(request.line, format!("POST /hooks/{token} HTTP/1.1"));
    assert!(request.headers.contains(&("authorization".into(), "Bearer hdr-s3cret".into())), "{request:?}");
    assert_eq!(request.body, "{\"text\": \"hello ops\"}");
    assert_eq!(finished(&output)["outputs"], json!({"notify.Text": ["ok, posted"], "notify.ResponseCode": ["200"]}));
    let journal = journal_bytes(&scratch);
    for secret in [token, "hdr-s3cret"] {
        assert!(!output.stdout.contains(secret) && !output.stderr.contains(secret), "{secret} was printed");
        assert!(!journal.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is in the journal");
    }
}

#[test]
fn a_webhook_that_answers_an_error_fails_the_step_without_showing_its_url() {
    let (port, _received) = serve_once(500, "upstream down");
    let scratch = Scratch::new("webhook-error");
    let integrations = scratch
        .runbook("integrations.json", &json!({"chat": {"url": format!("http://127.0.0.1:{port}/x/k3y")}}).to_string());
    let path = scratch.runbook("runbook.yaml", &runbook_text(None));
    let state = scratch.state();
    let output = runbook(&["run", &path, "--state-dir", &state, "--format", "json", "--integrations", &integrations]);
    assert_eq!(output.code, 4, "{}", output.stderr);
    let step = events(&output).into_iter().find(|e| e["event"] == "step_finished").unwrap();
    assert_eq!(step["error"], "webhook `chat` answered HTTP 500: upstream down");
    assert!(!output.stdout.contains("k3y"));
}

/// As AWS stores it: a SecureString under the reserved namespace, holding JSON; without
/// `Body`, the integration's default payload is sent.
#[test]
fn a_webhook_integration_stored_in_parameter_store() {
    let Some(moto) = moto("a_webhook_integration_stored_in_parameter_store") else { return };
    let (port, received) = serve_once(202, "accepted");
    let scratch = Scratch::new("webhook-ssm");
    let definition = json!({
        "description": "on-call chat", "url": format!("http://127.0.0.1:{port}/stored/s3cret-path"),
        "payload": "{\"text\": \"from the integration\"}",
    });
    moto.boto3(&format!(
        "boto3.client('ssm').put_parameter(Name='/d9d01087-4a3f-49e0-b0b4-d568d7826553/ssm/integrations/webhook/chat', \
         Value={value:?}, Type='SecureString')\nemit(True)",
        value = definition.to_string()
    ));
    let path = scratch.runbook("runbook.yaml", &runbook_text(None));
    let output = moto.runbook(&scratch, &["run", &path, "--format", "json"]);
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    let request = received.recv().unwrap();
    assert_eq!(request.line, "POST /stored/s3cret-path HTTP/1.1");
    assert_eq!(request.body, "{\"text\": \"from the integration\"}");
    assert_eq!(finished(&output)["outputs"]["notify.ResponseCode"], json!(["202"]));
    assert!(!output.stdout.contains("s3cret-path"));
    assert!(!journal_bytes(&scratch).windows(11).any(|w| w == b"s3cret-path"));
}
