//! The AWS client: every service driven by its botocore model (`model`), requests checked
//! (`check`) and written in the service's wire protocol (`protocol`), sent to the standard
//! endpoint (`endpoint`) signed with SigV4, with credentials, region and profiles from
//! aws-config, through a [`Transport`] (`transport`: HTTPS, or a test's own). Only this
//! module talks to AWS, and it is the process's one HTTP stack (webhooks go through it too).

pub mod check;
pub mod endpoint;
pub mod model;
pub mod protocol;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use serde_json::{Map, Value, json};

pub use aws_credential_types::Credentials;
pub use check::Problem;
pub use protocol::{Response, ServiceError};
pub use transport::Transport;

/// An API call as it is about to go out: checked against the model, idempotency tokens
/// filled, serialized. What a [`Responder`] sees.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The service's canonical client name (`s3`, `ec2`).
    pub service: &'static str,
    /// The operation's canonical name (`GetBucketAcl`).
    pub operation: &'a str,
    /// The request parameters as sent, brought to the model's types.
    pub params: &'a Map<String, Value>,
}

/// Variables through which a script's SDK could find credentials, a profile or an endpoint
/// other than the ones the engine gives it.
pub const SDK_VARIABLES: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL",
];

/// What a responder does with a call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this response, boto3-shaped and already checked against the operation's
    /// output shape ([`check::check_response`]); the client adds the response metadata.
    Respond(Value),
    /// Answer with this service error (retried like a real one when it is transient).
    Fail(ServiceError),
    /// Send the call to the network after all.
    Send,
    /// Refuse the call: nothing may answer it (the message says why).
    Refuse(String),
}

/// Answers calls in place of the network, on the request the engine built, checked and
/// serialized: `runbook test` mocks AWS here, and records what was called.
pub trait Responder: Send + Sync {
    fn reply(&self, call: &Outgoing<'_>) -> Reply;

    /// The response to a call it sent on ([`Reply::Send`]), as parsed.
    fn received(&self, _call: &Outgoing<'_>, _response: &Value) {}
}

/// How to reach AWS, from the command line; the rest comes from the standard configuration
/// (environment, `~/.aws/config` and `credentials`, SSO, IMDS).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--endpoint-url`: every service at this URL (an emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// `--profile`, else `AWS_PROFILE`.
    pub profile: Option<String>,
    /// `--region`, else `AWS_REGION` or the profile's region.
    pub region: Option<String>,
}

/// One API call as a step asks for it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The boto3 client name (`ec2`, `elbv2`), matched case-insensitively.
    pub service: &'a str,
    /// The operation in any spelling botocore accepts (`DescribeInstances`, `describe_instances`).
    pub api: &'a str,
    pub params: &'a Map<String, Value>,
    /// The runbook's `assumeRole`, if any.
    pub role: Option<&'a str>,
    /// Execution, step and iteration: idempotency tokens derive from it.
    pub token_seed: &'a str,
}

/// What to do when no credentials are found.
const NO_CREDENTIALS: &str = "none found: pass --profile or set AWS_PROFILE, set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY, or sign in with `aws sso login` (against a local emulator with --endpoint-url, any \
     key pair will do)";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown AWS service `{name}`{}", suggest(*.suggestion))]
    UnknownService { name: String, suggestion: Option<&'static str> },
    #[error("service `{service}` has no operation `{api}`{}", suggest(.suggestion.as_deref()))]
    UnknownOperation { service: String, api: String, suggestion: Option<String> },
    #[error("invalid parameters for {operation}: {}", join_problems(.problems))]
    InvalidParameters { operation: String, problems: Vec<Problem> },
    #[error("no AWS region is configured: pass --region, set AWS_REGION, or give the profile a region")]
    NoRegion,
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("an error occurred ({}) when calling the {operation} operation: {}", .error.code, .error.message)]
    Service { operation: String, error: ServiceError },
    #[error("could not reach {url}: {message}")]
    Transport { url: String, message: String },
    #[error("could not build the {operation} request: {message}")]
    Request { operation: String, message: String },
    /// A responder refused a call (a test's call with no mock).
    #[error("{0}")]
    Refused(String),
    /// A responder's answer does not fit the operation's output shape.
    #[error("the response given for {operation} does not fit its output: {}", join_problems(.problems))]
    InvalidResponse { operation: String, problems: Vec<Problem> },
}

