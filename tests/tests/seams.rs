//! The seams are real: the runner walks a runbook with an `Executors` implementation that
//! needs no Python and no network, under paused time (tokio's clock drives sleeps, retries
//! and timeouts); and the AWS client sends through a `Transport` that answers itself, with
//! throttling, service errors and canned responses.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use runbook::actions::{self, BoxFuture, Catalogue, Context, Executors, Failure, Output};
use runbook::aws::{self, Aws, Credentials, Response, Transport, transport};
use runbook::exec::{self, Engine, Event, Interrupt, Observer};
use runbook::journal::{self, Journal, Status};
use runbook_tests::Scratch;
use serde_json::{Map, Value, json};

/// Answers steps by name, as a scenario test would: scripted outputs, failures for the first
/// attempts, or the real executor (a sleep) where the test wants the engine's own.
struct Scripted {
    outputs: HashMap<&'static str, Value>,
    /// Step -> how many attempts fail before one succeeds.
    flaky: HashMap<&'static str, u32>,
    /// Every attempt asked for, as `step#attempt`.
    asked: RefCell<Vec<String>>,
}

impl Executors for Scripted {
    fn execute<'c>(
        &'c self,
        context: &'c Context<'c>,
        inputs: &'c Map<String, Value>,
    ) -> BoxFuture<'c, actions::Result> {
        let step = context.step.name.as_str();
        self.asked.borrow_mut().push(format!("{step}#{}", context.attempt));
        // The engine's own executors for the local actions: they need no Python either.
        if matches!(step, "decide" | "nap" | "stuck") {
            return Catalogue.execute(context, inputs);
        }
        let result = match self.flaky.get(step) {
            Some(failures) if context.attempt <= *failures => Err(Failure::error(format!("{step} is not ready"))),
            _ => {
                let root = self.outputs.get(step).cloned().unwrap_or_else(|| json!({}));
                Ok(Output { root, ..Output::empty() })
            }
        };
        Box::pin(async move { result })
    }
}

#[derive(Default)]
struct Recorded(RefCell<Vec<Event>>);

impl Observer for Recorded {
    fn event(&self, event: &Event) {
        self.0.borrow_mut().push(event.clone());
    }
}

const RUNBOOK: &str = r#"schemaVersion: '0.3'
mainSteps:
  - name: check
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances, InstanceIds: [i-1]}
    outputs:
      - {Name: State, Selector: '$.Reservations[0].Instances[0].State.Name', Type: String}
  - name: decide
    action: aws:branch
    inputs:
      Choices:
        - {NextStep: restart, Variable: '{{ check.State }}', StringEquals: stopped}
      Default: done
  - name: restart
    action: aws:executeScript
    maxAttempts: 3
    x-retry: {delaySeconds: 30, jitter: false}
    inputs: {Runtime: python3.11, Handler: h, Script: 'this is never run'}
  - name: nap
    action: aws:sleep
    inputs: {Duration: PT6H}
  - name: stuck
    action: aws:sleep
    timeoutSeconds: 60
    onFailure: Continue
    inputs: {Duration: PT2H}
  - name: done
    action: aws:executeScript
    isEnd: true
    inputs: {Runtime: python3.11, Handler: h, Script: 'this is never run either'}
outputs: [check.State]
"#;

#[tokio::test(start_paused = true)]
async fn a_runner_with_scripted_executors_needs_no_python_no_network_and_no_waiting() {
    let scratch = Scratch::new("seam-executors");
    let path = scratch.runbook("runbook.yaml", RUNBOOK);
    let prepared = exec::prepare(std::path::Path::new(&path), Vec::new(), true).map_err(|e| e.to_string()).unwrap();
    let plan = runbook::plan::plan(&prepared.runbook);
    let request = prepared.request(&plan);
    let executors = Scripted {
        outputs: [("check", json!({"Reservations": [{"Instances": [{"State": {"Name": "stopped"}}]}]}))].into(),
        flaky: [("restart", 2)].into(),
        asked: RefCell::default(),
    };
    let store = journal::Store::Local(Journal::open(std::path::Path::new(&scratch.state())).unwrap());
    let recorded = Recorded::default();
    let engine = Engine { executors: &executors, ..Engine::new(&store, &recorded) };
    // No python3 and no AWS: a failure to reach either would show in the outcome.
    let config = exec::Config { python: "/nonexistent/python3".into(), ..exec::Config::default() };
    let (_cancel, cancelled) = tokio::sync::watch::channel(Interrupt::None);
    let started = tokio::time::Instant::now();
    let finished = exec::run(&request, &config, &engine, cancelled).await.unwrap();

    assert_eq!(finished.status, Status::Success);
    assert_eq!(finished.outputs, json!({"check.State": ["stopped"]}));
    assert_eq!(
        *executors.asked.borrow(),
        ["check#1", "decide#1", "restart#1", "restart#2", "restart#3", "nap#1", "stuck#1", "done#1"]
    );
    // Paused time: the retries (30 s, 60 s), the six-hour sleep and the one-minute timeout
    // passed on tokio's clock, not the wall's.
    assert_eq!(started.elapsed().as_secs(), 30 + 60 + 6 * 3600 + 60);
    let steps = store.steps(&finished.execution_id).unwrap();
    let statuses: Vec<_> = steps.iter().map(|s| (s.step.as_str(), s.status, s.attempts)).collect();
    assert_eq!(
        statuses,
        [
            ("check", Status::Success, 1),
            ("decide", Status::Success, 1),
            ("restart", Status::Success, 3),
            ("nap", Status::Success, 1),
            ("stuck", Status::TimedOut, 1),
            ("done", Status::Success, 1),
        ]
    );
    let failed: Vec<_> = recorded
        .0
        .borrow()
        .iter()
        .filter_map(|event| match event {
            Event::AttemptFailed { step, attempt, retry_in_ms, .. } => Some((step.clone(), *attempt, *retry_in_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [("restart".to_owned(), 1, Some(30_000)), ("restart".to_owned(), 2, Some(60_000))]);
}

/// Answers requests from a list, and keeps what it was sent.
struct Canned {
    answers: Mutex<Vec<(u16, Value)>>,
    sent: Mutex<Vec<transport::Request>>,
}

impl Transport for Canned {
    fn send(&self, request: transport::Request) -> transport::BoxFuture<'_, Result<Response, String>> {
        self.sent.lock().unwrap().push(request);
        let (status, body) = self.answers.lock().unwrap().remove(0);
        let headers = vec![("x-amzn-requestid".to_owned(), "req-1".to_owned())];
        Box::pin(async move { Ok(Response { status, headers, body: body.to_string().into_bytes() }) })
    }
}

fn canned(answers: Vec<(u16, Value)>) -> (Arc<Canned>, Arc<Aws>) {
    let transport = Arc::new(Canned { answers: Mutex::new(answers), sent: Mutex::default() });
    let settings = aws::Settings {
        endpoint_url: Some("https://ssm.test.invalid".into()),
        profile: None,
        region: Some("us-east-1".into()),
    };
    let credentials = Credentials::new("AKIDTEST", "secret-key", None, None, "test");
    let client = Aws::with_transport(settings, transport.clone(), Some(credentials));
    (transport, client)
}

#[tokio::test(start_paused = true)]
async fn the_transport_seam_answers_throttling_errors_and_canned_responses() {
    let throttled = json!({"__type": "ThrottlingException", "message": "Rate exceeded"});
    let parameter = json!({"Parameter": {"Name": "/app/mode", "Value": "blue", "Type": "String"}});
    let (transport, client) = canned(vec![(400, throttled.clone()), (400, throttled), (200, parameter)]);
    let params: Map<String, Value> = [("Name".to_owned(), json!("/app/mode"))].into_iter().collect();
    let call = aws::Call { service: "ssm", api: "get_parameter", params: &params, role: None, token_seed: "t" };
    let response = client.call(&call).await.unwrap();
    assert_eq!(response["Parameter"]["Value"], "blue");
    assert_eq!(response["ResponseMetadata"]["RetryAttempts"], 2);
    let sent = transport.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3, "two throttled tries, then the answer");
    let header = |name: &str| {
        sent[0].headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    };
    assert_eq!(header("x-amz-target").as_deref(), Some("AmazonSSM.GetParameter"));
    assert!(header("authorization").is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")));

    let (_, client) = canned(vec![(400, json!({"__type": "ParameterNotFound", "message": "no /app/gone"}))]);
    let params: Map<String, Value> = [("Name".to_owned(), json!("/app/gone"))].into_iter().collect();
    let call = aws::Call { service: "ssm", api: "GetParameter", params: &params, role: None, token_seed: "t" };
    match client.call(&call).await {
        Err(error @ aws::Error::Service { .. }) => {
            assert_eq!(error.code(), Some("ParameterNotFound"));
            assert!(!error.is_transient());
        }
        other => panic!("expected a service error, got {other:?}"),
    }
}