fn suggest(suggestion: Option<&str>) -> String {
    suggestion.map(|near| format!("; did you mean `{near}`?")).unwrap_or_default()
}

fn join_problems(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Error codes AWS uses for throttling and passing trouble (botocore's standard retry mode).
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
];

impl Error {
    /// Whether trying the same request again may succeed: throttling, 5xx, no connection.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Service { error, .. } => {
                error.status >= 500 || error.status == 429 || TRANSIENT_CODES.contains(&error.code.as_str())
            }
            Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// The AWS error code, for a service error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Service { error, .. } => Some(&error.code),
            _ => None,
        }
    }
}

/// How many times one call is tried before the step's attempt counts as failed.
const MAX_TRIES: u32 = 4;

/// A number between 0 and 1 for jittered backoff.
pub fn random_unit() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    f64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])) / f64::from(u32::MAX)
}

/// The caller's identity, from STS `GetCallerIdentity`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account: String,
    pub arn: String,
    pub partition: String,
}

/// The engine's handle on AWS for one run: configuration loaded once, credentials cached
/// per role until shortly before they expire.
pub struct Aws {
    settings: Settings,
    /// The configuration, loaded on first use: a runbook that never calls AWS never looks for
    /// credentials.
    loaded: tokio::sync::OnceCell<SdkConfig>,
    credentials: tokio::sync::Mutex<HashMap<Option<String>, Credentials>>,
    identity: tokio::sync::OnceCell<Identity>,
    transport: Arc<dyn Transport>,
    responder: Option<Arc<dyn Responder>>,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Aws {
    pub fn new(settings: Settings) -> Arc<Aws> {
        Aws::with_transport(settings, Arc::new(transport::Https::default()), None)
    }

    /// A client whose requests go through `transport`; with `credentials`, the engine's own
    /// identity is those (a test's), not the standard configuration's.
    pub fn with_transport(
        settings: Settings,
        transport: Arc<dyn Transport>,
        credentials: Option<Credentials>,
    ) -> Arc<Aws> {
        Arc::new(Aws {
            settings,
            loaded: tokio::sync::OnceCell::new(),
            credentials: tokio::sync::Mutex::new(credentials.into_iter().map(|c| (None, c)).collect()),
            identity: tokio::sync::OnceCell::new(),
            transport,
            responder: None,
        })
    }

    /// A client whose calls `responder` answers (or sends on, through HTTPS, when it says
    /// so); webhooks are refused unless it sends them on. No credentials are looked for
    /// for the calls it answers.
    pub fn with_responder(settings: Settings, responder: Arc<dyn Responder>) -> Arc<Aws> {
        let credentials = Credentials::new("AKIDRUNBOOKTEST", "runbook-test-secret", None, None, "runbook test");
        Arc::new(Aws {
            settings,
            loaded: tokio::sync::OnceCell::new(),
            credentials: tokio::sync::Mutex::new([(None, credentials)].into_iter().collect()),
            identity: tokio::sync::OnceCell::new(),
            transport: Arc::new(transport::Https::default()),
            responder: Some(responder),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether a responder answers this client's calls (a test's): scripts then get only the
    /// credentials and endpoint the engine gives them.
    pub fn is_mocked(&self) -> bool {
        self.responder.is_some()
    }

    async fn loaded(&self) -> &SdkConfig {
        self.loaded
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(transport::sdk_client());
                if let Some(profile) = &self.settings.profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(region) = &self.settings.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(url) = &self.settings.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                loader.load().await
            })
            .await
    }

    /// The region calls go to.
    pub async fn region(&self) -> Result<String, Error> {
        if let Some(region) = &self.settings.region {
            return Ok(region.clone());
        }
        self.loaded().await.region().map(|region| region.to_string()).ok_or(Error::NoRegion)
    }

    /// Credentials for the engine's own identity, or for `role` assumed through STS.
    pub async fn credentials(&self, role: Option<&str>) -> Result<Credentials, Error> {
        let mut cache = self.credentials.lock().await;
        // A test's client never looks for credentials nor assumes a role: its own stand for all.
        if self.responder.is_some()
            && let Some(own) = cache.get(&None)
        {
            return Ok(own.clone());
        }
        let key = role.map(str::to_string);
        if let Some(credentials) = cache.get(&key) {
            let fresh = credentials.expiry().is_none_or(|expiry| expiry > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let loaded = self.loaded().await;
        let provider = match role {
            None => {
                loaded.credentials_provider().ok_or_else(|| Error::Credentials("no provider is configured".into()))?
            }
            Some(role) => SharedCredentialsProvider::new(
                aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name(format!("runbook-{}", std::process::id()))
                    .configure(loaded)
                    .build()
                    .await,
            ),
        };
        let credentials = provider.provide_credentials().await.map_err(|error| {
            let detail = aws_smithy_types::error::display::DisplayErrorContext(&error).to_string();
            match role {
                Some(role) => Error::Credentials(format!("could not assume {role}: {detail}")),
                // The SDK's account of every provider it tried runs to hundreds of characters;
                // what is missing, and how to give it, is one sentence.
                None if matches!(
                    error,
                    aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_)
                ) =>
                {
                    Error::Credentials(NO_CREDENTIALS.to_owned())
                }
                None => Error::Credentials(detail),
            }
        })?;
        cache.insert(key, credentials.clone());
        Ok(credentials)
    }

    /// Whether a run can call AWS at all: a region, and credentials for the engine's own
    /// identity. Checked once, before the first step, so that a missing one is one clear
    /// error and not a failure per attempt.
    pub async fn check_ready(&self) -> Result<(), Error> {
        self.region().await?;
        self.credentials(None).await.map(|_| ())
    }

    /// The variables a script needs so that its boto3 calls reach the same AWS as the engine.
    pub async fn script_environment(&self, role: Option<&str>) -> Result<Vec<(String, String)>, Error> {
        let credentials = self.credentials(role).await?;
        let region = self.region().await?;
        let mut variables = vec![
            ("AWS_ACCESS_KEY_ID".to_string(), credentials.access_key_id().to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), credentials.secret_access_key().to_string()),
            ("AWS_REGION".to_string(), region.clone()),
            ("AWS_DEFAULT_REGION".to_string(), region),
        ];
        if let Some(token) = credentials.session_token() {
            variables.push(("AWS_SESSION_TOKEN".into(), token.to_string()));
        }
        if let Some(url) = &self.settings.endpoint_url {
            variables.push(("AWS_ENDPOINT_URL".into(), url.clone()));
        } else if self.responder.is_some() {
            // A test's script reaches no AWS: its calls fail at once, on this machine, and
            // are not retried.
            variables.push(("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()));
            variables.push(("AWS_MAX_ATTEMPTS".into(), "1".into()));
        }
        if self.responder.is_some() {
            variables.push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
            variables.push(("AWS_CONFIG_FILE".into(), "/nonexistent/runbook-test".into()));
            variables.push(("AWS_SHARED_CREDENTIALS_FILE".into(), "/nonexistent/runbook-test".into()));
        }
        Ok(variables)
    }

    /// Who the engine is: account and partition for `global:ACCOUNT_ID` and
    /// `global:AWS_PARTITION`.
    pub async fn identity(&self) -> Result<&Identity, Error> {
        self.identity
            .get_or_try_init(|| async {
                let params = Map::new();
                let call =
                    Call { service: "sts", api: "GetCallerIdentity", params: &params, role: None, token_seed: "" };
                let response = self.call(&call).await?;
                let text = |key: &str| response.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                let arn = text("Arn");
                let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
                Ok(Identity { account: text("Account"), arn, partition })
            })
            .await
    }

    /// One call the engine makes for itself (no step, no role): `params` is a JSON object.
    pub async fn request(&self, service: &str, api: &str, params: Value) -> Result<Value, Error> {
        let params: Map<String, Value> = match params {
            Value::Object(params) => params,
            _ => Map::new(),
        };
        self.call(&Call { service, api, params: &params, role: None, token_seed: "" }).await
    }

    /// Makes one API call: checks the parameters against the model, fills idempotency tokens,
    /// signs and sends, retries throttling and 5xx, and returns the boto3-shaped response.
    pub async fn call(&self, call: &Call<'_>) -> Result<Value, Error> {
        self.call_with_body(call, None).await
    }

    /// [`Aws::call`] with the request's body given as bytes (an S3 object that is not text),
    /// in place of the payload member, which `call.params` then leaves out.
    pub async fn call_with_body(&self, call: &Call<'_>, body: Option<Vec<u8>>) -> Result<Value, Error> {
        let (model, operation) = resolve(call.service, call.api)?;
        let operation = &model.operations[&operation];
        let (mut params, problems) = check::check(&model, operation, call.params, &[]);
        if !problems.is_empty() {
            return Err(Error::InvalidParameters { operation: operation.name.clone(), problems });
        }
        check::fill_idempotency_tokens(&model, operation, &mut params, call.token_seed);
        customize(&model, operation, &mut params);
        let mut request = protocol::serialize(&model, operation, &params)
            .map_err(|message| Error::Request { operation: operation.name.clone(), message })?;
        if let Some(body) = body {
            request.body = body;
        }
        let service = model::canonical_service(call.service).unwrap_or("unknown");
        let outgoing = Outgoing { service, operation: &operation.name, params: &params };
        let mut tries = 0;
        loop {
            tries += 1;
            let result = match self.responder.as_ref().map(|responder| responder.reply(&outgoing)) {
                Some(Reply::Respond(response)) => respond(operation, response),
                Some(Reply::Fail(error)) => Err(Error::Service { operation: operation.name.clone(), error }),
                Some(Reply::Refuse(message)) => return Err(Error::Refused(message)),
                None => self.send_signed(call, &model, operation, &request).await,
                Some(Reply::Send) => {
                    let response = self.send_signed(call, &model, operation, &request).await;
                    if let (Ok(response), Some(responder)) = (&response, &self.responder) {
                        responder.received(&outgoing, response);
                    }
                    response
                }
            };
            match result {
                Ok(mut response) => {
                    if let Some(metadata) = response.get_mut("ResponseMetadata").and_then(Value::as_object_mut) {
                        metadata.insert("RetryAttempts".into(), json!(tries - 1));
                    }
                    return Ok(response);
                }
                Err(error) if error.is_transient() && tries < MAX_TRIES => {
                    // Full jitter on an exponential base (botocore's standard mode).
                    let base = 0.2 * f64::from(1u32 << tries.min(8));
                    tokio::time::sleep(Duration::from_secs_f64(base.min(20.0) * random_unit())).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Resolves the endpoint, signs and sends one try of a call.
    async fn send_signed(
        &self,
        call: &Call<'_>,
        model: &model::Model,
        operation: &model::Operation,
        request: &protocol::Request,
    ) -> Result<Value, Error> {
        let region = self.region().await?;
        let endpoint =
            endpoint::resolve(model, &region, self.settings.endpoint_url.as_deref(), &endpoint::ProcessEnvironment)
                .map_err(|message| Error::Request { operation: operation.name.clone(), message })?;
        let credentials = self.credentials(call.role).await?;
        self.send(model, operation, request, &endpoint, &credentials).await
    }

    /// POSTs `body` to `url` unsigned, through the same transport as AWS calls (webhooks).
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Result<Response, Error> {
        let to_endpoint = self.settings.endpoint_url.as_deref().is_some_and(|endpoint| url.starts_with(endpoint));
        if self.responder.is_some() && !to_endpoint {
            return Err(Error::Refused(format!("no request leaves a test: mock the step that posts to {url}")));
        }
        let uri: http::Uri =
            url.parse().map_err(|e| Error::Transport { url: url.to_owned(), message: format!("{e}") })?;
        let mut headers = headers.to_vec();
        if let Some(host) = uri.authority() {
            headers.push(("host".into(), host.as_str().to_owned()));
        }
        headers.push(("content-length".into(), body.len().to_string()));
        let request = transport::Request { method: "POST".into(), url: url.to_owned(), headers, body };
        self.transport.send(request).await.map_err(|message| Error::Transport { url: url.to_owned(), message })
    }

    async fn send(
        &self,
        model: &model::Model,
        operation: &model::Operation,
        request: &protocol::Request,
        endpoint: &endpoint::Endpoint,
        credentials: &Credentials,
    ) -> Result<Value, Error> {
        let url = match &request.host_prefix {
            Some(prefix) if !endpoint.custom => endpoint.url.replacen("://", &format!("://{prefix}"), 1),
            _ => endpoint.url.clone(),
        };
        let url = format!("{url}{}", request.path_and_query);
        let transport = |message: String| Error::Transport { url: url.clone(), message };
        let build = |message: String| Error::Request { operation: operation.name.clone(), message };
        let uri: http::Uri = url.parse().map_err(|e| build(format!("bad URL {url}: {e}")))?;
        let host = uri.authority().map(|a| a.as_str().to_string()).ok_or_else(|| build(format!("no host in {url}")))?;
        let mut headers = request.headers.clone();
        headers.push(("host".into(), host));
        // S3 refuses a PUT without a length (411), even an empty one.
        if !request.body.is_empty() || !matches!(request.method.as_str(), "GET" | "HEAD" | "DELETE") {
            headers.push(("content-length".into(), request.body.len().to_string()));
        }
        if operation.checksum_required() {
            use md5::Digest;
            let digest = md5::Md5::digest(&request.body);
            headers.push(("content-md5".into(), aws_smithy_types::base64::encode(digest)));
        }
        let signed = sign(model, request, &url, &headers, endpoint, credentials).map_err(build)?;
        headers.extend(signed);
        let outgoing = transport::Request {
            method: request.method.clone(),
            url: url.clone(),
            headers,
            body: request.body.clone(),
        };
        let response = self.transport.send(outgoing).await.map_err(transport)?;
        let status = response.status;
        match protocol::parse(model, operation, &response) {
            Ok(mut value) => {
                let object = value.as_object_mut().expect("responses parse to objects");
                let metadata = object.entry("ResponseMetadata").or_insert_with(|| json!({}));
                let metadata = metadata.as_object_mut().expect("ResponseMetadata is an object");
                if !metadata.contains_key("RequestId")
                    && let Some(id) = response.header("x-amzn-requestid").or(response.header("x-amz-request-id"))
                {
                    metadata.insert("RequestId".into(), json!(id));
                }
                metadata.insert("HTTPStatusCode".into(), json!(status));
                metadata.insert(
                    "HTTPHeaders".into(),
                    Value::Object(response.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                );
                Ok(value)
            }
            Err(error) => Err(Error::Service { operation: operation.name.clone(), error }),
        }
    }
}

/// A responder's answer as the service's would be: with the response metadata a real answer
/// has. The responder checked it against the output shape.
fn respond(operation: &model::Operation, response: Value) -> Result<Value, Error> {
    let Value::Object(mut response) = response else {
        let problem = Problem { path: String::new(), message: format!("expected an object, found {response}") };
        return Err(Error::InvalidResponse { operation: operation.name.clone(), problems: vec![problem] });
    };
    response.insert("ResponseMetadata".into(), json!({"HTTPStatusCode": 200, "HTTPHeaders": {}}));
    Ok(Value::Object(response))
}

/// The model and canonical operation name a `Service` and `Api` mean.
pub fn resolve(service: &str, api: &str) -> Result<(Arc<model::Model>, String), Error> {
    let model = model::service(service).ok_or_else(|| Error::UnknownService {
        name: service.to_string(),
        suggestion: crate::diagnostic::nearest(service, model::service_names().into_iter()),
    })?;
    let Some(operation) = model.operation(api) else {
        let names = model.operations.keys();
        let suggestion = crate::diagnostic::nearest(api, names).map(str::to_string);
        return Err(Error::UnknownOperation { service: service.to_string(), api: api.to_string(), suggestion });
    };
    let name = operation.name.clone();
    Ok((model, name))
}

/// The values of members the model marks sensitive in a response (a decrypted SecureString,
/// a secret's value), which must not be shown or stored.
pub fn sensitive_values(service: &str, api: &str, response: &Value) -> Vec<Value> {
    fn walk(model: &model::Model, member: &model::Member, value: &Value, out: &mut Vec<Value>) {
        let shape = model.shape(member);
        if shape.sensitive {
            out.push(value.clone());
            return;
        }
        match (shape.kind, value) {
            (model::Kind::Structure, Value::Object(object)) => {
                // Parameter Store marks every value sensitive; only a SecureString's is secret.
                let plain_parameter =
                    matches!(object.get("Type").and_then(Value::as_str), Some("String" | "StringList"));
                for (name, child) in &shape.members {
                    if plain_parameter && name == "Value" {
                        continue;
                    }
                    if let Some(value) = object.get(name) {
                        walk(model, child, value, out);
                    }
                }
            }
            (model::Kind::List, Value::Array(items)) => {
                let element = shape.member.as_deref().expect("list shapes have a member");
                items.iter().for_each(|item| walk(model, element, item, out));
            }
            (model::Kind::Map, Value::Object(object)) => {
                let element = shape.value.as_deref().expect("map shapes have a value");
                object.values().for_each(|item| walk(model, element, item, out));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok((model, operation)) = resolve(service, api)
        && let Some(output) = &model.operations[&operation].output
        && may_hold_sensitive(&model, &output.shape)
    {
        walk(&model, output, response, &mut out);
    }
    out
}

/// Whether a shape holds a sensitive member anywhere (most responses do not, and are not
/// walked); remembered per service and shape.
fn may_hold_sensitive(model: &model::Model, shape: &str) -> bool {
    fn search(model: &model::Model, name: &str, seen: &mut std::collections::HashSet<String>) -> bool {
        if !seen.insert(name.to_owned()) {
            return false;
        }
        let Some(shape) = model.shapes.get(name) else { return false };
        shape.sensitive
            || shape.members.values().any(|member| search(model, &member.shape, seen))
            || [&shape.member, &shape.value].into_iter().flatten().any(|member| search(model, &member.shape, seen))
    }
    thread_local! {
        static KNOWN: std::cell::RefCell<HashMap<String, bool>> = Default::default();
    }
    let key = format!("{}/{}/{shape}", model.metadata.endpoint_prefix, model.metadata.api_version);
    if let Some(known) = KNOWN.with_borrow(|known| known.get(&key).copied()) {
        return known;
    }
    let found = search(model, shape, &mut std::collections::HashSet::new());
    KNOWN.with_borrow_mut(|known| known.insert(key, found));
    found
}

/// What botocore changes in requests beyond the model: Route 53 takes ids without the
/// `/hostedzone/` (`/change/`, `/delegationset/`) prefix its own responses put on them.
fn customize(model: &model::Model, operation: &model::Operation, params: &mut Map<String, Value>) {
    if model.metadata.endpoint_prefix != "route53" {
        return;
    }
    let Some(input) = &operation.input else { return };
    for (name, member) in &model.shape(input).members {
        if matches!(member.shape.as_str(), "ResourceId" | "DelegationSetId" | "ChangeId")
            && let Some(Value::String(id)) = params.get_mut(name)
            && let Some((_, bare)) = id.rsplit_once('/')
        {
            *id = bare.to_string();
        }
    }
}

/// SigV4 headers for a request (S3 signs the payload hash header and its paths unnormalised).
fn sign(
    model: &model::Model,
    request: &protocol::Request,
    url: &str,
    headers: &[(String, String)],
    endpoint: &endpoint::Endpoint,
    credentials: &Credentials,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode,
    };
    let mut settings = SigningSettings::default();
    let signing_name = model.signing_name();
    if signing_name == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
    }
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&endpoint.signing_region)
        .name(signing_name)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        &request.method,
        url,
        headers.iter().map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    let (signed_headers, _) = instructions.into_parts();
    Ok(signed_headers.into_iter().map(|header| (header.name().to_string(), header.value().to_string())).collect())
}
